/* host/core/backend.c — backend selection (the one place that picks a
 * backend; the engine and plugins use the one they are given): the CPU
 * reference is always there;
 * the CUDA table exists when libwb was built with nvcc (WB_HAVE_CUDA) and a
 * device answers at run time. */
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

#ifdef WB_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

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
    if (strcmp(name, "auto") == 0) {
        const wb_backend *be = wb_backend_cuda();
        if (!be) wb_clear_error();
        return be ? be : wb_backend_cpu();
    }
    wb_set_error("%s = \"%s\": unknown backend (choices: cpu, cuda, auto)", from, name);
    return NULL;
}
