/* tests/test_ops_grad.c — the autograd contract, without any reference
 * implementation but calculus: every op in wb/tensor.h (tests/op_cases.h) is
 * checked against central finite differences of L = Σ w ⊙ op(inputs); then
 * the tape's bookkeeping (accumulation, repeated backward, reset, grad mode,
 * errors), the accuracy of the weight functions over their whole range, the
 * optimisers against a double-precision reference, EMA, and the parameter
 * store (deterministic init, copy errors, clone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/elementwise.h"
#include "op_cases.h"
#include "wb/backend.h"
#include "wb/tensor.h"
#include "core/wb_internal.h" /* g->n_tape: "grad mode off records nothing" is about the tape */
#include "wb_test_util.h"

/* ---- helpers ------------------------------------------------------------------ */

static wb_tensor *leaf_of(wb_graph *g, const opc_input *in, const float *host, int requires_grad) {
    wb_tensor *t = wb_leaf(g, in->ndim, in->shape, host, requires_grad);
    assert_non_null(t);
    return t;
}

/* Forward only (grad mode off) for one set of host inputs. */
static double eval_loss(wb_graph *g, int ci, float *const *host, const float *w) {
    const op_case *c = &OP_CASES[ci];
    wb_graph_reset(g);
    wb_tensor *x[OPC_MAX_IN] = {0};
    for (int k = 0; k < c->n_in; k++) x[k] = leaf_of(g, &c->in[k], host[k], 0);
    wb_tensor *y = c->fn(g, x, c->p);
    if (!y) fail_msg("%s: forward failed: %s", c->name, wb_last_error());
    return wb_test_weighted_sum(y, w);
}

/* ---- every op against finite differences ---------------------------------------- */

static void test_every_op_has_a_case(void **state) {
    (void)state;
    for (int o = 0; o < OPC_ALL_OPS_COUNT; o++) {
        int found = 0;
        for (int ci = 0; ci < OPC_COUNT; ci++) found |= strcmp(OP_CASES[ci].op, OPC_ALL_OPS[o]) == 0;
        if (!found) fail_msg("op '%s' has no case in tests/op_cases.h", OPC_ALL_OPS[o]);
    }
    /* names key the torch script's tensors: a duplicate would overwrite one */
    for (int i = 0; i < OPC_COUNT; i++)
        for (int j = i + 1; j < OPC_COUNT; j++)
            if (strcmp(OP_CASES[i].name, OP_CASES[j].name) == 0) fail_msg("duplicate case name '%s'", OP_CASES[i].name);
}

/* Worst error/tolerance seen, to show the margin the tolerances leave. */
static double g_fd_worst;
static const char *g_fd_worst_case;

static void check_case_fd(int ci) {
    const op_case *c = &OP_CASES[ci];
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_graph *gfd = wb_graph_new(wb_backend_cpu());
    assert_non_null(g);
    assert_non_null(gfd);
    wb_graph_set_grad(gfd, 0);

    float *host[OPC_MAX_IN] = {0};
    for (int k = 0; k < c->n_in; k++) {
        host[k] = malloc((size_t)opc_numel(&c->in[k]) * sizeof(float));
        assert_non_null(host[k]);
        opc_fill_input(ci, k, host[k]);
    }

    /* Analytic: L = sum(y ⊙ w) built from ops, so the scalar-root path is
     * the one exercised (test_seeded_backward covers the seed path). */
    wb_tensor *x[OPC_MAX_IN] = {0};
    for (int k = 0; k < c->n_in; k++) x[k] = leaf_of(g, &c->in[k], host[k], c->in[k].grad != GRAD_NO);
    wb_tensor *y = c->fn(g, x, c->p);
    if (!y) fail_msg("%s: forward failed: %s", c->name, wb_last_error());
    assert_int_equal(y->requires_grad, 1);
    if (strcmp(c->op, "reshape") == 0) { /* the torch test trusts this shape */
        assert_int_equal(y->ndim, 2);
        assert_int_equal(y->shape[0], 6);
        assert_int_equal(y->shape[1], 4);
    }
    float *w = malloc((size_t)y->numel * sizeof *w);
    assert_non_null(w);
    opc_fill_weights(ci, y->numel, w);
    wb_tensor *wt = wb_from_host(g, y->ndim, y->shape, w);
    wb_tensor *loss = wb_sum(g, wb_mul(g, y, wt));
    assert_non_null(loss);
    if (wb_backward(g, loss, NULL)) fail_msg("%s: backward: %s", c->name, wb_last_error());

    for (int k = 0; k < c->n_in; k++) {
        if (c->in[k].grad == GRAD_NO) continue;
        int64_t n = opc_numel(&c->in[k]);
        float *ga = malloc((size_t)n * sizeof *ga);
        double *fd = malloc((size_t)n * sizeof *fd);
        assert_non_null(ga);
        assert_non_null(fd);
        assert_int_equal(wb_grad_to_host(x[k], ga), 0);
        if (c->in[k].grad == GRAD_ZERO) {
            for (int64_t i = 0; i < n; i++)
                if (ga[i] != 0.0f) fail_msg("%s: input %d is detached but got grad %g at %lld", c->name, k,
                                            ga[i], (long long)i);
            free(ga);
            free(fd);
            continue;
        }
        /* Central differences. h is ~1e-2 relative: small enough that the
         * h²·f'''/6 truncation stays ~1e-4 relative on these domains, large
         * enough that float round-off of the forward (~6e-8·|L|) divided by
         * 2h stays ~1e-5. The step actually taken is what float can
         * represent, so the quotient uses the perturbed values themselves. */
        double gmax = 0.0;
        for (int64_t i = 0; i < n; i++) {
            float x0 = host[k][i];
            float h = 1e-2f * fmaxf(1.0f, fabsf(x0));
            float xp = x0 + h, xm = x0 - h;
            host[k][i] = xp;
            double lp = eval_loss(gfd, ci, host, w);
            host[k][i] = xm;
            double lm = eval_loss(gfd, ci, host, w);
            host[k][i] = x0;
            fd[i] = (lp - lm) / ((double)xp - (double)xm);
            if (fabs(fd[i]) > gmax) gmax = fabs(fd[i]);
        }
        /* A check against all-zero gradients would prove nothing. */
        if (gmax < 1e-3) fail_msg("%s: input %d: gradient too small to check (%g)", c->name, k, gmax);
        for (int64_t i = 0; i < n; i++) {
            double a = ga[i], err = fabs(a - fd[i]);
            /* 1e-2 relative, with a floor of 1e-3 of the largest entry so
             * entries that cancel to ~0 are held to the input's scale. */
            double tol = 1e-2 * fmax(fabs(a), fabs(fd[i])) + 1e-3 * gmax;
            if (err / tol > g_fd_worst) {
                g_fd_worst = err / tol;
                g_fd_worst_case = c->name;
            }
            if (!(err <= tol))
                fail_msg("%s: d/d input %d [%lld]: analytic %.7g, finite difference %.7g (tol %.2g)", c->name,
                         k, (long long)i, a, fd[i], tol);
        }
        free(ga);
        free(fd);
    }
    free(w);
    for (int k = 0; k < c->n_in; k++) free(host[k]);
    wb_graph_free(g);
    wb_graph_free(gfd);
}

static void test_finite_differences(void **state) {
    (void)state;
    for (int ci = 0; ci < OPC_COUNT; ci++) check_case_fd(ci);
    print_message("%d cases; worst error/tolerance %.3f (%s)\n", OPC_COUNT, g_fd_worst,
                  g_fd_worst_case ? g_fd_worst_case : "-");
}

/* ---- tape bookkeeping ------------------------------------------------------------ */

/* A tensor used twice receives both contributions: d(x·x)/dx = 2x, d(x+x)/dx = 2. */
static void test_used_twice_accumulates(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float xv[5] = {-1.5f, -0.25f, 0.5f, 1.0f, 3.0f};
    int64_t n = 5;
    wb_tensor *x = wb_leaf(g, 1, &n, xv, 1);
    assert_int_equal(wb_backward(g, wb_sum(g, wb_mul(g, x, x)), NULL), 0);
    float gx[5];
    wb_grad_to_host(x, gx);
    for (int i = 0; i < 5; i++) assert_float_equal(gx[i], 2.0f * xv[i], 1e-6f);

    wb_tensor *x2 = wb_leaf(g, 1, &n, xv, 1);
    assert_int_equal(wb_backward(g, wb_sum(g, wb_add(g, x2, wb_exp(g, x2))), NULL), 0);
    wb_grad_to_host(x2, gx);
    for (int i = 0; i < 5; i++) assert_float_equal(gx[i], 1.0f + expf(xv[i]), 1e-5f * (1.0f + expf(xv[i])));
    wb_graph_free(g);
}

/* Recycled gradient buffers (wb_graph_retain_grads off, the default): after
 * a backward only leaves keep .grad, the leaf gradients are bit-identical to
 * a retaining graph's, and a chain of same-size ops needs fewer arena bytes
 * (each dead intermediate gradient is handed to the next one). */
static double chain_grads(int retain, float *gx, size_t *arena) {
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_graph_retain_grads(g, retain);
    enum { N = 4096 };
    static float xv[N];
    for (int i = 0; i < N; i++) xv[i] = 0.001f * (float)(i % 97) - 0.05f;
    int64_t n = N;
    wb_tensor *x = wb_leaf(g, 1, &n, xv, 1), *h = x, *mid = NULL;
    for (int k = 0; k < 12; k++) {
        h = wb_add(g, wb_silu(g, h), wb_scale(g, h, 0.5f));
        if (k == 5) mid = h;
    }
    assert_int_equal(wb_backward(g, wb_sum(g, h), NULL), 0);
    assert_int_equal(wb_grad_to_host(x, gx), 0);
    double mid_has_grad = mid->grad != NULL;
    *arena = wb_graph_arena_bytes(g);
    wb_graph_free(g);
    return mid_has_grad;
}

static void test_grad_recycling(void **state) {
    (void)state;
    static float kept[4096], recycled[4096];
    size_t arena_kept, arena_recycled;
    assert_true(chain_grads(1, kept, &arena_kept) == 1);
    assert_true(chain_grads(0, recycled, &arena_recycled) == 0);
    assert_memory_equal(kept, recycled, sizeof kept);
    /* 12 × 4 outputs with 16 KiB gradients each retained; recycled, a handful */
    assert_true(arena_recycled + 30 * 4096 * sizeof(float) < arena_kept);
}

/* Memory scopes (wb_scope_begin/end): a chain of blocks, each five ops of
 * 64 Ki floats inside a scope that keeps only its last output. With the
 * tape off the arena's high-water stays at a few blocks however long the
 * chain (the first scope also crosses into new arena chunks), the values
 * are the bits of the same chain without scopes, and headers kept by the
 * caller (a "skip" list) see the moved data. With a tape (an input that
 * requires grad) nothing is released and the gradient is the scope-free one. */
enum { SCOPE_N = 65536, SCOPE_BLOCKS = 40 };

static wb_tensor *scope_block(wb_graph *g, wb_tensor *h) {
    wb_tensor *a = wb_silu(g, h), *b = wb_scale(g, a, 0.5f), *c = wb_add(g, b, h), *d = wb_tanh(g, c);
    return wb_add_scalar(g, d, 0.01f);
}

static double scope_chain(int scoped, int with_grad, float *out, float *gx, size_t *high_water) {
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_graph_set_grad(g, with_grad);
    static float xv[SCOPE_N];
    for (int i = 0; i < SCOPE_N; i++) xv[i] = 0.0001f * (float)(i % 1013) - 0.05f;
    int64_t n = SCOPE_N;
    wb_tensor *x = wb_leaf(g, 1, &n, xv, with_grad), *h = x, *skips[SCOPE_BLOCKS];
    for (int k = 0; k < SCOPE_BLOCKS; k++) {
        wb_scope outer = wb_scope_begin(g);
        if (scoped && k % 2) { /* nested: an inner scope inside every other block */
            wb_scope inner = wb_scope_begin(g);
            h = wb_scope_end(g, inner, scope_block(g, h));
        } else {
            h = scope_block(g, h);
        }
        h = scope_block(g, h);
        if (scoped) h = wb_scope_end(g, outer, h);
        skips[k] = h;
    }
    /* a scope whose kept tensor was made before it: released, kept intact */
    wb_scope empty = wb_scope_begin(g);
    (void)scope_block(g, h);
    assert_ptr_equal(wb_scope_end(g, empty, skips[3]), skips[3]);
    wb_tensor *sum = skips[0];
    for (int k = 1; k < SCOPE_BLOCKS; k++) sum = wb_add(g, sum, skips[k]);
    assert_non_null(sum);
    assert_int_equal(wb_to_host(sum, out), 0);
    if (with_grad) {
        assert_int_equal(wb_backward(g, wb_sum(g, sum), NULL), 0);
        assert_int_equal(wb_grad_to_host(x, gx), 0);
    }
    *high_water = wb_graph_arena_bytes(g);
    wb_graph_free(g);
    return 0;
}

static void test_memory_scopes(void **state) {
    (void)state;
    static float plain[SCOPE_N], scoped[SCOPE_N], gplain[SCOPE_N], gscoped[SCOPE_N];
    size_t hw_plain, hw_scoped;
    const size_t block_bytes = (size_t)SCOPE_N * sizeof(float);
    scope_chain(0, 0, plain, NULL, &hw_plain);
    scope_chain(1, 0, scoped, NULL, &hw_scoped);
    assert_memory_equal(plain, scoped, sizeof plain);
    /* plain: 10 tensors per block kept; scoped: the kept outputs + the sums
     * + one block's temporaries */
    assert_true(hw_plain >= (size_t)SCOPE_BLOCKS * 10 * block_bytes);
    assert_true(hw_scoped <= (size_t)(2 * SCOPE_BLOCKS + 16) * block_bytes);
    /* with a tape: scopes release nothing, gradients unchanged */
    scope_chain(0, 1, plain, gplain, &hw_plain);
    scope_chain(1, 1, scoped, gscoped, &hw_scoped);
    assert_memory_equal(plain, scoped, sizeof plain);
    assert_memory_equal(gplain, gscoped, sizeof gplain);
    assert_true(hw_scoped >= (size_t)SCOPE_BLOCKS * 10 * block_bytes);
}

/* A second backward over the same tape: intermediates are recomputed from
 * scratch (not doubled), leaves accumulate — torch's retain_graph semantics. */
static void test_second_backward(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_graph_retain_grads(g, 1); /* e's gradient is read below */
    const float xv[3] = {0.5f, -1.0f, 2.0f};
    int64_t n = 3;
    wb_tensor *x = wb_leaf(g, 1, &n, xv, 1);
    wb_tensor *e = wb_exp(g, x);
    wb_tensor *s = wb_scale(g, e, 3.0f);
    wb_tensor *loss = wb_sum(g, s);
    assert_int_equal(wb_backward(g, loss, NULL), 0);
    float g1[3], g2[3], ge[3];
    wb_grad_to_host(x, g1);
    assert_int_equal(wb_backward(g, loss, NULL), 0);
    wb_grad_to_host(x, g2);
    wb_grad_to_host(e, ge);
    for (int i = 0; i < 3; i++) {
        assert_float_equal(g1[i], 3.0f * expf(xv[i]), 1e-5f * g1[i]);
        assert_float_equal(g2[i], 2.0f * g1[i], 1e-6f * g2[i]);
        assert_float_equal(ge[i], 3.0f, 0.0f); /* intermediate: fresh, not 6 */
    }
    wb_graph_free(g);
}

/* The seed form of backward equals the scalar loss Σ seed ⊙ y, and a seed of
 * the wrong size is refused. */
static void test_seeded_backward(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float xv[6] = {0.1f, -0.7f, 1.3f, 2.0f, -2.5f, 0.9f}, sv[6] = {1, -2, 0.5f, 3, -1, 0.25f};
    int64_t shape[2] = {2, 3};
    wb_tensor *x = wb_leaf(g, 2, shape, xv, 1);
    wb_tensor *y = wb_tanh(g, x);
    wb_tensor *seed = wb_from_host(g, 2, shape, sv);
    assert_int_equal(wb_backward(g, y, seed), 0);
    float gx[6];
    wb_grad_to_host(x, gx);
    for (int i = 0; i < 6; i++) {
        double t = tanh((double)xv[i]);
        assert_float_equal(gx[i], sv[i] * (1.0 - t * t), 1e-5);
    }
    int64_t five = 5;
    wb_tensor *bad = wb_zeros(g, 1, &five);
    assert_int_not_equal(wb_backward(g, y, bad), 0);
    assert_non_null(strstr(wb_last_error(), "seed"));
    wb_graph_free(g);
}

/* Reset empties the tape and reuses the arena: a training loop of identical
 * steps gives identical gradients and does not grow memory. */
static void test_graph_reset(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float xv[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    int64_t n = 4;
    float first[4] = {0}, now[4];
    size_t bytes_after_first = 0;
    for (int step = 0; step < 5; step++) {
        wb_graph_reset(g);
        assert_int_equal(g->n_tape, 0);
        wb_tensor *x = wb_leaf(g, 1, &n, xv, 1);
        wb_tensor *loss = wb_mean(g, wb_square(g, wb_silu(g, x)));
        assert_true(g->n_tape > 0);
        assert_int_equal(wb_backward(g, loss, NULL), 0);
        wb_grad_to_host(x, now);
        if (step == 0) {
            memcpy(first, now, sizeof first);
            bytes_after_first = wb_graph_arena_bytes(g);
        } else {
            assert_memory_equal(first, now, sizeof first);
            assert_int_equal(wb_graph_arena_bytes(g), bytes_after_first);
        }
    }
    wb_graph_free(g);
}

static void test_grad_mode_off(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float xv[3] = {1, 2, 3};
    int64_t n = 3;
    wb_tensor *x = wb_leaf(g, 1, &n, xv, 1);
    wb_graph_set_grad(g, 0);
    assert_int_equal(wb_graph_grad_enabled(g), 0);
    wb_tensor *y = wb_sum(g, wb_mul(g, wb_exp(g, x), x));
    assert_non_null(y);
    assert_int_equal(y->requires_grad, 0);
    assert_null(y->node);
    assert_int_equal(g->n_tape, 0);
    assert_int_not_equal(wb_backward(g, y, NULL), 0);
    wb_graph_set_grad(g, 1);
    wb_tensor *z = wb_sum(g, wb_exp(g, x));
    assert_int_equal(z->requires_grad, 1);
    assert_int_equal(g->n_tape, 2);
    wb_graph_free(g);
}

/* detach: same values, no tape, no requires_grad; a loss reachable only
 * through it cannot be differentiated. */
static void test_detach_stops_gradient(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float xv[3] = {1, -2, 3};
    int64_t n = 3;
    wb_tensor *x = wb_leaf(g, 1, &n, xv, 1);
    wb_tensor *d = wb_detach(g, wb_exp(g, x));
    assert_int_equal(d->requires_grad, 0);
    assert_null(d->node);
    float dv[3];
    wb_to_host(d, dv);
    for (int i = 0; i < 3; i++) assert_float_equal(dv[i], expf(xv[i]), 1e-6f * dv[i]);
    assert_int_not_equal(wb_backward(g, wb_sum(g, d), NULL), 0);
    assert_non_null(strstr(wb_last_error(), "require"));
    wb_graph_free(g);
}

static void test_backward_errors(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t n = 3;
    const float xv[3] = {1, 2, 3};
    assert_int_not_equal(wb_backward(g, NULL, NULL), 0);
    assert_non_null(strstr(wb_last_error(), "NULL"));

    wb_tensor *x = wb_leaf(g, 1, &n, xv, 1);
    assert_int_not_equal(wb_backward(g, wb_exp(g, x), NULL), 0); /* 3 elements, no seed */
    assert_non_null(strstr(wb_last_error(), "seed"));

    wb_tensor *c = wb_leaf(g, 1, &n, xv, 0);
    assert_int_not_equal(wb_backward(g, wb_sum(g, c), NULL), 0);
    assert_non_null(strstr(wb_last_error(), "require"));
    wb_graph_free(g);
}

/* Every shape check returns NULL and names its op; NULL inputs propagate. */
static void test_shape_errors(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t s43[2] = {4, 3}, s42[2] = {4, 2}, s34[2] = {3, 4}, s53[2] = {5, 3}, s5 = 5, s4 = 4;
    int64_t s2342[4] = {2, 3, 4, 2};
    wb_tensor *a = wb_zeros(g, 2, s43), *b = wb_zeros(g, 2, s42), *c = wb_zeros(g, 2, s34);
    wb_tensor *d = wb_zeros(g, 2, s53), *v5 = wb_zeros(g, 1, &s5), *v4 = wb_zeros(g, 1, &s4);
    wb_tensor *img = wb_zeros(g, 4, s2342);
    /* The message is read right after each call: the next one overwrites it. */
#define EXPECT_ERR(opname, call)                                                                        \
    do {                                                                                                \
        wb_clear_error();                                                                               \
        wb_tensor *r_ = (call);                                                                         \
        if (r_) fail_msg("%s: mismatched shapes accepted", #call);                                      \
        if (!strstr(wb_last_error(), opname)) fail_msg("%s: message '%s' does not name '%s'", #call,    \
                                                       wb_last_error(), opname);                        \
    } while (0)
    EXPECT_ERR("linear", wb_linear(g, a, b, NULL));
    EXPECT_ERR("linear", wb_linear(g, a, c, v5));
    EXPECT_ERR("matmul", wb_matmul(g, a, a));
    EXPECT_ERR("add", wb_add(g, a, b));
    EXPECT_ERR("sub", wb_sub(g, a, v5));
    EXPECT_ERR("mul", wb_mul(g, a, d));
    EXPECT_ERR("div", wb_div(g, a, c));
    EXPECT_ERR("concat", wb_concat(g, a, d));
    EXPECT_ERR("concat", wb_concat(g, a, v4));
    EXPECT_ERR("concat", wb_concat(g, img, a));
    EXPECT_ERR("slice1", wb_slice1(g, a, 2, 2));
    EXPECT_ERR("slice1", wb_slice1(g, a, -1, 1));
    EXPECT_ERR("slice1", wb_slice1(g, v4, 0, 1));
    EXPECT_ERR("reshape", wb_reshape(g, a, 1, &s5));
    EXPECT_ERR("sinusoidal", wb_sinusoidal(g, v4, 7, 10000.0f));
    EXPECT_ERR("mse", wb_mse(g, a, c));
    EXPECT_ERR("bce_logits", wb_bce_logits(g, a, v5));
#undef EXPECT_ERR

    /* NULL in, NULL out, for every op: a chain is checked once at its end. */
    wb_tensor *z = NULL;
    int64_t s1 = 1;
    assert_null(wb_linear(g, z, a, NULL));
    assert_null(wb_linear(g, a, z, NULL));
    assert_null(wb_matmul(g, z, a));
    assert_null(wb_add(g, z, a));
    assert_null(wb_sub(g, a, z));
    assert_null(wb_mul(g, z, a));
    assert_null(wb_div(g, a, z));
    assert_null(wb_scale(g, z, 2.0f));
    assert_null(wb_add_scalar(g, z, 2.0f));
    assert_null(wb_exp(g, z));
    assert_null(wb_log(g, z));
    assert_null(wb_sigmoid(g, z));
    assert_null(wb_softplus(g, z));
    assert_null(wb_logsigmoid(g, z));
    assert_null(wb_silu(g, z));
    assert_null(wb_tanh(g, z));
    assert_null(wb_relu(g, z));
    assert_null(wb_square(g, z));
    assert_null(wb_sqrt(g, z));
    assert_null(wb_concat(g, z, a));
    assert_null(wb_slice1(g, z, 0, 1));
    assert_null(wb_reshape(g, z, 1, &s1));
    assert_null(wb_detach(g, z));
    assert_null(wb_sum(g, z));
    assert_null(wb_mean(g, z));
    assert_null(wb_sum_rows(g, z));
    assert_null(wb_mean_rows(g, z));
    assert_null(wb_sinusoidal(g, z, 4, 10000.0f));
    assert_null(wb_mse(g, z, a));
    assert_null(wb_bce_logits(g, a, z));
    wb_graph_free(g);
}

/* A ratio estimator's logits are (B, 1) and its labels (B): bce_logits must
 * pair them element by element (or refuse), never broadcast them into a
 * (B, B) matrix and average that. */
static void test_bce_logits_column_vs_vector(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float lv[4] = {2.0f, -1.0f, 0.5f, -3.0f}, tv[4] = {1, 0, 1, 0};
    int64_t col[2] = {4, 1}, vec = 4;
    wb_tensor *l = wb_leaf(g, 2, col, lv, 1);
    wb_tensor *t = wb_leaf(g, 1, &vec, tv, 0);
    wb_tensor *loss = wb_bce_logits(g, l, t);
    if (!loss) {
        assert_non_null(strstr(wb_last_error(), "bce_logits"));
    } else {
        double want = 0.0;
        for (int i = 0; i < 4; i++) want += (log1p(exp(-fabs(lv[i]))) + fmax(lv[i], 0.0) - tv[i] * lv[i]) / 4.0;
        assert_int_equal(loss->numel, 1);
        float got;
        wb_to_host(loss, &got);
        if (fabs(got - want) > 1e-6 * fabs(want))
            fail_msg("bce_logits((4,1), (4)) = %.7g, want %.7g (paired element-wise)", got, want);
    }
    wb_graph_free(g);
}

/* ---- weight functions over their whole range ------------------------------------------- */

static long double sigmoid_ld(long double x) { return 1.0L / (1.0L + expl(-x)); }
static long double softplus_ld(long double x) { return x > 0 ? x + log1pl(expl(-x)) : log1pl(expl(x)); }

enum { WF_SIGMOID, WF_SOFTPLUS, WF_LOGSIGMOID, WF_SILU, WF_COUNT };
static const char *const WF_NAME[WF_COUNT] = {"sigmoid", "softplus", "logsigmoid", "silu"};

static long double wf_ref(int f, long double x) {
    switch (f) {
    case WF_SIGMOID: return sigmoid_ld(x);
    case WF_SOFTPLUS: return softplus_ld(x);
    case WF_LOGSIGMOID: return -softplus_ld(-x);
    default: return x * sigmoid_ld(x);
    }
}
static long double wf_dref(int f, long double x) {
    long double s = sigmoid_ld(x);
    switch (f) {
    case WF_SIGMOID: return s * (1.0L - s);
    case WF_SOFTPLUS: return s;
    case WF_LOGSIGMOID: return sigmoid_ld(-x);
    default: return s * (1.0L + x * (1.0L - s));
    }
}
static float wf_header(int f, float x) {
    switch (f) {
    case WF_SIGMOID: return wb_sigmoidf(x);
    case WF_SOFTPLUS: return wb_softplusf(x);
    case WF_LOGSIGMOID: return wb_logsigmoidf(x);
    default: return wb_siluf(x);
    }
}
static wb_tensor *wf_op(wb_graph *g, int f, wb_tensor *x) {
    switch (f) {
    case WF_SIGMOID: return wb_sigmoid(g, x);
    case WF_SOFTPLUS: return wb_softplus(g, x);
    case WF_LOGSIGMOID: return wb_logsigmoid(g, x);
    default: return wb_silu(g, x);
    }
}

/* Finite on [-100, 100] (values and derivatives), and within 2e-6 relative
 * of the long-double closed forms on [-90, 90] — which reaches below e^-87,
 * where sigmoid's polynomial exp must hand over to denormals or 0 correctly.
 * Checked both through the ops (the dispatched CPU build, SIMD included) and
 * through include/wb/elementwise.h directly (what CUDA and plugins use). */
static void test_weight_functions_range(void **state) {
    (void)state;
    const int64_t n = 200 * 64 + 1; /* step 1/64 over [-100, 100] */
    float *xs = malloc((size_t)n * sizeof *xs), *ys = malloc((size_t)n * sizeof *ys);
    float *gs = malloc((size_t)n * sizeof *gs);
    assert_non_null(xs);
    for (int64_t i = 0; i < n; i++) xs[i] = -100.0f + (float)i / 64.0f;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    for (int f = 0; f < WF_COUNT; f++) {
        wb_graph_reset(g);
        wb_tensor *x = wb_leaf(g, 1, &n, xs, 1);
        wb_tensor *y = wf_op(g, f, x);
        assert_int_equal(wb_backward(g, wb_sum(g, y), NULL), 0);
        wb_to_host(y, ys);
        wb_grad_to_host(x, gs);
        double worst = 0.0, worst_x = 0.0;
        for (int64_t i = 0; i < n; i++) {
            float xi = xs[i];
            long double ref = wf_ref(f, xi), dref = wf_dref(f, xi);
            float vals[2] = {ys[i], wf_header(f, xi)};
            for (int v = 0; v < 2; v++) {
                if (!isfinite(vals[v]))
                    fail_msg("%s(%g) = %g (%s) is not finite", WF_NAME[f], xi, vals[v], v ? "header" : "op");
                if (fabsf(xi) <= 90.0f) {
                    double rel = (double)(fabsl((long double)vals[v] - ref) / fabsl(ref));
                    if (rel > worst) {
                        worst = rel;
                        worst_x = xi;
                    }
                    if (rel > 2e-6)
                        fail_msg("%s(%g) (%s) = %.9g, closed form %.9Lg: relative error %.3g > 2e-6",
                                 WF_NAME[f], xi, v ? "header" : "op", vals[v], ref, rel);
                }
            }
            if (!isfinite(gs[i])) fail_msg("%s'(%g) = %g is not finite", WF_NAME[f], xi, gs[i]);
            /* Derivatives come from y (σ(1-σ) loses relative accuracy in the
             * far tail, as torch's does), so they are held absolutely. */
            if (fabsl((long double)gs[i] - dref) > 1e-6L)
                fail_msg("%s'(%g) = %.9g, closed form %.9Lg", WF_NAME[f], xi, gs[i], dref);
        }
        print_message("%-10s worst relative error on [-90, 90]: %.3g at x = %g\n", WF_NAME[f], worst, worst_x);
    }
    wb_graph_free(g);
    free(xs);
    free(ys);
    free(gs);
}

/* The polynomial exp itself, where it claims 2e-7 (plus the final float
 * rounding of its result). */
static void test_exp_nonpos(void **state) {
    (void)state;
    double worst = 0.0;
    for (int i = 0; i <= 87 * 256; i++) {
        float x = -(float)i / 256.0f;
        double rel = (double)(fabsl((long double)wb_exp_nonpos(x) - expl(x)) / expl(x));
        if (rel > worst) worst = rel;
        if (rel > 3e-7) fail_msg("wb_exp_nonpos(%g) relative error %.3g", x, rel);
    }
    assert_true(wb_exp_nonpos(0.0f) == 1.0f);
    /* Below the normal range the result is a denormal or 0, within one
     * denormal spacing of e^x — never a clamped constant. */
    for (int i = 0; i <= 120 * 16; i++) {
        float x = -87.0f - (float)i / 16.0f;
        long double want = expl(x), got = wb_exp_nonpos(x);
        if (!(fabsl(got - want) <= (long double)FLT_TRUE_MIN))
            fail_msg("wb_exp_nonpos(%g) = %.6Lg, e^x = %.6Lg", x, got, want);
    }
    print_message("wb_exp_nonpos worst relative error on [-87, 0]: %.3g\n", worst);
}

/* ---- optimisers, EMA, parameters ------------------------------------------------------------ */

static wb_params *make_store(uint64_t seed) {
    wb_params *ps = wb_params_new(wb_backend_cpu());
    int64_t a = 7, b[2] = {3, 5};
    assert_non_null(wb_params_add(ps, "a", 1, &a, WB_INIT_NORMAL, 1.0f));
    assert_non_null(wb_params_add(ps, "b", 2, b, WB_INIT_UNIFORM_FAN_IN, 1.0f));
    wb_rng rng;
    wb_rng_init(&rng, seed, 0);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    return ps;
}

typedef struct adam_cfg {
    const char *name;
    float lr, beta1, beta2, eps, wd;
    int decoupled;
    float grad_scale; /* small grads make eps matter */
} adam_cfg;

/* torch.optim.Adam/AdamW in double: L2 wd adds wd·p to the gradient, decoupled
 * wd shrinks p by lr·wd first; p -= lr·m̂/(sqrt(v̂)+eps). The hyper-parameters
 * are the float values the library was given. */
static void check_adam(const adam_cfg *cfg, int steps) {
    wb_params *ps = make_store(11);
    wb_adam *opt = wb_adam_new(ps, cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->wd, cfg->decoupled);
    assert_non_null(opt);
    int np = wb_params_count(ps);
    int64_t total = 0;
    for (int i = 0; i < np; i++) total += wb_params_at(ps, i)->numel;
    double *p = calloc((size_t)total, sizeof *p), *m = calloc((size_t)total, sizeof *m);
    double *v = calloc((size_t)total, sizeof *v);
    float *gbuf = malloc((size_t)total * sizeof *gbuf);
    assert_non_null(gbuf);
    for (int i = 0, o = 0; i < np; i++) {
        wb_tensor *t = wb_params_at(ps, i);
        for (int64_t j = 0; j < t->numel; j++) p[o++] = t->data[j];
    }
    wb_rng rng;
    wb_rng_init(&rng, 12, 0);
    double b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps, wd = cfg->wd;
    for (int step = 1; step <= steps; step++) {
        double lr = cfg->lr;
        if (step == steps && steps > 1) { /* a schedule changes lr between steps */
            lr = cfg->lr * 0.5f;
            wb_adam_set_lr(opt, cfg->lr * 0.5f);
        }
        wb_rng_normal(&rng, gbuf, total);
        for (int i = 0, o = 0; i < np; i++) {
            wb_tensor *t = wb_params_at(ps, i);
            for (int64_t j = 0; j < t->numel; j++, o++) t->grad[j] = gbuf[o] * cfg->grad_scale;
        }
        assert_int_equal(wb_adam_step(opt), 0);
        double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
        for (int64_t o = 0; o < total; o++) {
            double gr = (double)(gbuf[o] * cfg->grad_scale);
            if (cfg->decoupled) p[o] -= lr * wd * p[o];
            else gr += wd * p[o];
            m[o] = b1 * m[o] + (1.0 - b1) * gr;
            v[o] = b2 * v[o] + (1.0 - b2) * gr * gr;
            p[o] -= lr * (m[o] / bc1) / (sqrt(v[o] / bc2) + eps);
        }
        /* float p is rounded every step (≤ 6e-8·|p| each); the update itself
         * carries float error ~1e-6 of lr. A wrong bias correction, eps
         * placement or decay rule is off by ≥ 1e-3·lr. */
        for (int i = 0, o = 0; i < np; i++) {
            wb_tensor *t = wb_params_at(ps, i);
            for (int64_t j = 0; j < t->numel; j++, o++) {
                double tol = 2e-5 * cfg->lr * step + 2e-7 * step * fabs(p[o]);
                if (fabs(t->data[j] - p[o]) > tol)
                    fail_msg("%s step %d: %s[%lld] = %.9g, reference %.9g", cfg->name, step,
                             wb_params_at(ps, i)->name, (long long)j, t->data[j], p[o]);
            }
        }
    }
    /* The optimiser leaves the gradients alone ("uses and keeps"). */
    for (int i = 0, o = 0; i < np; i++) {
        wb_tensor *t = wb_params_at(ps, i);
        for (int64_t j = 0; j < t->numel; j++, o++) assert_true(t->grad[j] == gbuf[o] * cfg->grad_scale);
    }
    wb_adam_free(opt);
    wb_params_free(ps);
    free(p);
    free(m);
    free(v);
    free(gbuf);
}

static const adam_cfg ADAM_CFGS[] = {
    {"adam", 1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, 0, 1.0f},
    {"adam_l2", 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0, 1.0f},
    {"adamw", 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 1.0f},
    {"adam_big_eps", 1e-2f, 0.8f, 0.99f, 1e-3f, 0.0f, 0, 1e-3f},
    {"adamw_big_eps", 3e-2f, 0.5f, 0.9f, 1e-3f, 0.05f, 1, 2e-3f},
};

static void test_adam_one_step(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof ADAM_CFGS / sizeof ADAM_CFGS[0]; i++) check_adam(&ADAM_CFGS[i], 1);
}

static void test_adam_multi_step(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof ADAM_CFGS / sizeof ADAM_CFGS[0]; i++) check_adam(&ADAM_CFGS[i], 12);
}

static void test_ema(void **state) {
    (void)state;
    wb_params *ps = make_store(3);
    wb_params *ema = wb_params_clone(ps);
    assert_non_null(ema);
    int64_t n = wb_params_numel(ps);
    float *before = malloc((size_t)n * sizeof *before);
    memcpy(before, wb_params_data(ema), (size_t)n * sizeof *before);
    for (int64_t i = 0; i < n; i++) wb_params_data(ps)[i] = 2.0f * wb_params_data(ps)[i] + 1.0f;
    for (int rep = 0; rep < 3; rep++) {
        assert_int_equal(wb_ema_update(ema, ps, 0.9f), 0);
        for (int64_t i = 0; i < n; i++) {
            float want = 0.9f * before[i] + (1.0f - 0.9f) * wb_params_data(ps)[i];
            assert_float_equal(wb_params_data(ema)[i], want, 1e-6f * (1.0f + fabsf(want)));
            before[i] = wb_params_data(ema)[i];
        }
    }
    /* decay 1 freezes, decay 0 copies */
    assert_int_equal(wb_ema_update(ema, ps, 1.0f), 0);
    assert_memory_equal(wb_params_data(ema), before, (size_t)n * sizeof *before);
    assert_int_equal(wb_ema_update(ema, ps, 0.0f), 0);
    assert_memory_equal(wb_params_data(ema), wb_params_data(ps), (size_t)n * sizeof(float));

    wb_params *other = wb_params_new(wb_backend_cpu());
    int64_t s = 100;
    wb_params_add(other, "x", 1, &s, WB_INIT_ZEROS, 0);
    wb_rng rng;
    wb_rng_init(&rng, 0, 0);
    wb_params_finalize(other, &rng);
    assert_int_not_equal(wb_ema_update(other, ps, 0.5f), 0);
    free(before);
    wb_params_free(other);
    wb_params_free(ema);
    wb_params_free(ps);
}

static void test_params_init(void **state) {
    (void)state;
    wb_params *a = make_store(42), *b = make_store(42), *c = make_store(43);
    int64_t n = wb_params_numel(a);
    assert_memory_equal(wb_params_data(a), wb_params_data(b), (size_t)n * sizeof(float));
    assert_memory_not_equal(wb_params_data(a), wb_params_data(c), (size_t)n * sizeof(float));
    /* U(-1/sqrt(fan_in), +) for "b" (fan_in 5); grads start at zero */
    wb_tensor *bt = wb_params_find(a, "b");
    assert_non_null(bt);
    float bound = 1.0f / sqrtf(5.0f);
    for (int64_t i = 0; i < bt->numel; i++) assert_true(fabsf(bt->data[i]) <= bound);
    for (int64_t i = 0; i < n; i++) assert_true(wb_params_grad(a)[i] == 0.0f);
    assert_null(wb_params_find(a, "nope"));
    wb_params_free(a);
    wb_params_free(b);
    wb_params_free(c);
}

static wb_params *store2(const char *n1, int64_t s1, const char *n2, int64_t s2, uint64_t seed) {
    wb_params *ps = wb_params_new(wb_backend_cpu());
    assert_non_null(wb_params_add(ps, n1, 1, &s1, WB_INIT_NORMAL, 1.0f));
    assert_non_null(wb_params_add(ps, n2, 1, &s2, WB_INIT_NORMAL, 1.0f));
    wb_rng rng;
    wb_rng_init(&rng, seed, 0);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    return ps;
}

static void test_params_copy(void **state) {
    (void)state;
    wb_params *dst = store2("enc.w", 4, "enc.b", 2, 1);
    int64_t n = wb_params_numel(dst);
    float *orig = malloc((size_t)n * sizeof *orig);
    memcpy(orig, wb_params_data(dst), (size_t)n * sizeof *orig);

    wb_params *missing = store2("enc.w", 4, "dec.b", 2, 2);
    assert_int_not_equal(wb_params_copy(dst, missing), 0);
    assert_non_null(strstr(wb_last_error(), "enc.b"));
    assert_memory_equal(wb_params_data(dst), orig, (size_t)n * sizeof *orig); /* untouched */

    wb_params *shape = store2("enc.w", 4, "enc.b", 3, 3);
    assert_int_not_equal(wb_params_copy(dst, shape), 0);
    assert_non_null(strstr(wb_last_error(), "enc.b"));
    assert_memory_equal(wb_params_data(dst), orig, (size_t)n * sizeof *orig);

    /* same keys in another declaration order: copied by name */
    wb_params *swapped = store2("enc.b", 2, "enc.w", 4, 4);
    assert_int_equal(wb_params_copy(dst, swapped), 0);
    assert_memory_equal(wb_params_find(dst, "enc.w")->data, wb_params_find(swapped, "enc.w")->data,
                        4 * sizeof(float));
    assert_memory_equal(wb_params_find(dst, "enc.b")->data, wb_params_find(swapped, "enc.b")->data,
                        2 * sizeof(float));
    free(orig);
    wb_params_free(dst);
    wb_params_free(missing);
    wb_params_free(shape);
    wb_params_free(swapped);
}

static void test_params_clone(void **state) {
    (void)state;
    wb_params *src = make_store(5);
    wb_params *cl = wb_params_clone(src);
    assert_non_null(cl);
    assert_int_equal(wb_params_count(cl), wb_params_count(src));
    for (int i = 0; i < wb_params_count(src); i++) {
        wb_tensor *s = wb_params_at(src, i), *c = wb_params_at(cl, i);
        assert_string_equal(s->name, c->name);
        assert_true(wb_same_shape(s, c));
        assert_ptr_not_equal(s->data, c->data);
        assert_memory_equal(s->data, c->data, (size_t)s->numel * sizeof(float));
    }
    float keep = wb_params_data(src)[0];
    wb_params_data(cl)[0] += 1.0f; /* independent storage */
    assert_true(wb_params_data(src)[0] == keep);
    wb_params_free(src); /* the clone outlives its source */
    assert_true(wb_params_data(cl)[0] == keep + 1.0f);
    wb_params_free(cl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_has_a_case),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_used_twice_accumulates),
        cmocka_unit_test(test_second_backward),
        cmocka_unit_test(test_grad_recycling),
        cmocka_unit_test(test_memory_scopes),
        cmocka_unit_test(test_seeded_backward),
        cmocka_unit_test(test_graph_reset),
        cmocka_unit_test(test_grad_mode_off),
        cmocka_unit_test(test_detach_stops_gradient),
        cmocka_unit_test(test_backward_errors),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_bce_logits_column_vs_vector),
        cmocka_unit_test(test_weight_functions_range),
        cmocka_unit_test(test_exp_nonpos),
        cmocka_unit_test(test_adam_one_step),
        cmocka_unit_test(test_adam_multi_step),
        cmocka_unit_test(test_ema),
        cmocka_unit_test(test_params_init),
        cmocka_unit_test(test_params_copy),
        cmocka_unit_test(test_params_clone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
