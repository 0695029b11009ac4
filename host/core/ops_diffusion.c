/* host/core/ops_diffusion.c — the ops of EDM and of the distillation step
 * (declared in wb/tensor.h, "diffusion ops"): preconditioning, x_t = x + σn,
 * Karras noise levels, DMD's time weight, the combined generator gradient
 * g̃, constant tensors, dim-0 concatenation, leaf copies, and the
 * transfer-free finite check. With these the engine keeps a whole
 * distillation step on its backend: only the ratio logits go to the host
 * (the divergence plugins' weights() take host arrays) and the weights
 * come back.
 *
 * Why composites: preconditioning, x_t and g̃ are written with the
 * elementwise ops, in the same order of float operations as the host loops
 * they replace, so they are differentiable through their parts and give
 * the same bits. The two that need double accumulation or double pow (DMD's
 * mean |x0 − D|, Karras σ) are kernels of their own.
 *
 * Shape legend: B samples, x (B, ...) of rank 2 or 4, per-sample (B).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

wb_tensor *wb_full(wb_graph *g, int ndim, const int64_t *shape, float value) {
    wb_tensor *t = wb_new(g, ndim, shape);
    if (t) g->be->fill(t->data, t->numel, value);
    return t;
}

/* ---- cat0 ------------------------------------------------------------------ */
static void cat0_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    if (wb_op_want(a)) g->be->axpy(a->numel, 1.0f, y->grad, a->grad);
    if (wb_op_want(b)) g->be->axpy(b->numel, 1.0f, y->grad + a->numel, b->grad);
}

wb_tensor *wb_cat0(wb_graph *g, wb_tensor *a, wb_tensor *b) {
    if (!a || !b) return NULL;
    if (wb_op_check_backend(g, "cat0", a) || wb_op_check_backend(g, "cat0", b)) return NULL;
    int same = a->ndim == b->ndim;
    for (int d = 1; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
    if (!same) {
        char s1[64], s2[64];
        wb_set_error("cat0: %s and %s differ beyond dim 0", wb_shape_str(a, s1, sizeof s1),
                     wb_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    int64_t shape[WB_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[0] = a->shape[0] + b->shape[0];
    wb_tensor *y = wb_new(g, a->ndim, shape);
    if (!y) return NULL;
    g->be->copy(y->data, a->data, (size_t)a->numel * sizeof(float));
    g->be->copy(y->data + a->numel, b->data, (size_t)b->numel * sizeof(float));
    wb_op_record(g, "cat0", cat0_bwd, y, a, b, NULL);
    return y;
}

/* ---- leaves, gradients, tape ----------------------------------------------- */
wb_tensor *wb_leaf_copy(wb_graph *g, wb_tensor *x, int requires_grad) {
    if (!x || wb_op_check_backend(g, "leaf_copy", x)) return NULL;
    wb_tensor *y = wb_new(g, x->ndim, x->shape);
    if (!y) return NULL;
    g->be->copy(y->data, x->data, (size_t)x->numel * sizeof(float));
    y->requires_grad = requires_grad != 0;
    return y;
}

int wb_assign(wb_tensor *dst, const wb_tensor *src) {
    if (!dst || !src) return -1;
    if (dst->backend != src->backend || dst->numel != src->numel) {
        char s1[64], s2[64];
        wb_set_error("assign: %s on '%s' into %s on '%s'", wb_shape_str(src, s1, sizeof s1), src->backend->name,
                     wb_shape_str(dst, s2, sizeof s2), dst->backend->name);
        return -1;
    }
    if (wb_backend_take_error(dst->backend, "assign")) return -1;
    dst->backend->copy(dst->data, src->data, (size_t)src->numel * sizeof(float));
    return 0;
}

wb_tensor *wb_grad_tensor(wb_graph *g, wb_tensor *x) {
    if (!x || wb_op_check_backend(g, "grad_tensor", x)) return NULL;
    if (!x->grad) return wb_zeros(g, x->ndim, x->shape);
    wb_tensor *y = wb_arena_alloc(&g->meta, sizeof *y);
    if (!y) return NULL;
    *y = *x; /* shares the gradient's memory; a constant */
    y->data = x->grad;
    y->grad = NULL;
    y->requires_grad = 0;
    y->node = NULL;
    y->name = NULL;
    return y;
}

void wb_graph_clear_tape(wb_graph *g) {
    if (g) g->n_tape = 0;
}

wb_tensor *wb_per_sample(wb_graph *g, wb_tensor *s, int rank) {
    if (!s) return NULL;
    if (rank < 1 || rank > WB_MAX_DIMS) {
        wb_set_error("per_sample: rank %d outside 1..%d", rank, WB_MAX_DIMS);
        return NULL;
    }
    int64_t shape[WB_MAX_DIMS] = {s->numel, 1, 1, 1};
    return wb_reshape(g, s, rank, shape);
}

/* ---- EDM --------------------------------------------------------------------- */
int wb_edm_precond(wb_graph *g, wb_tensor *sigma, int rank, float sigma_data, wb_edm_coefs *out) {
    memset(out, 0, sizeof *out);
    if (!sigma) return -1;
    const float sd2 = sigma_data * sigma_data;
    wb_tensor *s2_sd2 = wb_add_scalar(g, wb_square(g, sigma), sd2); /* σ² + σd² */
    wb_tensor *root = wb_sqrt(g, s2_sd2);
    out->c_skip = wb_per_sample(g, wb_div(g, wb_full(g, 1, &sigma->numel, sd2), s2_sd2), rank);
    out->c_out = wb_per_sample(g, wb_div(g, wb_scale(g, sigma, sigma_data), root), rank);
    out->c_in = wb_per_sample(g, wb_div(g, wb_full(g, 1, &sigma->numel, 1.0f), root), rank);
    /* ln(σ)/4: a multiplication by 0.25 is the same correctly rounded value */
    out->c_noise = wb_scale(g, wb_log(g, sigma), 0.25f);
    return out->c_skip && out->c_out && out->c_in && out->c_noise ? 0 : -1;
}

wb_tensor *wb_edm_loss_weight(wb_graph *g, wb_tensor *sigma, int rank, float sigma_data) {
    if (!sigma) return NULL;
    wb_tensor *s2 = wb_square(g, sigma);
    /* (σ² + σd²) / (σ²·σd·σd), left to right as written */
    wb_tensor *num = wb_add_scalar(g, s2, sigma_data * sigma_data);
    wb_tensor *den = wb_scale(g, wb_scale(g, s2, sigma_data), sigma_data);
    return wb_per_sample(g, wb_div(g, num, den), rank);
}

wb_tensor *wb_add_noise(wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor *noise) {
    if (!x || !sigma || !noise) return NULL;
    if (sigma->numel != x->shape[0]) {
        char s1[64];
        wb_set_error("add_noise: %lld noise levels for x %s", (long long)sigma->numel, wb_shape_str(x, s1, sizeof s1));
        return NULL;
    }
    return wb_add(g, x, wb_mul(g, wb_per_sample(g, sigma, x->ndim), noise));
}

wb_tensor *wb_karras_sigma(wb_graph *g, wb_tensor *u, float t_min, float t_max) {
    if (!u) return NULL;
    const char *op = "karras_sigma";
    if (wb_op_check_backend(g, op, u) || wb_op_need_kernel(g, op, (const void *)g->be->karras_sigma)) return NULL;
    if (u->requires_grad && g->grad_enabled) {
        wb_set_error("karras_sigma: u requires grad; noise levels are draws, not differentiable");
        return NULL;
    }
    wb_tensor *y = wb_new(g, u->ndim, u->shape);
    if (!y) return NULL;
    g->be->karras_sigma(u->numel, u->data, t_min, t_max, WB_EDM_SIGMA_MIN, WB_EDM_SIGMA_MAX, WB_EDM_RHO, y->data);
    return y;
}

/* ---- DMD time weight --------------------------------------------------------- */
static void dmd_weight_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x0 = n->in[0], *d = n->in[1], *sigma = n->in[2], *w = n->out;
    int64_t rows = x0->shape[0], cols = x0->numel / rows;
    g->be->dmd_weight_bwd(rows, cols, x0->data, d->data, sigma->data, w->grad, wb_op_want(x0) ? x0->grad : NULL,
                          wb_op_want(d) ? d->grad : NULL, wb_op_want(sigma) ? sigma->grad : NULL);
}

wb_tensor *wb_dmd_weight(wb_graph *g, wb_tensor *x0, wb_tensor *d, wb_tensor *sigma) {
    if (!x0 || !d || !sigma) return NULL;
    const char *op = "dmd_weight";
    if (wb_op_check_backend(g, op, x0) || wb_op_check_backend(g, op, d) || wb_op_check_backend(g, op, sigma) ||
        wb_op_need_kernel(g, op, (const void *)g->be->dmd_weight))
        return NULL;
    if (!wb_same_shape(x0, d) || x0->ndim < 1 || x0->shape[0] < 1 || sigma->numel != x0->shape[0]) {
        char s1[64], s2[64], s3[64];
        wb_set_error("dmd_weight: x0 %s, d %s, sigma %s: want x0 and d of one shape (B, ...) and sigma (B)",
                     wb_shape_str(x0, s1, sizeof s1), wb_shape_str(d, s2, sizeof s2), wb_shape_str(sigma, s3, sizeof s3));
        return NULL;
    }
    int64_t rows = x0->shape[0], cols = x0->numel / rows;
    wb_tensor *w = wb_new_1d(g, rows);
    if (!w) return NULL;
    g->be->dmd_weight(rows, cols, x0->data, d->data, sigma->data, w->data);
    if (wb_op_record(g, op, dmd_weight_bwd, w, x0, d, sigma) && !g->be->dmd_weight_bwd) {
        wb_set_error("dmd_weight: no backward kernel on backend '%s'", g->be->name);
        return NULL;
    }
    return w;
}

/* ---- g̃ ----------------------------------------------------------------------- */
wb_tensor *wb_distill_grad(wb_graph *g, wb_tensor *w_s, wb_tensor *d_fake, wb_tensor *d_teacher, wb_tensor *sigma,
                           wb_tensor *w_l, wb_tensor *grad_l, wb_tensor *time_weight) {
    if (!d_teacher || !sigma || (d_fake && !w_s) || (grad_l && !w_l)) {
        wb_set_error("distill_grad: %s", !d_teacher ? "no teacher output" : !sigma ? "no sigma"
                                         : (d_fake && !w_s) ? "d_fake without w_s" : "grad_l without w_l");
        return NULL;
    }
    int rank = d_teacher->ndim;
    int64_t n_elems = d_teacher->numel, one = 1;
    /* the score term w_s·(D_fake − D_teacher)/σ²; score-free: 0 */
    wb_tensor *e;
    if (d_fake) {
        wb_tensor *s2 = wb_per_sample(g, wb_square(g, sigma), rank);
        e = wb_div(g, wb_mul(g, wb_per_sample(g, w_s, rank), wb_sub(g, d_fake, d_teacher)), s2);
    } else {
        e = wb_zeros(g, rank, d_teacher->shape);
    }
    /* minus the classifier term w_l·∇_x l (absent: x − 0 = x, so skipped) */
    if (grad_l) e = wb_sub(g, e, wb_mul(g, wb_per_sample(g, w_l, rank), grad_l));
    if (time_weight) e = wb_mul(g, wb_per_sample(g, time_weight, rank), e);
    /* / n as a division (not ·1/n): the surrogate loss is a mean */
    return wb_div(g, e, wb_full(g, 1, &one, (float)n_elems));
}

/* ---- finite checks ----------------------------------------------------------- */
int wb_check_finite(wb_graph *g, const wb_tensor *t, const char *what) {
    if (!t) return -1;
    const wb_backend *be = g->be;
    if (wb_op_check_backend(g, "check_finite", t) ||
        wb_op_need_kernel(g, "check_finite", (const void *)be->flag_nonfinite))
        return -1;
    wb_backend_status *st = be->status;
    if (!st || !st->finite_flags) {
        wb_set_error("check_finite: backend '%s' has no finite flags", be->name);
        return -1;
    }
    if (st->n_finite_checks >= WB_MAX_FINITE_CHECKS) {
        wb_set_error("check_finite(%s): more than %d checks before a sync", what, WB_MAX_FINITE_CHECKS);
        return -1;
    }
    int slot = st->n_finite_checks++;
    st->finite_what[slot] = what;
    be->flag_nonfinite(t->numel, t->data, &st->finite_flags[slot]);
    return 0;
}

double wb_sum_squares(const wb_tensor *t) {
    if (!t) return NAN;
    wb_backend_count_download(t->backend, sizeof(double));
    return t->backend->sum_squares(t->numel, t->data);
}
