/* tests/op_cases.h — the table of op cases shared by test_ops_grad.c (finite
 * differences) and test_ops_torch.c (torch reference), so both tests check
 * the same ops on the same shapes and a new op is added in one place.
 *
 * A case is: the op it exercises (the key tests/torch_ops.py dispatches on),
 * its inputs (shape, value domain, whether the gradient is checked), up to
 * two scalars, and a function that builds the op from wb_tensor inputs.
 * Inputs are drawn from a Philox stream fixed by the case index, so every
 * run and both tests see the same numbers.
 */
#ifndef WB_TEST_OP_CASES_H
#define WB_TEST_OP_CASES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "wb/tensor.h"

#define OPC_MAX_IN 6

/* Value domains: chosen so each op is smooth around every input (finite
 * differences must not cross a kink or leave the domain). */
enum {
    DOM_NORMAL = 0, /* N(0, 1)                                               */
    DOM_WIDE,       /* 4·N(0, 1): reaches both tails of sigmoid-like ops     */
    DOM_POS,        /* U[0.5, 2]: log, sqrt, divisors                         */
    DOM_AWAY,       /* ±U[0.25, 2]: relu without its kink                     */
    DOM_UNIT,       /* U[0, 1]: BCE targets                                   */
};

/* Gradient expectation of one input. */
enum {
    GRAD_NO = 0, /* input does not require grad                               */
    GRAD_YES,    /* requires grad; checked against FD / torch                 */
    GRAD_ZERO,   /* requires grad but sits behind a detach: must stay exactly 0 */
};

typedef struct opc_input {
    int ndim;
    int64_t shape[4];
    int domain;
    int grad;
} opc_input;

typedef wb_tensor *(*opc_fn)(wb_graph *g, wb_tensor **x, const float *p);

typedef struct op_case {
    const char *name; /* unique                                                */
    const char *op;   /* tensor.h op name (without wb_) the case covers        */
    int n_in;
    opc_input in[OPC_MAX_IN];
    float p[2];       /* op scalars (alpha, slice start/count, dim/max_period) */
    opc_fn fn;
    double torch_tol; /* max relative error against torch (output and grads)   */
} op_case;

/* ---- builders ------------------------------------------------------------- */
static wb_tensor *opc_linear(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_linear(g, x[0], x[1], x[2]); }
static wb_tensor *opc_matmul(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_matmul(g, x[0], x[1]); }
static wb_tensor *opc_add(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_add(g, x[0], x[1]); }
static wb_tensor *opc_sub(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_sub(g, x[0], x[1]); }
static wb_tensor *opc_mul(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_mul(g, x[0], x[1]); }
static wb_tensor *opc_div(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_div(g, x[0], x[1]); }
static wb_tensor *opc_scale(wb_graph *g, wb_tensor **x, const float *p) { return wb_scale(g, x[0], p[0]); }
static wb_tensor *opc_add_scalar(wb_graph *g, wb_tensor **x, const float *p) { return wb_add_scalar(g, x[0], p[0]); }
static wb_tensor *opc_exp(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_exp(g, x[0]); }
static wb_tensor *opc_log(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_log(g, x[0]); }
static wb_tensor *opc_sigmoid(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_sigmoid(g, x[0]); }
static wb_tensor *opc_softplus(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_softplus(g, x[0]); }
static wb_tensor *opc_logsigmoid(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_logsigmoid(g, x[0]); }
static wb_tensor *opc_silu(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_silu(g, x[0]); }
static wb_tensor *opc_tanh(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_tanh(g, x[0]); }
static wb_tensor *opc_relu(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_relu(g, x[0]); }
static wb_tensor *opc_square(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_square(g, x[0]); }
static wb_tensor *opc_sqrt(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_sqrt(g, x[0]); }
static wb_tensor *opc_concat(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_concat(g, x[0], x[1]); }
static wb_tensor *opc_slice1(wb_graph *g, wb_tensor **x, const float *p) {
    return wb_slice1(g, x[0], (int64_t)p[0], (int64_t)p[1]);
}
/* (d0, d1, rest...) -> (d0·d1, rest): the torch script reshapes to the shape
 * this produced, and test_ops_grad checks that shape by hand. */
static wb_tensor *opc_reshape(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    if (!x[0]) return NULL;
    int64_t lead = x[0]->shape[0] * x[0]->shape[1];
    int64_t shape[2] = {lead, x[0]->numel / lead};
    return wb_reshape(g, x[0], 2, shape);
}
/* detach(x)·z: z's gradient must flow (it is x's value), x's must not. */
static wb_tensor *opc_detach(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    return wb_mul(g, wb_detach(g, x[0]), x[1]);
}
static wb_tensor *opc_sum(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_sum(g, x[0]); }
static wb_tensor *opc_mean(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_mean(g, x[0]); }
static wb_tensor *opc_sum_rows(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_sum_rows(g, x[0]); }
static wb_tensor *opc_mean_rows(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_mean_rows(g, x[0]); }
static wb_tensor *opc_sinusoidal(wb_graph *g, wb_tensor **x, const float *p) {
    return wb_sinusoidal(g, x[0], (int)p[0], p[1]);
}
static wb_tensor *opc_mse(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_mse(g, x[0], x[1]); }
static wb_tensor *opc_bce(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_bce_logits(g, x[0], x[1]); }
/* The smallest real network: mse(linear(silu(linear(x, W1, b1)), W2, b2), y). */
static wb_tensor *opc_mlp(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    wb_tensor *h = wb_silu(g, wb_linear(g, x[0], x[1], x[2]));
    return wb_mse(g, wb_linear(g, h, x[3], x[4]), x[5]);
}

/* ---- diffusion ops (host/core/ops_diffusion.c) ------------------------------------ */
static wb_tensor *opc_cat0(wb_graph *g, wb_tensor **x, const float *p) { (void)p; return wb_cat0(g, x[0], x[1]); }
static wb_tensor *opc_add_noise(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    return wb_add_noise(g, x[0], x[1], x[2]);
}
/* All four coefficients in one output: c_skip·a + c_out·b + c_in·a + c_noise. */
static wb_tensor *opc_edm_precond(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    wb_edm_coefs c;
    if (wb_edm_precond(g, x[0], x[1]->ndim, 0.5f, &c)) return NULL;
    wb_tensor *y = wb_add(g, wb_mul(g, c.c_skip, x[1]), wb_mul(g, c.c_out, x[2]));
    y = wb_add(g, y, wb_mul(g, c.c_in, x[1]));
    return wb_add(g, y, wb_per_sample(g, c.c_noise, x[1]->ndim));
}
static wb_tensor *opc_edm_loss_weight(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    return wb_edm_loss_weight(g, x[0], 2, 0.5f);
}
static wb_tensor *opc_dmd_weight(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    return wb_dmd_weight(g, x[0], x[1], x[2]);
}
/* w_s, d_fake, d_teacher, σ, w_l, ∇_x l, with σ² time weighting */
static wb_tensor *opc_distill_grad(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    return wb_distill_grad(g, x[0], x[1], x[2], x[3], x[4], x[5], wb_square(g, x[3]));
}
/* score-free: d_teacher, σ, w_l, ∇_x l, tw */
static wb_tensor *opc_distill_grad_sf(wb_graph *g, wb_tensor **x, const float *p) {
    (void)p;
    return wb_distill_grad(g, NULL, NULL, x[0], x[1], x[2], x[3], x[4]);
}

/* ---- the table ---------------------------------------------------------------- */
#define T1(a, dom, gr) {1, {a}, dom, gr}
#define T2(a, b, dom, gr) {2, {a, b}, dom, gr}
#define T3(a, b, c, dom, gr) {3, {a, b, c}, dom, gr}
#define T4(a, b, c, d, dom, gr) {4, {a, b, c, d}, dom, gr}
#define N_ DOM_NORMAL
#define Y_ GRAD_YES

/* The broadcast shapes every binary op is checked on: same shape, a row
 * vector, a column, a 3-D tensor against a (3, 1) block, a scalar, and an
 * outer product where both sides broadcast. b is positive for div. */
#define OPC_BINARY(opname, bdom)                                                                    \
    {#opname "_same", #opname, 2, {T2(4, 3, N_, Y_), T2(4, 3, bdom, Y_)}, {0, 0}, opc_##opname, 1e-5}, \
    {#opname "_row", #opname, 2, {T2(4, 3, N_, Y_), T1(3, bdom, Y_)}, {0, 0}, opc_##opname, 1e-5},    \
    {#opname "_col", #opname, 2, {T2(4, 3, N_, Y_), T2(4, 1, bdom, Y_)}, {0, 0}, opc_##opname, 1e-5}, \
    {#opname "_3d", #opname, 2, {T3(2, 3, 4, N_, Y_), T2(3, 1, bdom, Y_)}, {0, 0}, opc_##opname, 1e-5}, \
    {#opname "_by_scalar", #opname, 2, {T2(4, 3, N_, Y_), T1(1, bdom, Y_)}, {0, 0}, opc_##opname, 1e-5}, \
    {#opname "_outer", #opname, 2, {T2(4, 1, N_, Y_), T1(3, bdom, Y_)}, {0, 0}, opc_##opname, 1e-5}

#define OPC_UNARY(opname, dom, alpha) \
    {#opname, #opname, 1, {T3(2, 3, 5, dom, Y_)}, {alpha, 0}, opc_##opname, 1e-5}

static const op_case OP_CASES[] = {
    {"linear_bias", "linear", 3, {T2(5, 4, N_, Y_), T2(3, 4, N_, Y_), T1(3, N_, Y_)}, {0, 0}, opc_linear, 1e-4},
    {"linear_nobias", "linear", 2, {T2(5, 4, N_, Y_), T2(3, 4, N_, Y_)}, {0, 0}, opc_linear, 1e-4},
    {"matmul", "matmul", 2, {T2(4, 5, N_, Y_), T2(5, 3, N_, Y_)}, {0, 0}, opc_matmul, 1e-4},
    OPC_BINARY(add, DOM_NORMAL),
    OPC_BINARY(sub, DOM_NORMAL),
    OPC_BINARY(mul, DOM_NORMAL),
    OPC_BINARY(div, DOM_POS),
    OPC_UNARY(scale, DOM_NORMAL, -1.75f),
    OPC_UNARY(add_scalar, DOM_NORMAL, 0.375f),
    OPC_UNARY(exp, DOM_NORMAL, 0),
    OPC_UNARY(log, DOM_POS, 0),
    OPC_UNARY(sigmoid, DOM_WIDE, 0),
    OPC_UNARY(softplus, DOM_WIDE, 0),
    OPC_UNARY(logsigmoid, DOM_WIDE, 0),
    OPC_UNARY(silu, DOM_WIDE, 0),
    OPC_UNARY(tanh, DOM_NORMAL, 0),
    OPC_UNARY(relu, DOM_AWAY, 0),
    OPC_UNARY(square, DOM_NORMAL, 0),
    OPC_UNARY(sqrt, DOM_POS, 0),
    {"concat_2d", "concat", 2, {T2(3, 2, N_, Y_), T2(3, 4, N_, Y_)}, {0, 0}, opc_concat, 1e-5},
    {"concat_4d", "concat", 2, {T4(2, 3, 2, 2, N_, Y_), T4(2, 1, 2, 2, N_, Y_)}, {0, 0}, opc_concat, 1e-5},
    {"slice1_2d", "slice1", 1, {T2(3, 6, N_, Y_)}, {1, 3}, opc_slice1, 1e-5},
    {"slice1_4d", "slice1", 1, {T4(2, 4, 2, 3, N_, Y_)}, {1, 2}, opc_slice1, 1e-5},
    {"reshape", "reshape", 1, {T3(2, 3, 4, N_, Y_)}, {0, 0}, opc_reshape, 1e-5},
    {"detach", "detach", 2, {T2(4, 3, N_, GRAD_ZERO), T2(4, 3, N_, Y_)}, {0, 0}, opc_detach, 1e-5},
    {"sum", "sum", 1, {T2(3, 4, N_, Y_)}, {0, 0}, opc_sum, 1e-5},
    {"mean", "mean", 1, {T3(2, 3, 4, N_, Y_)}, {0, 0}, opc_mean, 1e-5},
    {"sum_rows", "sum_rows", 1, {T3(3, 2, 4, N_, Y_)}, {0, 0}, opc_sum_rows, 1e-5},
    {"mean_rows", "mean_rows", 1, {T2(4, 5, N_, Y_)}, {0, 0}, opc_mean_rows, 1e-5},
    {"sinusoidal", "sinusoidal", 1, {T1(5, N_, Y_)}, {16, 10000}, opc_sinusoidal, 1e-5},
    {"mse", "mse", 2, {T2(4, 3, N_, Y_), T2(4, 3, N_, Y_)}, {0, 0}, opc_mse, 1e-5},
    {"bce_logits", "bce_logits", 2, {T1(6, DOM_WIDE, Y_), T1(6, DOM_UNIT, Y_)}, {0, 0}, opc_bce, 1e-5},
    {"bce_logits_2d", "bce_logits", 2, {T2(4, 2, DOM_WIDE, Y_), T2(4, 2, DOM_UNIT, Y_)}, {0, 0}, opc_bce, 1e-5},
    /* (B, 1) logits with (B) targets: paired element-wise, as torch's
     * bce_with_logits(l, t.reshape(l.shape)) */
    {"bce_logits_col", "bce_logits", 2, {T2(5, 1, DOM_WIDE, Y_), T1(5, DOM_UNIT, Y_)}, {0, 0}, opc_bce, 1e-5},
    {"cat0_2d", "cat0", 2, {T2(2, 3, N_, Y_), T2(3, 3, N_, Y_)}, {0, 0}, opc_cat0, 1e-5},
    {"cat0_4d", "cat0", 2, {T4(1, 2, 2, 2, N_, Y_), T4(2, 2, 2, 2, N_, Y_)}, {0, 0}, opc_cat0, 1e-5},
    {"add_noise_2d", "add_noise", 3, {T2(4, 3, N_, Y_), T1(4, DOM_POS, Y_), T2(4, 3, N_, Y_)}, {0, 0}, opc_add_noise, 1e-5},
    {"add_noise_4d", "add_noise", 3, {T4(2, 3, 2, 2, N_, Y_), T1(2, DOM_POS, Y_), T4(2, 3, 2, 2, N_, Y_)}, {0, 0},
     opc_add_noise, 1e-5},
    {"edm_precond_2d", "edm_precond", 3, {T1(4, DOM_POS, Y_), T2(4, 3, N_, Y_), T2(4, 3, N_, Y_)}, {0, 0},
     opc_edm_precond, 1e-5},
    {"edm_precond_4d", "edm_precond", 3, {T1(2, DOM_POS, Y_), T4(2, 2, 2, 2, N_, Y_), T4(2, 2, 2, 2, N_, Y_)}, {0, 0},
     opc_edm_precond, 1e-5},
    {"edm_loss_weight", "edm_loss_weight", 1, {T1(5, DOM_POS, Y_)}, {0, 0}, opc_edm_loss_weight, 1e-5},
    {"dmd_weight", "dmd_weight", 3, {T2(4, 5, N_, Y_), T2(4, 5, N_, Y_), T1(4, DOM_POS, Y_)}, {0, 0}, opc_dmd_weight, 1e-5},
    {"distill_grad", "distill_grad", 6,
     {T1(4, DOM_POS, Y_), T2(4, 3, N_, Y_), T2(4, 3, N_, Y_), T1(4, DOM_POS, Y_), T1(4, N_, Y_), T2(4, 3, N_, Y_)},
     {0, 0}, opc_distill_grad, 1e-5},
    {"distill_grad_score_free", "distill_grad", 5,
     {T4(2, 1, 2, 2, N_, GRAD_NO), T1(2, DOM_POS, GRAD_NO), T1(2, N_, Y_), T4(2, 1, 2, 2, N_, Y_), T1(2, DOM_POS, Y_)},
     {0, 0}, opc_distill_grad_sf, 1e-5},
    {"mlp", "mlp", 6,
     {T2(8, 4, N_, Y_), T2(16, 4, N_, Y_), T1(16, N_, Y_), T2(3, 16, N_, Y_), T1(3, N_, Y_),
      T2(8, 3, N_, GRAD_NO)},
     {0, 0}, opc_mlp, 1e-4},
};
#define OPC_COUNT ((int)(sizeof OP_CASES / sizeof OP_CASES[0]))

#undef T1
#undef T2
#undef T3
#undef T4
#undef N_
#undef Y_

/* Every op tensor.h declares; each must be covered by at least one case. */
static const char *const OPC_ALL_OPS[] = {
    "linear", "matmul", "add", "sub", "mul", "div", "scale", "add_scalar", "exp", "log",
    "sigmoid", "softplus", "logsigmoid", "silu", "tanh", "relu", "square", "sqrt", "concat",
    "slice1", "reshape", "detach", "sum", "mean", "sum_rows", "mean_rows", "sinusoidal", "mse",
    "bce_logits", "cat0", "add_noise", "edm_precond", "edm_loss_weight", "dmd_weight", "distill_grad",
};
#define OPC_ALL_OPS_COUNT ((int)(sizeof OPC_ALL_OPS / sizeof OPC_ALL_OPS[0]))

static inline int64_t opc_numel(const opc_input *in) {
    int64_t n = 1;
    for (int d = 0; d < in->ndim; d++) n *= in->shape[d];
    return n;
}

/* Fill input k of case c (host memory, opc_numel floats). */
static inline void opc_fill_input(int case_index, int k, float *out) {
    const opc_input *in = &OP_CASES[case_index].in[k];
    int64_t n = opc_numel(in);
    wb_rng rng;
    wb_rng_init(&rng, 0x5eed0000u + (uint64_t)case_index, (uint64_t)k);
    switch (in->domain) {
    case DOM_NORMAL: wb_rng_normal(&rng, out, n); break;
    case DOM_WIDE:
        wb_rng_normal(&rng, out, n);
        for (int64_t i = 0; i < n; i++) out[i] *= 4.0f;
        break;
    case DOM_POS:
        wb_rng_uniform(&rng, out, n);
        for (int64_t i = 0; i < n; i++) out[i] = 0.5f + 1.5f * out[i];
        break;
    case DOM_AWAY:
        wb_rng_uniform(&rng, out, n);
        for (int64_t i = 0; i < n; i++) {
            /* u < 1/2 picks the sign, 2u mod 1 (uniform again) the size */
            float u = out[i];
            float mag = 0.25f + 1.75f * fmodf(u * 2.0f, 1.0f);
            out[i] = u < 0.5f ? -mag : mag;
        }
        break;
    default: wb_rng_uniform(&rng, out, n); break;
    }
}

/* Loss weights w for an output of n elements: ±U[0.5, 1.5], so every output
 * element matters and none is weighted near zero. */
static inline void opc_fill_weights(int case_index, int64_t n, float *out) {
    wb_rng rng;
    wb_rng_init(&rng, 0x5eed0000u + (uint64_t)case_index, 99);
    wb_rng_uniform(&rng, out, n);
    for (int64_t i = 0; i < n; i++) {
        float u = out[i];
        float mag = 0.5f + fmodf(u * 2.0f, 1.0f);
        out[i] = u < 0.5f ? -mag : mag;
    }
}

#endif
