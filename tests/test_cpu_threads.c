/* tests/test_cpu_threads.c — the CPU backend's own kernels give the same bits
 * on 1, 2 and 3 threads (kernels/cpu/cpu_parallel.h: work is split only into
 * independent pieces, never inside a sum). Every vtable entry that splits is
 * run on sizes above the split threshold, with ragged tails (sizes that are
 * not multiples of the 16-float alignment, or of the thread count), in
 * place where the op accumulates, and compared byte for byte against one
 * thread. Also: the split really happens (a kernel saw more than one thread
 * when OpenMP is built in), so this test cannot pass by never splitting.
 * And the GEMMs (OpenBLAS, whose own split does change the bits) in the
 * deterministic mode (WB_DETERMINISTIC, kernels/cpu/cpu_gemm.c).
 *
 * Shape legend: N flat length, B batch, C channels, G groups, HW plane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wb/backend.h"
#include "wb/cpu.h"
#include "wb/elementwise.h"
#include "wb/tensor.h"
#include "cpu/cpu_parallel.h"

void openblas_set_num_threads(int num_threads);

#define N 100003 /* > 3 × WB_PAR_MIN_WORK, not a multiple of 16 */

static float *filled(int64_t n, uint32_t seed, float lo, float hi) {
    float *p = malloc((size_t)n * sizeof(float));
    assert_non_null(p);
    uint32_t s = seed * 2654435761u + 1u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * (float)(s >> 8) / 16777216.0f;
    }
    return p;
}

static float *copy_of(const float *p, int64_t n) {
    float *q = malloc((size_t)n * sizeof(float));
    assert_non_null(q);
    memcpy(q, p, (size_t)n * sizeof(float));
    return q;
}

/* One op: run(out) writes/accumulates into out (n floats, starting from
 * `init`), on T threads; compared with T = 1. */
typedef void (*run_fn)(const void *ctx, float *out);

static void same_bits_over_threads(const char *what, run_fn run, const void *ctx, const float *init, int64_t n) {
    float *one = copy_of(init, n);
    openblas_set_num_threads(1);
    run(ctx, one);
    for (int t = 2; t <= 3; t++) {
        float *many = copy_of(init, n);
        openblas_set_num_threads(t);
        run(ctx, many);
        if (memcmp(one, many, (size_t)n * sizeof(float)) != 0) {
            int64_t i = 0;
            while (i < n && memcmp(&one[i], &many[i], sizeof(float)) == 0) i++;
            fail_msg("%s: %d threads differ from 1 at [%lld]: %.9g vs %.9g", what, t, (long long)i, one[i], many[i]);
        }
        free(many);
    }
    openblas_set_num_threads(1);
    free(one);
}

/* ---- flat ops -------------------------------------------------------------- */
typedef struct flat_ctx {
    const wb_backend *be;
    int op;
    const float *x, *y, *dy;
} flat_ctx;

static void run_unary(const void *vc, float *out) {
    const flat_ctx *c = vc;
    c->be->unary((wb_unary_op)c->op, N, c->x, out, 0.7f);
}
static void run_unary_bwd(const void *vc, float *out) {
    const flat_ctx *c = vc;
    c->be->unary_bwd((wb_unary_op)c->op, N, c->x, c->y, c->dy, out, 0.7f);
}
static void run_axpy(const void *vc, float *out) {
    const flat_ctx *c = vc;
    c->be->axpy(N, -1.3f, c->x, out);
}
static void run_axpby(const void *vc, float *out) {
    const flat_ctx *c = vc;
    c->be->axpby(N, 0.9f, c->x, 0.1f, out);
}
static void run_fill(const void *vc, float *out) {
    const flat_ctx *c = vc;
    c->be->fill(out, N - 5, 2.5f);
    c->be->fill(out + 3, N / 2, 0.0f);
}

static void test_flat_ops(void **state) {
    (void)state;
    const wb_backend *be = wb_backend_cpu();
    float *x = filled(N, 1, 0.05f, 3.0f), *dy = filled(N, 2, -1.0f, 1.0f), *init = filled(N, 3, -1.0f, 1.0f);
    float *y = malloc(N * sizeof(float));
    assert_non_null(y);
    static const wb_unary_op ops[] = {WB_UNARY_SCALE,      WB_UNARY_ADD_SCALAR, WB_UNARY_EXP,  WB_UNARY_LOG,
                                      WB_UNARY_SIGMOID,    WB_UNARY_SOFTPLUS,   WB_UNARY_LOGSIGMOID,
                                      WB_UNARY_SILU,       WB_UNARY_TANH,       WB_UNARY_RELU, WB_UNARY_SQUARE,
                                      WB_UNARY_SQRT};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        be->unary(ops[k], N, x, y, 0.7f);
        flat_ctx c = {be, ops[k], x, y, dy};
        char what[64];
        snprintf(what, sizeof what, "unary %d", (int)ops[k]);
        same_bits_over_threads(what, run_unary, &c, init, N);
        snprintf(what, sizeof what, "unary_bwd %d", (int)ops[k]);
        same_bits_over_threads(what, run_unary_bwd, &c, init, N);
    }
    flat_ctx c = {be, 0, x, y, dy};
    same_bits_over_threads("axpy", run_axpy, &c, init, N);
    same_bits_over_threads("axpby", run_axpby, &c, init, N);
    same_bits_over_threads("fill", run_fill, &c, init, N);
    free(x);
    free(y);
    free(dy);
    free(init);
}

/* ---- Adam: four arrays updated together; compared as one block --------------- */
static void run_adam(const void *vc, float *out) {
    const float *g = vc;
    const wb_backend *be = wb_backend_cpu();
    float *p = out, *m = out + N, *v = out + 2 * N;
    for (int step = 1; step <= 3; step++)
        be->adam(N, p, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step == 2, 1.0f - 0.9f, 1.0f - 0.999f);
}

static void test_adam(void **state) {
    (void)state;
    float *g = filled(N, 4, -1.0f, 1.0f), *init = filled(3 * N, 5, 0.0f, 0.5f);
    same_bits_over_threads("adam", run_adam, g, init, 3 * N);
    free(g);
    free(init);
}

/* ---- binary: flat, scalar and broadcast shapes ---------------------------------- */
typedef struct bin_ctx {
    wb_bcast bc;
    int op, bwd_a; /* bwd_a: accumulate da (1) or db (0) */
    const float *a, *b, *dy;
    int64_t out_n;
} bin_ctx;

static void run_binary(const void *vc, float *out) {
    const bin_ctx *c = vc;
    wb_backend_cpu()->binary((wb_binary_op)c->op, &c->bc, c->a, c->b, out);
}
static void run_binary_bwd(const void *vc, float *out) {
    const bin_ctx *c = vc;
    wb_backend_cpu()->binary_bwd((wb_binary_op)c->op, &c->bc, c->a, c->b, c->dy, c->bwd_a ? out : NULL,
                                 c->bwd_a ? NULL : out);
}

static void bcast_of(wb_graph *g, int nd, const int64_t *as, const int64_t *bs, wb_bcast *bc, int64_t *an,
                     int64_t *bn) {
    wb_tensor *a = wb_new(g, nd, as), *b = wb_new(g, nd, bs);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(wb_bcast_init(bc, a, b), 0);
    *an = a->numel;
    *bn = b->numel;
}

static void test_binary(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    /* (a shape, b shape): same, scalar b, per-channel b (B,C,1,1), per-row a */
    static const int64_t shapes[][2][4] = {
        {{7, 33, 31, 17}, {7, 33, 31, 17}},
        {{7, 33, 31, 17}, {1, 1, 1, 1}},
        {{7, 33, 31, 17}, {7, 33, 1, 1}},
        {{7, 1, 31, 17}, {7, 33, 31, 17}},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        bin_ctx c;
        int64_t an, bn;
        bcast_of(g, 4, shapes[s][0], shapes[s][1], &c.bc, &an, &bn);
        c.out_n = c.bc.out_numel;
        assert_true(c.out_n > 3 * WB_PAR_MIN_WORK);
        float *a = filled(an, 6, 0.5f, 2.0f), *b = filled(bn, 7, 0.5f, 2.0f), *dy = filled(c.out_n, 8, -1, 1);
        c.a = a;
        c.b = b;
        c.dy = dy;
        for (int op = WB_BINARY_ADD; op <= WB_BINARY_DIV; op++) {
            c.op = op;
            char what[96];
            float *init = filled(c.out_n, 9, -1, 1);
            snprintf(what, sizeof what, "binary %d shape %zu", op, s);
            same_bits_over_threads(what, run_binary, &c, init, c.out_n);
            free(init);
            for (int side = 0; side < 2; side++) {
                c.bwd_a = side;
                int64_t gn = side ? an : bn;
                float *ginit = filled(gn, 10, -1, 1);
                snprintf(what, sizeof what, "binary_bwd %d shape %zu d%c", op, s, side ? 'a' : 'b');
                same_bits_over_threads(what, run_binary_bwd, &c, ginit, gn);
                free(ginit);
            }
        }
        free(a);
        free(b);
        free(dy);
    }
    wb_graph_free(g);
}

/* ---- rows and columns ------------------------------------------------------------- */
typedef struct mat_ctx {
    int64_t rows, cols;
    const float *x;
    int accumulate;
} mat_ctx;

static void run_sum_cols(const void *vc, float *out) {
    const mat_ctx *c = vc;
    wb_backend_cpu()->sum_cols(c->rows, c->cols, c->x, out, c->accumulate);
}
static void run_sum_rows(const void *vc, float *out) {
    const mat_ctx *c = vc;
    wb_backend_cpu()->sum_rows(c->rows, c->cols, c->x, out);
}
static void run_bcast_rows(const void *vc, float *out) {
    const mat_ctx *c = vc;
    wb_backend_cpu()->bcast_rows_add(c->rows, c->cols, c->x, 0.3f, out);
}
static void run_copy_2d(const void *vc, float *out) {
    const mat_ctx *c = vc;
    wb_backend_cpu()->copy_2d(c->rows, c->cols - 3, c->x, c->cols, out, c->cols, c->accumulate);
}
static void run_softmax(const void *vc, float *out) {
    const mat_ctx *c = vc;
    wb_backend_cpu()->softmax_rows(c->rows, c->cols, c->x, out);
}
static void run_softmax_bwd(const void *vc, float *out) {
    const mat_ctx *c = vc;
    float *y = malloc((size_t)(c->rows * c->cols) * sizeof(float));
    assert_non_null(y);
    wb_backend_cpu()->softmax_rows(c->rows, c->cols, c->x, y);
    wb_backend_cpu()->softmax_rows_bwd(c->rows, c->cols, y, c->x, out);
    free(y);
}

static void test_rows_cols(void **state) {
    (void)state;
    const int64_t rows = 301, cols = 333; /* 100233 values; ragged in both */
    float *x = filled(rows * cols, 11, -2, 2), *init = filled(rows * cols, 12, -1, 1);
    for (int acc = 0; acc < 2; acc++) {
        mat_ctx c = {rows, cols, x, acc};
        same_bits_over_threads(acc ? "sum_cols (accumulate)" : "sum_cols", run_sum_cols, &c, init, cols);
        same_bits_over_threads(acc ? "copy_2d (accumulate)" : "copy_2d", run_copy_2d, &c, init, rows * cols);
    }
    mat_ctx c = {rows, cols, x, 0};
    same_bits_over_threads("sum_rows", run_sum_rows, &c, init, rows);
    mat_ctx r = {rows, cols, x, 0};
    same_bits_over_threads("bcast_rows_add", run_bcast_rows, &r, init, rows * cols);
    same_bits_over_threads("softmax_rows", run_softmax, &c, init, rows * cols);
    same_bits_over_threads("softmax_rows_bwd", run_softmax_bwd, &c, init, rows * cols);
    free(x);
    free(init);
}

/* ---- group norm ---------------------------------------------------------------------- */
enum { GB = 3, GC = 24, GG = 6, GHW = 37 * 41 };

typedef struct gn_ctx {
    const float *x, *gamma, *beta, *dy;
    int part; /* 0 y+stats, 1 dx, 2 dgamma+dbeta */
} gn_ctx;

static void run_group_norm_at(const void *vc, float *out) {
    const gn_ctx *c = vc;
    const wb_backend *be = wb_backend_cpu();
    float mean[GB * GG], rstd[GB * GG];
    if (c->part == 0) {
        be->group_norm(GB, GC, GHW, GG, c->x, c->gamma, c->beta, 1e-5f, out, out + GB * GC * GHW,
                       out + GB * GC * GHW + GB * GG);
        return;
    }
    /* the backward on statistics from the forward at the same thread count
     * (itself checked above) */
    float *y = malloc((size_t)GB * GC * GHW * sizeof(float));
    assert_non_null(y);
    be->group_norm(GB, GC, GHW, GG, c->x, c->gamma, c->beta, 1e-5f, y, mean, rstd);
    free(y);
    if (c->part == 1) be->group_norm_bwd(GB, GC, GHW, GG, c->x, c->gamma, mean, rstd, c->dy, out, NULL, NULL);
    else be->group_norm_bwd(GB, GC, GHW, GG, c->x, c->gamma, mean, rstd, c->dy, NULL, out, out + GC);
}

static void test_group_norm(void **state) {
    (void)state;
    const int64_t n = (int64_t)GB * GC * GHW;
    float *x = filled(n, 13, -3, 5), *gamma = filled(GC, 14, 0.5f, 1.5f), *beta = filled(GC, 15, -1, 1);
    float *dy = filled(n, 16, -1, 1), *init = filled(n + 2 * GB * GG, 17, -1, 1);
    gn_ctx fwd = {x, gamma, beta, dy, 0}, dx = {x, gamma, beta, dy, 1}, dp = {x, gamma, beta, dy, 2};
    same_bits_over_threads("group_norm", run_group_norm_at, &fwd, init, n + 2 * GB * GG);
    same_bits_over_threads("group_norm_bwd dx", run_group_norm_at, &dx, init, n);
    same_bits_over_threads("group_norm_bwd dgamma/dbeta", run_group_norm_at, &dp, init, 2 * GC);
    free(x);
    free(gamma);
    free(beta);
    free(dy);
    free(init);
}

/* ---- GEMM in the deterministic mode (kernels/cpu/cpu_gemm.c) ------------------- */
/* OpenBLAS's own thread split changes a GEMM's last bits (issue 10, defect
 * 4); with wb_cpu_set_deterministic(1) the backend's gemm and gemm_batched
 * give the same bits on 1, 2 and 3 threads: shapes split by rows and by
 * columns, ragged pieces, one piece above OpenBLAS's threading threshold,
 * GEMMs small enough to be left whole, every transpose, and beta = 1
 * (accumulating) as the backward pass uses. */
typedef struct gemm_ctx {
    const wb_backend *be;
    int ta, tb, m, n, k, batch;
    float beta;
    const float *a, *b;
} gemm_ctx;

static void run_gemm(const void *vc, float *out) {
    const gemm_ctx *c = vc;
    int lda = c->ta ? c->m : c->k, ldb = c->tb ? c->k : c->n;
    if (c->batch > 1)
        c->be->gemm_batched(c->batch, c->ta, c->tb, c->m, c->n, c->k, 0.75f, c->a, lda, (int64_t)c->m * c->k, c->b, ldb,
                            (int64_t)c->n * c->k, c->beta, out, c->n, (int64_t)c->m * c->n);
    else
        c->be->gemm(c->ta, c->tb, c->m, c->n, c->k, 0.75f, c->a, lda, c->b, ldb, c->beta, out, c->n);
}

static void test_gemm_deterministic(void **state) {
    (void)state;
    const wb_backend *be = wb_backend_cpu();
    static const int shapes[][7] = {
        /* ta, tb, m, n, k, batch, beta = 1 */
        {0, 1, 256, 128, 34, 1, 0},  {0, 0, 256, 128, 128, 1, 1}, {1, 0, 128, 128, 256, 1, 1},
        {1, 1, 131, 77, 300, 1, 0},  {0, 1, 37, 900, 50, 1, 0},   {0, 0, 64, 64, 1024, 1, 0},
        {1, 0, 200, 257, 129, 1, 1}, {0, 0, 96, 256, 288, 3, 1},
        /* at and below OpenBLAS's threading threshold (2^18): left whole */
        {0, 0, 64, 64, 64, 1, 0},    {1, 1, 40, 50, 60, 1, 1},
    };
    wb_cpu_set_deterministic(1);
    assert_int_equal(wb_cpu_deterministic(), 1);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        int64_t na = (int64_t)s[2] * s[4] * s[5], nb = (int64_t)s[3] * s[4] * s[5], nc = (int64_t)s[2] * s[3] * s[5];
        float *a = filled(na, 11 + (uint32_t)i, -1.0f, 1.0f), *b = filled(nb, 31 + (uint32_t)i, -1.0f, 1.0f);
        float *init = filled(nc, 51 + (uint32_t)i, -1.0f, 1.0f);
        gemm_ctx c = {be, s[0], s[1], s[2], s[3], s[4], s[5], s[6] ? 1.0f : 0.0f, a, b};
        char what[96];
        snprintf(what, sizeof what, "deterministic gemm%s ta=%d tb=%d %dx%dx%d", s[5] > 1 ? "_batched" : "", s[0],
                 s[1], s[2], s[3], s[4]);
        same_bits_over_threads(what, run_gemm, &c, init, nc);
        free(a);
        free(b);
        free(init);
    }
    wb_cpu_set_deterministic(0);
}

/* The split is real: with OpenMP built in and 2 threads asked for, a large
 * piece of work gets 2 (and a small one stays on the caller). */
static void test_split_happens(void **state) {
    (void)state;
#ifdef _OPENMP
    openblas_set_num_threads(2);
    assert_int_equal(wb_cpu_par_threads(N), 2);
    assert_int_equal(wb_cpu_par_threads(WB_PAR_MIN_WORK - 1), 1);
    openblas_set_num_threads(1);
    assert_int_equal(wb_cpu_par_threads(N), 1);
#else
    skip();
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_happens), cmocka_unit_test(test_flat_ops),  cmocka_unit_test(test_adam),
        cmocka_unit_test(test_binary),        cmocka_unit_test(test_rows_cols), cmocka_unit_test(test_group_norm),
        cmocka_unit_test(test_gemm_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
