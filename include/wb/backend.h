/* wb/backend.h — the backend vtable: the seam between the op layer
 * (host/core/ops.c: shapes, tape, gradients) and the kernels that touch memory
 * (kernels/cpu, kernels/cuda). An op never dereferences tensor
 * data itself; it calls these functions, so a new device means a new table.
 *
 * Conventions: all pointers are the backend's memory; "bwd" kernels
 * ACCUMULATE into their gradient outputs (dx += ...), because a tensor used
 * twice on the tape receives two contributions. A NULL entry means "not yet
 * implemented on this backend"; the op reports that by name.
 */
#ifndef WB_BACKEND_H
#define WB_BACKEND_H

#include "wb/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* libwb exports what is declared here */

typedef enum {
    WB_UNARY_SCALE = 0,   /* alpha·x         */
    WB_UNARY_ADD_SCALAR,  /* x + alpha       */
    WB_UNARY_EXP,
    WB_UNARY_LOG,
    WB_UNARY_SIGMOID,
    WB_UNARY_SOFTPLUS,
    WB_UNARY_LOGSIGMOID,
    WB_UNARY_SILU,
    WB_UNARY_TANH,
    WB_UNARY_RELU,
    WB_UNARY_SQUARE,
    WB_UNARY_SQRT,
    WB_UNARY_COUNT
} wb_unary_op;

typedef enum { WB_BINARY_ADD = 0, WB_BINARY_SUB, WB_BINARY_MUL, WB_BINARY_DIV, WB_BINARY_COUNT } wb_binary_op;

/* Broadcast geometry, right-aligned to 4 dims: out[i0..i3] combines
 * a[Σ ik·a_stride[k]] and b[Σ ik·b_stride[k]] (stride 0 on broadcast dims). */
typedef struct wb_bcast {
    int64_t out_shape[4];
    int64_t a_stride[4];
    int64_t b_stride[4];
    int64_t out_numel;
    int64_t a_numel, b_numel;
} wb_bcast;

/* Geometry of one 2-D convolution (the fused conv entries below):
 * x (b, cin, h, w) NCHW, W (cout, cin, kh, kw) OIHW, y (b, cout, ho, wo);
 * strides sh, sw and zero pads ph, pw per axis (top = bottom, left = right). */
typedef struct wb_conv_geom {
    int b, cin, h, w, cout, kh, kw, sh, sw, ph, pw, ho, wo;
} wb_conv_geom;

/* ---- status: the sticky error, non-finite flags and transfer counters ----
 * One per backend object, owned by it (the table points at it; a wrapped or
 * second backend has its own). Single host thread, like the rest of libwb.
 *   failed/message  the first kernel failure since it was last reported
 *                   (wb_backend_fail); the op layer and wb_backend_sync
 *                   report it, naming the op, and clear it;
 *   finite_flags    ints a kernel may write (host memory on the CPU, mapped
 *                   memory on a GPU): wb_check_finite gives each check of a
 *                   step a slot; wb_backend_sync reads them without a copy;
 *   transfers       every upload / download through wb_backend_upload /
 *                   wb_backend_download (and host-returning reductions), so
 *                   a test can assert how much crosses per step. */
#define WB_MAX_FINITE_CHECKS 16
typedef struct wb_transfer_counts {
    uint64_t uploads, downloads;           /* calls */
    uint64_t upload_bytes, download_bytes;
} wb_transfer_counts;

typedef struct wb_backend_status {
    int failed;
    char message[512];
    int *finite_flags;                     /* WB_MAX_FINITE_CHECKS ints, kernel-writable */
    const char *finite_what[WB_MAX_FINITE_CHECKS];
    int n_finite_checks;
    wb_transfer_counts transfers;
} wb_backend_status;

struct wb_backend {
    const char *name;
    wb_device device;
    void *(*alloc)(size_t bytes);
    void (*free)(void *ptr);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*fill)(float *dst, int64_t n, float value);

    /* C = alpha·op(A)·op(B) + beta·C, row-major, op = transpose if trans_*. */
    void (*gemm)(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                 int lda, const float *b, int ldb, float beta, float *c, int ldc);
    void (*unary)(wb_unary_op op, int64_t n, const float *x, float *y, float alpha);
    /* dx += dy · f'(x) (y = f(x) is given for ops whose derivative uses it;
     * for WB_UNARY_SILU y is σ(x), the sigmoid its forward kept, or NULL:
     * recomputed from x) */
    void (*unary_bwd)(wb_unary_op op, int64_t n, const float *x, const float *y,
                      const float *dy, float *dx, float alpha);
    void (*binary)(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, float *y);
    /* da += ∂/∂a, db += ∂/∂b (either may be NULL), summed over broadcast dims */
    void (*binary_bwd)(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b,
                       const float *dy, float *da, float *db);
    /* y[r] = Σ_c x[r·cols + c] */
    void (*sum_rows)(int64_t rows, int64_t cols, const float *x, float *y);
    /* y[c] (+)= Σ_r x[r·cols + c]   (bias gradients) */
    void (*sum_cols)(int64_t rows, int64_t cols, const float *x, float *y, int accumulate);
    /* dx[r·cols + c] += alpha·dy[r]   (backward of sum_rows / mean) */
    void (*bcast_rows_add)(int64_t rows, int64_t cols, const float *dy, float alpha, float *dx);
    /* dst[r·dst_stride + c] (+)= src[r·src_stride + c], c < cols */
    void (*copy_2d)(int64_t rows, int64_t cols, const float *src, int64_t src_stride, float *dst,
                    int64_t dst_stride, int accumulate);
    void (*sinusoidal)(int64_t n, int dim, float max_period, const float *t, float *y);
    /* dt[i] += Σ_j dy[i,j] · ∂y[i,j]/∂t[i] */
    void (*sinusoidal_bwd)(int64_t n, int dim, float max_period, const float *t,
                           const float *dy, float *dt);
    /* y += alpha·x */
    void (*axpy)(int64_t n, float alpha, const float *x, float *y);
    /* y = a·y + b·x (EMA) */
    void (*axpby)(int64_t n, float a, const float *x, float b, float *y);
    /* one Adam/AdamW step over a flat buffer; bc1/bc2 are 1-β^t */
    void (*adam)(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, int decoupled, float bc1, float bc2);
    /* Σ x² in double (grad norms); non-finite values propagate */
    double (*sum_squares)(int64_t n, const float *x);

    /* ---- image ops (NCHW) ----------------------------------------------------
     * C[i] = alpha·op(A[i])·op(B[i]) + beta·C[i] for i < batch, each matrix
     * stride_* floats after the previous one (attention, per-image conv). */
    void (*gemm_batched)(int batch, int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, int64_t stride_a, const float *b, int ldb,
                         int64_t stride_b, float beta, float *c, int ldc, int64_t stride_c);
    /* One image x (C, H, W) -> columns (C·kh·kw, Ho·Wo); col2im accumulates
     * the columns back into dx (C, H, W). Zero padding pad_h rows / pad_w
     * columns, strides sh, sw (per axis: Inception's 1×7 and 7×1 kernels). */
    void (*im2col)(const float *x, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h, int pad_w,
                   float *col);
    void (*col2im)(const float *col, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h, int pad_w,
                   float *dx);
    /* Group norm of x (B, C, HW) over groups of C/G channels, per-channel
     * affine; mean and rstd (B·G) are saved for the backward pass. */
    void (*group_norm)(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                       const float *beta, float eps, float *y, float *mean, float *rstd);
    /* dx += ..., dgamma += ..., dbeta += ... (any of the three may be NULL) */
    void (*group_norm_bwd)(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                           const float *mean, const float *rstd, const float *dy, float *dx,
                           float *dgamma, float *dbeta);
    /* planes = B·C images of (h, w): nearest 2× up-sampling, 2×2 mean pooling
     * (h, w even); bwd accumulate into dx. */
    void (*upsample2x)(int64_t planes, int h, int w, const float *x, float *y);
    void (*upsample2x_bwd)(int64_t planes, int h, int w, const float *dy, float *dx);
    void (*avgpool2x)(int64_t planes, int h, int w, const float *x, float *y);
    void (*avgpool2x_bwd)(int64_t planes, int h, int w, const float *dy, float *dx);
    /* Row-wise softmax of x (rows, cols); bwd: dx += y ⊙ (dy − Σ dy ⊙ y). */
    void (*softmax_rows)(int64_t rows, int64_t cols, const float *x, float *y);
    void (*softmax_rows_bwd)(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx);

    /* ---- pooling and resampling (host/core/ops_pool.c) -----------------------------
     * planes = B·C images of (h, w) -> (ho, wo), ho = (h + 2·pad − k)/stride + 1
     * (floor). Max pooling pads with −inf and its bwd recomputes the argmax
     * from x (first maximum in row-major window order, NaN wins, as torch);
     * average pooling divides by k² (count_include_pad) or by the number of
     * window cells inside the image; bilinear resizing is torch's
     * align_corners=False. bwd kernels accumulate into dx. */
    void (*maxpool2d)(int64_t planes, int h, int w, int k, int stride, int pad, const float *x, float *y);
    void (*maxpool2d_bwd)(int64_t planes, int h, int w, int k, int stride, int pad, const float *x,
                          const float *dy, float *dx);
    void (*avgpool2d)(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                      const float *x, float *y);
    void (*avgpool2d_bwd)(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                          const float *dy, float *dx);
    void (*resize_bilinear)(int64_t planes, int h, int w, int ho, int wo, const float *x, float *y);
    void (*resize_bilinear_bwd)(int64_t planes, int h, int w, int ho, int wo, const float *dy, float *dx);

    /* ---- fused convolution (OPTIONAL; host/core/ops_conv.c) -------------------------
     * A backend may convolve in one call instead of im2col + GEMM (CPU:
     * oneDNN, kernels/cpu/cpu_conv_dnnl.c). Its state (primitive cache,
     * library handles) lives in a per-graph context: conv_ctx_new runs in
     * wb_graph_new and decides, from the environment (WB_CONV), whether this
     * graph uses the fused path: 0 with *ctx = NULL means "im2col + GEMM",
     * 0 with a context means "call the entries below with it", -1 an error
     * (wb_last_error()). conv_ctx_free runs in wb_graph_free. All NULL: the
     * im2col path, always. The kernels return 0, or -1 with wb_last_error()
     * naming the op and the shapes; b may be NULL (no bias). conv2d_bwd
     * computes the gradients whose pointers are not NULL (one call, so
     * both passes can share the work on dY) and ACCUMULATES: dx += ∂/∂x,
     * dW += ∂/∂W, db += ∂/∂b. */
    int (*conv_ctx_new)(void **ctx);
    void (*conv_ctx_free)(void *ctx);
    /* Whether this graph's context takes this geometry (a backend's fused
     * kernels need not win on every shape); NULL: always. Depends on the
     * geometry only, so a forward and its backward take the same path. */
    int (*conv2d_use_fused)(const void *ctx, const wb_conv_geom *geom);
    int (*conv2d_fwd)(void *ctx, const wb_conv_geom *geom, const float *x, const float *w, const float *b,
                      float *y);
    int (*conv2d_bwd)(void *ctx, const wb_conv_geom *geom, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db);

    /* ---- status and synchronisation (host/core/backend.c) ----------------
     * status: never NULL for a usable backend. sync waits for all queued
     * work and reports an asynchronous failure through wb_backend_fail;
     * NULL for a synchronous backend. The engine calls wb_backend_sync
     * once per step. */
    wb_backend_status *status;
    int (*sync)(const struct wb_backend *be);
    /* *flag = 1 when any of x[0..n) is NaN or ±inf (never cleared here). */
    void (*flag_nonfinite)(int64_t n, const float *x, int *flag);

    /* ---- the distillation step's own kernels (host/core/ops_diffusion.c) --
     * Philox draws with host/core/rng.c's exact rule (kernels/philox.h):
     * n numbers from block `offset` of (seed, stream). */
    void (*rng_normal)(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out);
    void (*rng_uniform)(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out);
    /* Karras noise levels from uniforms: t = t_min + (t_max − t_min)·u (float),
     * σ = (a + t·(b − a))^ρ with a = σ_min^(1/ρ), b = σ_max^(1/ρ), in double. */
    void (*karras_sigma)(int64_t n, const float *u, float t_min, float t_max, double sigma_min, double sigma_max,
                         double rho, float *sigma);
    /* DMD's time weight of row i of (rows, cols): σ_i² / max(mean_j |x0 − d|, 1e-8),
     * the mean in double; bwd accumulates into dx0, dd, dsigma (any may be NULL). */
    void (*dmd_weight)(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma, float *w);
    void (*dmd_weight_bwd)(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma,
                           const float *dw, float *dx0, float *dd, float *dsigma);

    /* [memory] Optional: `bytes` of zeroed memory, freed with free. A backend
     * that can hand out zero pages without writing them (the CPU's fresh
     * anonymous mappings) sets it, so buffers that may never be written — a
     * frozen net's gradients — cost no resident memory. NULL: alloc + fill. */
    void *(*alloc_zeroed)(size_t bytes);
};

/* be->alloc_zeroed, or be->alloc and a zero fill. NULL when out of memory. */
void *wb_backend_alloc_zeroed(const wb_backend *be, size_t bytes);

/* Transfers and status (host/core/backend.c). Every host <-> backend copy of
 * libwb goes through these two, so wb_backend_transfers counts them all. */
void wb_backend_upload(const wb_backend *be, void *dst, const void *host_src, size_t bytes);
void wb_backend_download(const wb_backend *be, void *host_dst, const void *src, size_t bytes);
/* A result a kernel hands back to the host (sum_squares): counted as a download. */
void wb_backend_count_download(const wb_backend *be, size_t bytes);
wb_transfer_counts wb_backend_transfers(const wb_backend *be);
/* Kernels report a failure here (first one kept): "op: reason". */
void wb_backend_fail(const wb_backend *be, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The sticky error, if any, into wb_last_error() prefixed by `op` and the
 * backend's name, and cleared: -1; none: 0. */
int wb_backend_take_error(const wb_backend *be, const char *op);
/* Wait for the backend (its sync entry), then report a sticky error or the
 * first non-finite check of this step (wb_check_finite) as -1 with
 * wb_last_error() naming it; clears both. 0 when all is well. */
int wb_backend_sync(const wb_backend *be);
/* Drop the sticky error and pending finite checks without reporting them
 * (after a failure that has been reported another way). */
void wb_backend_clear(const wb_backend *be);

/* Broadcast geometry of a and b; 0 or -1 with wb_last_error() set. */
int wb_bcast_init(wb_bcast *bc, const wb_tensor *a, const wb_tensor *b);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
