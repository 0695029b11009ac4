/* tests/test_backend_ops.c — conformance of a backend against the CPU
 * reference, op by op (ggml's test-backend-ops): every case of the shared
 * tables — tests/op_cases.h (elementwise, linear algebra, losses, the
 * diffusion ops), tests/image_op_cases.h (convolutions, bmm, up/down
 * sampling, pooling, resizing) and tests/norm_op_cases.h (group norm,
 * softmax) — runs forward and backward on the CPU backend and on the
 * backend under test from the same inputs and loss weights, and the output
 * and every input gradient must agree.
 *
 * Which backend: argv[1] (or WB_TEST_BACKEND), "cuda-emu" by default.
 * CTest runs cuda-emu (fibers in order and in reverse) and cuda; without a
 * device "cuda" prints "SKIP: ..." and is reported skipped — unless
 * WB_REQUIRE_DEVICE=1 (scripts/gpu_check.sh), where no device is a failure.
 * On "cuda" the image tables run twice, WB_CONV=im2col and WB_CONV=cudnn,
 * so cuDNN is compared with the CPU (the emulation has no cuDNN: its graphs
 * always take im2col + cuBLAS).
 *
 * Tolerances (err = max|backend − cpu| / max|cpu| over a tensor; exact
 * zeros must stay exact):
 *   op_cases     the case's own torch_tol (1e-5 elementwise, 1e-4 where a
 *                GEMM sums in another order), times 2;
 *   image cases  1e-5 (sums of at most 73 products in float);
 *   norm cases   1e-5.
 * A wrong index or a missing barrier is ≥ 1e-2 (see docs/DESIGN.md §7).
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
#include "wb_test_util.h"
#include "op_cases.h"
#include "image_op_cases.h"
#include "norm_op_cases.h"

#define IMAGE_TOL 1e-5
#define NORM_TOL 1e-5

static const char *g_name = "cuda-emu";
static const wb_backend *g_be;

/* ---- one run: the output and the gradients of the inputs, on the host ---- */
#define MAX_T (1 + 6)
typedef struct run_out {
    int n;                /* tensors: out, then one per input */
    float *t[MAX_T];
    int64_t len[MAX_T];
    const char *what[MAX_T];
} run_out;

static void out_free(run_out *r) {
    for (int i = 0; i < r->n; i++) free(r->t[i]);
    memset(r, 0, sizeof *r);
}

static void keep(run_out *r, const wb_tensor *t, int grad, const char *what) {
    int i = r->n++;
    r->len[i] = t->numel;
    r->what[i] = what;
    r->t[i] = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    assert_non_null(r->t[i]);
    assert_int_equal(grad ? wb_grad_to_host(t, r->t[i]) : wb_to_host(t, r->t[i]), 0);
}

static const char *const GRAD_NAMES[] = {"d/d input 0", "d/d input 1", "d/d input 2",
                                         "d/d input 3", "d/d input 4", "d/d input 5"};

/* err of b against the reference a (see the top); exact zeros stay zeros */
static double rel_err(const float *a, const float *b, int64_t n, int64_t *where) {
    double worst = 0.0, scale = 0.0;
    *where = -1;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)a[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) { /* NaN on either side counts as infinitely wrong */
            worst = isnan(d) ? INFINITY : d;
            *where = i;
        }
    }
    if (scale == 0.0) return worst == 0.0 ? 0.0 : INFINITY;
    return worst / scale;
}

/* Compares every tensor; returns the worst error, fails past tol. */
static double compare(const char *table, const char *name, const run_out *ref, const run_out *got, double tol) {
    assert_int_equal(ref->n, got->n);
    double worst = 0.0;
    for (int i = 0; i < ref->n; i++) {
        int64_t where;
        double e = rel_err(ref->t[i], got->t[i], ref->len[i], &where);
        if (e > tol)
            fail_msg("%s case %s, %s: %s differs from cpu by %.3g of its scale (tolerance %.1g) at element %lld: "
                     "cpu %.9g, %s %.9g",
                     table, name, ref->what[i], g_name, e, tol, (long long)where, (double)ref->t[i][where], g_name,
                     (double)got->t[i][where]);
        if (e > worst) worst = e;
    }
    return worst;
}

/* ---- tests/op_cases.h ------------------------------------------------------------ */
static void run_op_case(const wb_backend *be, int ci, run_out *r) {
    const op_case *c = &OP_CASES[ci];
    wb_graph *g = wb_graph_new(be);
    assert_non_null(g);
    float *host[OPC_MAX_IN] = {0};
    wb_tensor *x[OPC_MAX_IN] = {0};
    for (int k = 0; k < c->n_in; k++) {
        host[k] = malloc((size_t)opc_numel(&c->in[k]) * sizeof(float));
        assert_non_null(host[k]);
        opc_fill_input(ci, k, host[k]);
        x[k] = wb_leaf(g, c->in[k].ndim, c->in[k].shape, host[k], c->in[k].grad != GRAD_NO);
        assert_non_null(x[k]);
    }
    wb_tensor *y = c->fn(g, x, c->p);
    if (!y) fail_msg("%s on %s: forward failed: %s", c->name, wb_backend_name(be), wb_last_error());
    float *w = malloc((size_t)y->numel * sizeof(float));
    assert_non_null(w);
    opc_fill_weights(ci, y->numel, w);
    wb_tensor *seed = wb_from_host(g, y->ndim, y->shape, w);
    if (wb_backward(g, y, seed)) fail_msg("%s on %s: backward failed: %s", c->name, wb_backend_name(be), wb_last_error());
    keep(r, y, 0, "output");
    for (int k = 0; k < c->n_in; k++)
        if (c->in[k].grad != GRAD_NO) keep(r, x[k], 1, GRAD_NAMES[k]);
    for (int k = 0; k < c->n_in; k++) free(host[k]);
    free(w);
    wb_graph_free(g);
}

static void test_op_cases(void **state) {
    (void)state;
    if (!g_be) skip();
    double worst = 0.0;
    const char *worst_name = "-";
    for (int ci = 0; ci < OPC_COUNT; ci++) {
        run_out ref = {0}, got = {0};
        run_op_case(wb_backend_cpu(), ci, &ref);
        run_op_case(g_be, ci, &got);
        double e = compare("op_cases.h", OP_CASES[ci].name, &ref, &got, 2.0 * OP_CASES[ci].torch_tol);
        if (e > worst) {
            worst = e;
            worst_name = OP_CASES[ci].name;
        }
        out_free(&ref);
        out_free(&got);
    }
    print_message("%d op cases: %s agrees with cpu (output and every gradient); worst %s (%.3g)\n", OPC_COUNT, g_name,
                  worst_name, worst);
}

/* ---- tests/image_op_cases.h ------------------------------------------------------- */
static void run_image_case(const wb_backend *be, const img_suite *s, int ci, run_out *r) {
    const img_case *c = &s->cases[ci];
    wb_graph *g = wb_graph_new(be);
    if (!g) fail_msg("%s on %s: graph: %s", c->name, wb_backend_name(be), wb_last_error());
    float *host[IMG_MAX_IN] = {0}, *w = NULL;
    wb_tensor *x[IMG_MAX_IN] = {0};
    for (int k = 0; k < c->n_in; k++) host[k] = img_make_input(s, ci, k);
    wb_tensor *y = img_forward_backward(s, g, ci, host, x, &w);
    keep(r, y, 0, "output");
    for (int k = 0; k < c->n_in; k++) keep(r, x[k], 1, GRAD_NAMES[k]);
    for (int k = 0; k < c->n_in; k++) free(host[k]);
    free(w);
    wb_graph_free(g);
}

static void set_conv(const char *mode) {
    if (mode) setenv("WB_CONV", mode, 1);
    else unsetenv("WB_CONV");
}

static void image_table(const img_suite *s, const char *table) {
    if (!g_be) skip();
    /* on a device both convolution paths; elsewhere the one there is */
    const char *modes[2] = {"im2col", strcmp(g_name, "cuda") == 0 ? "cudnn" : NULL};
    for (int m = 0; m < 2 && modes[m]; m++) {
        double worst = 0.0;
        const char *worst_name = "-";
        set_conv(modes[m]);
        for (int ci = 0; ci < s->n; ci++) {
            run_out ref = {0}, got = {0};
            set_conv("im2col");
            run_image_case(wb_backend_cpu(), s, ci, &ref);
            set_conv(modes[m]);
            run_image_case(g_be, s, ci, &got);
            double e = compare(table, s->cases[ci].name, &ref, &got, IMAGE_TOL);
            if (e > worst) {
                worst = e;
                worst_name = s->cases[ci].name;
            }
            out_free(&ref);
            out_free(&got);
        }
        set_conv(NULL);
        print_message("%d %s cases (WB_CONV=%s): %s agrees with cpu; worst %s (%.3g)\n", s->n, table, modes[m], g_name,
                      worst_name, worst);
    }
}

static const img_suite CONV_SUITE = {IMG_CONV_CASES, IMG_CONV_N_CASES, img_conv_run, IMG_CONV_SEED};
static const img_suite POOL_SUITE = {IMG_POOL_CASES, IMG_POOL_N_CASES, img_pool_run, IMG_POOL_SEED};

static void test_image_conv_cases(void **state) {
    (void)state;
    image_table(&CONV_SUITE, "image_op_cases.h (conv)");
}

static void test_image_pool_cases(void **state) {
    (void)state;
    image_table(&POOL_SUITE, "image_op_cases.h (pool)");
}

/* ---- tests/norm_op_cases.h -------------------------------------------------------- */
static void run_norm_case(const wb_backend *be, int ci, run_out *r) {
    const norm_case *c = &NORM_CASES[ci];
    int64_t n = norm_case_numel(c), ch = c->ndim > 1 ? c->shape[1] : 1;
    float *x = malloc((size_t)n * sizeof(float)), *gm = malloc((size_t)ch * sizeof(float)),
          *bt = malloc((size_t)ch * sizeof(float)), *w = malloc((size_t)n * sizeof(float));
    assert_true(x && gm && bt && w);
    norm_fill_inputs(ci, x, gm, bt);
    norm_fill_weights(ci, n, w);
    wb_graph *g = wb_graph_new(be);
    assert_non_null(g);
    wb_tensor *leaf[3];
    wb_tensor *y = norm_build(g, ci, x, gm, bt, 1, leaf);
    if (!y) fail_msg("%s on %s: forward failed: %s", c->name, wb_backend_name(be), wb_last_error());
    wb_tensor *seed = wb_from_host(g, y->ndim, y->shape, w);
    if (wb_backward(g, y, seed)) fail_msg("%s on %s: backward failed: %s", c->name, wb_backend_name(be), wb_last_error());
    keep(r, y, 0, "output");
    static const char *const names[3] = {"d/dx", "d/dgamma", "d/dbeta"};
    for (int k = 0; k < 3; k++)
        if (leaf[k]) keep(r, leaf[k], 1, names[k]);
    free(x), free(gm), free(bt), free(w);
    wb_graph_free(g);
}

static void test_norm_cases(void **state) {
    (void)state;
    if (!g_be) skip();
    double worst = 0.0;
    const char *worst_name = "-";
    for (int ci = 0; ci < NORM_N_CASES; ci++) {
        run_out ref = {0}, got = {0};
        run_norm_case(wb_backend_cpu(), ci, &ref);
        run_norm_case(g_be, ci, &got);
        double e = compare("norm_op_cases.h", NORM_CASES[ci].name, &ref, &got, NORM_TOL);
        if (e > worst) {
            worst = e;
            worst_name = NORM_CASES[ci].name;
        }
        out_free(&ref);
        out_free(&got);
    }
    print_message("%d norm cases: %s agrees with cpu; worst %s (%.3g)\n", NORM_N_CASES, g_name, worst_name, worst);
}

/* ---- setup -------------------------------------------------------------------------- */
static int setup(void **state) {
    (void)state;
    g_be = wb_backend_select(g_name);
    if (g_be) return 0;
    const char *require = getenv("WB_REQUIRE_DEVICE");
    int required = strcmp(g_name, "cuda") != 0 || (require && strcmp(require, "1") == 0);
    if (required) {
        fprintf(stderr, "backend %s unavailable: %s\n", g_name, wb_last_error());
        return -1;
    }
    printf("SKIP: backend %s unavailable: %s\n", g_name, wb_last_error());
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    const char *env = getenv("WB_TEST_BACKEND");
    if (argc > 1) g_name = argv[1];
    else if (env && env[0]) g_name = env;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_cases),
        cmocka_unit_test(test_image_conv_cases),
        cmocka_unit_test(test_image_pool_cases),
        cmocka_unit_test(test_norm_cases),
    };
    return cmocka_run_group_tests_name("backend_ops", tests, setup, NULL);
}
