/* kernels/cuda/cuda_backend.h — the one C entry of the CUDA backend
 * (the .cu files of kernels/cuda, compiled by nvcc into the wb_cuda static
 * library). The host calls wb_cuda_backend_table() from wb_backend_cuda() when
 * WB_HAVE_CUDA is defined; nothing else of the CUDA side is visible to C.
 *
 * The second half (only under nvcc) declares the launchers shared between
 * the .cu files of this directory; it is not part of any public API.
 */
#ifndef WB_CUDA_BACKEND_H
#define WB_CUDA_BACKEND_H

#include <stddef.h>

#include "wb/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA backend table for device 0, or NULL with a reason in err (always
 * NUL-terminated when err_len > 0) when there is no usable driver/device, the
 * device cannot run our kernels, or cuBLAS cannot start. Never prints, never
 * exits. The probe runs once (thread-safe); later calls return the cached
 * table or the cached reason. The table lives for the whole process. */
const wb_backend *wb_cuda_backend_table(char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
/* ---- internal to the .cu files of kernels/cuda ---------------------------- */
#include <cuda_runtime.h>

#define WB_CUDA_HIDDEN __attribute__((visibility("hidden")))

/* Every kernel launch is written WB_CUDA_LAUNCH(kernel, grid, block,
 * shared_bytes)(args...), never with the triple-chevron syntax directly, so
 * the same source also builds for a CPU emulation of the runtime (which
 * defines WB_CUDA_LAUNCH itself before this header is read). */
#ifndef WB_CUDA_LAUNCH
#define WB_CUDA_LAUNCH(kernel, grid, block, shmem) kernel<<<(grid), (block), (shmem)>>>
#endif

/* Launch configuration shared by every elementwise kernel: 256 threads per
 * block (8 warps: a multiple of the warp size that keeps occupancy high on
 * sm_80/sm_90 without register pressure for these tiny kernels) and at most
 * WB_CUDA_MAX_BLOCKS blocks. Kernels use grid-stride loops, so the cap only
 * bounds launch size: 4096·256 ≈ 1M threads already exceeds the resident
 * capacity of an H100 (132 SMs · 2048 threads), so larger grids buy nothing. */
#define WB_CUDA_BLOCK 256
#define WB_CUDA_MAX_BLOCKS 4096

static inline unsigned wb_cuda_grid(int64_t n) {
    int64_t g = (n + WB_CUDA_BLOCK - 1) / WB_CUDA_BLOCK;
    if (g < 1) g = 1;
    if (g > WB_CUDA_MAX_BLOCKS) g = WB_CUDA_MAX_BLOCKS;
    return (unsigned)g;
}

/* After a launch or runtime call: on failure, leave "cuda <what>: <reason>"
 * in wb_last_error() (the vtable functions return void, so this is the only
 * channel; asynchronous kernel faults surface at the next synchronising call,
 * e.g. download). Returns 0 on success. */
WB_CUDA_HIDDEN int wb_cuda_check(cudaError_t e, const char *what);

/* cuda_elementwise.cu */
WB_CUDA_HIDDEN void wb_cuda_fill(float *dst, int64_t n, float value);
WB_CUDA_HIDDEN void wb_cuda_flag_nonfinite(int64_t n, const float *x, int *flag);
WB_CUDA_HIDDEN void wb_cuda_unary(wb_unary_op op, int64_t n, const float *x, float *y, float alpha);
WB_CUDA_HIDDEN void wb_cuda_unary_bwd(wb_unary_op op, int64_t n, const float *x, const float *y,
                                      const float *dy, float *dx, float alpha);
WB_CUDA_HIDDEN void wb_cuda_binary(wb_binary_op op, const wb_bcast *bc, const float *a,
                                   const float *b, float *y);
WB_CUDA_HIDDEN void wb_cuda_binary_bwd(wb_binary_op op, const wb_bcast *bc, const float *a,
                                       const float *b, const float *dy, float *da, float *db);
WB_CUDA_HIDDEN void wb_cuda_bcast_rows_add(int64_t rows, int64_t cols, const float *dy,
                                           float alpha, float *dx);
WB_CUDA_HIDDEN void wb_cuda_copy_2d(int64_t rows, int64_t cols, const float *src,
                                    int64_t src_stride, float *dst, int64_t dst_stride,
                                    int accumulate);
WB_CUDA_HIDDEN void wb_cuda_sinusoidal(int64_t n, int dim, float max_period, const float *t,
                                       float *y);
WB_CUDA_HIDDEN void wb_cuda_sinusoidal_bwd(int64_t n, int dim, float max_period, const float *t,
                                           const float *dy, float *dt);
WB_CUDA_HIDDEN void wb_cuda_axpy(int64_t n, float alpha, const float *x, float *y);
WB_CUDA_HIDDEN void wb_cuda_axpby(int64_t n, float a, const float *x, float b, float *y);
WB_CUDA_HIDDEN void wb_cuda_adam(int64_t n, float *p, const float *g, float *m, float *v,
                                 float lr, float beta1, float beta2, float eps,
                                 float weight_decay, int decoupled, float bc1, float bc2);

/* cuda_reduce.cu */
WB_CUDA_HIDDEN void wb_cuda_sum_rows(int64_t rows, int64_t cols, const float *x, float *y);
WB_CUDA_HIDDEN void wb_cuda_sum_cols(int64_t rows, int64_t cols, const float *x, float *y,
                                     int accumulate);
WB_CUDA_HIDDEN double wb_cuda_sum_squares(int64_t n, const float *x);
#endif /* __CUDACC__ */

#endif
