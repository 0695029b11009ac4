/* host/core/ops_norm.c — the normalisation-style ops of the image section of
 * wb/tensor.h: group normalisation, softmax over the last dimension and
 * inverted dropout. Same pattern as host/core/ops.c: shape checks whose errors
 * name the op, output allocation, arithmetic through the backend vtable,
 * a tape node with the backward rule.
 *
 * Shape legend: B batch, C channels, G groups, HW = product of the dims
 * after C (H·W for NCHW images); softmax sees x as (rows, cols) with cols
 * the last dimension.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

/* ---- helpers (the same contract as host/core/ops.c's private ones; copied so
 * this file does not widen wb_internal.h) ---------------------------------- */

/* ---- group norm ---------------------------------------------------------------- */
/* The node's three inputs are x, γ, β, so the saved statistics (mean and
 * rstd, B·G floats each, one arena block) ride in i[0] as a pointer. */
_Static_assert(sizeof(uintptr_t) <= sizeof(int64_t), "a pointer must fit a node's i[] slot");

static void group_norm_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *y = n->out;
    int64_t b = x->shape[0], c = x->shape[1], groups = n->i[1];
    float *stats = (float *)(uintptr_t)n->i[0];
    float *dx = wb_op_want(x) ? x->grad : NULL, *dg = wb_op_want(gamma) ? gamma->grad : NULL;
    float *db = wb_op_want(beta) ? beta->grad : NULL;
    if (!dx && !dg && !db) return;
    g->be->group_norm_bwd((int)b, (int)c, x->numel / (b * c), (int)groups, x->data,
                          gamma ? gamma->data : NULL, stats, stats + b * groups, y->grad, dx, dg, db);
}

wb_tensor *wb_group_norm(wb_graph *g, wb_tensor *x, int groups, wb_tensor *gamma, wb_tensor *beta, float eps) {
    if (!x) return NULL;
    const char *op = "group_norm";
    if (wb_op_check_backend(g, op, x) || (gamma && wb_op_check_backend(g, op, gamma)) ||
        (beta && wb_op_check_backend(g, op, beta)) || wb_op_need_kernel(g, op, (const void *)g->be->group_norm) ||
        wb_op_need_kernel(g, op, (const void *)g->be->group_norm_bwd))
        return NULL;
    char s1[64];
    if (x->ndim < 2 || x->shape[0] < 1 || x->shape[1] < 1) {
        wb_set_error("group_norm: x %s: want (B, C, ...) with B, C ≥ 1", wb_shape_str(x, s1, sizeof s1));
        return NULL;
    }
    int64_t b = x->shape[0], c = x->shape[1];
    if (groups < 1 || c % groups != 0) {
        wb_set_error("group_norm: %d groups do not divide C = %lld channels", groups, (long long)c);
        return NULL;
    }
    if ((gamma && gamma->numel != c) || (beta && beta->numel != c)) {
        char s2[64];
        wb_set_error("group_norm: gamma/beta %s must have C = %lld elements",
                     wb_shape_str(gamma && gamma->numel != c ? gamma : beta, s2, sizeof s2), (long long)c);
        return NULL;
    }
    if (!(eps >= 0.0f) || isinf(eps)) {
        wb_set_error("group_norm: eps = %g, want a finite value ≥ 0", (double)eps);
        return NULL;
    }
    if (b > INT32_MAX || c > INT32_MAX) {
        wb_set_error("group_norm: x %s too large for the kernels' int dims", wb_shape_str(x, s1, sizeof s1));
        return NULL;
    }
    wb_tensor *y = wb_new_like(g, x);
    /* mean then rstd: kept in the arena until reset, for the backward pass */
    wb_tensor *stats = wb_new_1d(g, 2 * b * groups);
    if (!y || !stats) return NULL;
    int64_t hw = x->numel / (b * c);
    g->be->group_norm((int)b, (int)c, hw, groups, x->data, gamma ? gamma->data : NULL,
                      beta ? beta->data : NULL, eps, y->data, stats->data, stats->data + b * groups);
    wb_node *n = wb_op_record(g, op, group_norm_bwd, y, x, gamma, beta);
    if (n) {
        n->i[0] = (int64_t)(uintptr_t)stats->data;
        n->i[1] = groups;
    }
    return y;
}

/* ---- softmax ---------------------------------------------------------------------- */
static void softmax_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0], *y = n->out;
    if (!wb_op_want(x) || y->numel == 0) return;
    int64_t cols = y->shape[y->ndim - 1];
    g->be->softmax_rows_bwd(y->numel / cols, cols, y->data, y->grad, x->grad);
}

wb_tensor *wb_softmax(wb_graph *g, wb_tensor *x) {
    if (!x) return NULL;
    const char *op = "softmax";
    if (wb_op_check_backend(g, op, x) || wb_op_need_kernel(g, op, (const void *)g->be->softmax_rows) ||
        wb_op_need_kernel(g, op, (const void *)g->be->softmax_rows_bwd))
        return NULL;
    wb_tensor *y = wb_new_like(g, x);
    if (!y) return NULL;
    int64_t cols = x->ndim > 0 ? x->shape[x->ndim - 1] : 1;
    if (x->numel > 0) g->be->softmax_rows(x->numel / cols, cols, x->data, y->data);
    wb_op_record(g, op, softmax_bwd, y, x, NULL, NULL);
    return y;
}

/* ---- dropout ------------------------------------------------------------------------ */
wb_tensor *wb_dropout(wb_graph *g, wb_tensor *x, float p, struct wb_rng *rng) {
    if (!x) return NULL;
    if (wb_op_check_backend(g, "dropout", x)) return NULL;
    if (!(p >= 0.0f && p < 1.0f)) { /* also rejects NaN */
        wb_set_error("dropout: p = %g, want 0 ≤ p < 1", (double)p);
        return NULL;
    }
    /* Evaluation (grad mode off) and p = 0 are the identity; like torch,
     * the input itself comes back: no copy, no node. */
    if (p == 0.0f || !g->grad_enabled) return x;
    if (!rng) {
        wb_set_error("dropout: rng is NULL (needed for p = %g in training)", (double)p);
        return NULL;
    }
    /* The mask is drawn on the host from the Philox stream, so a (seed,
     * stream, offset) reproduces it on every backend. Its values 0 and
     * 1/(1−p) make y = x ⊙ mask an inverted dropout whose expectation is x,
     * and mul's backward gives dx = mask ⊙ dy with no rule of our own. */
    float *host = malloc((size_t)(x->numel ? x->numel : 1) * sizeof *host);
    if (!host) {
        wb_set_error("dropout: out of memory for a %lld-element mask", (long long)x->numel);
        return NULL;
    }
    if (g->win_global > 0 && x->shape[0] == g->win_rows) { /* a shard's rows of the batch's mask */
        int64_t row_elems = x->numel / g->win_rows;
        wb_rng_fill_at(rng, 0, g->win_row0 * row_elems, x->numel, host);
        wb_rng_skip(rng, row_elems * g->win_global);
    } else {
        wb_rng_uniform(rng, host, x->numel);
    }
    const float keep = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < x->numel; i++) host[i] = host[i] < p ? 0.0f : keep; /* P(u < p) = p */
    wb_tensor *mask = wb_from_host(g, x->ndim, x->shape, host);
    free(host);
    if (!mask) return NULL;
    wb_tensor *y = wb_mul(g, x, mask);
    if (!y) wb_set_error("dropout: %s", wb_last_error());
    return y;
}
