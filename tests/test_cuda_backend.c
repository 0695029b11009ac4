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
        const char *require = getenv("WB_REQUIRE_DEVICE"); /* scripts/gpu_check.sh: no device is a failure */
        if (strcmp(g_backend_name, "cuda") != 0 || (require && strcmp(require, "1") == 0)) {
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
    assert_non_null(g_gpu->gemm_batched);
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
    assert_non_null(g_gpu->im2col);
    assert_non_null(g_gpu->col2im);
    assert_non_null(g_gpu->upsample2x);
    assert_non_null(g_gpu->upsample2x_bwd);
    assert_non_null(g_gpu->avgpool2x);
    assert_non_null(g_gpu->avgpool2x_bwd);
    assert_non_null(g_gpu->maxpool2d);
    assert_non_null(g_gpu->maxpool2d_bwd);
    assert_non_null(g_gpu->avgpool2d);
    assert_non_null(g_gpu->avgpool2d_bwd);
    assert_non_null(g_gpu->resize_bilinear);
    assert_non_null(g_gpu->resize_bilinear_bwd);
    assert_non_null(g_gpu->group_norm);
    assert_non_null(g_gpu->group_norm_bwd);
    assert_non_null(g_gpu->softmax_rows);
    assert_non_null(g_gpu->softmax_rows_bwd);
    assert_non_null(g_gpu->rng_normal);
    assert_non_null(g_gpu->rng_uniform);
    assert_non_null(g_gpu->karras_sigma);
    assert_non_null(g_gpu->dmd_weight);
    assert_non_null(g_gpu->dmd_weight_bwd);
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

/* k = 0: C = β·C on both backends (β = 0 clears even NaN), for gemm and
 * every matrix of gemm_batched, leading dimension and stride padding kept. */
static void test_gemm_k0_and_batched(void **state) {
    (void)state;
    require_cuda();
    char what[128];
    for (int bi = 0; bi < 3; bi++) {
        const float beta = bi == 0 ? 0.0f : bi == 1 ? 1.0f : -2.5f;
        const int m = 5, n = 7, ldc = 9;
        float *h = host_rand((int64_t)m * ldc, -1.0f, 1.0f);
        h[3] = NAN; /* beta = 0 must clear it, as BLAS does */
        pair c = pair_from((int64_t)m * ldc, h);
        free(h);
        pair a = pair_rand(8, -1.0f, 1.0f), b = pair_rand(8, -1.0f, 1.0f);
        g_cpu->gemm(0, 0, m, n, 0, 0.7f, a.c, 1, b.c, n, beta, c.c, ldc);
        g_gpu->gemm(0, 0, m, n, 0, 0.7f, a.g, 1, b.g, n, beta, c.g, ldc);
        snprintf(what, sizeof what, "gemm k=0 beta=%g", (double)beta);
        if (beta != 0.0f) { /* NaN stays NaN on both: compare the rest */
            float one = 0.0f;
            g_cpu->upload(c.c + 3, &one, sizeof one);
            g_gpu->upload(c.g + 3, &one, sizeof one);
        }
        expect_close(&c, 0.0, 1.0, what);
        pair_free(&a);
        pair_free(&b);
        pair_free(&c);
    }
    /* strided batches: shared A (stride 0), padded leading dimensions, k = 0 and k > 0 */
    for (int k = 0; k <= 6; k += 6)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int batch = 3, m = 4, n = 5, pad = 2;
                const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
                const int64_t sa = 0, sb = (int64_t)(tb ? n : k) * ldb + 3, sc = (int64_t)m * ldc + 1;
                pair a = pair_rand((int64_t)(ta ? k : m) * lda + 1, -1.0f, 1.0f);
                pair b = pair_rand(sb * batch + 1, -1.0f, 1.0f);
                pair c = pair_rand(sc * batch, -1.0f, 1.0f);
                g_cpu->gemm_batched(batch, ta, tb, m, n, k, 0.5f, a.c, lda, sa, b.c, ldb, sb, 0.25f, c.c, ldc, sc);
                g_gpu->gemm_batched(batch, ta, tb, m, n, k, 0.5f, a.g, lda, sa, b.g, ldb, sb, 0.25f, c.g, ldc, sc);
                snprintf(what, sizeof what, "gemm_batched k=%d ta=%d tb=%d", k, ta, tb);
                expect_close(&c, TOL_GEMM, red_scale(k, 1.0), what);
                pair_free(&a);
                pair_free(&b);
                pair_free(&c);
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

/* ---- image, norm and diffusion kernels ----------------------------------------- */

/* expect_close, except that non-finite results must match exactly: NaN
 * against NaN, ±inf against the same infinity (max pooling of −inf / NaN
 * inputs). */
static void expect_close_nf(const pair *p, double tol, double scale, const char *what) {
    size_t bytes = (size_t)p->n * sizeof(float);
    float *hc = malloc(bytes ? bytes : 1), *hg = malloc(bytes ? bytes : 1);
    assert_non_null(hc);
    assert_non_null(hg);
    g_cpu->download(hc, p->c, bytes);
    g_gpu->download(hg, p->g, bytes);
    int64_t bad = -1;
    for (int64_t i = 0; i < p->n && bad < 0; i++) {
        if (isnan(hc[i]) || isnan(hg[i])) {
            if (!(isnan(hc[i]) && isnan(hg[i]))) bad = i;
            continue;
        }
        if (hc[i] == hg[i]) continue; /* equal infinities too */
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

static int pool_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

static void test_im2col_col2im(void **state) {
    (void)state;
    require_cuda();
    /* c, h, w, kh, kw, sh, sw, pad_h, pad_w */
    static const int cases[][9] = {
        {1, 1, 1, 1, 1, 1, 1, 0, 0}, {3, 5, 7, 3, 3, 1, 1, 1, 1}, {2, 8, 6, 3, 2, 2, 1, 1, 0},
        {2, 9, 9, 1, 7, 1, 1, 0, 3}, {2, 9, 9, 7, 1, 1, 1, 3, 0}, {1, 7, 7, 2, 2, 3, 3, 0, 0},
        {4, 6, 5, 5, 5, 2, 2, 2, 2}, {3, 11, 10, 3, 3, 2, 3, 1, 1}, {2, 4, 4, 1, 1, 2, 2, 0, 0},
    };
    char what[128];
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        const int *q = cases[s];
        const int c = q[0], h = q[1], w = q[2], kh = q[3], kw = q[4], sh = q[5], sw = q[6], ph = q[7], pw = q[8];
        const int ho = (h + 2 * ph - kh) / sh + 1, wo = (w + 2 * pw - kw) / sw + 1;
        const int64_t ncol = (int64_t)c * kh * kw * ho * wo, nx = (int64_t)c * h * w;
        pair x = pair_rand(nx, -1.0f, 1.0f);
        pair col = pair_rand(ncol, -1.0f, 1.0f); /* every element is written */
        g_cpu->im2col(x.c, c, h, w, kh, kw, sh, sw, ph, pw, col.c);
        g_gpu->im2col(x.g, c, h, w, kh, kw, sh, sw, ph, pw, col.g);
        snprintf(what, sizeof what, "im2col case %zu", s);
        expect_close(&col, 0.0, 1.0, what); /* a copy: exact */

        pair dcol = pair_rand(ncol, -1.0f, 1.0f);
        pair dx = pair_rand(nx, -1.0f, 1.0f);
        g_cpu->col2im(dcol.c, c, h, w, kh, kw, sh, sw, ph, pw, dx.c);
        g_gpu->col2im(dcol.g, c, h, w, kh, kw, sh, sw, ph, pw, dx.g);
        snprintf(what, sizeof what, "col2im case %zu", s);
        expect_close(&dx, TOL, red_scale((int64_t)kh * kw + 1, 1.0), what);
        pair_free(&x);
        pair_free(&col);
        pair_free(&dcol);
        pair_free(&dx);
    }
}

static void test_upsample_avgpool2x(void **state) {
    (void)state;
    require_cuda();
    /* planes, h, w (odd sizes: avgpool2x drops the last row / column) */
    static const int cases[][3] = {{1, 1, 1}, {3, 4, 6}, {2, 7, 5}, {5, 16, 16}, {1, 2, 33}};
    char what[96];
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        const int64_t planes = cases[s][0];
        const int h = cases[s][1], w = cases[s][2];
        const int64_t n = planes * h * w, n2 = planes * 4 * h * w, nh = planes * (h / 2) * (w / 2);

        pair x = pair_rand(n, -1.0f, 1.0f);
        pair y = pair_rand(n2, -1.0f, 1.0f);
        g_cpu->upsample2x(planes, h, w, x.c, y.c);
        g_gpu->upsample2x(planes, h, w, x.g, y.g);
        snprintf(what, sizeof what, "upsample2x %lldx%dx%d", (long long)planes, h, w);
        expect_close(&y, 0.0, 1.0, what);

        pair dy = pair_rand(n2, -1.0f, 1.0f);
        pair dx = pair_rand(n, -1.0f, 1.0f);
        g_cpu->upsample2x_bwd(planes, h, w, dy.c, dx.c);
        g_gpu->upsample2x_bwd(planes, h, w, dy.g, dx.g);
        snprintf(what, sizeof what, "upsample2x_bwd %lldx%dx%d", (long long)planes, h, w);
        expect_close(&dx, TOL, red_scale(5, 1.0), what);

        if (nh > 0) {
            pair yp = pair_rand(nh, -1.0f, 1.0f);
            g_cpu->avgpool2x(planes, h, w, x.c, yp.c);
            g_gpu->avgpool2x(planes, h, w, x.g, yp.g);
            snprintf(what, sizeof what, "avgpool2x %lldx%dx%d", (long long)planes, h, w);
            expect_close(&yp, TOL, 1.0, what);

            pair dyp = pair_rand(nh, -1.0f, 1.0f);
            pair dxp = pair_rand(n, -1.0f, 1.0f);
            g_cpu->avgpool2x_bwd(planes, h, w, dyp.c, dxp.c);
            g_gpu->avgpool2x_bwd(planes, h, w, dyp.g, dxp.g);
            snprintf(what, sizeof what, "avgpool2x_bwd %lldx%dx%d", (long long)planes, h, w);
            expect_close(&dxp, TOL, 1.0, what);
            pair_free(&yp);
            pair_free(&dyp);
            pair_free(&dxp);
        }
        pair_free(&x);
        pair_free(&y);
        pair_free(&dy);
        pair_free(&dx);
    }
}

/* planes, h, w, k, stride, pad (pad <= k/2, as the op guarantees) */
static const int g_pool_cases[][6] = {
    {2, 5, 5, 3, 1, 1}, {3, 8, 7, 3, 2, 1}, {2, 7, 7, 2, 3, 0}, /* stride > kernel */
    {1, 1, 1, 1, 1, 0}, {2, 9, 6, 3, 3, 1}, {2, 6, 6, 4, 2, 2}, {1, 10, 13, 5, 2, 2},
    {4, 4, 4, 2, 2, 0}, {1, 6, 5, 3, 4, 1},
};

/* Max-pooling inputs: 0 uniform, 1 ties (values in {−1, 0, 1}), 2 uniform
 * with −inf and NaN sprinkled in, 3 every value −inf. */
static float *pool_input(int64_t n, int mode) {
    float *h = host_rand(n, -1.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) {
        if (mode == 1) h[i] = (float)((int)floorf(frand(0.0f, 3.0f)) - 1);
        if (mode == 2) {
            float r = frand(0.0f, 1.0f);
            if (r < 0.15f) h[i] = -INFINITY;
            else if (r < 0.25f) h[i] = NAN;
        }
        if (mode == 3) h[i] = -INFINITY;
    }
    return h;
}

static void test_maxpool2d(void **state) {
    (void)state;
    require_cuda();
    char what[128];
    for (size_t s = 0; s < sizeof g_pool_cases / sizeof g_pool_cases[0]; s++) {
        const int *q = g_pool_cases[s];
        const int64_t planes = q[0];
        const int h = q[1], w = q[2], k = q[3], st = q[4], pad = q[5];
        const int ho = pool_out(h, k, st, pad), wo = pool_out(w, k, st, pad);
        const int64_t n = planes * h * w, no = planes * ho * wo;
        for (int mode = 0; mode < 4; mode++) {
            float *hx = pool_input(n, mode);
            pair x = pair_from(n, hx);
            free(hx);
            pair y = pair_rand(no, -1.0f, 1.0f);
            g_cpu->maxpool2d(planes, h, w, k, st, pad, x.c, y.c);
            g_gpu->maxpool2d(planes, h, w, k, st, pad, x.g, y.g);
            snprintf(what, sizeof what, "maxpool2d case %zu mode %d", s, mode);
            expect_close_nf(&y, 0.0, 1.0, what);

            pair dy = pair_rand(no, -1.0f, 1.0f);
            pair dx = pair_rand(n, -1.0f, 1.0f);
            g_cpu->maxpool2d_bwd(planes, h, w, k, st, pad, x.c, dy.c, dx.c);
            g_gpu->maxpool2d_bwd(planes, h, w, k, st, pad, x.g, dy.g, dx.g);
            snprintf(what, sizeof what, "maxpool2d_bwd case %zu mode %d", s, mode);
            expect_close(&dx, TOL, red_scale((int64_t)k * k + 1, 1.0), what);
            pair_free(&x);
            pair_free(&y);
            pair_free(&dy);
            pair_free(&dx);
        }
    }
}

static void test_avgpool2d(void **state) {
    (void)state;
    require_cuda();
    char what[128];
    for (size_t s = 0; s < sizeof g_pool_cases / sizeof g_pool_cases[0]; s++) {
        const int *q = g_pool_cases[s];
        const int64_t planes = q[0];
        const int h = q[1], w = q[2], k = q[3], st = q[4], pad = q[5];
        const int ho = pool_out(h, k, st, pad), wo = pool_out(w, k, st, pad);
        const int64_t n = planes * h * w, no = planes * ho * wo;
        for (int cip = 0; cip < 2; cip++) {
            pair x = pair_rand(n, -1.0f, 1.0f);
            pair y = pair_rand(no, -1.0f, 1.0f);
            g_cpu->avgpool2d(planes, h, w, k, st, pad, cip, x.c, y.c);
            g_gpu->avgpool2d(planes, h, w, k, st, pad, cip, x.g, y.g);
            snprintf(what, sizeof what, "avgpool2d case %zu cip %d", s, cip);
            expect_close(&y, TOL, 1.0, what);

            pair dy = pair_rand(no, -1.0f, 1.0f);
            pair dx = pair_rand(n, -1.0f, 1.0f);
            g_cpu->avgpool2d_bwd(planes, h, w, k, st, pad, cip, dy.c, dx.c);
            g_gpu->avgpool2d_bwd(planes, h, w, k, st, pad, cip, dy.g, dx.g);
            snprintf(what, sizeof what, "avgpool2d_bwd case %zu cip %d", s, cip);
            expect_close(&dx, TOL, red_scale((int64_t)k * k + 1, 1.0), what);
            pair_free(&x);
            pair_free(&y);
            pair_free(&dy);
            pair_free(&dx);
        }
    }
}

static void test_resize_bilinear(void **state) {
    (void)state;
    require_cuda();
    /* planes, h, w, ho, wo: up, down, same, from 1, to 1, mixed, Inception's 32 -> 75-ish */
    static const int cases[][5] = {
        {2, 4, 4, 8, 8}, {2, 8, 8, 4, 4}, {3, 5, 7, 5, 7}, {2, 1, 1, 5, 3}, {1, 5, 3, 1, 1},
        {2, 7, 5, 13, 3}, {1, 6, 9, 4, 14}, {1, 32, 32, 75, 75}, {1, 9, 10, 2, 3},
    };
    char what[128];
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        const int64_t planes = cases[s][0];
        const int h = cases[s][1], w = cases[s][2], ho = cases[s][3], wo = cases[s][4];
        const int64_t n = planes * h * w, no = planes * ho * wo;
        pair x = pair_rand(n, -1.0f, 1.0f);
        pair y = pair_rand(no, -1.0f, 1.0f);
        g_cpu->resize_bilinear(planes, h, w, ho, wo, x.c, y.c);
        g_gpu->resize_bilinear(planes, h, w, ho, wo, x.g, y.g);
        snprintf(what, sizeof what, "resize_bilinear %dx%d -> %dx%d", h, w, ho, wo);
        expect_close(&y, TOL, 1.0, what);

        /* each input cell receives from ≤ (ho/h + 2)·(wo/w + 2) outputs */
        const int64_t fan = (int64_t)(ho / h + 2) * (wo / w + 2);
        pair dy = pair_rand(no, -1.0f, 1.0f);
        pair dx = pair_rand(n, -1.0f, 1.0f);
        g_cpu->resize_bilinear_bwd(planes, h, w, ho, wo, dy.c, dx.c);
        g_gpu->resize_bilinear_bwd(planes, h, w, ho, wo, dy.g, dx.g);
        snprintf(what, sizeof what, "resize_bilinear_bwd %dx%d -> %dx%d", h, w, ho, wo);
        expect_close(&dx, TOL, red_scale(fan, 1.0), what);
        pair_free(&x);
        pair_free(&y);
        pair_free(&dy);
        pair_free(&dx);
    }
}

/* n values offset + N(0, 1) (Box–Muller on the private stream). */
static float *host_normal(int64_t n, float offset) {
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(h);
    for (int64_t i = 0; i < n; i++) {
        double u1 = (double)frand(0.0f, 1.0f) + 1e-7, u2 = (double)frand(0.0f, 1.0f);
        h[i] = offset + (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
    return h;
}

static void test_group_norm(void **state) {
    (void)state;
    require_cuda();
    /* b, c, hw, groups */
    static const int cases[][4] = {
        {1, 1, 1, 1}, {2, 4, 9, 2}, {3, 6, 17, 3}, {2, 8, 64, 1}, {2, 32, 16, 32}, {1, 12, 1025, 4},
    };
    const float eps = 1e-5f;
    char what[160];
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        const int b = cases[s][0], c = cases[s][1], groups = cases[s][3];
        const int64_t hw = cases[s][2], n = (int64_t)b * c * hw;
        /* variant 0: uniform x, with affine; 1: NULL gamma / beta;
         * 2: x = 1000 + N(0, 1), with affine (the shifted variance) */
        for (int variant = 0; variant < 3; variant++) {
            float *hx = variant == 2 ? host_normal(n, 1000.0f) : host_rand(n, -2.0f, 2.0f);
            pair x = pair_from(n, hx);
            free(hx);
            pair gamma = pair_rand(c, 0.5f, 1.5f), beta = pair_rand(c, -1.0f, 1.0f);
            const int affine = variant != 1;
            pair y = pair_rand(n, -1.0f, 1.0f);
            pair mean = pair_rand((int64_t)b * groups, -1.0f, 1.0f), rstd = pair_rand((int64_t)b * groups, -1.0f, 1.0f);
            g_cpu->group_norm(b, c, hw, groups, x.c, affine ? gamma.c : NULL, affine ? beta.c : NULL, eps, y.c,
                              mean.c, rstd.c);
            g_gpu->group_norm(b, c, hw, groups, x.g, affine ? gamma.g : NULL, affine ? beta.g : NULL, eps, y.g,
                              mean.g, rstd.g);
            snprintf(what, sizeof what, "group_norm b=%d c=%d hw=%lld g=%d variant %d: ", b, c, (long long)hw,
                     groups, variant);
            size_t len = strlen(what);
            snprintf(what + len, sizeof what - len, "y");
            expect_close(&y, TOL, 1.0, what);
            snprintf(what + len, sizeof what - len, "mean");
            expect_close(&mean, TOL, 1.0, what);
            snprintf(what + len, sizeof what - len, "rstd");
            expect_close(&rstd, TOL, 1.0, what);

            /* backward, each backend from its own statistics (as on a tape) */
            pair dy = pair_rand(n, -1.0f, 1.0f);
            pair dx = pair_rand(n, -1.0f, 1.0f), dg = pair_rand(c, -1.0f, 1.0f), db = pair_rand(c, -1.0f, 1.0f);
            const float *gc = affine ? gamma.c : NULL, *gg = affine ? gamma.g : NULL;
            g_cpu->group_norm_bwd(b, c, hw, groups, x.c, gc, mean.c, rstd.c, dy.c, dx.c, dg.c, db.c);
            g_gpu->group_norm_bwd(b, c, hw, groups, x.g, gg, mean.g, rstd.g, dy.g, dx.g, dg.g, db.g);
            snprintf(what + len, sizeof what - len, "bwd dx");
            expect_close(&dx, TOL, 4.0, what);
            snprintf(what + len, sizeof what - len, "bwd dgamma");
            expect_close(&dg, TOL, red_scale((int64_t)b * hw, 3.0), what);
            snprintf(what + len, sizeof what - len, "bwd dbeta");
            expect_close(&db, TOL, red_scale((int64_t)b * hw, 1.0), what);

            /* any gradient may be NULL: dx alone, then dgamma and dbeta alone */
            g_cpu->group_norm_bwd(b, c, hw, groups, x.c, gc, mean.c, rstd.c, dy.c, dx.c, NULL, NULL);
            g_gpu->group_norm_bwd(b, c, hw, groups, x.g, gg, mean.g, rstd.g, dy.g, dx.g, NULL, NULL);
            g_cpu->group_norm_bwd(b, c, hw, groups, x.c, gc, mean.c, rstd.c, dy.c, NULL, dg.c, NULL);
            g_gpu->group_norm_bwd(b, c, hw, groups, x.g, gg, mean.g, rstd.g, dy.g, NULL, dg.g, NULL);
            g_cpu->group_norm_bwd(b, c, hw, groups, x.c, gc, mean.c, rstd.c, dy.c, NULL, NULL, db.c);
            g_gpu->group_norm_bwd(b, c, hw, groups, x.g, gg, mean.g, rstd.g, dy.g, NULL, NULL, db.g);
            snprintf(what + len, sizeof what - len, "bwd (NULLs) dx");
            expect_close(&dx, TOL, 8.0, what);
            snprintf(what + len, sizeof what - len, "bwd (NULLs) dgamma");
            expect_close(&dg, TOL, red_scale((int64_t)b * hw, 6.0), what);
            snprintf(what + len, sizeof what - len, "bwd (NULLs) dbeta");
            expect_close(&db, TOL, red_scale((int64_t)b * hw, 2.0), what);
            pair_free(&x);
            pair_free(&gamma);
            pair_free(&beta);
            pair_free(&y);
            pair_free(&mean);
            pair_free(&rstd);
            pair_free(&dy);
            pair_free(&dx);
            pair_free(&dg);
            pair_free(&db);
        }
    }
}

static void test_softmax_rows(void **state) {
    (void)state;
    require_cuda();
    static const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 300}, {2, 1000}, {64, 33}, {3, 4099}};
    char what[128];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        /* range 0: logits in [−4, 4]; 1: ±80 (e^80 overflows float without
         * the max); 2: logits in [−80, −79] and one +80 in the LAST column
         * of each row: a row max that misses it (a reduction that drops a
         * warp's value) overflows e^(x − max) and the row becomes NaN */
        for (int range = 0; range < 3; range++) {
            const float lim = range ? 80.0f : 4.0f;
            float *hx = range == 2 ? host_rand(n, -80.0f, -79.0f) : host_rand(n, -lim, lim);
            if (range == 1 && cols > 1) { /* row 0: large equal logits */
                for (int64_t j = 0; j < cols; j++) hx[j] = 80.0f;
            }
            if (range == 2)
                for (int64_t r = 0; r < rows; r++) hx[r * cols + cols - 1] = 80.0f;
            pair x = pair_from(n, hx);
            free(hx);
            pair y = pair_rand(n, -1.0f, 1.0f);
            g_cpu->softmax_rows(rows, cols, x.c, y.c);
            g_gpu->softmax_rows(rows, cols, x.g, y.g);
            snprintf(what, sizeof what, "softmax_rows %lldx%lld range %d", (long long)rows, (long long)cols, range);
            expect_close(&y, TOL, 1.0, what);

            pair dy = pair_rand(n, -1.0f, 1.0f);
            pair dx = pair_rand(n, -1.0f, 1.0f);
            g_cpu->softmax_rows_bwd(rows, cols, y.c, dy.c, dx.c);
            g_gpu->softmax_rows_bwd(rows, cols, y.g, dy.g, dx.g);
            snprintf(what, sizeof what, "softmax_rows_bwd %lldx%lld range %d", (long long)rows, (long long)cols,
                     range);
            expect_close(&dx, TOL, 2.0, what);
            pair_free(&x);
            pair_free(&y);
            pair_free(&dy);
            pair_free(&dx);
        }
    }
}

/* Draws must be the CPU's numbers bit for bit (tolerance 0); the buffer is
 * 3 floats longer than n and starts random, so a write past n shows. */
static void test_rng(void **state) {
    (void)state;
    require_cuda();
    static const uint64_t seeds[] = {0, 42, 0x123456789abcdefull};
    static const uint64_t streams[] = {0, 3, (1ull << 40) + 1};
    static const uint64_t offsets[] = {0, 1, 7, (1ull << 33) + 5};
    static const int64_t ns[] = {1, 3, 4, 5, 1023, 4097};
    char what[160];
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t o = 0; o < 4; o++)
                for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                    const int64_t n = ns[k];
                    for (int normal = 0; normal < 2; normal++) {
                        pair out = pair_rand(n + 3, -1.0f, 1.0f);
                        if (normal) {
                            g_cpu->rng_normal(seeds[a], streams[b], offsets[o], n, out.c);
                            g_gpu->rng_normal(seeds[a], streams[b], offsets[o], n, out.g);
                        } else {
                            g_cpu->rng_uniform(seeds[a], streams[b], offsets[o], n, out.c);
                            g_gpu->rng_uniform(seeds[a], streams[b], offsets[o], n, out.g);
                        }
                        snprintf(what, sizeof what, "rng_%s seed %zu stream %zu offset %llu n %lld",
                                 normal ? "normal" : "uniform", a, b, (unsigned long long)offsets[o],
                                 (long long)n);
                        expect_close(&out, 0.0, 1.0, what);
                        pair_free(&out);
                    }
                }
}

static void test_karras_sigma(void **state) {
    (void)state;
    require_cuda();
    /* t_min, t_max, sigma_min, sigma_max, rho */
    static const double cases[][5] = {
        {0.0, 1.0, 0.002, 80.0, 7.0}, {0.1, 0.9, 0.02, 14.6, 7.0}, {0.25, 0.75, 0.5, 2.0, 1.0}, {0.0, 1.0, 0.01, 10.0, 3.0},
    };
    static const int64_t ns[] = {1, 1031};
    char what[96];
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++)
        for (size_t k = 0; k < 2; k++) {
            const int64_t n = ns[k];
            pair u = pair_rand(n, 0.0f, 1.0f);
            pair sg = pair_rand(n, -1.0f, 1.0f);
            g_cpu->karras_sigma(n, u.c, (float)cases[s][0], (float)cases[s][1], cases[s][2], cases[s][3],
                                cases[s][4], sg.c);
            g_gpu->karras_sigma(n, u.g, (float)cases[s][0], (float)cases[s][1], cases[s][2], cases[s][3],
                                cases[s][4], sg.g);
            snprintf(what, sizeof what, "karras_sigma case %zu n %lld", s, (long long)n);
            expect_close(&sg, 0.0, 1.0, what);
            pair_free(&u);
            pair_free(&sg);
        }
}

static void test_dmd_weight(void **state) {
    (void)state;
    require_cuda();
    static const int64_t shapes[][2] = {{1, 1}, {4, 33}, {3, 1000}, {2, 4099}, {5, 7}};
    char what[128];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        float *hx = host_rand(n, -1.0f, 1.0f), *hd = host_rand(n, -1.0f, 1.0f);
        /* the last row: a perfect match (x0 == d), where the 1e-8 floor acts */
        for (int64_t j = 0; j < cols; j++) hd[(rows - 1) * cols + j] = hx[(rows - 1) * cols + j];
        pair x0 = pair_from(n, hx), d = pair_from(n, hd);
        free(hx);
        free(hd);
        pair sigma = pair_rand(rows, 0.1f, 5.0f);
        pair w = pair_rand(rows, -1.0f, 1.0f);
        g_cpu->dmd_weight(rows, cols, x0.c, d.c, sigma.c, w.c);
        g_gpu->dmd_weight(rows, cols, x0.g, d.g, sigma.g, w.g);
        snprintf(what, sizeof what, "dmd_weight %lldx%lld", (long long)rows, (long long)cols);
        expect_close(&w, TOL, 1.0, what);

        pair dw = pair_rand(rows, -1.0f, 1.0f);
        pair dx0 = pair_rand(n, -1.0f, 1.0f), dd = pair_rand(n, -1.0f, 1.0f), ds = pair_rand(rows, -1.0f, 1.0f);
        g_cpu->dmd_weight_bwd(rows, cols, x0.c, d.c, sigma.c, dw.c, dx0.c, dd.c, ds.c);
        g_gpu->dmd_weight_bwd(rows, cols, x0.g, d.g, sigma.g, dw.g, dx0.g, dd.g, ds.g);
        snprintf(what, sizeof what, "dmd_weight_bwd %lldx%lld: dx0", (long long)rows, (long long)cols);
        expect_close(&dx0, TOL, 1.0, what);
        snprintf(what, sizeof what, "dmd_weight_bwd %lldx%lld: dd", (long long)rows, (long long)cols);
        expect_close(&dd, TOL, 1.0, what);
        snprintf(what, sizeof what, "dmd_weight_bwd %lldx%lld: dsigma", (long long)rows, (long long)cols);
        expect_close(&ds, TOL, 1.0, what);

        /* each gradient may be NULL */
        g_cpu->dmd_weight_bwd(rows, cols, x0.c, d.c, sigma.c, dw.c, dx0.c, NULL, NULL);
        g_gpu->dmd_weight_bwd(rows, cols, x0.g, d.g, sigma.g, dw.g, dx0.g, NULL, NULL);
        g_cpu->dmd_weight_bwd(rows, cols, x0.c, d.c, sigma.c, dw.c, NULL, dd.c, NULL);
        g_gpu->dmd_weight_bwd(rows, cols, x0.g, d.g, sigma.g, dw.g, NULL, dd.g, NULL);
        g_cpu->dmd_weight_bwd(rows, cols, x0.c, d.c, sigma.c, dw.c, NULL, NULL, ds.c);
        g_gpu->dmd_weight_bwd(rows, cols, x0.g, d.g, sigma.g, dw.g, NULL, NULL, ds.g);
        snprintf(what, sizeof what, "dmd_weight_bwd %lldx%lld (NULLs): dx0", (long long)rows, (long long)cols);
        expect_close(&dx0, TOL, 1.0, what);
        snprintf(what, sizeof what, "dmd_weight_bwd %lldx%lld (NULLs): dd", (long long)rows, (long long)cols);
        expect_close(&dd, TOL, 1.0, what);
        snprintf(what, sizeof what, "dmd_weight_bwd %lldx%lld (NULLs): dsigma", (long long)rows, (long long)cols);
        expect_close(&ds, TOL, 1.0, what);
        pair_free(&x0);
        pair_free(&d);
        pair_free(&sigma);
        pair_free(&w);
        pair_free(&dw);
        pair_free(&dx0);
        pair_free(&dd);
        pair_free(&ds);
    }
}

int main(int argc, char **argv) {
    const char *env = getenv("WB_TEST_BACKEND");
    if (argc > 1) g_backend_name = argv[1];
    else if (env && env[0]) g_backend_name = env;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),       cmocka_unit_test(test_memory),
        cmocka_unit_test(test_gemm),        cmocka_unit_test(test_gemm_k0_and_batched),        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_binary),      cmocka_unit_test(test_rows_cols),
        cmocka_unit_test(test_sinusoidal),  cmocka_unit_test(test_axpy_axpby),
        cmocka_unit_test(test_adam),        cmocka_unit_test(test_sum_squares),
        cmocka_unit_test(test_im2col_col2im), cmocka_unit_test(test_upsample_avgpool2x),
        cmocka_unit_test(test_maxpool2d),   cmocka_unit_test(test_avgpool2d),
        cmocka_unit_test(test_resize_bilinear), cmocka_unit_test(test_group_norm),
        cmocka_unit_test(test_softmax_rows), cmocka_unit_test(test_rng),
        cmocka_unit_test(test_karras_sigma), cmocka_unit_test(test_dmd_weight),
    };
    return cmocka_run_group_tests_name("cuda_backend", tests, group_setup, NULL);
}
