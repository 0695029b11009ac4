/* kernels/cpu/cpu_backend.c — the CPU reference backend: the wb_backend
 * vtable over host memory. GEMM goes to OpenBLAS (cblas_sgemm); elementwise
 * math comes from kernels/elementwise.h so CUDA computes the same formulas.
 * This backend is the reference every other backend is tested against, and
 * it must also be fast on its own: the common broadcast patterns (same
 * shape, scalar, per-row, per-column) have flat loops the compiler
 * vectorises; the general 4-D path is the fallback.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "wb/backend.h"

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
    if (k == 0) { /* BLAS leaves C alone when k = 0 only if beta = 1 */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] *= beta;
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- unary ------------------------------------------------------------------ */
static void cpu_unary(wb_unary_op op, int64_t n, const float *x, float *y, float alpha) {
    switch (op) {
    case WB_UNARY_SCALE: for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i]; break;
    case WB_UNARY_ADD_SCALAR: for (int64_t i = 0; i < n; i++) y[i] = x[i] + alpha; break;
    case WB_UNARY_EXP: for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]); break;
    case WB_UNARY_LOG: for (int64_t i = 0; i < n; i++) y[i] = logf(x[i]); break;
    case WB_UNARY_SIGMOID: for (int64_t i = 0; i < n; i++) y[i] = wb_sigmoidf(x[i]); break;
    case WB_UNARY_SOFTPLUS: for (int64_t i = 0; i < n; i++) y[i] = wb_softplusf(x[i]); break;
    case WB_UNARY_LOGSIGMOID: for (int64_t i = 0; i < n; i++) y[i] = wb_logsigmoidf(x[i]); break;
    case WB_UNARY_SILU: for (int64_t i = 0; i < n; i++) y[i] = wb_siluf(x[i]); break;
    case WB_UNARY_TANH: for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]); break;
    case WB_UNARY_RELU: for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
    case WB_UNARY_SQUARE: for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i]; break;
    case WB_UNARY_SQRT: for (int64_t i = 0; i < n; i++) y[i] = sqrtf(x[i]); break;
    default: break;
    }
}

static void cpu_unary_bwd(wb_unary_op op, int64_t n, const float *x, const float *y, const float *dy,
                          float *dx, float alpha) {
    switch (op) {
    case WB_UNARY_SCALE: for (int64_t i = 0; i < n; i++) dx[i] += alpha * dy[i]; break;
    case WB_UNARY_ADD_SCALAR: for (int64_t i = 0; i < n; i++) dx[i] += dy[i]; break;
    case WB_UNARY_EXP: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * y[i]; break;
    case WB_UNARY_LOG: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] / x[i]; break;
    case WB_UNARY_SIGMOID: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]); break;
    case WB_UNARY_SOFTPLUS: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * wb_sigmoidf(x[i]); break;
    case WB_UNARY_LOGSIGMOID: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * wb_sigmoidf(-x[i]); break;
    case WB_UNARY_SILU: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * wb_silu_gradf(x[i]); break;
    case WB_UNARY_TANH: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]); break;
    case WB_UNARY_RELU: for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f; break;
    case WB_UNARY_SQUARE: for (int64_t i = 0; i < n; i++) dx[i] += 2.0f * x[i] * dy[i]; break;
    case WB_UNARY_SQRT: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * 0.5f / y[i]; break;
    default: break;
    }
}

/* ---- binary (broadcasting) ---------------------------------------------------- */
static inline float apply(wb_binary_op op, float a, float b) {
    switch (op) {
    case WB_BINARY_ADD: return a + b;
    case WB_BINARY_SUB: return a - b;
    case WB_BINARY_MUL: return a * b;
    default: return a / b;
    }
}

/* The flat loops are written per op so each inner loop is a plain
 * vectorisable expression (a switch inside the loop defeats that). */
#define FLAT_LOOP(EXPR)                                                                   \
    do {                                                                                  \
        for (int64_t i = 0; i < n; i++) { float av = a[i * sa], bv = b[i * sb]; y[i] = EXPR; } \
    } while (0)

static void cpu_binary(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, float *y) {
    int64_t n = bc->out_numel;
    if ((bc->a_numel == n || bc->a_numel == 1) && (bc->b_numel == n || bc->b_numel == 1)) {
        /* same shape or scalar operands: one flat loop */
        int64_t sa = bc->a_numel == 1 ? 0 : 1, sb = bc->b_numel == 1 ? 0 : 1;
        switch (op) {
        case WB_BINARY_ADD: FLAT_LOOP(av + bv); break;
        case WB_BINARY_SUB: FLAT_LOOP(av - bv); break;
        case WB_BINARY_MUL: FLAT_LOOP(av * bv); break;
        default: FLAT_LOOP(av / bv); break;
        }
        return;
    }
    const int64_t *s = bc->out_shape;
    for (int64_t i0 = 0; i0 < s[0]; i0++)
        for (int64_t i1 = 0; i1 < s[1]; i1++)
            for (int64_t i2 = 0; i2 < s[2]; i2++) {
                int64_t ao = i0 * bc->a_stride[0] + i1 * bc->a_stride[1] + i2 * bc->a_stride[2];
                int64_t bo = i0 * bc->b_stride[0] + i1 * bc->b_stride[1] + i2 * bc->b_stride[2];
                float *yr = y + ((i0 * s[1] + i1) * s[2] + i2) * s[3];
                int64_t as3 = bc->a_stride[3], bs3 = bc->b_stride[3];
                for (int64_t i3 = 0; i3 < s[3]; i3++) yr[i3] = apply(op, a[ao + i3 * as3], b[bo + i3 * bs3]);
            }
}

static inline void grads(wb_binary_op op, float a, float b, float dy, float *ga, float *gb) {
    switch (op) {
    case WB_BINARY_ADD: *ga = dy; *gb = dy; break;
    case WB_BINARY_SUB: *ga = dy; *gb = -dy; break;
    case WB_BINARY_MUL: *ga = dy * b; *gb = dy * a; break;
    default: *ga = dy / b; *gb = -dy * a / (b * b); break;
    }
}

static void cpu_binary_bwd(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b,
                           const float *dy, float *da, float *db) {
    int64_t n = bc->out_numel;
    if (bc->a_numel == n && bc->b_numel == n) {
        switch (op) {
        case WB_BINARY_ADD:
            if (da) for (int64_t i = 0; i < n; i++) da[i] += dy[i];
            if (db) for (int64_t i = 0; i < n; i++) db[i] += dy[i];
            return;
        case WB_BINARY_SUB:
            if (da) for (int64_t i = 0; i < n; i++) da[i] += dy[i];
            if (db) for (int64_t i = 0; i < n; i++) db[i] -= dy[i];
            return;
        case WB_BINARY_MUL:
            if (da) for (int64_t i = 0; i < n; i++) da[i] += dy[i] * b[i];
            if (db) for (int64_t i = 0; i < n; i++) db[i] += dy[i] * a[i];
            return;
        default:
            if (da) for (int64_t i = 0; i < n; i++) da[i] += dy[i] / b[i];
            if (db) for (int64_t i = 0; i < n; i++) db[i] -= dy[i] * a[i] / (b[i] * b[i]);
            return;
        }
    }
    const int64_t *s = bc->out_shape;
    for (int64_t i0 = 0; i0 < s[0]; i0++)
        for (int64_t i1 = 0; i1 < s[1]; i1++)
            for (int64_t i2 = 0; i2 < s[2]; i2++) {
                int64_t ao = i0 * bc->a_stride[0] + i1 * bc->a_stride[1] + i2 * bc->a_stride[2];
                int64_t bo = i0 * bc->b_stride[0] + i1 * bc->b_stride[1] + i2 * bc->b_stride[2];
                const float *dyr = dy + ((i0 * s[1] + i1) * s[2] + i2) * s[3];
                int64_t as3 = bc->a_stride[3], bs3 = bc->b_stride[3];
                for (int64_t i3 = 0; i3 < s[3]; i3++) {
                    float ga, gb;
                    grads(op, a[ao + i3 * as3], b[bo + i3 * bs3], dyr[i3], &ga, &gb);
                    if (da) da[ao + i3 * as3] += ga;
                    if (db) db[bo + i3 * bs3] += gb;
                }
            }
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

static void cpu_sum_cols(int64_t rows, int64_t cols, const float *x, float *y, int accumulate) {
    if (!accumulate) memset(y, 0, (size_t)cols * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        for (int64_t c = 0; c < cols; c++) y[c] += xr[c];
    }
}

static void cpu_bcast_rows_add(int64_t rows, int64_t cols, const float *dy, float alpha, float *dx) {
    for (int64_t r = 0; r < rows; r++) {
        float v = alpha * dy[r];
        float *dxr = dx + r * cols;
        for (int64_t c = 0; c < cols; c++) dxr[c] += v;
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

/* f_i = max_period^(-i/half): EDM's PositionalEmbedding (endpoint = False). */
static void cpu_sinusoidal(int64_t n, int dim, float max_period, const float *t, float *y) {
    int half = dim / 2;
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < half; i++) {
            float f = powf(max_period, -(float)i / (float)half);
            float a = t[r] * f;
            y[r * dim + i] = cosf(a);
            y[r * dim + half + i] = sinf(a);
        }
}

static void cpu_sinusoidal_bwd(int64_t n, int dim, float max_period, const float *t, const float *dy,
                               float *dt) {
    int half = dim / 2;
    for (int64_t r = 0; r < n; r++) {
        float acc = 0.0f;
        for (int i = 0; i < half; i++) {
            float f = powf(max_period, -(float)i / (float)half);
            float a = t[r] * f;
            acc += dy[r * dim + i] * (-sinf(a) * f) + dy[r * dim + half + i] * (cosf(a) * f);
        }
        dt[r] += acc;
    }
}

static void cpu_axpy(int64_t n, float alpha, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

static void cpu_axpby(int64_t n, float a, const float *x, float b, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = a * y[i] + b * x[i];
}

static void cpu_adam(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1,
                     float beta2, float eps, float wd, int decoupled, float bc1, float bc2) {
    /* torch.optim.Adam / AdamW semantics, including where eps sits:
     * p -= lr · m̂ / (sqrt(v̂) + eps) with m̂ = m/bc1, v̂ = v/bc2. */
    float step = lr / bc1, inv_sqrt_bc2 = 1.0f / sqrtf(bc2);
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) p[i] -= lr * wd * p[i];
        else gi += wd * p[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
        v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        p[i] -= step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
    }
}

static double cpu_sum_squares(int64_t n, const float *x) {
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) acc += (double)x[i] * x[i];
    return acc;
}

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
};

const wb_backend *wb_backend_cpu(void) { return &cpu_backend; }
