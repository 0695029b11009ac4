/* tests/test_cuda_backend.c — the CUDA backend against the CPU reference,
 * entry by entry (ggml's test-backend-ops idea): every vtable function runs
 * the same computation on wb_backend_cpu() and the CUDA table from the
 * same random inputs, and the results must agree to 1e-5 relative (gemm
 * 1e-4: a different summation order over k).
 *
 * Which CUDA table: argv[1] or WB_TEST_BACKEND, "cuda" (a device) by
 * default; CTest runs it twice, as test_cuda_backend (cuda) and
 * test_cuda_emu_backend (cuda-emu: the same kernels on the CPU emulation
 * of kernels/cuda/emu, which must never skip). Without a usable device
 * wb_backend_select("cuda") returns NULL; the test then prints "SKIP: CUDA
 * backend unavailable: <reason>" and every case calls cmocka's skip(), so
 * the run is visibly skipped, not silently green.
 *
 * Buffers always go through each backend's own alloc/upload/download: the
 * CUDA table's pointers are device memory and must never be dereferenced.
 * Gradient outputs start from random values, not zeros, because bwd kernels
 * ACCUMULATE and a kernel that overwrote would otherwise pass.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wb/backend.h"
#include "wb/tensor.h"

#define TOL 1e-5
#define TOL_GEMM 1e-4

static const wb_backend *g_cpu;
static const wb_backend *g_gpu;
static const char *g_backend_name = "cuda"; /* the table under test: "cuda" or "cuda-emu" */

/* ---- helpers --------------------------------------------------------------- */

/* xorshift32: a private, fixed stream so failures reproduce exactly and the
 * test does not depend on the library RNG it is not testing. */
static uint32_t g_rng = 0x9e3779b9u;
static float frand(float lo, float hi) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return lo + (hi - lo) * (float)(g_rng >> 8) * (1.0f / 16777216.0f);
}

static float *host_rand(int64_t n, float lo, float hi) {
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(h);
    for (int64_t i = 0; i < n; i++) h[i] = frand(lo, hi);
    return h;
}

/* The same n floats on both backends. */
typedef struct {
    float *c; /* CPU backend memory  */
    float *g; /* CUDA backend memory */
    int64_t n;
} pair;

static pair pair_from(int64_t n, const float *host) {
    pair p = {NULL, NULL, n};
    size_t bytes = (size_t)n * sizeof(float);
    p.c = g_cpu->alloc(bytes);
    p.g = g_gpu->alloc(bytes);
    assert_non_null(p.c);
    assert_non_null(p.g);
    g_cpu->upload(p.c, host, bytes);
    g_gpu->upload(p.g, host, bytes);
    return p;
}

static pair pair_zeros(int64_t n) {
    float *h = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    assert_non_null(h);
    pair p = pair_from(n, h);
    free(h);
    return p;
}

static pair pair_rand(int64_t n, float lo, float hi) {
    float *h = host_rand(n, lo, hi);
    pair p = pair_from(n, h);
    free(h);
    return p;
}

static void pair_free(pair *p) {
    g_cpu->free(p->c);
    g_gpu->free(p->g);
    p->c = p->g = NULL;
}

/* |gpu − cpu| ≤ tol·max(scale, |cpu|) everywhere: relative for large
 * values, absolute (tol·scale) near zero, where cancellation makes relative
 * error meaningless. scale is 1 for elementwise results; for a sum of K
 * terms of magnitude ≤ M it is red_scale(K, M) = √K·M, the typical size of
 * the partial sums, which is what float rounding in either summation order
 * is proportional to. Written as !(d <= bound) so a NaN on either side fails. */
static double red_scale(int64_t k, double m) { return fmax(1.0, sqrt((double)k) * m); }

static void expect_close(const pair *p, double tol, double scale, const char *what) {
    size_t bytes = (size_t)p->n * sizeof(float);
    float *hc = malloc(bytes ? bytes : 1), *hg = malloc(bytes ? bytes : 1);
    assert_non_null(hc);
    assert_non_null(hg);
    g_cpu->download(hc, p->c, bytes);
    g_gpu->download(hg, p->g, bytes);
    int64_t bad = -1;
    for (int64_t i = 0; i < p->n && bad < 0; i++) {
        double d = fabs((double)hg[i] - (double)hc[i]);
        if (!(d <= tol * fmax(scale, fabs((double)hc[i])))) bad = i;
    }
    float cv = bad >= 0 ? hc[bad] : 0.0f, gv = bad >= 0 ? hg[bad] : 0.0f;
    free(hc);
    free(hg);
    if (bad >= 0)
        fail_msg("%s: element %lld of %lld: cpu %.9g cuda %.9g", what, (long long)bad,
                 (long long)p->n, (double)cv, (double)gv);
}

static void require_cuda(void) {
    if (!g_gpu) skip();
}

/* Broadcast geometry exactly as backend.h defines it (right-aligned to 4
 * dims, stride 0 on broadcast dims), built here so this test depends only on
 * the vtable, not on the op layer's wb_bcast_init. */
static wb_bcast make_bcast(int na, const int64_t *sa, int nb, const int64_t *sb) {
    int64_t a4[4] = {1, 1, 1, 1}, b4[4] = {1, 1, 1, 1};
    for (int i = 0; i < na; i++) a4[4 - na + i] = sa[i];
    for (int i = 0; i < nb; i++) b4[4 - nb + i] = sb[i];
    wb_bcast bc;
    memset(&bc, 0, sizeof bc);
    int64_t as = 1, bs = 1;
    bc.out_numel = 1;
    bc.a_numel = 1;
    bc.b_numel = 1;
    for (int k = 3; k >= 0; k--) {
        assert_true(a4[k] == b4[k] || a4[k] == 1 || b4[k] == 1);
        bc.out_shape[k] = a4[k] > b4[k] ? a4[k] : b4[k];
        bc.a_stride[k] = a4[k] == 1 ? 0 : as;
        bc.b_stride[k] = b4[k] == 1 ? 0 : bs;
        as *= a4[k];
        bs *= b4[k];
        bc.out_numel *= bc.out_shape[k];
    }
    bc.a_numel = as;
    bc.b_numel = bs;
    return bc;
}

/* ---- setup ------------------------------------------------------------------ */

static int group_setup(void **state) {
    (void)state;
    static char reason[512];
    g_cpu = wb_backend_cpu();
    if (!g_cpu) return -1;
    g_gpu = wb_backend_select(g_backend_name);
    if (!g_gpu) {
        const char *why = wb_last_error();
        if (!why || !why[0]) why = "(no reason given)";
        snprintf(reason, sizeof reason, "%s", why);
        if (strcmp(g_backend_name, "cuda") != 0) { /* the emulation is always there: never a skip */
            fprintf(stderr, "backend %s unavailable: %s\n", g_backend_name, reason);
            return -1;
        }
        printf("SKIP: CUDA backend unavailable: %s\n", reason);
        fflush(stdout);
    }
    return 0;
}

/* ---- cases ------------------------------------------------------------------- */

static void test_table(void **state) {
    (void)state;
    require_cuda();
    assert_string_equal(g_gpu->name, g_backend_name);
    assert_int_equal(g_gpu->device, WB_DEVICE_CUDA);
    /* Every entry is implemented: the op layer reports NULL ones by name,
     * but this backend claims the full table. */
    assert_non_null(g_gpu->alloc);
    assert_non_null(g_gpu->free);
    assert_non_null(g_gpu->upload);
    assert_non_null(g_gpu->download);
    assert_non_null(g_gpu->copy);
    assert_non_null(g_gpu->fill);
    assert_non_null(g_gpu->gemm);
    assert_non_null(g_gpu->unary);
    assert_non_null(g_gpu->unary_bwd);
    assert_non_null(g_gpu->binary);
    assert_non_null(g_gpu->binary_bwd);
    assert_non_null(g_gpu->sum_rows);
    assert_non_null(g_gpu->sum_cols);
    assert_non_null(g_gpu->bcast_rows_add);
    assert_non_null(g_gpu->copy_2d);
    assert_non_null(g_gpu->sinusoidal);
    assert_non_null(g_gpu->sinusoidal_bwd);
    assert_non_null(g_gpu->axpy);
    assert_non_null(g_gpu->axpby);
    assert_non_null(g_gpu->adam);
    assert_non_null(g_gpu->sum_squares);
}

static void test_memory(void **state) {
    (void)state;
    require_cuda();
    const int64_t n = 1000;
    float *h = host_rand(n, -5.0f, 5.0f), *back = malloc((size_t)n * sizeof(float));
    assert_non_null(back);
    size_t bytes = (size_t)n * sizeof(float);

    /* upload → download is bit-exact */
    float *d = g_gpu->alloc(bytes), *d2 = g_gpu->alloc(bytes);
    assert_non_null(d);
    assert_non_null(d2);
    g_gpu->upload(d, h, bytes);
    g_gpu->download(back, d, bytes);
    assert_memory_equal(back, h, bytes);

    /* device → device copy is bit-exact */
    g_gpu->copy(d2, d, bytes);
    memset(back, 0, bytes);
    g_gpu->download(back, d2, bytes);
    assert_memory_equal(back, h, bytes);

    /* fill of a sub-range leaves the rest alone */
    g_gpu->fill(d2 + 10, 500, -2.5f);
    g_gpu->download(back, d2, bytes);
    for (int64_t i = 0; i < n; i++)
        assert_true(back[i] == (i >= 10 && i < 510 ? -2.5f : h[i]));

    /* zero-byte operations and a zero-byte allocation are harmless */
    void *z = g_gpu->alloc(0);
    assert_non_null(z);
    g_gpu->upload(z, h, 0);
    g_gpu->download(back, z, 0);
    g_gpu->fill(d2, 0, 1.0f);
    g_gpu->free(z);

    g_gpu->free(d);
    g_gpu->free(d2);
    free(h);
    free(back);
}

/* Row-major C (m×n, ldc) = alpha·op(A)·op(B) + beta·C with padded leading
 * dimensions, so a wrong lda/ldb/ldc mapping or a write into the padding
 * shows up (the whole padded buffer is compared). */
static void test_gemm(void **state) {
    (void)state;
    require_cuda();
    static const int shapes[][3] = {{1, 1, 1}, {4, 3, 5}, {17, 9, 33}, {64, 48, 40}, {5, 70, 2}};
    char what[128];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int pad = 0; pad <= 3; pad += 3)
                    for (int bi = 0; bi < 2; bi++) {
                        const float beta = bi ? 0.3f : 0.0f;
                        /* stored shapes: A is (ta ? k×m : m×k), B is (tb ? n×k : k×n) */
                        const int a_rows = ta ? k : m, a_cols = ta ? m : k;
                        const int b_rows = tb ? n : k, b_cols = tb ? k : n;
                        const int lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
                        pair a = pair_rand((int64_t)a_rows * lda, -1.0f, 1.0f);
                        pair b = pair_rand((int64_t)b_rows * ldb, -1.0f, 1.0f);
                        pair c = pair_rand((int64_t)m * ldc, -1.0f, 1.0f);
                        g_cpu->gemm(ta, tb, m, n, k, 0.7f, a.c, lda, b.c, ldb, beta, c.c, ldc);
                        g_gpu->gemm(ta, tb, m, n, k, 0.7f, a.g, lda, b.g, ldb, beta, c.g, ldc);
                        snprintf(what, sizeof what,
                                 "gemm m=%d n=%d k=%d ta=%d tb=%d pad=%d beta=%g", m, n, k, ta,
                                 tb, pad, (double)beta);
                        expect_close(&c, TOL_GEMM, red_scale(k, 1.0), what);
                        pair_free(&a);
                        pair_free(&b);
                        pair_free(&c);
                    }
    }
}

static void test_unary(void **state) {
    (void)state;
    require_cuda();
    const int64_t n = 1031; /* not a multiple of the block size */
    const float alpha = 0.7f;
    char what[64];
    for (int op = 0; op < WB_UNARY_COUNT; op++) {
        /* log and sqrt need x > 0 (and away from 0, where 1/x blows up) */
        int pos = op == WB_UNARY_LOG || op == WB_UNARY_SQRT;
        pair x = pair_rand(n, pos ? 0.1f : -4.0f, 4.0f);
        pair y = pair_rand(n, 0.0f, 1.0f);
        g_cpu->unary((wb_unary_op)op, n, x.c, y.c, alpha);
        g_gpu->unary((wb_unary_op)op, n, x.g, y.g, alpha);
        snprintf(what, sizeof what, "unary op %d", op);
        expect_close(&y, TOL, 1.0, what);

        /* each backend's backward sees its own forward output, as on a tape */
        pair dy = pair_rand(n, -1.0f, 1.0f);
        pair dx = pair_rand(n, -1.0f, 1.0f);
        g_cpu->unary_bwd((wb_unary_op)op, n, x.c, y.c, dy.c, dx.c, alpha);
        g_gpu->unary_bwd((wb_unary_op)op, n, x.g, y.g, dy.g, dx.g, alpha);
        snprintf(what, sizeof what, "unary_bwd op %d", op);
        expect_close(&dx, TOL, 1.0, what);
        pair_free(&x);
        pair_free(&y);
        pair_free(&dy);
        pair_free(&dx);
    }
}

typedef struct {
    int na;
    int64_t sa[4];
    int nb;
    int64_t sb[4];
} shape_pair;

static void test_binary(void **state) {
    (void)state;
    require_cuda();
    static const shape_pair cases[] = {
        {2, {4, 3}, 2, {4, 3}},             /* same shape: no broadcast      */
        {2, {4, 3}, 1, {3}},                /* bias over rows                */
        {2, {4, 3}, 2, {4, 1}},             /* per-row scalar                */
        {1, {3}, 2, {4, 3}},                /* broadcast on the a side       */
        {2, {4, 1}, 2, {1, 3}},             /* both broadcast: outer product */
        {1, {1}, 2, {5, 7}},                /* scalar                        */
        {4, {2, 3, 4, 5}, 3, {3, 1, 5}},    /* 4-D, middle dim broadcast     */
        {4, {2, 1, 4, 1}, 4, {1, 3, 1, 5}}, /* interleaved broadcasts        */
        {2, {300, 64}, 1, {64}},            /* many contributions per db     */
    };
    char what[128];
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const shape_pair *sp = &cases[ci];
        wb_bcast bc = make_bcast(sp->na, sp->sa, sp->nb, sp->sb);
        for (int op = 0; op < WB_BINARY_COUNT; op++) {
            pair a = pair_rand(bc.a_numel, -2.0f, 2.0f);
            float *hb = host_rand(bc.b_numel, -2.0f, 2.0f);
            if (op == WB_BINARY_DIV) /* a divisor bounded away from 0: |b| ∈ [0.5, 2] */
                for (int64_t i = 0; i < bc.b_numel; i++)
                    hb[i] = hb[i] >= 0.0f ? 0.5f + 0.75f * hb[i] : -0.5f + 0.75f * hb[i];
            pair b = pair_from(bc.b_numel, hb);
            free(hb);
            pair y = pair_rand(bc.out_numel, 0.0f, 1.0f);
            g_cpu->binary((wb_binary_op)op, &bc, a.c, b.c, y.c);
            g_gpu->binary((wb_binary_op)op, &bc, a.g, b.g, y.g);
            snprintf(what, sizeof what, "binary op %d case %zu", op, ci);
            expect_close(&y, TOL, 1.0, what);

            /* each da (db) element sums out_numel/a_numel (b_numel) terms of
             * magnitude ≤ 8 (the worst: |dy·a/b²| for div) */
            const double sa = red_scale(bc.out_numel / bc.a_numel, 8.0);
            const double sb = red_scale(bc.out_numel / bc.b_numel, 8.0);
            pair dy = pair_rand(bc.out_numel, -1.0f, 1.0f);
            pair da = pair_rand(bc.a_numel, -1.0f, 1.0f);
            pair db = pair_rand(bc.b_numel, -1.0f, 1.0f);
            g_cpu->binary_bwd((wb_binary_op)op, &bc, a.c, b.c, dy.c, da.c, db.c);
            g_gpu->binary_bwd((wb_binary_op)op, &bc, a.g, b.g, dy.g, da.g, db.g);
            snprintf(what, sizeof what, "binary_bwd op %d case %zu: da", op, ci);
            expect_close(&da, TOL, sa, what);
            snprintf(what, sizeof what, "binary_bwd op %d case %zu: db", op, ci);
            expect_close(&db, TOL, sb, what);

            /* either gradient may be NULL (an input that needs no grad) */
            g_cpu->binary_bwd((wb_binary_op)op, &bc, a.c, b.c, dy.c, NULL, db.c);
            g_gpu->binary_bwd((wb_binary_op)op, &bc, a.g, b.g, dy.g, NULL, db.g);
            g_cpu->binary_bwd((wb_binary_op)op, &bc, a.c, b.c, dy.c, da.c, NULL);
            g_gpu->binary_bwd((wb_binary_op)op, &bc, a.g, b.g, dy.g, da.g, NULL);
            snprintf(what, sizeof what, "binary_bwd op %d case %zu (one NULL): da", op, ci);
            expect_close(&da, TOL, sa, what);
            snprintf(what, sizeof what, "binary_bwd op %d case %zu (one NULL): db", op, ci);
            expect_close(&db, TOL, sb, what);

            pair_free(&a);
            pair_free(&b);
            pair_free(&y);
            pair_free(&dy);
            pair_free(&da);
            pair_free(&db);
        }
    }
}

static void test_rows_cols(void **state) {
    (void)state;
    require_cuda();
    static const int64_t shapes[][2] = {{1, 1}, {5, 7}, {3, 1000}, {300, 3}, {64, 33}, {2, 4097}};
    char what[96];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1];
        pair x = pair_rand(rows * cols, -1.0f, 1.0f);

        pair yr = pair_rand(rows, -1.0f, 1.0f);
        g_cpu->sum_rows(rows, cols, x.c, yr.c);
        g_gpu->sum_rows(rows, cols, x.g, yr.g);
        snprintf(what, sizeof what, "sum_rows %lldx%lld", (long long)rows, (long long)cols);
        expect_close(&yr, TOL, red_scale(cols, 1.0), what);

        for (int acc = 0; acc < 2; acc++) {
            pair yc = pair_rand(cols, -1.0f, 1.0f);
            g_cpu->sum_cols(rows, cols, x.c, yc.c, acc);
            g_gpu->sum_cols(rows, cols, x.g, yc.g, acc);
            snprintf(what, sizeof what, "sum_cols %lldx%lld acc=%d", (long long)rows,
                     (long long)cols, acc);
            expect_close(&yc, TOL, red_scale(rows, 1.0), what);
            pair_free(&yc);
        }

        pair dx = pair_rand(rows * cols, -1.0f, 1.0f);
        g_cpu->bcast_rows_add(rows, cols, yr.c, 0.5f, dx.c);
        g_gpu->bcast_rows_add(rows, cols, yr.g, 0.5f, dx.g);
        snprintf(what, sizeof what, "bcast_rows_add %lldx%lld", (long long)rows, (long long)cols);
        expect_close(&dx, TOL, red_scale(cols, 1.0), what);

        /* strided views: src rows cols+2 apart, dst rows cols+5 apart; the
         * gaps in dst must survive (the whole buffer is compared) */
        for (int acc = 0; acc < 2; acc++) {
            const int64_t ss = cols + 2, ds = cols + 5;
            pair src = pair_rand(rows * ss, -1.0f, 1.0f);
            pair dst = pair_rand(rows * ds, -1.0f, 1.0f);
            g_cpu->copy_2d(rows, cols, src.c, ss, dst.c, ds, acc);
            g_gpu->copy_2d(rows, cols, src.g, ss, dst.g, ds, acc);
            snprintf(what, sizeof what, "copy_2d %lldx%lld acc=%d", (long long)rows,
                     (long long)cols, acc);
            expect_close(&dst, TOL, 1.0, what);
            pair_free(&src);
            pair_free(&dst);
        }
        pair_free(&x);
        pair_free(&yr);
        pair_free(&dx);
    }
}

static void test_sinusoidal(void **state) {
    (void)state;
    require_cuda();
    static const int dims[] = {2, 6, 16, 128};
    static const int64_t ns[] = {1, 9, 64};
    char what[96];
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            const int dim = dims[di];
            const int64_t n = ns[ni];
            const float max_period = 10000.0f;
            pair t = pair_rand(n, -3.0f, 3.0f);
            pair y = pair_rand(n * dim, -1.0f, 1.0f);
            g_cpu->sinusoidal(n, dim, max_period, t.c, y.c);
            g_gpu->sinusoidal(n, dim, max_period, t.g, y.g);
            snprintf(what, sizeof what, "sinusoidal n=%lld dim=%d", (long long)n, dim);
            expect_close(&y, TOL, 1.0, what);

            pair dy = pair_rand(n * dim, -1.0f, 1.0f);
            pair dt = pair_rand(n, -1.0f, 1.0f);
            g_cpu->sinusoidal_bwd(n, dim, max_period, t.c, dy.c, dt.c);
            g_gpu->sinusoidal_bwd(n, dim, max_period, t.g, dy.g, dt.g);
            snprintf(what, sizeof what, "sinusoidal_bwd n=%lld dim=%d", (long long)n, dim);
            expect_close(&dt, TOL, red_scale(dim, 1.0), what);
            pair_free(&t);
            pair_free(&y);
            pair_free(&dy);
            pair_free(&dt);
        }
}

static void test_axpy_axpby(void **state) {
    (void)state;
    require_cuda();
    const int64_t n = 5003;
    pair x = pair_rand(n, -1.0f, 1.0f);
    pair y = pair_rand(n, -1.0f, 1.0f);
    g_cpu->axpy(n, -0.37f, x.c, y.c);
    g_gpu->axpy(n, -0.37f, x.g, y.g);
    expect_close(&y, TOL, 1.0, "axpy");
    g_cpu->axpby(n, 0.999f, x.c, 0.001f, y.c);
    g_gpu->axpby(n, 0.999f, x.g, 0.001f, y.g);
    expect_close(&y, TOL, 1.0, "axpby");
    pair_free(&x);
    pair_free(&y);
}

static void test_adam(void **state) {
    (void)state;
    require_cuda();
    const int64_t n = 2049;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    char what[64];
    for (int decoupled = 0; decoupled < 2; decoupled++) {
        pair p = pair_rand(n, -1.0f, 1.0f);
        pair m = pair_zeros(n), v = pair_zeros(n);
        for (int step = 1; step <= 3; step++) {
            pair g = pair_rand(n, -1.0f, 1.0f);
            const float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
            g_cpu->adam(n, p.c, g.c, m.c, v.c, lr, b1, b2, eps, 0.01f, decoupled, bc1, bc2);
            g_gpu->adam(n, p.g, g.g, m.g, v.g, lr, b1, b2, eps, 0.01f, decoupled, bc1, bc2);
            pair_free(&g);
        }
        snprintf(what, sizeof what, "adam decoupled=%d: p", decoupled);
        expect_close(&p, TOL, 1.0, what);
        snprintf(what, sizeof what, "adam decoupled=%d: m", decoupled);
        expect_close(&m, TOL, 1.0, what);
        snprintf(what, sizeof what, "adam decoupled=%d: v", decoupled);
        expect_close(&v, TOL, 1.0, what);
        pair_free(&p);
        pair_free(&m);
        pair_free(&v);
    }
}

static void test_sum_squares(void **state) {
    (void)state;
    require_cuda();
    static const int64_t ns[] = {1, 255, 1000, 100003, 2000000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        pair x = pair_rand(ns[i], -3.0f, 3.0f);
        double c = g_cpu->sum_squares(ns[i], x.c), g = g_gpu->sum_squares(ns[i], x.g);
        if (!(fabs(g - c) <= TOL * fmax(1.0, fabs(c))))
            fail_msg("sum_squares n=%lld: cpu %.17g cuda %.17g", (long long)ns[i], c, g);
        pair_free(&x);
    }
    /* a float whose square overflows float must not become inf (double sums) */
    float big[2] = {3e30f, -3e30f};
    pair xb = pair_from(2, big);
    double gb = g_gpu->sum_squares(2, xb.g);
    assert_true(isfinite(gb));
    assert_true(fabs(gb - 1.8e61) <= 1e-5 * 1.8e61);
    pair_free(&xb);
    /* non-finite values propagate (grad-norm NaN detection relies on it) */
    float bad[4] = {1.0f, NAN, 2.0f, 3.0f};
    pair xn = pair_from(4, bad);
    assert_true(isnan(g_cpu->sum_squares(4, xn.c)));
    assert_true(isnan(g_gpu->sum_squares(4, xn.g)));
    pair_free(&xn);
    float inf[3] = {1.0f, INFINITY, 2.0f};
    pair xi = pair_from(3, inf);
    assert_true(isinf(g_gpu->sum_squares(3, xi.g)));
    pair_free(&xi);
}

int main(int argc, char **argv) {
    const char *env = getenv("WB_TEST_BACKEND");
    if (argc > 1) g_backend_name = argv[1];
    else if (env && env[0]) g_backend_name = env;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),       cmocka_unit_test(test_memory),
        cmocka_unit_test(test_gemm),        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_binary),      cmocka_unit_test(test_rows_cols),
        cmocka_unit_test(test_sinusoidal),  cmocka_unit_test(test_axpy_axpby),
        cmocka_unit_test(test_adam),        cmocka_unit_test(test_sum_squares),
    };
    return cmocka_run_group_tests_name("cuda_backend", tests, group_setup, NULL);
}
