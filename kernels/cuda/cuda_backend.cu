/* kernels/cuda/cuda_backend.cu — the CUDA backend's table and what is not a
 * kernel: the device probe behind wb_cuda_backend_table(), memory (alloc,
 * free, upload, download, copy) and gemm through cuBLAS. The kernels live in
 * cuda_elementwise.cu and cuda_reduce.cu.
 *
 * Execution model (why it is this simple): everything runs on the legacy
 * default stream of device 0 — kernels, cuBLAS (its handle keeps the default
 * NULL stream) and cudaMemcpy. Work is therefore ordered exactly as the host
 * issues it, and download()/sum_squares() synchronise, so the op layer never
 * needs an explicit sync. Like llm.c, one stream and no events: correctness
 * first; overlap can come later behind the same vtable.
 *
 * State: one file-static struct holds the cuBLAS handle, the table and the
 * probe's outcome. It is written once under pthread_once and read-only after,
 * so it is not a mutable global in any useful sense, and nothing outside this
 * file can reach it except through the returned const table.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda/cuda_backend.h"

static struct {
    pthread_once_t once;
    int ok;                 /* probe succeeded: table is usable          */
    char reason[256];       /* why not, when !ok                         */
    cublasHandle_t blas;    /* created once, never destroyed (process-long) */
    cudaStream_t stream;    /* the one stream of this backend (NULL: the legacy default stream) */
    int sync_each_launch;   /* WB_CUDA_SYNC=1: wait after every launch so a fault names its op */
    wb_backend table;
    wb_backend_status status; /* sticky error, finite flags (mapped host memory), transfers */
} g_cuda = {PTHREAD_ONCE_INIT, 0, {0}, NULL, NULL, 0, {}, {}};

cudaStream_t wb_cuda_stream(void) { return g_cuda.stream; }

/* Wait for the device; a failed launch or an asynchronous fault since the
 * last sync becomes the backend's sticky error. */
static int cu_sync(const wb_backend *be) {
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    wb_backend_fail(be, "cuda: %s", cudaGetErrorString(e));
    return -1;
}

int wb_cuda_check(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    wb_backend_fail(&g_cuda.table, "cuda %s: %s", what, cudaGetErrorString(e));
    wb_set_error("cuda %s: %s", what, cudaGetErrorString(e));
    return -1;
}

void wb_cuda_launched(const char *op) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && g_cuda.sync_each_launch) e = cudaStreamSynchronize(g_cuda.stream);
    wb_cuda_check(e, op);
}

/* ---- memory --------------------------------------------------------------- */

static void *cu_alloc(size_t bytes) {
    void *p = NULL;
    /* cudaMalloc(0) may hand back NULL, which callers read as failure, so an
     * empty tensor still gets a (tiny) real allocation. */
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        wb_set_error("cuda alloc of %zu bytes: %s", bytes, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

static void cu_free(void *ptr) {
    if (ptr) wb_cuda_check(cudaFree(ptr), "free");
}

static void cu_upload(void *dst, const void *host_src, size_t bytes) {
    if (bytes) wb_cuda_check(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice), "upload");
}

static void cu_download(void *host_dst, const void *src, size_t bytes) {
    if (bytes) wb_cuda_check(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost), "download");
}

static void cu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src)
        wb_cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "copy");
}

/* ---- gemm ----------------------------------------------------------------- *
 * The API is row-major; cuBLAS is column-major. A row-major r×c matrix with
 * leading dimension ld is, read column-major with the same ld, its transpose
 * (c×r). So the row-major C = op(A)·op(B) is, column-major, Cᵀ = op(B)ᵀ·op(A)ᵀ:
 * swap the operands (B first), swap m and n, keep k, and keep each operand's
 * transpose flag and ld unchanged — e.g. for trans_a = 0 the column-major view
 * of A (m×k, lda) is Aᵀ (k×m), which is exactly op(A)ᵀ, hence CUBLAS_OP_N.
 * C (m×n row-major, ldc) is read column-major as Cᵀ (n×m, ldc). */
static void cu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    cublasStatus_t st = cublasSgemm(g_cuda.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
                                    a, lda, &beta, c, ldc);
    if (st != CUBLAS_STATUS_SUCCESS)
        wb_set_error("cuda gemm (m=%d n=%d k=%d): %s", m, n, k, cublasGetStatusString(st));
}

/* ---- probe ------------------------------------------------------------------ */

/* Writes a known value: proves a kernel image for this device exists. The
 * build targets sm_80/sm_90 (SASS plus PTX that newer GPUs JIT); an older
 * GPU fails here with "no kernel image", reported now instead of as a
 * mysterious failure of the first op. */
static __global__ void wb_cuda_probe_kernel(float *out) { *out = 42.0f; }

static void probe_fail(const char *what, const char *why) {
    snprintf(g_cuda.reason, sizeof g_cuda.reason, "%s: %s", what, why);
}

static void cuda_init_once(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        /* No driver, driver too old, or no device: the common case on CI. */
        probe_fail("no CUDA device (cudaGetDeviceCount)", cudaGetErrorString(e));
        cudaGetLastError(); /* clear the runtime's last-error slot */
        return;
    }
    if (count < 1) {
        probe_fail("no CUDA device", "0 devices");
        return;
    }
    if ((e = cudaSetDevice(0)) != cudaSuccess) {
        probe_fail("cudaSetDevice(0)", cudaGetErrorString(e));
        return;
    }

    float *d = NULL, h = 0.0f;
    if ((e = cudaMalloc(&d, sizeof(float))) != cudaSuccess) {
        probe_fail("cudaMalloc (device 0)", cudaGetErrorString(e));
        cudaGetLastError();
        return;
    }
    WB_CUDA_LAUNCH(wb_cuda_probe_kernel, 1, 1, 0)(d);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (e != cudaSuccess || h != 42.0f) {
        probe_fail("CUDA kernel probe on device 0",
                   e != cudaSuccess ? cudaGetErrorString(e) : "wrong result");
        cudaGetLastError();
        return;
    }

    cublasStatus_t st = cublasCreate(&g_cuda.blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        probe_fail("cublasCreate", cublasGetStatusString(st));
        return;
    }
    /* Plain FP32 sgemm (no TF32 tensor-core rounding) so results agree with
     * the CPU reference to ~1e-6 relative; this is the default, set it
     * explicitly so a later cuBLAS default change cannot silently alter it. */
    cublasSetMathMode(g_cuda.blas, CUBLAS_DEFAULT_MATH);

    wb_backend *t = &g_cuda.table;
#ifdef WB_CUDA_EMU
    t->name = "cuda-emu"; /* the same source on the CPU emulation (kernels/cuda/emu) */
#else
    t->name = "cuda";
#endif
    t->device = WB_DEVICE_CUDA;
    t->alloc = cu_alloc;
    t->free = cu_free;
    t->upload = cu_upload;
    t->download = cu_download;
    t->copy = cu_copy;
    t->fill = wb_cuda_fill;
    t->gemm = cu_gemm;
    t->unary = wb_cuda_unary;
    t->unary_bwd = wb_cuda_unary_bwd;
    t->binary = wb_cuda_binary;
    t->binary_bwd = wb_cuda_binary_bwd;
    t->sum_rows = wb_cuda_sum_rows;
    t->sum_cols = wb_cuda_sum_cols;
    t->bcast_rows_add = wb_cuda_bcast_rows_add;
    t->copy_2d = wb_cuda_copy_2d;
    t->sinusoidal = wb_cuda_sinusoidal;
    t->sinusoidal_bwd = wb_cuda_sinusoidal_bwd;
    t->axpy = wb_cuda_axpy;
    t->axpby = wb_cuda_axpby;
    t->adam = wb_cuda_adam;
    t->sum_squares = wb_cuda_sum_squares;
    /* [image, norm and diffusion kernels] cuda_image.cu, cuda_norm.cu, cuda_diffusion.cu */
    t->im2col = wb_cuda_im2col;
    t->col2im = wb_cuda_col2im;
    t->upsample2x = wb_cuda_upsample2x;
    t->upsample2x_bwd = wb_cuda_upsample2x_bwd;
    t->avgpool2x = wb_cuda_avgpool2x;
    t->avgpool2x_bwd = wb_cuda_avgpool2x_bwd;
    t->maxpool2d = wb_cuda_maxpool2d;
    t->maxpool2d_bwd = wb_cuda_maxpool2d_bwd;
    t->avgpool2d = wb_cuda_avgpool2d;
    t->avgpool2d_bwd = wb_cuda_avgpool2d_bwd;
    t->resize_bilinear = wb_cuda_resize_bilinear;
    t->resize_bilinear_bwd = wb_cuda_resize_bilinear_bwd;
    t->group_norm = wb_cuda_group_norm;
    t->group_norm_bwd = wb_cuda_group_norm_bwd;
    t->softmax_rows = wb_cuda_softmax_rows;
    t->softmax_rows_bwd = wb_cuda_softmax_rows_bwd;
    t->rng_normal = wb_cuda_rng_normal;
    t->rng_uniform = wb_cuda_rng_uniform;
    t->karras_sigma = wb_cuda_karras_sigma;
    t->dmd_weight = wb_cuda_dmd_weight;
    t->dmd_weight_bwd = wb_cuda_dmd_weight_bwd;
    /* [end image, norm and diffusion kernels] */
    /* The finite flags live in mapped, pinned host memory: kernels write
     * them and wb_backend_sync reads them after the sync, with no copy. */
    int *flags = NULL;
    if (cudaHostAlloc((void **)&flags, WB_MAX_FINITE_CHECKS * sizeof(int), cudaHostAllocMapped) == cudaSuccess) {
        memset(flags, 0, WB_MAX_FINITE_CHECKS * sizeof(int));
        g_cuda.status.finite_flags = flags;
        t->flag_nonfinite = wb_cuda_flag_nonfinite;
    }
    t->status = &g_cuda.status;
    t->sync = cu_sync;
    g_cuda.ok = 1;
}

extern "C" const wb_backend *wb_cuda_backend_table(char *err, size_t err_len) {
    pthread_once(&g_cuda.once, cuda_init_once);
    if (g_cuda.ok) {
        if (err && err_len) err[0] = '\0';
        return &g_cuda.table;
    }
    if (err && err_len) snprintf(err, err_len, "%s", g_cuda.reason);
    return NULL;
}
