/* tests/test_conv_paths.c — the two CPU convolution paths of host/core/ops_conv.c
 * against each other: im2col + OpenBLAS GEMM (the reference) and the fused
 * oneDNN kernels (kernels/cpu/cpu_conv_dnnl.c). WB_CONV picks the path per
 * graph when the graph is created, so one process builds a graph of each
 * kind on the same inputs and compares:
 *   - random shapes of the four kinds the nets use (1×1; 3×3 stride 1 pad 1;
 *     3×3 stride 2 pad 1; 1×7 pad (0, 3)), Cin/Cout 3..64, batch 1..8, with
 *     and without bias: forward and the gradients of x, W and b, after TWO
 *     backward passes (leaf gradients accumulate, so a kernel that
 *     overwrites instead of adding shows up as a factor of 2);
 *   - WB_CONV values: an unknown one makes wb_graph_new fail naming it.
 * Without oneDNN the comparison prints "SKIP: built without oneDNN".
 *
 * Shape legend: x (B, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout).
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

#include "wb/tensor.h"

#define N_CASES 24
/* max |a − b| / max |reference| per tensor. Both paths sum the same ≤ 576
 * float products in different orders: ~1e-6 of the scale; a wrong index or
 * an overwritten gradient is ≥ 1e-1. */
#define REL_TOL 1e-4

static void set_path(const char *mode) {
    if (mode) setenv("WB_CONV", mode, 1);
    else unsetenv("WB_CONV");
}

#ifdef WB_HAVE_DNNL /* the comparison's helpers (unused, so absent, without oneDNN) */
typedef struct conv_shape {
    int b, cin, cout, h, w, kh, kw, sh, sw, ph, pw, bias;
} conv_shape;

typedef struct conv_result {
    float *y, *gx, *gw, *gb;
    int64_t ny, nx, nw;
} conv_result;

/* Case i: kind i % 4, sizes from a fixed Philox stream. */
static conv_shape make_shape(int i) {
    wb_rng rng;
    wb_rng_init(&rng, 0xc0471234u, (uint64_t)i);
    conv_shape s = {0};
    s.b = 1 + (int)(wb_rng_u32(&rng) % 8);
    s.cin = 3 + (int)(wb_rng_u32(&rng) % 62);
    s.cout = 3 + (int)(wb_rng_u32(&rng) % 62);
    s.h = 5 + (int)(wb_rng_u32(&rng) % 12);
    s.w = 7 + (int)(wb_rng_u32(&rng) % 10);
    s.bias = (i / 4) % 2 == 0;
    s.sh = s.sw = 1;
    switch (i % 4) {
    case 0: s.kh = s.kw = 1; break;
    case 1: s.kh = s.kw = 3; s.ph = s.pw = 1; break;
    case 2: s.kh = s.kw = 3; s.ph = s.pw = 1; s.sh = s.sw = 2; break;
    default: s.kh = 1; s.kw = 7; s.pw = 3; break;
    }
    return s;
}

/* Forward, then backward twice with the same seed, on a graph of `mode`. */
static conv_result run_path(const char *mode, const conv_shape *s, const float *xh, const float *wh, const float *bh,
                            const float *seed_h) {
    set_path(mode);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    if (!g) fail_msg("wb_graph_new with WB_CONV=%s: %s", mode, wb_last_error());
    int64_t xs[4] = {s->b, s->cin, s->h, s->w}, ws[4] = {s->cout, s->cin, s->kh, s->kw}, bs = s->cout;
    wb_tensor *x = wb_leaf(g, 4, xs, xh, 1), *w = wb_leaf(g, 4, ws, wh, 1);
    wb_tensor *b = s->bias ? wb_leaf(g, 1, &bs, bh, 1) : NULL;
    wb_tensor *y = wb_conv2d_ex(g, x, w, b, s->sh, s->sw, s->ph, s->pw);
    if (!y) fail_msg("conv2d (WB_CONV=%s): %s", mode, wb_last_error());
    wb_tensor *seed = wb_from_host(g, 4, y->shape, seed_h);
    for (int pass = 0; pass < 2; pass++)
        if (wb_backward(g, y, seed)) fail_msg("backward (WB_CONV=%s): %s", mode, wb_last_error());
    conv_result r = {0};
    r.ny = y->numel;
    r.nx = x->numel;
    r.nw = w->numel;
    r.y = malloc((size_t)r.ny * sizeof(float));
    r.gx = malloc((size_t)r.nx * sizeof(float));
    r.gw = malloc((size_t)r.nw * sizeof(float));
    r.gb = malloc((size_t)s->cout * sizeof(float));
    assert_true(r.y && r.gx && r.gw && r.gb);
    assert_int_equal(wb_to_host(y, r.y), 0);
    assert_int_equal(wb_grad_to_host(x, r.gx), 0);
    assert_int_equal(wb_grad_to_host(w, r.gw), 0);
    if (b) assert_int_equal(wb_grad_to_host(b, r.gb), 0);
    wb_graph_free(g);
    return r;
}

static void result_free(conv_result *r) {
    free(r->y);
    free(r->gx);
    free(r->gw);
    free(r->gb);
}

static double rel_diff(const float *ref, const float *got, int64_t n) {
    double scale = 1e-6, diff = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
        double d = fabs((double)ref[i] - got[i]);
        if (!(d <= diff)) diff = d; /* NaN wins */
    }
    return diff / scale;
}

static float *normal(wb_rng *rng, int64_t n) {
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    assert_non_null(p);
    wb_rng_normal(rng, p, n);
    return p;
}

#endif /* WB_HAVE_DNNL */

static void test_paths_agree(void **state) {
    (void)state;
#ifndef WB_HAVE_DNNL
    print_message("SKIP: built without oneDNN\n");
    skip();
#else
    const char *saved = getenv("WB_CONV");
    char *restore = saved ? strdup(saved) : NULL;
    double worst = 0.0;
    int worst_case = -1;
    for (int i = 0; i < N_CASES; i++) {
        conv_shape s = make_shape(i);
        int ho = (s.h + 2 * s.ph - s.kh) / s.sh + 1, wo = (s.w + 2 * s.pw - s.kw) / s.sw + 1;
        wb_rng rng;
        wb_rng_init(&rng, 0xc0475eedu, (uint64_t)i);
        float *xh = normal(&rng, (int64_t)s.b * s.cin * s.h * s.w);
        float *wh = normal(&rng, (int64_t)s.cout * s.cin * s.kh * s.kw);
        float *bh = normal(&rng, s.cout);
        float *sh = normal(&rng, (int64_t)s.b * s.cout * ho * wo);
        conv_result ref = run_path("im2col", &s, xh, wh, bh, sh);
        conv_result got = run_path("dnnl", &s, xh, wh, bh, sh);
        double e[4] = {rel_diff(ref.y, got.y, ref.ny), rel_diff(ref.gx, got.gx, ref.nx),
                       rel_diff(ref.gw, got.gw, ref.nw), s.bias ? rel_diff(ref.gb, got.gb, s.cout) : 0.0};
        static const char *what[4] = {"output", "grad x", "grad W", "grad b"};
        for (int k = 0; k < 4; k++) {
            if (!(e[k] <= REL_TOL))
                fail_msg("case %d: x (%d, %d, %d, %d), W (%d, %d, %d, %d), stride (%d, %d), pad (%d, %d), %s: "
                         "%s differs between im2col and dnnl: rel. %.3g > %.0e",
                         i, s.b, s.cin, s.h, s.w, s.cout, s.cin, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw,
                         s.bias ? "bias" : "no bias", what[k], e[k], REL_TOL);
            if (e[k] > worst) {
                worst = e[k];
                worst_case = i;
            }
        }
        result_free(&ref);
        result_free(&got);
        free(xh);
        free(wh);
        free(bh);
        free(sh);
    }
    set_path(restore);
    free(restore);
    print_message("%d conv shapes: im2col and oneDNN agree (forward, dx, dW, db after two backward passes); "
                  "worst case %d (%.3g)\n", N_CASES, worst_case, worst);
#endif
}

static void test_mode_errors(void **state) {
    (void)state;
    const char *saved = getenv("WB_CONV");
    char *restore = saved ? strdup(saved) : NULL;
    set_path("tensorcores");
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    assert_null(g);
    if (!strstr(wb_last_error(), "WB_CONV")) fail_msg("error '%s' does not name WB_CONV", wb_last_error());
    /* the CUDA backend's library name means auto on the CPU */
    set_path("cudnn");
    g = wb_graph_new(wb_backend_cpu());
    assert_non_null(g);
    wb_graph_free(g);
    set_path("im2col");
    g = wb_graph_new(wb_backend_cpu());
    assert_non_null(g);
    wb_graph_free(g);
    set_path(restore);
    free(restore);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_agree),
        cmocka_unit_test(test_mode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
