/* host/core/backend.c — backend selection: the CPU reference is always there;
 * the CUDA table exists when libwb was built with nvcc (WB_HAVE_CUDA) and a
 * device answers at run time. */
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
