/* tests/norm_op_cases.h — the group-norm and softmax case table, shared by
 * test_ops_norm.c (finite differences, torch) and test_backend_ops.c (every
 * backend against the CPU): the cases, their Philox-seeded inputs and loss
 * weights, and the function that builds a case's leaves and op.
 *
 * Shape legend: B batch, C channels, G groups, H, W image dims; softmax
 * normalises the last dim. Include after <cmocka.h>.
 */
#ifndef WB_TEST_NORM_OP_CASES_H
#define WB_TEST_NORM_OP_CASES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "wb/tensor.h"

/* ---- the case table ---------------------------------------------------------- */
enum { NORM_DOM_NORMAL = 0, NORM_DOM_BIG };  /* x ~ N(0,1) (shifted), or ±80 + N(0,1) logits */

typedef struct norm_case {
    const char *name;
    const char *op;     /* "group_norm" or "softmax" (the key torch_ops_norm.py dispatches on) */
    int ndim;
    int64_t shape[4];
    int groups;         /* group_norm only */
    float eps;
    int has_gamma, has_beta;
    int domain;
    double torch_tol;   /* max relative error against torch (output and grads) */
} norm_case;

static const norm_case NORM_CASES[] = {
    {"gn_g1_affine", "group_norm", 4, {2, 4, 3, 3}, 1, 1e-5f, 1, 1, NORM_DOM_NORMAL, 1e-4},
    {"gn_g2_affine", "group_norm", 4, {2, 4, 3, 3}, 2, 1e-5f, 1, 1, NORM_DOM_NORMAL, 1e-4},
    {"gn_gC_affine", "group_norm", 4, {2, 4, 3, 3}, 4, 1e-5f, 1, 1, NORM_DOM_NORMAL, 1e-4},
    {"gn_g1_plain", "group_norm", 4, {2, 4, 3, 3}, 1, 1e-5f, 0, 0, NORM_DOM_NORMAL, 1e-4},
    {"gn_g2_plain", "group_norm", 4, {2, 4, 3, 3}, 2, 1e-5f, 0, 0, NORM_DOM_NORMAL, 1e-4},
    {"gn_gC_plain", "group_norm", 4, {2, 4, 3, 3}, 4, 1e-5f, 0, 0, NORM_DOM_NORMAL, 1e-4},
    {"gn_g2_eps6", "group_norm", 4, {3, 6, 2, 4}, 2, 1e-6f, 1, 1, NORM_DOM_NORMAL, 1e-4},
    {"gn_g3_gamma_only", "group_norm", 3, {2, 6, 5}, 3, 1e-6f, 1, 0, NORM_DOM_NORMAL, 1e-4},
    {"gn_g2_beta_only", "group_norm", 4, {2, 4, 2, 2}, 2, 1e-5f, 0, 1, NORM_DOM_NORMAL, 1e-4},
    {"softmax_2d", "softmax", 2, {3, 7}, 0, 0, 0, 0, NORM_DOM_NORMAL, 1e-5},
    {"softmax_4d", "softmax", 4, {2, 2, 3, 5}, 0, 0, 0, 0, NORM_DOM_NORMAL, 1e-5},
    {"softmax_big", "softmax", 2, {4, 6}, 0, 0, 0, 0, NORM_DOM_BIG, 1e-5},
};
#define NORM_N_CASES ((int)(sizeof NORM_CASES / sizeof NORM_CASES[0]))

static inline int64_t norm_case_numel(const norm_case *c) {
    int64_t n = 1;
    for (int d = 0; d < c->ndim; d++) n *= c->shape[d];
    return n;
}

/* Inputs of case ci in host memory: x (numel), gamma/beta (C); a Philox
 * stream fixed by the case index, so FD and torch see the same numbers. */
static inline void norm_fill_inputs(int ci, float *x, float *gamma, float *beta) {
    const norm_case *c = &NORM_CASES[ci];
    int64_t n = norm_case_numel(c);
    wb_rng rng;
    wb_rng_init(&rng, 0x40e00000u + (uint64_t)ci, 0);
    wb_rng_normal(&rng, x, n);
    for (int64_t i = 0; i < n; i++) {
        if (c->domain == NORM_DOM_BIG) x[i] = (x[i] < 0 ? -80.0f : 80.0f) + 0.5f * x[i];
        else if (strcmp(c->op, "group_norm") == 0) x[i] = 0.75f + 1.5f * x[i]; /* non-zero mean, non-unit spread */
    }
    if (strcmp(c->op, "group_norm") != 0) return;
    int64_t ch = c->shape[1];
    wb_rng_normal(&rng, gamma, ch);
    for (int64_t i = 0; i < ch; i++) gamma[i] = 1.0f + 0.5f * gamma[i];
    wb_rng_normal(&rng, beta, ch);
}

/* Loss weights ±U[0.5, 1.5]: every output element matters. */
static inline void norm_fill_weights(int ci, int64_t n, float *w) {
    wb_rng rng;
    wb_rng_init(&rng, 0x40e00000u + (uint64_t)ci, 99);
    wb_rng_uniform(&rng, w, n);
    for (int64_t i = 0; i < n; i++) {
        float u = w[i], mag = 0.5f + fmodf(u * 2.0f, 1.0f);
        w[i] = u < 0.5f ? -mag : mag;
    }
}

/* Build the case's leaves (x, gamma, beta; absent ones NULL) and its op. */
static inline wb_tensor *norm_build(wb_graph *g, int ci, const float *x, const float *gamma, const float *beta, int rg,
                        wb_tensor **leaf) {
    const norm_case *c = &NORM_CASES[ci];
    leaf[0] = wb_leaf(g, c->ndim, c->shape, x, rg);
    leaf[1] = leaf[2] = NULL;
    assert_non_null(leaf[0]);
    if (strcmp(c->op, "softmax") == 0) return wb_softmax(g, leaf[0]);
    int64_t ch = c->shape[1];
    if (c->has_gamma) leaf[1] = wb_leaf(g, 1, &ch, gamma, rg);
    if (c->has_beta) leaf[2] = wb_leaf(g, 1, &ch, beta, rg);
    return wb_group_norm(g, leaf[0], c->groups, leaf[1], leaf[2], c->eps);
}

#endif
