/* kernels/cpu/cpu_backend.c — the CPU reference backend: the wb_backend
 * vtable over host memory. GEMM goes to OpenBLAS (cblas_sgemm), most
 * convolutions to oneDNN when built with it (cpu_conv_dnnl.c); elementwise
 * math comes from include/wb/elementwise.h so CUDA computes the same formulas.
 * This backend is the reference every other backend is tested against, and
 * it must also be fast on its own: the common broadcast patterns (same
 * shape, scalar, per-row, per-column) have flat loops the compiler
 * vectorises; the general 4-D path is the fallback.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wb/elementwise.h"
#include "wb/backend.h"
#include "wb/cpu.h" /* wb_cpu_rbf_sum: public, so declared before it is defined */
#include "cpu_kernels.h" /* image-op kernels (cpu_conv.c, cpu_norm.c) */


static void *cpu_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, rounded ? rounded : 64);
}
static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}
static void cpu_fill(float *dst, int64_t n, float v) {
    if (v == 0.0f) {
        memset(dst, 0, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = v;
}

static void cpu_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) { /* C = beta·C, and beta = 0 clears C (even NaN), as BLAS does */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- reductions and copies ----------------------------------------------------- */
static void cpu_sum_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    for (int64_t r = 0; r < rows; r++) {
        /* accumulate in double: means over large batches stay exact enough */
        double acc = 0.0;
        const float *xr = x + r * cols;
        for (int64_t c = 0; c < cols; c++) acc += xr[c];
        y[r] = (float)acc;
    }
}



static void cpu_copy_2d(int64_t rows, int64_t cols, const float *src, int64_t src_stride, float *dst,
                        int64_t dst_stride, int accumulate) {
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src + r * src_stride;
        float *d = dst + r * dst_stride;
        if (accumulate)
            for (int64_t c = 0; c < cols; c++) d[c] += s[c];
        else
            memcpy(d, s, (size_t)cols * sizeof(float));
    }
}

/* f_i = max_period^(-i/half): EDM's PositionalEmbedding (endpoint = False).
 * The frequencies are computed once per call, not per row. */
#define WB_MAX_EMB_HALF 4096
static void frequencies(int half, float max_period, float *f) {
    for (int i = 0; i < half; i++) f[i] = powf(max_period, -(float)i / (float)half);
}

static void cpu_sinusoidal(int64_t n, int dim, float max_period, const float *t, float *y) {
    int half = dim / 2;
    float f[WB_MAX_EMB_HALF];
    if (half > WB_MAX_EMB_HALF) half = WB_MAX_EMB_HALF;
    frequencies(half, max_period, f);
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < half; i++) {
            float a = t[r] * f[i];
            y[r * dim + i] = cosf(a);
            y[r * dim + half + i] = sinf(a);
        }
}

static void cpu_sinusoidal_bwd(int64_t n, int dim, float max_period, const float *t, const float *dy,
                               float *dt) {
    int half = dim / 2;
    float f[WB_MAX_EMB_HALF];
    if (half > WB_MAX_EMB_HALF) half = WB_MAX_EMB_HALF;
    frequencies(half, max_period, f);
    for (int64_t r = 0; r < n; r++) {
        float acc = 0.0f;
        for (int i = 0; i < half; i++) {
            float a = t[r] * f[i];
            acc += dy[r * dim + i] * (-sinf(a) * f[i]) + dy[r * dim + half + i] * (cosf(a) * f[i]);
        }
        dt[r] += acc;
    }
}

static double cpu_sum_squares(int64_t n, const float *x) {
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) acc += (double)x[i] * x[i];
    return acc;
}

/* ---- elementwise loops: two builds of cpu_elementwise.inc, chosen per call
 * (the feature test reads a word libgcc filled at start-up) ---------------- */
#define WB_EW_DECLARE(name, params) \
    void wb_cpu_##name##_generic params; \
    void wb_cpu_##name##_avx2 params;
WB_EW_DECLARE(unary, (wb_unary_op op, int64_t n, const float *x, float *y, float alpha))
WB_EW_DECLARE(unary_bwd, (wb_unary_op op, int64_t n, const float *x, const float *y, const float *dy, float *dx, float alpha))
WB_EW_DECLARE(binary, (wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, float *y))
WB_EW_DECLARE(binary_bwd, (wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, const float *dy, float *da, float *db))
WB_EW_DECLARE(sum_cols, (int64_t rows, int64_t cols, const float *x, float *y, int accumulate))
WB_EW_DECLARE(bcast_rows_add, (int64_t rows, int64_t cols, const float *dy, float alpha, float *dx))
WB_EW_DECLARE(axpy, (int64_t n, float alpha, const float *x, float *y))
WB_EW_DECLARE(axpby, (int64_t n, float a, const float *x, float b, float *y))
WB_EW_DECLARE(adam, (int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                     float eps, float wd, int decoupled, float bc1, float bc2))

static int use_avx2(void) {
#if defined(WB_CPU_AVX2_BUILT) && defined(__x86_64__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#if defined(WB_CPU_AVX2_BUILT) && defined(__x86_64__)
#define WB_EW_CALL(name, args) \
    do { if (use_avx2()) wb_cpu_##name##_avx2 args; else wb_cpu_##name##_generic args; } while (0)
#else
#define WB_EW_CALL(name, args) wb_cpu_##name##_generic args
#endif

static void cpu_unary(wb_unary_op op, int64_t n, const float *x, float *y, float alpha) {
    WB_EW_CALL(unary, (op, n, x, y, alpha));
}
static void cpu_unary_bwd(wb_unary_op op, int64_t n, const float *x, const float *y, const float *dy, float *dx,
                          float alpha) {
    WB_EW_CALL(unary_bwd, (op, n, x, y, dy, dx, alpha));
}
static void cpu_binary(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, float *y) {
    WB_EW_CALL(binary, (op, bc, a, b, y));
}
static void cpu_binary_bwd(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, const float *dy,
                           float *da, float *db) {
    WB_EW_CALL(binary_bwd, (op, bc, a, b, dy, da, db));
}
static void cpu_sum_cols(int64_t rows, int64_t cols, const float *x, float *y, int accumulate) {
    WB_EW_CALL(sum_cols, (rows, cols, x, y, accumulate));
}
static void cpu_bcast_rows_add(int64_t rows, int64_t cols, const float *dy, float alpha, float *dx) {
    WB_EW_CALL(bcast_rows_add, (rows, cols, dy, alpha, dx));
}
static void cpu_axpy(int64_t n, float alpha, const float *x, float *y) { WB_EW_CALL(axpy, (n, alpha, x, y)); }
static void cpu_axpby(int64_t n, float a, const float *x, float b, float *y) { WB_EW_CALL(axpby, (n, a, x, b, y)); }
static void cpu_adam(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                     float eps, float wd, int decoupled, float bc1, float bc2) {
    WB_EW_CALL(adam, (n, p, g, m, v, lr, beta1, beta2, eps, wd, decoupled, bc1, bc2));
}

double wb_cpu_rbf_sum_generic(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2, int nh);
double wb_cpu_rbf_sum_avx2(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2, int nh);

/* Host-side helper for the MMD metric (not a backend op). */
double wb_cpu_rbf_sum(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2, int nh) {
#if defined(WB_CPU_AVX2_BUILT) && defined(__x86_64__)
    if (use_avx2()) return wb_cpu_rbf_sum_avx2(a, na, b, nb, dim, inv2h2, nh);
#endif
    return wb_cpu_rbf_sum_generic(a, na, b, nb, dim, inv2h2, nh);
}

/* The CPU backend's status (wb/backend.h): its sticky error, the flags of a
 * step's finite checks and its transfer counters. It belongs to the backend
 * object below, as the table does. */
static int cpu_finite_flags[WB_MAX_FINITE_CHECKS];
static wb_backend_status cpu_status = {.finite_flags = cpu_finite_flags};

static const wb_backend cpu_backend = {
    .name = "cpu",
    .device = WB_DEVICE_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .gemm = cpu_gemm,
    .unary = cpu_unary,
    .unary_bwd = cpu_unary_bwd,
    .binary = cpu_binary,
    .binary_bwd = cpu_binary_bwd,
    .sum_rows = cpu_sum_rows,
    .sum_cols = cpu_sum_cols,
    .bcast_rows_add = cpu_bcast_rows_add,
    .copy_2d = cpu_copy_2d,
    .sinusoidal = cpu_sinusoidal,
    .sinusoidal_bwd = cpu_sinusoidal_bwd,
    .axpy = cpu_axpy,
    .axpby = cpu_axpby,
    .adam = cpu_adam,
    .sum_squares = cpu_sum_squares,
    /* image ops: kernels/cpu/cpu_conv.c (gemm_batched, im2col, col2im,
     * upsample2x, avgpool2x) and kernels/cpu/cpu_norm.c (group_norm,
     * softmax_rows); declared in kernels/cpu/cpu_kernels.h */
    /* [image-ops:conv] */
    .gemm_batched = wb_cpu_gemm_batched, .im2col = wb_cpu_im2col, .col2im = wb_cpu_col2im,
    .upsample2x = wb_cpu_upsample2x, .upsample2x_bwd = wb_cpu_upsample2x_bwd,
    .avgpool2x = wb_cpu_avgpool2x, .avgpool2x_bwd = wb_cpu_avgpool2x_bwd,
    /* [image-ops:norm] */
    .group_norm = wb_cpu_group_norm,
    .group_norm_bwd = wb_cpu_group_norm_bwd,
    .softmax_rows = wb_cpu_softmax_rows,
    .softmax_rows_bwd = wb_cpu_softmax_rows_bwd,
    /* [image-ops:pool] kernels/cpu/cpu_pool.c */
    .maxpool2d = wb_cpu_maxpool2d, .maxpool2d_bwd = wb_cpu_maxpool2d_bwd,
    .avgpool2d = wb_cpu_avgpool2d, .avgpool2d_bwd = wb_cpu_avgpool2d_bwd,
    .resize_bilinear = wb_cpu_resize_bilinear, .resize_bilinear_bwd = wb_cpu_resize_bilinear_bwd,
    /* [fused conv] kernels/cpu/cpu_conv_dnnl.c: oneDNN convolutions when
     * built with libdnnl (WB_CONV picks per graph); without it the context
     * only checks WB_CONV and every graph uses im2col + GEMM */
    .conv_ctx_new = wb_cpu_conv_ctx_new,
#ifdef WB_HAVE_DNNL
    .conv_ctx_free = wb_cpu_conv_ctx_free,
    .conv2d_use_fused = wb_cpu_conv2d_use_fused,
    .conv2d_fwd = wb_cpu_conv2d_fwd,
    .conv2d_bwd = wb_cpu_conv2d_bwd,
#endif
    /* [status] synchronous: nothing to wait for */
    .status = &cpu_status,
    .sync = NULL,
    .flag_nonfinite = wb_cpu_flag_nonfinite,
    /* [diffusion] kernels/cpu/cpu_diffusion.c */
    .rng_normal = wb_cpu_rng_normal, .rng_uniform = wb_cpu_rng_uniform,
    .karras_sigma = wb_cpu_karras_sigma,
    .dmd_weight = wb_cpu_dmd_weight, .dmd_weight_bwd = wb_cpu_dmd_weight_bwd,
};

const wb_backend *wb_backend_cpu(void) { return &cpu_backend; }
