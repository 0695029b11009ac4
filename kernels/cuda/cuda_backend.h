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

/* The one stream everything of this backend runs on (non-blocking, bound
 * to cuBLAS and cuDNN): cuda_backend.cu creates it with the table. */
WB_CUDA_HIDDEN cudaStream_t wb_cuda_stream(void);

/* Every kernel launch is written WB_CUDA_LAUNCH(kernel, grid, block,
 * shared_bytes)(args...), never with the triple-chevron syntax directly, so
 * the same source also builds for a CPU emulation of the runtime (which
 * defines WB_CUDA_LAUNCH itself before this header is read), and so every
 * launch goes to the backend's stream. Follow it with wb_cuda_launched(op). */
#ifndef WB_CUDA_LAUNCH
#define WB_CUDA_LAUNCH(kernel, grid, block, shmem) kernel<<<(grid), (block), (shmem), wb_cuda_stream()>>>
#endif

/* After a launch: a launch error (bad configuration, no kernel image)
 * becomes the backend's sticky error naming `op` (wb_backend_fail), which
 * the next op or the once-a-step sync reports. With WB_CUDA_SYNC=1 in the
 * environment it also waits for the kernel, so an asynchronous fault (an
 * illegal address) is reported by the op that caused it. */
WB_CUDA_HIDDEN void wb_cuda_launched(const char *op);

/* Launch configuration shared by every elementwise kernel: 256 threads per
 * block (8 warps: a multiple of the warp size that keeps occupancy high on
 * sm_80/sm_90 without register pressure for these tiny kernels) and at most
 * WB_CUDA_MAX_BLOCKS blocks. Kernels use grid-stride loops, so the cap only
 * bounds launch size: 4096·256 ≈ 1M threads already exceeds the resident
 * capacity of an H100 (132 SMs · 2048 threads), so larger grids buy nothing. */
#ifdef WB_CUDA_EMU
/* On the CPU emulation every thread is a fiber and every barrier a round of
 * switches: blocks of 2 warps (still two, so the cross-warp steps of every
 * reduction run) and at most 64 of them do the same work with far fewer
 * switches. Grid-stride loops make both invisible to the results, except
 * the order of block reductions (within float rounding of the GPU's). */
#define WB_CUDA_BLOCK 64
#define WB_CUDA_MAX_BLOCKS 64
#else
#define WB_CUDA_BLOCK 256
#define WB_CUDA_MAX_BLOCKS 4096
#endif

/* for (i = this thread's first index; i < n; i += every thread of the grid) */
#define WB_GRID_STRIDE(i, n)                                                     \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);    \
         i += (int64_t)blockDim.x * gridDim.x)

static inline unsigned wb_cuda_grid(int64_t n) {
    int64_t g = (n + WB_CUDA_BLOCK - 1) / WB_CUDA_BLOCK;
    if (g < 1) g = 1;
    if (g > WB_CUDA_MAX_BLOCKS) g = WB_CUDA_MAX_BLOCKS;
    return (unsigned)g;
}

/* After a runtime call: on failure, the backend's sticky error becomes
 * "cuda <what>: <reason>" (wb_backend_fail; the vtable functions return
 * void, so this is the channel) and so does wb_last_error(). Returns 0 on
 * success. */
WB_CUDA_HIDDEN int wb_cuda_check(cudaError_t e, const char *what);

/* Sum of v over a 1-D block (blockDim.x a multiple of 32, at most 1024);
 * the result is valid in thread 0. Warp shuffles first, then one value per
 * warp through shared memory, always in the same order: deterministic for
 * a given launch geometry. Ends with a barrier so a caller may call it
 * again in a loop (the shared slots are reused). Every thread of the block
 * must call it. */
template <typename T> __device__ T wb_cuda_block_sum(T v) {
    __shared__ T warp_sums[32];
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (blockDim.x >> 5) ? warp_sums[lane] : (T)0;
        for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    }
    __syncthreads();
    return v;
}

/* Per-block partial sums of host-returning reductions (sum_squares): at
 * most WB_CUDA_MAX_PARTIALS doubles on the device, and a pinned host mirror
 * in *host, both made once with the table. */
#define WB_CUDA_MAX_PARTIALS 1024
WB_CUDA_HIDDEN double *wb_cuda_partials(double **host);

/* cuda_elementwise.cu */
/* C_i = β·C_i for `batch` row-major rows×cols matrices (leading dimension
 * ld, stride floats apart); β = 0 writes zeros (gemm with k = 0). */
WB_CUDA_HIDDEN void wb_cuda_scale_matrices(int batch, int rows, int cols, int ld, int64_t stride, float beta,
                                           float *c);
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

/* y[n, c, p] += bias[c] over (B, C, HW) (a convolution's bias) */
WB_CUDA_HIDDEN void wb_cuda_add_channel_bias(int b, int c, int64_t hw, const float *bias, float *y);

/* cuda_reduce.cu */
/* db[c] += Σ_{n, p} dy[n, c, p] over (B, C, HW), fixed order */
WB_CUDA_HIDDEN void wb_cuda_channel_sums(int b, int c, int64_t hw, const float *dy, float *db);
WB_CUDA_HIDDEN void wb_cuda_sum_rows(int64_t rows, int64_t cols, const float *x, float *y);
WB_CUDA_HIDDEN void wb_cuda_sum_cols(int64_t rows, int64_t cols, const float *x, float *y,
                                     int accumulate);
WB_CUDA_HIDDEN double wb_cuda_sum_squares(int64_t n, const float *x);
/* Thread 0's v, handed to every thread of the block. The second barrier
 * lets the next call rewrite the slot only after everyone has read it.
 * Every thread of the block must call it. */
template <typename T> __device__ T wb_cuda_block_bcast(T v) {
    __shared__ T slot;
    if (threadIdx.x == 0) slot = v;
    __syncthreads();
    const T r = slot;
    __syncthreads();
    return r;
}

/* cuda_conv_cudnn.cu: fused convolutions through cuDNN (device builds only) */
#if defined(WB_HAVE_CUDNN) && !defined(WB_CUDA_EMU)
WB_CUDA_HIDDEN int wb_cuda_conv_ctx_new(void **ctx);
WB_CUDA_HIDDEN void wb_cuda_conv_ctx_free(void *ctx);
WB_CUDA_HIDDEN int wb_cuda_conv2d_fwd(void *ctx, const wb_conv_geom *geom, const float *x, const float *w,
                                      const float *b, float *y);
WB_CUDA_HIDDEN int wb_cuda_conv2d_bwd(void *ctx, const wb_conv_geom *geom, const float *x, const float *w,
                                      const float *dy, float *dx, float *dw, float *db);
#endif

/* cuda_image.cu: im2col/col2im, 2× up/down-sampling, k×k pooling, bilinear
 * resizing (semantics: wb/backend.h; rules: kernels/cpu/cpu_conv.c, cpu_pool.c) */
WB_CUDA_HIDDEN void wb_cuda_im2col(const float *x, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h,
                                   int pad_w, float *col);
WB_CUDA_HIDDEN void wb_cuda_col2im(const float *col, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h,
                                   int pad_w, float *dx);
WB_CUDA_HIDDEN void wb_cuda_upsample2x(int64_t planes, int h, int w, const float *x, float *y);
WB_CUDA_HIDDEN void wb_cuda_upsample2x_bwd(int64_t planes, int h, int w, const float *dy, float *dx);
WB_CUDA_HIDDEN void wb_cuda_avgpool2x(int64_t planes, int h, int w, const float *x, float *y);
WB_CUDA_HIDDEN void wb_cuda_avgpool2x_bwd(int64_t planes, int h, int w, const float *dy, float *dx);
WB_CUDA_HIDDEN void wb_cuda_maxpool2d(int64_t planes, int h, int w, int k, int stride, int pad, const float *x,
                                      float *y);
WB_CUDA_HIDDEN void wb_cuda_maxpool2d_bwd(int64_t planes, int h, int w, int k, int stride, int pad, const float *x,
                                          const float *dy, float *dx);
WB_CUDA_HIDDEN void wb_cuda_avgpool2d(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                                      const float *x, float *y);
WB_CUDA_HIDDEN void wb_cuda_avgpool2d_bwd(int64_t planes, int h, int w, int k, int stride, int pad,
                                          int count_include_pad, const float *dy, float *dx);
WB_CUDA_HIDDEN void wb_cuda_resize_bilinear(int64_t planes, int h, int w, int ho, int wo, const float *x, float *y);
WB_CUDA_HIDDEN void wb_cuda_resize_bilinear_bwd(int64_t planes, int h, int w, int ho, int wo, const float *dy,
                                                float *dx);

/* cuda_norm.cu: group norm and row softmax (rules: kernels/cpu/cpu_norm.c) */
WB_CUDA_HIDDEN void wb_cuda_group_norm(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                                       const float *beta, float eps, float *y, float *mean, float *rstd);
WB_CUDA_HIDDEN void wb_cuda_group_norm_bwd(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                                           const float *mean, const float *rstd, const float *dy, float *dx,
                                           float *dgamma, float *dbeta);
WB_CUDA_HIDDEN void wb_cuda_softmax_rows(int64_t rows, int64_t cols, const float *x, float *y);
WB_CUDA_HIDDEN void wb_cuda_softmax_rows_bwd(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx);

/* cuda_diffusion.cu: the distillation step's kernels (rules:
 * kernels/cpu/cpu_diffusion.c, kernels/philox.h) */
WB_CUDA_HIDDEN void wb_cuda_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out);
WB_CUDA_HIDDEN void wb_cuda_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out);
WB_CUDA_HIDDEN void wb_cuda_karras_sigma(int64_t n, const float *u, float t_min, float t_max, double sigma_min,
                                         double sigma_max, double rho, float *sigma);
WB_CUDA_HIDDEN void wb_cuda_dmd_weight(int64_t rows, int64_t cols, const float *x0, const float *d,
                                       const float *sigma, float *w);
WB_CUDA_HIDDEN void wb_cuda_dmd_weight_bwd(int64_t rows, int64_t cols, const float *x0, const float *d,
                                           const float *sigma, const float *dw, float *dx0, float *dd, float *dsigma);
#endif /* __CUDACC__ */

#endif
