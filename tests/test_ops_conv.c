/* tests/test_ops_conv.c — the image ops of host/core/ops_conv.c (conv2d,
 * upsample2x, avgpool2x, bmm) against calculus and against PyTorch:
 *   - central finite differences of L = Σ w ⊙ op(inputs) for every input of
 *     every case (all four ops are linear in each input, so the differences
 *     are exact up to float rounding and the tolerance can be tight);
 *   - torch.nn.functional.conv2d / interpolate(nearest, ×2) / avg_pool2d(2) /
 *     torch.bmm with transposes, forward and every input gradient, through
 *     tests/torch_ops_conv.py (skipped, "SKIP: ...", without torch);
 *   - gradient accumulation when one tensor feeds several of these ops;
 *   - shape errors: NULL, with a message naming the op.
 *
 * Shape legend: x (B, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout);
 * bmm a (N, M, K) / (N, K, M), b (N, K, P) / (N, P, K).
 */
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
#include "image_op_cases.h"
#include "wb_test_util.h"

#define MAX_IN IMG_MAX_IN

/* Relative error against float64 torch on the same inputs. conv_big's
 * outputs sum 73 float products: ~5e-5 at entries near the 1e-3·scale floor
 * of the error measure is float32 rounding; an indexing bug is ≥ 1e-1. */
#define TORCH_TOL 5e-4
#define FD_TOL 1e-3    /* |analytic − FD| / max(1, max|FD|) */


static const img_suite SUITE = {IMG_CONV_CASES, IMG_CONV_N_CASES, img_conv_run, IMG_CONV_SEED};

/* ---- finite differences ------------------------------------------------------------ */
/* All four ops are linear in each input: exact differences up to rounding. */
static void test_finite_differences(void **state) {
    (void)state;
    double worst;
    const char *worst_name;
    img_check_finite_differences(&SUITE, FD_TOL, &worst, &worst_name);
    print_message("image ops match finite differences; worst %s (%.3g of the gradient scale)\n", worst_name, worst);
}

/* ---- torch ------------------------------------------------------------------------------ */
static void test_match_torch(void **state) {
    (void)state;
    double worst;
    const char *worst_name;
    img_check_torch(&SUITE, "torch_ops_conv.py", "/tmp/wb_conv_torch_XXXXXX", TORCH_TOL, &worst, &worst_name);
    print_message("%d image-op cases match torch (output and input gradients); worst %s (%.3g)\n", IMG_CONV_N_CASES,
                  worst_name, worst);
}

/* ---- accumulation: one input, several consumers ------------------------------------- */
/* y = conv(x) + upsample(avgpool(x)) + conv(x): x's gradient is the sum of
 * what each path gives alone, so every bwd kernel must add, not overwrite. */
static void grad_of_paths(int paths, const float *xh, const float *wh, const float *sh, float *gx, float *gw) {
    int64_t xs[4] = {2, 3, 4, 6}, ws[4] = {3, 3, 3, 3};
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_tensor *x = wb_leaf(g, 4, xs, xh, 1), *w = wb_leaf(g, 4, ws, wh, 1), *y = NULL;
    if (paths & 1) y = wb_conv2d(g, x, w, NULL, 1, 1);
    if (paths & 2) {
        wb_tensor *t = wb_upsample2x(g, wb_avgpool2x(g, x));
        y = y ? wb_add(g, y, t) : t;
    }
    if (paths & 4) {
        wb_tensor *t = wb_conv2d(g, x, w, NULL, 1, 1);
        y = y ? wb_add(g, y, t) : t;
    }
    assert_non_null(y);
    wb_tensor *seed = wb_from_host(g, 4, xs, sh);
    assert_int_equal(wb_backward(g, y, seed), 0);
    assert_int_equal(wb_grad_to_host(x, gx), 0);
    assert_int_equal(wb_grad_to_host(w, gw), 0);
    wb_graph_free(g);
}

static void test_accumulation(void **state) {
    (void)state;
    enum { NX = 2 * 3 * 4 * 6, NW = 3 * 3 * 3 * 3 };
    float xh[NX], wh[NW], sh[NX], gx[8][NX], gw[8][NW];
    wb_rng rng;
    wb_rng_init(&rng, 7, 0);
    wb_rng_normal(&rng, xh, NX);
    wb_rng_normal(&rng, wh, NW);
    wb_rng_normal(&rng, sh, NX);
    for (int p = 1; p <= 7; p++) grad_of_paths(p, xh, wh, sh, gx[p], gw[p]);
    for (int i = 0; i < NX; i++) {
        double want = (double)gx[1][i] + gx[2][i] + gx[4][i];
        assert_true(fabs(gx[7][i] - want) <= 1e-5 * (1.0 + fabs(want)));
        assert_true(fabs(gx[1][i] - gx[4][i]) == 0.0); /* same op twice: same numbers */
    }
    for (int i = 0; i < NW; i++) assert_true(fabs(gw[7][i] - 2.0 * gw[1][i]) <= 1e-5 * (1.0 + fabs(gw[1][i])));
}

/* ---- errors ---------------------------------------------------------------------------- */
static void expect_error(wb_tensor *t, const char *op) {
    assert_null(t);
    if (!strstr(wb_last_error(), op)) fail_msg("error '%s' does not name %s", wb_last_error(), op);
}

static void test_errors(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t s4[4] = {2, 3, 5, 5}, s3[3] = {2, 3, 5}, w4[4] = {4, 3, 3, 3}, w_bad[4] = {4, 2, 3, 3};
    int64_t big_k[4] = {4, 3, 8, 8}, nb = 5, odd[4] = {1, 2, 5, 4}, a3[3] = {2, 4, 5}, b3[3] = {2, 6, 3};
    int64_t b3n[3] = {3, 5, 3};
    wb_tensor *x = wb_zeros(g, 4, s4), *x3 = wb_zeros(g, 3, s3), *w = wb_zeros(g, 4, w4);
    wb_tensor *w_mis = wb_zeros(g, 4, w_bad), *wk = wb_zeros(g, 4, big_k), *bias = wb_zeros(g, 1, &nb);
    wb_tensor *xo = wb_zeros(g, 4, odd), *a = wb_zeros(g, 3, a3), *b = wb_zeros(g, 3, b3), *bn = wb_zeros(g, 3, b3n);
    expect_error(wb_conv2d(g, x3, w, NULL, 1, 1), "conv2d");   /* x not 4-D */
    expect_error(wb_conv2d(g, x, x3, NULL, 1, 1), "conv2d");   /* w not 4-D */
    expect_error(wb_conv2d(g, x, w_mis, NULL, 1, 1), "conv2d");   /* Cin mismatch */
    expect_error(wb_conv2d(g, x, w, bias, 1, 1), "conv2d");    /* bias of 5 for Cout 4 */
    expect_error(wb_conv2d(g, x, w, NULL, 0, 1), "conv2d");    /* stride 0 */
    expect_error(wb_conv2d(g, x, w, NULL, 1, -1), "conv2d");   /* negative pad */
    expect_error(wb_conv2d(g, x, wk, NULL, 1, 1), "conv2d");   /* 8×8 kernel on 5×5 + pad 1 */
    expect_error(wb_avgpool2x(g, xo), "avgpool2x");            /* odd H */
    expect_error(wb_avgpool2x(g, x3), "avgpool2x");
    expect_error(wb_upsample2x(g, x3), "upsample2x");
    expect_error(wb_bmm(g, a, x, 0, 0), "bmm");                /* rank 4 */
    expect_error(wb_bmm(g, a, b, 0, 0), "bmm");                /* inner 5 vs 6 */
    expect_error(wb_bmm(g, a, bn, 0, 0), "bmm");               /* batch 2 vs 3 */
    int64_t bt3[3] = {2, 3, 5};
    assert_non_null(wb_bmm(g, a, wb_zeros(g, 3, bt3), 0, 1)); /* (2,4,5)·(2,3,5)ᵀ is fine */
    assert_null(wb_conv2d(g, NULL, w, NULL, 1, 1));            /* NULL propagates */
    assert_null(wb_upsample2x(g, NULL));
    wb_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_match_torch),
        cmocka_unit_test(test_accumulation),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    img_torch_cleanup(); /* a failed assertion longjmps past the cleanup */
    return rc;
}
