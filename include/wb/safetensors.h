/* wb/safetensors.h — named host arrays (F32 or F64) in safetensors
 * files, beside the parameter-store checkpoints of wb/tensor.h
 * (wb_safetensors_save / wb_safetensors_load). Both sides share one writer
 * and one reader (host/core/safetensors.c): the same header validation, the
 * same atomic write (core/atomic_file.h), errors that name the file and key.
 * The feature statistics cache (host/engine/metrics.c) is written with it.
 */
#ifndef WB_CORE_SAFETENSORS_H
#define WB_CORE_SAFETENSORS_H

#include <stdint.h>

#include "wb/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* libwb exports what is declared here */

typedef enum { WB_ST_F32 = 0, WB_ST_F64 = 1 } wb_st_dtype;

/* One tensor to write: numel (product of shape) elements of dtype at data. */
typedef struct wb_st_array {
    const char *name;
    wb_st_dtype dtype;
    int ndim;                   /* 0..WB_MAX_DIMS */
    int64_t shape[WB_MAX_DIMS];
    const void *data;           /* host memory; may be NULL when numel is 0 */
} wb_st_array;

/* Writes the n arrays, in order, and the string metadata pairs (may be
 * NULL/0) to path atomically. Names must be unique and not __metadata__. */
int wb_safetensors_save_arrays(const char *path, const wb_st_array *arrays, int n, const char *const *meta_kv,
                               int n_meta);

/* A file opened for reading: its header is read and validated (length,
 * JSON object, string metadata) by wb_safetensors_open; tensors are then
 * looked up by name. */
typedef struct wb_st_file wb_st_file;
wb_st_file *wb_safetensors_open(const char *path);
void wb_safetensors_close(wb_st_file *f);
/* The metadata value of key, or NULL when the file has none. */
const char *wb_safetensors_meta(const wb_st_file *f, const char *key);
/* Rank and shape of tensor name, which must exist with this dtype and lie
 * inside the file; -1 with an error naming the file and key otherwise. */
int wb_safetensors_shape(const wb_st_file *f, const char *name, wb_st_dtype dtype, int *ndim,
                         int64_t shape[WB_MAX_DIMS]);
/* Reads tensor name (numel elements of dtype, as in the file) into out. */
int wb_safetensors_read(const wb_st_file *f, const char *name, wb_st_dtype dtype, void *out, int64_t numel);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
