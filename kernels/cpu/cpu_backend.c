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
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "wb/elementwise.h"
#include "wb/backend.h"
#include "wb/cpu.h" /* wb_cpu_rbf_sum: public, so declared before it is defined */
#include "wb/tensor.h" /* wb_set_error */
#include "cpu_kernels.h" /* image-op kernels (cpu_conv.c, cpu_norm.c) */
#include "cpu_parallel.h"  /* OpenMP teams over independent pieces */

int wb_cpu_par_threads(int64_t work) {
#ifdef _OPENMP
    if (work < WB_PAR_MIN_WORK) return 1;
    int nt = openblas_get_num_threads();
    int64_t most = 2 * work / WB_PAR_MIN_WORK;
    if (nt > most) nt = (int)most;
    return nt < 1 ? 1 : nt;
#else
    (void)work;
    return 1;
#endif
}

/* p + lo, or NULL for an operand a kernel does not read */
static inline const float *at(const float *p, int64_t lo) { return p ? p + lo : NULL; }
static inline float *at_w(float *p, int64_t lo) { return p ? p + lo : NULL; }



/* Memory: every block carries a 64-byte header saying how it was made, so
 * free can undo it. Blocks of CPU_MAP_MIN bytes and more (arena chunks,
 * parameter buffers) are their own anonymous mappings: zero pages the
 * kernel supplies on first touch (alloc_zeroed costs nothing until
 * written) and returned to the system on free, advised for transparent
 * huge pages where the system allows it (madvise mode) — a 2 MiB page per
 * fault instead of 4 KiB, so a first step over gigabytes of fresh
 * activations takes ~500× fewer page faults. Smaller blocks come from the
 * heap. */
#define CPU_MAP_MIN ((size_t)1 << 20)
#define CPU_HDR 64
enum { CPU_BLOCK_HEAP = 0x68656170, CPU_BLOCK_MAP = 0x6d6d6170 };
typedef struct cpu_block {
    uint32_t kind;
    size_t mapped; /* bytes of the mapping, header included (CPU_BLOCK_MAP) */
} cpu_block;

static void *cpu_alloc_impl(size_t bytes, int zero) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    if (rounded >= CPU_MAP_MIN) {
        size_t total = rounded + CPU_HDR;
        char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
        (void)madvise(base, total, MADV_HUGEPAGE); /* advice only: ignored where THP is off */
#endif
        cpu_block *h = (cpu_block *)base;
        h->kind = CPU_BLOCK_MAP;
        h->mapped = total;
        return base + CPU_HDR;
    }
    char *base = aligned_alloc(64, rounded + CPU_HDR);
    if (!base) return NULL;
    ((cpu_block *)base)->kind = CPU_BLOCK_HEAP;
    if (zero) memset(base + CPU_HDR, 0, rounded);
    return base + CPU_HDR;
}
static void *cpu_alloc(size_t bytes) { return cpu_alloc_impl(bytes, 0); }
static void *cpu_alloc_zeroed(size_t bytes) { return cpu_alloc_impl(bytes, 1); }
static void cpu_free(void *p) {
    if (!p) return;
    cpu_block *h = (cpu_block *)((char *)p - CPU_HDR);
    if (h->kind == CPU_BLOCK_MAP) munmap(h, h->mapped);
    else free(h);
}
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}
static void fill_range(float *dst, int64_t n, float v) {
    if (v == 0.0f) {
        memset(dst, 0, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = v;
}
static void cpu_fill(float *dst, int64_t n, float v) { WB_SPLIT_FLAT(n, fill_range(dst + lo, hi - lo, v)); }

/* OpenBLAS, or its thread-independent split (WB_DETERMINISTIC): cpu_gemm.c */
static void cpu_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
    wb_cpu_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- reductions and copies ----------------------------------------------------- */
static void sum_rows_range(int64_t r0, int64_t r1, int64_t cols, const float *x, float *y) {
    for (int64_t r = r0; r < r1; r++) {
        /* accumulate in double: means over large batches stay exact enough */
        double acc = 0.0;
        const float *xr = x + r * cols;
        for (int64_t c = 0; c < cols; c++) acc += xr[c];
        y[r] = (float)acc;
    }
}
static void cpu_sum_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    WB_SPLIT_UNITS(rows, cols, sum_rows_range(lo, hi, cols, x, y));
}



static void copy_2d_range(int64_t r0, int64_t r1, int64_t cols, const float *src, int64_t src_stride, float *dst,
                          int64_t dst_stride, int accumulate) {
    for (int64_t r = r0; r < r1; r++) {
        const float *s = src + r * src_stride;
        float *d = dst + r * dst_stride;
        if (accumulate)
            for (int64_t c = 0; c < cols; c++) d[c] += s[c];
        else
            memcpy(d, s, (size_t)cols * sizeof(float));
    }
}
static void cpu_copy_2d(int64_t rows, int64_t cols, const float *src, int64_t src_stride, float *dst,
                        int64_t dst_stride, int accumulate) {
    /* rows are disjoint in dst when its stride covers a row */
    if (dst_stride < cols) {
        copy_2d_range(0, rows, cols, src, src_stride, dst, dst_stride, accumulate);
        return;
    }
    WB_SPLIT_UNITS(rows, cols, copy_2d_range(lo, hi, cols, src, src_stride, dst, dst_stride, accumulate));
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
WB_EW_DECLARE(binary_rows, (wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, float *y, int64_t r0, int64_t r1))
WB_EW_DECLARE(sum_cols, (int64_t rows, int64_t cols, const float *x, float *y, int accumulate, int64_t c0, int64_t c1))
WB_EW_DECLARE(bcast_rows_add, (int64_t rows, int64_t cols, const float *dy, float alpha, float *dx))
WB_EW_DECLARE(axpy, (int64_t n, float alpha, const float *x, float *y))
WB_EW_DECLARE(axpby, (int64_t n, float a, const float *x, float b, float *y))
WB_EW_DECLARE(adam, (int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                     float eps, float wd, int decoupled, float bc1, float bc2))

/* The kernels' instruction-set level: 0 generic, 1 AVX2+FMA, 2 AVX2 with
 * the unary ops' AVX-512 build. Every build gives the same bits: ISO C
 * (-std=c11) contracts no a·b + c into an FMA, so each does the same IEEE
 * operations on every element, and the loops are elementwise (no sum
 * changes order) — tests/test_cpu_isa.c compares every unary op, forward
 * and backward, over 2^24 inputs of every exponent (and, by hand, the
 * forwards over all 2^32 floats). The wider build runs SiLU/sigmoid 1.6×
 * faster on an AVX-512 machine (0.42 against 0.69 ns a float, AMD EPYC).
 * Decided once: the best the processor has, or WB_CPU_ISA (generic | avx2
 * | avx512) capped by it. Written by the first caller or wb_cpu_set_isa. */
#define WB_ISA_GENERIC 0
#define WB_ISA_AVX2 1
#define WB_ISA_AVX512 2
static int isa_level = -1;
static const char *const isa_names[] = {"generic", "avx2", "avx512"};

static int isa_supported(void) {
    int best = WB_ISA_GENERIC;
#if defined(WB_CPU_AVX2_BUILT) && defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = WB_ISA_AVX2;
#if defined(WB_CPU_AVX512_BUILT)
    if (best == WB_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd"))
        best = WB_ISA_AVX512;
#endif
#endif
    return best;
}

static int isa_index(const char *name) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

static int isa(void) {
    if (isa_level < 0) {
        int best = isa_supported(), want = isa_index(getenv("WB_CPU_ISA"));
        isa_level = want >= 0 && want < best ? want : best;
    }
    return isa_level;
}

const char *wb_cpu_isa(void) { return isa_names[isa()]; }

int wb_cpu_set_isa(const char *name) {
    int want = name && strcmp(name, "auto") == 0 ? isa_supported() : isa_index(name);
    if (want < 0) {
        wb_set_error("CPU kernels '%s': want generic, avx2, avx512 or auto", name ? name : "(null)");
        return -1;
    }
    if (want > isa_supported()) {
        wb_set_error("CPU kernels '%s': this processor (or this build) has at most '%s'", name,
                     isa_names[isa_supported()]);
        return -1;
    }
    isa_level = want;
    return 0;
}

static int use_avx2(void) { return isa() >= WB_ISA_AVX2; }

#if defined(WB_CPU_AVX2_BUILT) && defined(__x86_64__)
#define WB_EW_CALL(name, args) \
    do { if (use_avx2()) wb_cpu_##name##_avx2 args; else wb_cpu_##name##_generic args; } while (0)
#else
#define WB_EW_CALL(name, args) wb_cpu_##name##_generic args
#endif
/* The unary ops: their AVX-512 build too. */
#if defined(WB_CPU_AVX2_BUILT) && defined(WB_CPU_AVX512_BUILT) && defined(__x86_64__)
void wb_cpu_unary_avx512(wb_unary_op op, int64_t n, const float *x, float *y, float alpha);
void wb_cpu_unary_bwd_avx512(wb_unary_op op, int64_t n, const float *x, const float *y, const float *dy, float *dx,
                             float alpha);
#define WB_EW_CALL_WIDE(name, args) \
    do { if (isa() >= WB_ISA_AVX512) wb_cpu_##name##_avx512 args; else WB_EW_CALL(name, args); } while (0)
#else
#define WB_EW_CALL_WIDE(name, args) WB_EW_CALL(name, args)
#endif

static void cpu_unary(wb_unary_op op, int64_t n, const float *x, float *y, float alpha) {
    WB_SPLIT_FLAT(n, WB_EW_CALL_WIDE(unary, (op, hi - lo, x + lo, y + lo, alpha)));
}
static void cpu_unary_bwd(wb_unary_op op, int64_t n, const float *x, const float *y, const float *dy, float *dx,
                          float alpha) {
    WB_SPLIT_FLAT(n, WB_EW_CALL_WIDE(unary_bwd, (op, hi - lo, at(x, lo), at(y, lo), dy + lo, dx + lo, alpha)));
}
/* A flat (same shape or scalar operands) piece of a binary op as its own
 * wb_bcast, so the kernel's flat loop runs on it unchanged. */
static wb_bcast flat_piece(const wb_bcast *bc, int64_t lo, int64_t hi) {
    wb_bcast p = *bc;
    p.out_numel = hi - lo;
    p.a_numel = bc->a_numel == 1 ? 1 : hi - lo;
    p.b_numel = bc->b_numel == 1 ? 1 : hi - lo;
    return p;
}
static int is_flat(const wb_bcast *bc) {
    int64_t n = bc->out_numel;
    return (bc->a_numel == n || bc->a_numel == 1) && (bc->b_numel == n || bc->b_numel == 1);
}
static void cpu_binary(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, float *y) {
    int64_t n = bc->out_numel;
    if (is_flat(bc)) {
        int64_t sa = bc->a_numel == 1 ? 0 : 1, sb = bc->b_numel == 1 ? 0 : 1;
        WB_SPLIT_FLAT(n, {
            wb_bcast piece = flat_piece(bc, lo, hi);
            WB_EW_CALL(binary, (op, &piece, a + sa * lo, b + sb * lo, y + lo));
        });
        return;
    }
    const int64_t *s = bc->out_shape;
    WB_SPLIT_UNITS(s[0] * s[1] * s[2], s[3], WB_EW_CALL(binary_rows, (op, bc, a, b, y, lo, hi)));
}
static void cpu_binary_bwd(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, const float *dy,
                           float *da, float *db) {
    int64_t n = bc->out_numel;
    if (bc->a_numel == n && bc->b_numel == n) { /* elementwise: pieces are independent */
        WB_SPLIT_FLAT(n, {
            wb_bcast piece = flat_piece(bc, lo, hi);
            WB_EW_CALL(binary_bwd, (op, &piece, at(a, lo), at(b, lo), dy + lo, at_w(da, lo), at_w(db, lo)));
        });
        return;
    }
    /* broadcast operands accumulate across rows: one pass keeps their order */
    WB_EW_CALL(binary_bwd, (op, bc, a, b, dy, da, db));
}
static void cpu_sum_cols(int64_t rows, int64_t cols, const float *x, float *y, int accumulate) {
    /* a split over columns: each column's rows are added in order */
    WB_SPLIT(cols, WB_PAR_ALIGN, rows * cols, WB_EW_CALL(sum_cols, (rows, cols, x, y, accumulate, lo, hi)));
}
static void bcast_rows_range(int64_t r0, int64_t r1, int64_t cols, const float *dy, float alpha, float *dx) {
    WB_EW_CALL(bcast_rows_add, (r1 - r0, cols, dy + r0, alpha, dx + r0 * cols));
}
static void cpu_bcast_rows_add(int64_t rows, int64_t cols, const float *dy, float alpha, float *dx) {
    WB_SPLIT_UNITS(rows, cols, bcast_rows_range(lo, hi, cols, dy, alpha, dx));
}
static void cpu_axpy(int64_t n, float alpha, const float *x, float *y) {
    WB_SPLIT_FLAT(n, WB_EW_CALL(axpy, (hi - lo, alpha, x + lo, y + lo)));
}
static void cpu_axpby(int64_t n, float a, const float *x, float b, float *y) {
    WB_SPLIT_FLAT(n, WB_EW_CALL(axpby, (hi - lo, a, x + lo, b, y + lo)));
}
static void cpu_adam(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                     float eps, float wd, int decoupled, float bc1, float bc2) {
    WB_SPLIT_FLAT(n, WB_EW_CALL(adam, (hi - lo, p + lo, g + lo, m + lo, v + lo, lr, beta1, beta2, eps, wd, decoupled,
                                       bc1, bc2)));
}

double wb_cpu_rbf_sum_generic(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2, int nh,
                              double *per_bandwidth);
double wb_cpu_rbf_sum_avx2(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2, int nh,
                           double *per_bandwidth);

/* OpenBLAS's own reports (cblas.h of its builds). */
const char *wb_cpu_blas_core(void) { return openblas_get_corename(); }
int wb_cpu_blas_threads(void) { return openblas_get_num_threads(); }
const char *wb_cpu_blas_threading(void) {
    switch (openblas_get_parallel()) {
    case 0: return "sequential";
    case 1: return "pthreads";
    case 2: return "openmp";
    default: return "unknown";
    }
}

/* Host-side helpers for the MMD metric (not backend ops). */
double wb_cpu_rbf_sums(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2, int nh,
                       double *per_bandwidth) {
#if defined(WB_CPU_AVX2_BUILT) && defined(__x86_64__)
    if (use_avx2()) return wb_cpu_rbf_sum_avx2(a, na, b, nb, dim, inv2h2, nh, per_bandwidth);
#endif
    return wb_cpu_rbf_sum_generic(a, na, b, nb, dim, inv2h2, nh, per_bandwidth);
}
double wb_cpu_rbf_sum(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2, int nh) {
    return wb_cpu_rbf_sums(a, na, b, nb, dim, inv2h2, nh, NULL);
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
    .alloc_zeroed = cpu_alloc_zeroed,
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
