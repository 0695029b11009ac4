/* tests/test_ops_norm.c — group norm, softmax and dropout (host/core/ops_norm.c,
 * kernels/cpu/cpu_norm.c): every case of the table below against central
 * finite differences of L = Σ w ⊙ op(inputs) and, through
 * tests/torch_ops_norm.py, against F.group_norm / torch.softmax (forward
 * and gradients, float32 and float64 torch); softmax on ±80 logits; dropout
 * mask statistics, identity at p = 0 and in evaluation, gradient = mask;
 * shape and argument errors.
 *
 * Shape legend: B batch, C channels, G groups, H, W image dims; softmax
 * normalises the last dim.
 *
 * Where WB_TEST_PYTHON is empty or has no torch the torch test prints
 * "SKIP: torch not installed" and is reported skipped, not passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wb/tensor.h"
#include "wb_test_util.h"
#include "norm_op_cases.h"
#include "core/wb_internal.h" /* g->n_tape: "identity records nothing" is about the tape */


/* ---- finite differences ------------------------------------------------------ */
static double fd_loss(wb_graph *g, int ci, float *const *in, const float *w) {
    wb_graph_reset(g);
    wb_tensor *leaf[3];
    wb_tensor *y = norm_build(g, ci, in[0], in[1], in[2], 0, leaf);
    if (!y) fail_msg("%s: forward failed: %s", NORM_CASES[ci].name, wb_last_error());
    return wb_test_weighted_sum(y, w);
}

static void check_case_fd(int ci, double *worst) {
    const norm_case *c = &NORM_CASES[ci];
    int64_t n = norm_case_numel(c), ch = c->ndim > 1 ? c->shape[1] : 1;
    float *in[3];
    int64_t len[3] = {n, ch, ch};
    for (int k = 0; k < 3; k++) assert_non_null(in[k] = malloc((size_t)len[k] * sizeof(float)));
    norm_fill_inputs(ci, in[0], in[1], in[2]);
    float *w = malloc((size_t)n * sizeof *w);
    assert_non_null(w);
    norm_fill_weights(ci, n, w);

    wb_graph *g = wb_graph_new(wb_backend_cpu()), *gfd = wb_graph_new(wb_backend_cpu());
    wb_graph_set_grad(gfd, 0);
    wb_tensor *leaf[3];
    wb_tensor *y = norm_build(g, ci, in[0], in[1], in[2], 1, leaf);
    if (!y) fail_msg("%s: forward failed: %s", c->name, wb_last_error());
    wb_tensor *seed = wb_from_host(g, y->ndim, y->shape, w);
    if (wb_backward(g, y, seed)) fail_msg("%s: backward: %s", c->name, wb_last_error());

    for (int k = 0; k < 3; k++) {
        if (!leaf[k]) continue;
        float *ga = malloc((size_t)len[k] * sizeof *ga);
        double *fd = malloc((size_t)len[k] * sizeof *fd);
        assert_non_null(ga);
        assert_non_null(fd);
        assert_int_equal(wb_grad_to_host(leaf[k], ga), 0);
        /* central differences, h ~1e-2 relative (see tests/test_ops_grad.c:
         * truncation ~1e-4, float round-off of the loss / 2h ~1e-5); on
         * ±80 logits h = 0.8 would leave the linear regime, so h is
         * absolute there */
        double gmax = 0.0;
        for (int64_t i = 0; i < len[k]; i++) {
            float x0 = in[k][i];
            float h = c->domain == NORM_DOM_BIG ? 1e-2f : 1e-2f * fmaxf(1.0f, fabsf(x0));
            float xp = x0 + h, xm = x0 - h;
            in[k][i] = xp;
            double lp = fd_loss(gfd, ci, in, w);
            in[k][i] = xm;
            double lm = fd_loss(gfd, ci, in, w);
            in[k][i] = x0;
            fd[i] = (lp - lm) / ((double)xp - (double)xm);
            if (fabs(fd[i]) > gmax) gmax = fabs(fd[i]);
        }
        for (int64_t i = 0; i < len[k]; i++) {
            if (!isfinite(ga[i])) fail_msg("%s: input %d grad[%lld] = %g", c->name, k, (long long)i, ga[i]);
            /* relative, with entries far below the largest held to a floor */
            double err = fabs(ga[i] - fd[i]) / fmax(fabs(fd[i]), fmax(0.05 * gmax, 1e-3));
            if (err > *worst) *worst = err;
            if (err > 3e-3)
                fail_msg("%s: input %d grad[%lld] analytic %.7g, finite differences %.7g (rel. error %.3g)", c->name,
                         k, (long long)i, ga[i], fd[i], err);
        }
        free(ga);
        free(fd);
    }
    wb_graph_free(g);
    wb_graph_free(gfd);
    free(w);
    for (int k = 0; k < 3; k++) free(in[k]);
}

static void test_norm_ops_fd(void **state) {
    (void)state;
    double worst = 0.0;
    for (int ci = 0; ci < NORM_N_CASES; ci++) check_case_fd(ci, &worst);
    print_message("%d cases match finite differences; worst rel. error %.3g (limit 3e-3)\n", NORM_N_CASES, worst);
}

/* ---- group norm: the forward by hand, and errors ----------------------------- */
static void test_group_norm_forward_stats(void **state) {
    (void)state;
    /* (1, 2, 2, 2), G = 1: after the norm, the 8 values have mean 0 and
     * (biased) variance v/(v + eps); a constant group maps to β */
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t shape[4] = {1, 2, 2, 2};
    float x[8] = {1, 2, 3, 4, 100, 101, 102, 103};
    wb_tensor *y = wb_group_norm(g, wb_from_host(g, 4, shape, x), 1, NULL, NULL, 1e-5f);
    assert_non_null(y);
    double s = 0, s2 = 0;
    for (int i = 0; i < 8; i++) s += y->data[i];
    for (int i = 0; i < 8; i++) s2 += (double)y->data[i] * y->data[i];
    assert_true(fabs(s / 8) < 1e-6);
    assert_true(fabs(s2 / 8 - 1.0) < 1e-5);
    /* G = C with a large common offset: each channel centred exactly */
    float xc[8] = {1e4f, 1e4f + 1, 1e4f + 2, 1e4f + 3, 5, 5, 5, 5};
    int64_t ch = 2;
    float gm[2] = {2, 3}, bt[2] = {0.5f, -1};
    y = wb_group_norm(g, wb_from_host(g, 4, shape, xc), 2, wb_from_host(g, 1, &ch, gm), wb_from_host(g, 1, &ch, bt),
                      1e-5f);
    assert_non_null(y);
    const double z = 1.5 / sqrt(1.25 + 1e-5); /* (3 − 1.5)/σ for 0..3 */
    assert_float_equal(y->data[0], 0.5 - 2 * z, 1e-5);
    assert_float_equal(y->data[3], 0.5 + 2 * z, 1e-5);
    for (int i = 4; i < 8; i++) assert_float_equal(y->data[i], -1.0f, 0.0f);
    wb_graph_free(g);
}

static void test_group_norm_errors(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t shape[4] = {2, 6, 2, 2}, c5 = 5, s1 = 8;
    wb_tensor *x = wb_zeros(g, 4, shape);
    assert_null(wb_group_norm(g, x, 4, NULL, NULL, 1e-5f)); /* 4 ∤ 6 */
    assert_non_null(strstr(wb_last_error(), "group_norm"));
    assert_null(wb_group_norm(g, x, 0, NULL, NULL, 1e-5f));
    assert_non_null(strstr(wb_last_error(), "group_norm"));
    assert_null(wb_group_norm(g, x, 2, wb_zeros(g, 1, &c5), NULL, 1e-5f));
    assert_non_null(strstr(wb_last_error(), "gamma/beta"));
    assert_null(wb_group_norm(g, x, 2, NULL, wb_zeros(g, 1, &c5), 1e-5f));
    assert_null(wb_group_norm(g, x, 2, NULL, NULL, -1.0f));
    assert_non_null(strstr(wb_last_error(), "eps"));
    assert_null(wb_group_norm(g, wb_zeros(g, 1, &s1), 1, NULL, NULL, 1e-5f));
    assert_non_null(strstr(wb_last_error(), "group_norm"));
    assert_null(wb_group_norm(g, NULL, 1, NULL, NULL, 1e-5f)); /* NULL propagates */
    wb_graph_free(g);
}

/* ---- softmax on large logits --------------------------------------------------- */
static void test_softmax_large_logits(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t shape[2] = {3, 4};
    /* e^80 and e^1000 overflow float: only a max-subtracted softmax survives */
    float x[12] = {80, 79, -80, 0, -80, -80, -80, -80, 1000, -1000, 999, 1000};
    wb_tensor *xt = wb_leaf(g, 2, shape, x, 1);
    wb_tensor *y = wb_softmax(g, xt);
    assert_non_null(y);
    for (int r = 0; r < 3; r++) {
        double s = 0;
        /* reference in double, max-subtracted */
        double mx = -INFINITY, ref[4], rs = 0;
        for (int j = 0; j < 4; j++) mx = fmax(mx, x[r * 4 + j]);
        for (int j = 0; j < 4; j++) rs += ref[j] = exp(x[r * 4 + j] - mx);
        for (int j = 0; j < 4; j++) {
            float v = y->data[r * 4 + j];
            assert_true(isfinite(v));
            assert_float_equal(v, ref[j] / rs, 1e-6 * fmax(1.0, ref[j] / rs) + 1e-30);
            s += v;
        }
        assert_true(fabs(s - 1.0) < 1e-6);
    }
    assert_float_equal(y->data[4], 0.25f, 1e-7); /* a constant row is uniform */
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)(i % 5) - 2.0f;
    assert_int_equal(wb_backward(g, y, wb_from_host(g, 2, shape, w)), 0);
    for (int r = 0; r < 3; r++) {
        double s = 0;
        for (int j = 0; j < 4; j++) {
            assert_true(isfinite(xt->grad[r * 4 + j]));
            s += xt->grad[r * 4 + j];
        }
        assert_true(fabs(s) < 1e-5); /* softmax is shift-invariant: Σ dx = 0 */
    }
    wb_graph_free(g);
}

/* ---- dropout -------------------------------------------------------------------- */
static void test_dropout_identity_and_errors(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_rng rng;
    wb_rng_init(&rng, 7, 0);
    int64_t shape[2] = {4, 5};
    float host[20];
    for (int i = 0; i < 20; i++) host[i] = (float)i - 9.5f;
    wb_tensor *x = wb_leaf(g, 2, shape, host, 1);
    int tape = g->n_tape;
    uint64_t off = rng.offset;
    /* p = 0: the input itself, nothing recorded or drawn */
    assert_ptr_equal(wb_dropout(g, x, 0.0f, &rng), x);
    assert_int_equal(g->n_tape, tape);
    assert_true(rng.offset == off);
    /* evaluation (grad mode off): identity whatever p, rng may be NULL */
    wb_graph_set_grad(g, 0);
    assert_ptr_equal(wb_dropout(g, x, 0.5f, &rng), x);
    assert_ptr_equal(wb_dropout(g, x, 0.5f, NULL), x);
    assert_int_equal(g->n_tape, tape);
    assert_true(rng.offset == off);
    wb_graph_set_grad(g, 1);
    /* p outside [0, 1) and a missing rng in training are errors naming the op */
    const float bad[3] = {-0.1f, 1.0f, NAN};
    for (int i = 0; i < 3; i++) {
        assert_null(wb_dropout(g, x, bad[i], &rng));
        assert_non_null(strstr(wb_last_error(), "dropout"));
    }
    assert_null(wb_dropout(g, x, 0.5f, NULL));
    assert_non_null(strstr(wb_last_error(), "rng"));
    assert_null(wb_dropout(g, NULL, 0.5f, &rng));
    wb_graph_free(g);
}

static void test_dropout_mask_and_grad(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float p = 0.3f, keep = 1.0f / (1.0f - p);
    int64_t shape[2] = {200, 1000};
    const int64_t n = shape[0] * shape[1];
    float *ones = malloc((size_t)n * sizeof *ones), *w = malloc((size_t)n * sizeof *w);
    assert_non_null(ones);
    assert_non_null(w);
    for (int64_t i = 0; i < n; i++) ones[i] = 1.0f;
    wb_rng wr;
    wb_rng_init(&wr, 11, 1);
    wb_rng_normal(&wr, w, n);
    wb_rng rng;
    wb_rng_init(&rng, 1234, 0);
    wb_tensor *x = wb_leaf(g, 2, shape, ones, 1);
    wb_tensor *y = wb_dropout(g, x, p, &rng);
    assert_non_null(y);
    assert_int_equal(y->ndim, 2);
    assert_true(y->shape[0] == 200 && y->shape[1] == 1000);
    /* every value is 0 or exactly 1/(1−p); the dropped fraction is p within
     * 5 binomial standard deviations (σ = √(p(1−p)/n) ≈ 1e-3), and the
     * mean is 1 (inverted dropout keeps the expectation) */
    int64_t zeros = 0;
    double mean = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = y->data[i];
        if (v == 0.0f) zeros++;
        else if (v != keep) fail_msg("mask value %g at %lld, want 0 or %g", v, (long long)i, keep);
        mean += v;
    }
    mean /= (double)n;
    double frac = (double)zeros / (double)n, sigma = sqrt(p * (1 - p) / (double)n);
    print_message("dropout p = %.2f: dropped %.5f, mean %.5f (σ of the fraction %.2g)\n", p, frac, mean, sigma);
    assert_true(fabs(frac - p) < 5 * sigma);
    assert_true(fabs(mean - 1.0) < 5 * sigma * keep);
    /* rows are not all alike: the mask is per element, not per row */
    int64_t row0 = 0, row1 = 0;
    for (int j = 0; j < 1000; j++) row0 += y->data[j] == 0.0f, row1 += y->data[1000 + j] == y->data[j];
    assert_true(row0 > 0 && row1 < 1000);
    /* dx = mask ⊙ dy, exactly */
    assert_int_equal(wb_backward(g, y, wb_from_host(g, 2, shape, w)), 0);
    for (int64_t i = 0; i < n; i++) {
        float want = y->data[i] == 0.0f ? 0.0f : w[i] * keep;
        if (x->grad[i] != want) fail_msg("grad[%lld] = %g, want mask·dy = %g", (long long)i, x->grad[i], want);
    }
    /* the same (seed, stream) draws the same mask; the advanced stream a new one */
    wb_rng again;
    wb_rng_init(&again, 1234, 0);
    wb_tensor *y2 = wb_dropout(g, x, p, &again), *y3 = wb_dropout(g, x, p, &again);
    assert_non_null(y2);
    assert_non_null(y3);
    assert_memory_equal(y->data, y2->data, (size_t)n * sizeof(float));
    assert_memory_not_equal(y2->data, y3->data, (size_t)n * sizeof(float));
    free(ones);
    free(w);
    wb_graph_free(g);
}

/* ---- torch ---------------------------------------------------------------------- */
static char g_dir[64];

static const char *const LEAF_KEY[3] = {"x", "gamma", "beta"};

/* One case: inputs, weights, output and gradients of Σ w ⊙ out. */
static void dump_case(FILE *tf, FILE *mf, int ci) {
    const norm_case *c = &NORM_CASES[ci];
    int64_t n = norm_case_numel(c), ch = c->ndim > 1 ? c->shape[1] : 1;
    float *in[3], *w = malloc((size_t)n * sizeof *w), *buf = malloc((size_t)n * sizeof *buf);
    int64_t len[3] = {n, ch, ch};
    assert_non_null(w);
    assert_non_null(buf);
    for (int k = 0; k < 3; k++) assert_non_null(in[k] = malloc((size_t)len[k] * sizeof(float)));
    norm_fill_inputs(ci, in[0], in[1], in[2]);
    norm_fill_weights(ci, n, w);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_tensor *leaf[3];
    wb_tensor *y = norm_build(g, ci, in[0], in[1], in[2], 1, leaf);
    if (!y) fail_msg("%s: forward failed: %s", c->name, wb_last_error());
    if (wb_backward(g, y, wb_from_host(g, y->ndim, y->shape, w))) fail_msg("%s: backward: %s", c->name, wb_last_error());
    char key[128];
    for (int k = 0; k < 3; k++) {
        if (!leaf[k]) continue;
        snprintf(key, sizeof key, "%s/%s", c->name, LEAF_KEY[k]);
        wb_test_write_tensor(tf, key, leaf[k]->ndim, leaf[k]->shape, in[k]);
        assert_int_equal(wb_grad_to_host(leaf[k], buf), 0);
        snprintf(key, sizeof key, "%s/grad_%s", c->name, LEAF_KEY[k]);
        wb_test_write_tensor(tf, key, leaf[k]->ndim, leaf[k]->shape, buf);
    }
    snprintf(key, sizeof key, "%s/w", c->name);
    wb_test_write_tensor(tf, key, y->ndim, y->shape, w);
    assert_int_equal(wb_to_host(y, buf), 0);
    snprintf(key, sizeof key, "%s/out", c->name);
    wb_test_write_tensor(tf, key, y->ndim, y->shape, buf);
    fprintf(mf, "case %s %s %d %.9g %d %d\n", c->name, c->op, c->groups, (double)c->eps, c->has_gamma, c->has_beta);
    wb_graph_free(g);
    for (int k = 0; k < 3; k++) free(in[k]);
    free(w);
    free(buf);
}

/* Errors reported by the script: [case][out, x, gamma, beta], NAN until seen. */
static double g_err[NORM_N_CASES][4];

static double *result_slot(const char *name, const char *what) {
    static const char *const WHAT[4] = {"out", "grad_x", "grad_gamma", "grad_beta"};
    for (int ci = 0; ci < NORM_N_CASES; ci++) {
        if (strcmp(NORM_CASES[ci].name, name) != 0) continue;
        for (int k = 0; k < 4; k++)
            if (strcmp(what, WHAT[k]) == 0) return &g_err[ci][k];
    }
    return NULL;
}

static void remove_dir(void) { wb_torch_remove_dir(g_dir); }

static void test_norm_ops_match_torch(void **state) {
    (void)state;
    wb_torch_skip_without_python();
    FILE *tf, *mf;
    wb_torch_open(g_dir, sizeof g_dir, "/tmp/wb_norm_torch_XXXXXX", &tf, &mf);
    for (int ci = 0; ci < NORM_N_CASES; ci++) dump_case(tf, mf, ci);
    wb_torch_close(tf, mf);
    for (int ci = 0; ci < NORM_N_CASES; ci++)
        for (int k = 0; k < 4; k++) g_err[ci][k] = NAN;

    wb_torch_run("torch_ops_norm.py", g_dir, result_slot);

    double worst_ratio = 0.0;
    const char *worst_name = "-";
    for (int ci = 0; ci < NORM_N_CASES; ci++) {
        const norm_case *c = &NORM_CASES[ci];
        const int present[4] = {1, 1, c->has_gamma, c->has_beta};
        for (int k = 0; k < 4; k++) {
            double e = g_err[ci][k];
            if (!present[k]) {
                if (!isnan(e)) fail_msg("%s: item %d compared but absent", c->name, k);
                continue;
            }
            if (isnan(e)) fail_msg("%s: item %d (out, x, gamma, beta) was not compared", c->name, k);
            if (!(e <= c->torch_tol))
                fail_msg("%s: item %d (out, x, gamma, beta) differs from torch: rel. error %.3g > %.1g", c->name, k, e,
                         c->torch_tol);
            if (e / c->torch_tol > worst_ratio) worst_ratio = e / c->torch_tol, worst_name = c->name;
        }
    }
    print_message("%d norm/softmax cases match torch; tightest: %s (%.0f%% of its tolerance)\n", NORM_N_CASES, worst_name,
                  100.0 * worst_ratio);
    remove_dir();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm_ops_fd),
        cmocka_unit_test(test_group_norm_forward_stats),
        cmocka_unit_test(test_group_norm_errors),
        cmocka_unit_test(test_softmax_large_logits),
        cmocka_unit_test(test_dropout_identity_and_errors),
        cmocka_unit_test(test_dropout_mask_and_grad),
        cmocka_unit_test(test_norm_ops_match_torch),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove_dir(); /* a failed assertion longjmps past the cleanup above */
    return rc;
}
