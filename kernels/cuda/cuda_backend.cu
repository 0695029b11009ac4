/* kernels/cuda/cuda_backend.cu — the CUDA backend's table and what is not a
 * kernel: the device probe behind wb_cuda_backend_table(), memory (alloc,
 * free, upload, download, copy) and gemm through cuBLAS. The kernels live in
 * cuda_elementwise.cu and cuda_reduce.cu.
 *
 * Execution model: one non-blocking stream (created with the table) carries
 * every kernel, cuBLAS call, cuDNN call and copy, so work is ordered exactly
 * as the host issues it and never waits on other libraries' work on the
 * legacy default stream. Host transfers go through two pinned staging
 * buffers (uploads return as soon as the data is staged; downloads wait for
 * the stream, then copy out). Memory comes from the device's stream-ordered
 * pool (cudaMallocAsync) with its release threshold at "never", so after the
 * first steps no op reaches the driver's allocator: freed blocks are reused
 * in stream order. Reductions that return a value to the host use buffers
 * made once, here. WB_CUDA_SYNC=1 waits after every launch, so an
 * asynchronous fault is reported by the op that caused it.
 *
 * Numerics: FP32 everywhere; TF32 tensor-core rounding is off unless
 * WB_CUDA_TF32=1 (cuBLAS math mode here, cuDNN math type in
 * cuda_conv_cudnn.cu), so results stay within float rounding of the CPU.
 *
 * State: one file-static struct holds the cuBLAS handle, the table and the
 * probe's outcome. It is written once under pthread_once and read-only after,
 * so it is not a mutable global in any useful sense, and nothing outside this
 * file can reach it except through the returned const table.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
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
    cudaStream_t stream;    /* the one stream of this backend (non-blocking) */
    int sync_each_launch;   /* WB_CUDA_SYNC=1: wait after every launch so a fault names its op */
    int tf32;               /* WB_CUDA_TF32=1: TF32 tensor cores in cuBLAS and cuDNN */
    int pooled;             /* memory from the stream-ordered pool (cudaMallocAsync) */
    /* pinned staging for host transfers: two buffers used in turn; an
     * upload waits for the copy that last used its buffer (staged[i]) */
    void *staging[2];
    cudaEvent_t staged[2];
    int next_staging;
    /* sum_squares: per-block partial sums, on the device and pinned */
    double *partials_dev, *partials_host;
    wb_backend table;
    wb_backend_status status; /* sticky error, finite flags (mapped host memory), transfers */
} g_cuda = {PTHREAD_ONCE_INIT, 0, {0}, NULL, NULL, 0, 0, 0, {NULL, NULL}, {NULL, NULL}, 0, NULL, NULL, {}, {}};

#define STAGING_BYTES ((size_t)8 << 20) /* per buffer: transfers go in chunks of this */

cudaStream_t wb_cuda_stream(void) { return g_cuda.stream; }

/* Wait for the device; a failed launch or an asynchronous fault since the
 * last sync becomes the backend's sticky error. */
static int cu_sync(const wb_backend *be) {
    cudaError_t e = cudaStreamSynchronize(g_cuda.stream);
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
    /* a zero-byte request still gets a real (tiny) block: callers read NULL
     * as failure */
    size_t n = bytes ? bytes : 1;
    cudaError_t e = g_cuda.pooled ? cudaMallocAsync(&p, n, g_cuda.stream) : cudaMalloc(&p, n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        wb_set_error("cuda alloc of %zu bytes: %s", bytes, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

/* Stream-ordered: the block returns to the pool once the work queued so
 * far (which may still read it) is done. */
static void cu_free(void *ptr) {
    if (ptr) wb_cuda_check(g_cuda.pooled ? cudaFreeAsync(ptr, g_cuda.stream) : cudaFree(ptr), "free");
}

/* Through the staging buffers: memcpy into pinned memory, then an async
 * copy that the host need not wait for (the next use of the same buffer
 * does). The caller may reuse host_src as soon as this returns. */
static void cu_upload(void *dst, const void *host_src, size_t bytes) {
    for (size_t off = 0; off < bytes; off += STAGING_BYTES) {
        size_t len = bytes - off < STAGING_BYTES ? bytes - off : STAGING_BYTES;
        int i = g_cuda.next_staging;
        g_cuda.next_staging ^= 1;
        if (wb_cuda_check(cudaEventSynchronize(g_cuda.staged[i]), "upload")) return;
        memcpy(g_cuda.staging[i], (const char *)host_src + off, len);
        if (wb_cuda_check(cudaMemcpyAsync((char *)dst + off, g_cuda.staging[i], len, cudaMemcpyHostToDevice,
                                          g_cuda.stream), "upload") ||
            wb_cuda_check(cudaEventRecord(g_cuda.staged[i], g_cuda.stream), "upload"))
            return;
    }
}

/* Waits for the stream (the data must be computed), so a download is also
 * where an asynchronous fault of earlier work surfaces. */
static void cu_download(void *host_dst, const void *src, size_t bytes) {
    for (size_t off = 0; off < bytes; off += STAGING_BYTES) {
        size_t len = bytes - off < STAGING_BYTES ? bytes - off : STAGING_BYTES;
        void *stage = g_cuda.staging[0];
        if (wb_cuda_check(cudaMemcpyAsync(stage, (const char *)src + off, len, cudaMemcpyDeviceToHost, g_cuda.stream),
                          "download") ||
            wb_cuda_check(cudaStreamSynchronize(g_cuda.stream), "download"))
            return;
        memcpy((char *)host_dst + off, stage, len);
    }
}

static void cu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src)
        wb_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_cuda.stream), "copy");
}

double *wb_cuda_partials(double **host) {
    *host = g_cuda.partials_host;
    return g_cuda.partials_dev;
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
    if (k <= 0) { /* C = β·C, β = 0 clears C (even NaN), as the CPU backend and BLAS do */
        wb_cuda_scale_matrices(1, m, n, ldc, 0, beta, c);
        return;
    }
    cublasStatus_t st = cublasSgemm(g_cuda.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
                                    a, lda, &beta, c, ldc);
    if (st != CUBLAS_STATUS_SUCCESS)
        wb_backend_fail(&g_cuda.table, "cuda gemm (m=%d n=%d k=%d): %s", m, n, k, cublasGetStatusString(st));
    else
        wb_cuda_launched("gemm");
}

/* The same swap per matrix; strides are in floats and may be 0 (one
 * weight matrix shared by every image). */
static void cu_gemm_batched(int batch, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                            int lda, int64_t stride_a, const float *b, int ldb, int64_t stride_b, float beta,
                            float *c, int ldc, int64_t stride_c) {
    if (batch <= 0 || m <= 0 || n <= 0) return;
    if (k <= 0) {
        wb_cuda_scale_matrices(batch, m, n, ldc, stride_c, beta, c);
        return;
    }
    cublasStatus_t st = cublasSgemmStridedBatched(g_cuda.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                  trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
                                                  (long long)stride_b, a, lda, (long long)stride_a, &beta, c, ldc,
                                                  (long long)stride_c, batch);
    if (st != CUBLAS_STATUS_SUCCESS)
        wb_backend_fail(&g_cuda.table, "cuda gemm_batched (batch=%d m=%d n=%d k=%d): %s", batch, m, n, k,
                        cublasGetStatusString(st));
    else
        wb_cuda_launched("gemm_batched");
}

/* ---- probe ------------------------------------------------------------------ */

/* Writes a known value: proves a kernel image for this device exists. The
 * build targets sm_80/sm_90 (SASS plus PTX that newer GPUs JIT); an older
 * GPU fails here with "no kernel image", reported now instead of as a
 * mysterious failure of the first op. */
static __global__ void wb_cuda_probe_kernel(float *out) { *out = 42.0f; }

/* WB_CUDA_SYNC=1, WB_CUDA_TF32=1: a set, non-zero variable. */
static int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && v[0] && strcmp(v, "0") != 0;
}

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
    /* Which device: WB_CUDA_DEVICE, else the launcher's local rank (one GPU
     * per rank of a data-parallel run: mpirun, srun, torchrun's variable)
     * modulo the devices, else 0. */
    int device = 0;
    const char *chosen = getenv("WB_CUDA_DEVICE");
    const char *local_vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"};
    for (int i = 0; !chosen && i < 3; i++) chosen = getenv(local_vars[i]);
    if (chosen && *chosen) device = atoi(chosen) % count;
    if (device < 0) device = 0;
    if ((e = cudaSetDevice(device)) != cudaSuccess) {
        probe_fail("cudaSetDevice", cudaGetErrorString(e));
        return;
    }

    float *d = NULL, h = 0.0f;
    if ((e = cudaMalloc(&d, sizeof(float))) != cudaSuccess) {
        probe_fail("cudaMalloc (first allocation)", cudaGetErrorString(e));
        cudaGetLastError();
        return;
    }
    WB_CUDA_LAUNCH(wb_cuda_probe_kernel, 1, 1, 0)(d);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (e != cudaSuccess || h != 42.0f) {
        probe_fail("CUDA kernel probe",
                   e != cudaSuccess ? cudaGetErrorString(e) : "wrong result");
        cudaGetLastError();
        return;
    }

    cublasStatus_t st = cublasCreate(&g_cuda.blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        probe_fail("cublasCreate", cublasGetStatusString(st));
        return;
    }
    g_cuda.sync_each_launch = env_flag("WB_CUDA_SYNC");
    g_cuda.tf32 = env_flag("WB_CUDA_TF32");
    if ((e = cudaStreamCreateWithFlags(&g_cuda.stream, cudaStreamNonBlocking)) != cudaSuccess) {
        probe_fail("cudaStreamCreateWithFlags", cudaGetErrorString(e));
        return;
    }
    cublasSetStream(g_cuda.blas, g_cuda.stream);
    /* Plain FP32 sgemm (no TF32 tensor-core rounding) so results agree with
     * the CPU reference to ~1e-6 relative, unless WB_CUDA_TF32=1; set
     * explicitly so a later cuBLAS default cannot silently change it. */
    cublasSetMathMode(g_cuda.blas, g_cuda.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);

    /* The stream-ordered pool keeps what it was given (release threshold
     * "never"): after warm-up no step calls the driver's allocator. */
    int pools = 0;
    if (cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, 0) == cudaSuccess && pools) {
        cudaMemPool_t pool;
        uint64_t keep = UINT64_MAX;
        if (cudaDeviceGetDefaultMemPool(&pool, 0) == cudaSuccess &&
            cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) == cudaSuccess)
            g_cuda.pooled = 1;
    }
    cudaGetLastError();
    for (int i = 0; i < 2; i++)
        if ((e = cudaHostAlloc(&g_cuda.staging[i], STAGING_BYTES, cudaHostAllocDefault)) != cudaSuccess ||
            (e = cudaEventCreateWithFlags(&g_cuda.staged[i], cudaEventDisableTiming)) != cudaSuccess) {
            probe_fail("pinned staging buffers", cudaGetErrorString(e));
            return;
        }
    if ((e = cudaMalloc((void **)&g_cuda.partials_dev, WB_CUDA_MAX_PARTIALS * sizeof(double))) != cudaSuccess ||
        (e = cudaHostAlloc((void **)&g_cuda.partials_host, WB_CUDA_MAX_PARTIALS * sizeof(double),
                           cudaHostAllocDefault)) != cudaSuccess) {
        probe_fail("reduction buffers", cudaGetErrorString(e));
        return;
    }

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
    t->gemm_batched = cu_gemm_batched;
#if defined(WB_HAVE_CUDNN) && !defined(WB_CUDA_EMU)
    /* fused convolutions through cuDNN (WB_CONV picks per graph) */
    t->conv_ctx_new = wb_cuda_conv_ctx_new;
    t->conv_ctx_free = wb_cuda_conv_ctx_free;
    t->conv2d_fwd = wb_cuda_conv2d_fwd;
    t->conv2d_bwd = wb_cuda_conv2d_bwd;
#endif
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
