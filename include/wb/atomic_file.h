/* wb/atomic_file.h — the one way libwb replaces a file: write
 * PATH.tmp.XXXXXX (a name of its own, so concurrent writers of one PATH
 * never mix their bytes), flush and fsync it, rename it over PATH, then fsync the folder (best
 * effort). A crash or an error never leaves a damaged PATH, only the old
 * file or the complete new one, and a failed write removes PATH.tmp.
 * Checkpoints, feature statistics, PNG figures, config.json, results.json
 * and result tables all go through it. Errors name PATH (and PATH.tmp when
 * that is what failed) in wb_last_error().
 */
#ifndef WB_ATOMIC_FILE_H
#define WB_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* libwb exports what is declared here */

typedef struct wb_atomic_file {
    FILE *f;    /* write here between open and commit/abort */
    char *path; /* the file being replaced */
    char *tmp;  /* PATH.tmp.XXXXXX (mkstemp) */
} wb_atomic_file;

/* Creates PATH.tmp.XXXXXX for writing; 0, or -1 with the error set (af is then
 * empty and needs no abort). */
int wb_atomic_open(wb_atomic_file *af, const char *path);
/* Flushes, fsyncs and closes PATH.tmp and renames it over PATH. Any write
 * error since open (the stream's error flag) fails the commit. On failure
 * PATH is untouched and PATH.tmp removed. af is empty afterwards. */
int wb_atomic_commit(wb_atomic_file *af);
/* Gives up: closes and removes PATH.tmp; PATH is untouched and the current
 * error message is kept. A no-op on an empty af. */
void wb_atomic_abort(wb_atomic_file *af);
/* The whole of data[0..len) as PATH, atomically. */
int wb_write_file_atomic(const char *path, const void *data, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
