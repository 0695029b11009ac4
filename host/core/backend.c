/* host/core/backend.c — backend selection (the one place that picks a
 * backend; the engine and plugins use the one they are given): the CPU
 * reference is always there;
 * the CUDA table exists when libwb was built with nvcc (WB_HAVE_CUDA) and a
 * device answers at run time. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

#ifdef WB_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif
#ifdef WB_HAVE_CUDA_EMU
/* kernels/cuda compiled against kernels/cuda/emu (symbols renamed wb_cuda_emu_*) */
const wb_backend *wb_cuda_emu_backend_table(char *err, size_t err_len);
#endif

/* The CUDA kernels on the CPU emulation of the runtime, for CI. */
static const wb_backend *backend_cuda_emu(void) {
#ifdef WB_HAVE_CUDA_EMU
    char err[256] = {0};
    const wb_backend *be = wb_cuda_emu_backend_table(err, sizeof err);
    if (!be) wb_set_error("cuda-emu backend unavailable: %s", err[0] ? err : "unknown reason");
    return be;
#else
    wb_set_error("cuda-emu backend unavailable: libwb was built without a C++ compiler (WB_CUDA_EMU)");
    return NULL;
#endif
}

const wb_backend *wb_backend_cuda(void) {
#ifdef WB_HAVE_CUDA
    char err[256] = {0};
    const wb_backend *be = wb_cuda_backend_table(err, sizeof err);
    if (!be) wb_set_error("CUDA backend unavailable: %s", err[0] ? err : "unknown reason");
    return be;
#else
    wb_set_error("CUDA backend unavailable: libwb was built without nvcc");
    return NULL;
#endif
}

const char *wb_backend_name(const wb_backend *be) { return be ? be->name : "none"; }

const wb_backend *wb_backend_select(const char *name) {
    const char *from = "backend";
    if (!name || !name[0]) {
        name = getenv("WB_BACKEND");
        from = "WB_BACKEND";
        if (!name || !name[0]) return wb_backend_cpu();
    }
    if (strcmp(name, "cpu") == 0) return wb_backend_cpu();
    if (strcmp(name, "cuda") == 0) {
        const wb_backend *be = wb_backend_cuda();
        if (!be) wb_set_error("%s = \"cuda\": %s", from, wb_last_error());
        return be;
    }
    if (strcmp(name, "cuda-emu") == 0) {
        const wb_backend *be = backend_cuda_emu();
        if (!be) wb_set_error("%s = \"cuda-emu\": %s", from, wb_last_error());
        return be;
    }
    if (strcmp(name, "auto") == 0) {
        const wb_backend *be = wb_backend_cuda();
        if (!be) wb_clear_error();
        return be ? be : wb_backend_cpu();
    }
    wb_set_error("%s = \"%s\": unknown backend (choices: cpu, cuda, cuda-emu, auto)", from, name);
    return NULL;
}

/* ---- transfers ---------------------------------------------------------------- */
void wb_backend_upload(const wb_backend *be, void *dst, const void *host_src, size_t bytes) {
    if (be->status) {
        be->status->transfers.uploads++;
        be->status->transfers.upload_bytes += bytes;
    }
    be->upload(dst, host_src, bytes);
}

void wb_backend_download(const wb_backend *be, void *host_dst, const void *src, size_t bytes) {
    wb_backend_count_download(be, bytes);
    be->download(host_dst, src, bytes);
}

void wb_backend_count_download(const wb_backend *be, size_t bytes) {
    if (!be->status) return;
    be->status->transfers.downloads++;
    be->status->transfers.download_bytes += bytes;
}

wb_transfer_counts wb_backend_transfers(const wb_backend *be) {
    wb_transfer_counts none = {0, 0, 0, 0};
    return be && be->status ? be->status->transfers : none;
}

/* ---- the sticky error and non-finite flags ------------------------------------ */
void wb_backend_fail(const wb_backend *be, const char *fmt, ...) {
    if (!be || !be->status || be->status->failed) return; /* the first failure explains the rest */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->status->message, sizeof be->status->message, fmt, ap);
    va_end(ap);
    be->status->failed = 1;
}

int wb_backend_take_error(const wb_backend *be, const char *op) {
    if (!be || !be->status || !be->status->failed) return 0;
    be->status->failed = 0;
    wb_set_error("%s: backend '%s' failed earlier: %s", op, be->name, be->status->message);
    return -1;
}

int wb_backend_sync(const wb_backend *be) {
    if (!be) {
        wb_set_error("sync: no backend");
        return -1;
    }
    if (be->sync && be->sync(be) && !(be->status && be->status->failed))
        wb_backend_fail(be, "sync: the device reported an error");
    if (wb_backend_take_error(be, "sync")) return -1;
    wb_backend_status *st = be->status;
    if (!st) return 0;
    int rc = 0;
    for (int i = 0; i < st->n_finite_checks; i++) {
        if (rc == 0 && st->finite_flags && st->finite_flags[i]) {
            wb_set_error("%s is not finite (NaN or inf)", st->finite_what[i] ? st->finite_what[i] : "a checked tensor");
            rc = -1;
        }
        if (st->finite_flags) st->finite_flags[i] = 0;
    }
    st->n_finite_checks = 0;
    return rc;
}

void wb_backend_clear(const wb_backend *be) {
    if (!be || !be->status) return;
    if (be->sync) be->sync(be);
    wb_backend_status *st = be->status;
    st->failed = 0;
    for (int i = 0; i < st->n_finite_checks; i++)
        if (st->finite_flags) st->finite_flags[i] = 0;
    st->n_finite_checks = 0;
}

void *wb_backend_alloc_zeroed(const wb_backend *be, size_t bytes) {
    if (be->alloc_zeroed) return be->alloc_zeroed(bytes);
    void *p = be->alloc(bytes);
    if (p && bytes >= sizeof(float)) be->fill(p, (int64_t)(bytes / sizeof(float)), 0.0f);
    return p;
}
