/* tests/test_ops_pool.c — the pooling and resampling ops of host/core/ops_pool.c
 * (maxpool2d, avgpool2d, resize_bilinear; kernels/cpu/cpu_pool.c) and the
 * per-axis strides and pads of wb_conv2d_ex (host/core/ops_conv.c: Inception's
 * 1×7, 7×1, 1×3, 3×1 kernels) against calculus and against PyTorch:
 *   - central finite differences of L = Σ w ⊙ op(inputs) for every input of
 *     every case: a step of 0.5 for the ops that are linear in each input,
 *     1e-3 for max pooling (piecewise linear: the step must not move a
 *     window's maximum, which these inputs' gaps guarantee);
 *   - F.max_pool2d / F.avg_pool2d (count_include_pad both ways) /
 *     F.interpolate(bilinear, align_corners=False) / F.conv2d with tuple
 *     stride and padding, forward and every input gradient in float64
 *     (resizing: float32, whose coordinate arithmetic the kernel follows),
 *     through tests/torch_ops_pool.py (skipped, "SKIP: ...", without
 *     torch); a max-pooling case full of ties checks torch's "first maximum
 *     gets the gradient";
 *   - gradient accumulation when one tensor feeds several of these ops;
 *   - argument errors naming the op, and the missing-kernel error of a
 *     backend without the pooling kernels.
 *
 * Shape legend: x (B, C, H, W); pooling (k, stride, pad) -> (B, C, Ho, Wo);
 * resize -> (B, C, out_h, out_w); conv2d_ex w (Cout, Cin, kh, kw), b (Cout).
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

#include "wb/backend.h"
#include "wb/tensor.h"
#include "image_op_cases.h"
#include "wb_test_util.h"

#define MAX_IN IMG_MAX_IN

/* Relative error against float64 torch on the same inputs (the measure of
 * tests/torch_exchange.py). These ops sum at most 49 float products or 16
 * cells; an indexing or divisor bug is ≥ 1e-1. */
#define TORCH_TOL 5e-4
#define FD_TOL 1e-3 /* |analytic − FD| / max(1, max|FD|) */


static const img_suite SUITE = {IMG_POOL_CASES, IMG_POOL_N_CASES, img_pool_run, IMG_POOL_SEED};

/* ---- finite differences ------------------------------------------------------------ */
static void test_finite_differences(void **state) {
    (void)state;
    double worst;
    const char *worst_name;
    int n_fd = img_check_finite_differences(&SUITE, FD_TOL, &worst, &worst_name);
    print_message("%d pooling/resize/conv2d_ex cases match finite differences; worst %s (%.3g of the gradient "
                  "scale)\n",
                  n_fd, worst_name, worst);
}

/* ---- torch ------------------------------------------------------------------------------ */
static void test_match_torch(void **state) {
    (void)state;
    double worst;
    const char *worst_name;
    img_check_torch(&SUITE, "torch_ops_pool.py", "/tmp/wb_pool_torch_XXXXXX", TORCH_TOL, &worst, &worst_name);
    print_message("%d pooling/resize/conv2d_ex cases match torch (output and input gradients); worst %s (%.3g)\n",
                  IMG_POOL_N_CASES, worst_name, worst);
}

/* ---- accumulation: one input, several consumers ------------------------------------- */
/* y = maxpool(x) + avgpool(x) + resize(x) (all 3×3/1/1 or same size, so the
 * shapes agree): x's gradient is the sum of what each path gives alone, so
 * every bwd kernel must add, not overwrite. */
static void grad_of_paths(int paths, const float *xh, const float *sh, float *gx) {
    int64_t xs[4] = {2, 3, 5, 6};
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_tensor *x = wb_leaf(g, 4, xs, xh, 1), *y = NULL;
    if (paths & 1) y = wb_maxpool2d(g, x, 3, 1, 1);
    if (paths & 2) {
        wb_tensor *t = wb_avgpool2d(g, x, 3, 1, 1, 0);
        y = y ? wb_add(g, y, t) : t;
    }
    if (paths & 4) {
        wb_tensor *t = wb_resize_bilinear(g, wb_resize_bilinear(g, x, 9, 4), 5, 6);
        y = y ? wb_add(g, y, t) : t;
    }
    assert_non_null(y);
    wb_tensor *seed = wb_from_host(g, 4, xs, sh);
    assert_int_equal(wb_backward(g, y, seed), 0);
    assert_int_equal(wb_grad_to_host(x, gx), 0);
    wb_graph_free(g);
}

static void test_accumulation(void **state) {
    (void)state;
    enum { NX = 2 * 3 * 5 * 6 };
    float xh[NX], sh[NX], gx[8][NX];
    wb_rng rng;
    wb_rng_init(&rng, 11, 0);
    wb_rng_normal(&rng, xh, NX);
    wb_rng_normal(&rng, sh, NX);
    for (int p = 1; p <= 7; p++) grad_of_paths(p, xh, sh, gx[p]);
    for (int i = 0; i < NX; i++) {
        double want = (double)gx[1][i] + gx[2][i] + gx[4][i];
        assert_true(fabs(gx[7][i] - want) <= 1e-5 * (1.0 + fabs(want)));
    }
}

/* ---- errors ---------------------------------------------------------------------------- */
static void expect_error(wb_tensor *t, const char *op) {
    assert_null(t);
    if (!strstr(wb_last_error(), op)) fail_msg("error '%s' does not name %s", wb_last_error(), op);
}

static void test_errors(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t s4[4] = {2, 3, 5, 5}, s3[3] = {2, 3, 5}, w17[4] = {4, 3, 1, 7}, w13[4] = {4, 3, 1, 3};
    wb_tensor *x = wb_zeros(g, 4, s4), *x3 = wb_zeros(g, 3, s3), *w7 = wb_zeros(g, 4, w17), *w3 = wb_zeros(g, 4, w13);
    expect_error(wb_maxpool2d(g, x3, 3, 1, 1), "maxpool2d");     /* not 4-D */
    expect_error(wb_maxpool2d(g, x, 3, 1, 2), "maxpool2d");      /* pad > k/2 */
    expect_error(wb_maxpool2d(g, x, 0, 1, 0), "maxpool2d");      /* k 0 */
    expect_error(wb_maxpool2d(g, x, 3, 0, 0), "maxpool2d");      /* stride 0 */
    expect_error(wb_maxpool2d(g, x, 6, 1, 0), "maxpool2d");      /* 6×6 window on 5×5 */
    expect_error(wb_avgpool2d(g, x, 3, 1, -1, 0), "avgpool2d");  /* negative pad */
    expect_error(wb_avgpool2d(g, x, 8, 1, 1, 1), "avgpool2d");   /* 8×8 window on 5×5 + pad 1 */
    expect_error(wb_avgpool2d(g, x3, 2, 2, 0, 1), "avgpool2d");
    expect_error(wb_resize_bilinear(g, x, 0, 4), "resize_bilinear");
    expect_error(wb_resize_bilinear(g, x3, 4, 4), "resize_bilinear");
    expect_error(wb_conv2d_ex(g, x, w7, NULL, 1, 1, 0, -1), "conv2d"); /* negative pad_w */
    expect_error(wb_conv2d_ex(g, x, w7, NULL, 0, 1, 0, 3), "conv2d");  /* stride_h 0 */
    expect_error(wb_conv2d_ex(g, x, w7, NULL, 1, 1, 0, 0), "conv2d");  /* 1×7 on width 5, no pad */
    assert_non_null(wb_conv2d_ex(g, x, w7, NULL, 1, 1, 0, 1));         /* width 5 + 2 fits 7 */
    wb_tensor *y = wb_conv2d_ex(g, x, w3, NULL, 2, 1, 0, 1);           /* (5 − 1)/2 + 1 = 3, 5 */
    assert_non_null(y);
    assert_int_equal(y->shape[2], 3);
    assert_int_equal(y->shape[3], 5);
    assert_null(wb_maxpool2d(g, NULL, 3, 1, 1)); /* NULL propagates */
    assert_null(wb_avgpool2d(g, NULL, 3, 1, 1, 0));
    assert_null(wb_resize_bilinear(g, NULL, 3, 3));
    wb_graph_free(g);

    /* A backend without the pooling kernels (CUDA, so far): the op says so. */
    wb_backend bare = *wb_backend_cpu();
    bare.name = "bare";
    bare.maxpool2d = NULL;
    bare.avgpool2d_bwd = NULL;
    bare.resize_bilinear = NULL;
    g = wb_graph_new(&bare);
    x = wb_zeros(g, 4, s4);
    assert_non_null(x);
    expect_error(wb_maxpool2d(g, x, 3, 1, 1), "maxpool2d: not implemented on backend 'bare'");
    expect_error(wb_avgpool2d(g, x, 3, 1, 1, 0), "avgpool2d: not implemented on backend 'bare'");
    expect_error(wb_resize_bilinear(g, x, 7, 7), "resize_bilinear: not implemented on backend 'bare'");
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
