/* host/core/ops.c — the differentiable ops: shape checks, output allocation,
 * the tape node, and the backward rule. All arithmetic goes through the
 * backend vtable (wb/backend.h), so the same op runs on CPU or CUDA.
 *
 * Shape legend: B batch, D features, M/K/N matrix dims.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

/* ---- helpers ---------------------------------------------------------------- */
int wb_op_check_backend(const wb_graph *g, const char *op, const wb_tensor *t) {
    if (wb_backend_take_error(g->be, op)) return -1; /* an earlier kernel failed: stop here, naming it */
    if (t->backend != g->be) {
        wb_set_error("%s: tensor on backend '%s', graph on '%s'", op, t->backend->name, g->be->name);
        return -1;
    }
    return 0;
}

int wb_op_need_kernel(const wb_graph *g, const char *op, const void *fn) {
    if (!fn) {
        wb_set_error("%s: not implemented on backend '%s'", op, g->be->name);
        return -1;
    }
    return 0;
}

/* Record a node when grad mode is on and any input requires grad. */
wb_node *wb_op_record(wb_graph *g, const char *op, wb_backward_fn bwd, wb_tensor *out, wb_tensor *a,
                       wb_tensor *b, wb_tensor *c) {
    if (!g->grad_enabled) return NULL;
    int needs = (a && a->requires_grad) || (b && b->requires_grad) || (c && c->requires_grad);
    if (!needs) return NULL;
    wb_node *n = wb_arena_alloc(&g->meta, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    n->backward = bwd;
    n->out = out;
    n->in[0] = a;
    n->in[1] = b;
    n->in[2] = c;
    n->n_in = 3;
    if (g->n_tape == g->cap_tape) {
        int cap = g->cap_tape ? g->cap_tape * 2 : 256;
        wb_node **tape = realloc(g->tape, (size_t)cap * sizeof *tape);
        if (!tape) return NULL;
        g->tape = tape;
        g->cap_tape = cap;
    }
    g->tape[g->n_tape++] = n;
    out->requires_grad = 1;
    out->node = n;
    return n;
}

int wb_op_want(const wb_tensor *t) { return t && t->requires_grad && t->grad; }

/* ---- linear / matmul -------------------------------------------------------- */
static void linear_bwd(wb_graph *g, wb_node *n) {
    const wb_backend *be = g->be;
    wb_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *y = n->out;
    int batch = (int)x->shape[0], in = (int)x->shape[1], out = (int)w->shape[0];
    if (wb_op_want(x)) /* dx (B,in) += dy (B,out) · W (out,in) */
        be->gemm(0, 0, batch, in, out, 1.0f, y->grad, out, w->data, in, 1.0f, x->grad, in);
    if (wb_op_want(w)) /* dW (out,in) += dyᵀ (out,B) · x (B,in) */
        be->gemm(1, 0, out, in, batch, 1.0f, y->grad, out, x->data, in, 1.0f, w->grad, in);
    if (wb_op_want(b)) be->sum_cols(batch, out, y->grad, b->grad, 1);
}

wb_tensor *wb_linear(wb_graph *g, wb_tensor *x, wb_tensor *w, wb_tensor *b) {
    if (!x || !w) return NULL;
    if (wb_op_check_backend(g, "linear", x) || wb_op_check_backend(g, "linear", w)) return NULL;
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1] ||
        (b && (b->numel != w->shape[0]))) {
        char s1[64], s2[64];
        wb_set_error("linear: x %s and W %s do not match (want x (B,in), W (out,in), b (out))",
                     wb_shape_str(x, s1, sizeof s1), wb_shape_str(w, s2, sizeof s2));
        return NULL;
    }
    int64_t batch = x->shape[0], in = x->shape[1], out = w->shape[0];
    wb_tensor *y = wb_new_2d(g, batch, out);
    if (!y) return NULL;
    if (b) {
        /* y = 1·x·Wᵀ + 1·(b broadcast to rows): fill rows with b, then gemm β=1 */
        g->be->copy_2d(batch, out, b->data, 0, y->data, out, 0); /* src stride 0: broadcast */
    }
    if (batch > 0 && out > 0)
        g->be->gemm(0, 1, (int)batch, (int)out, (int)in, 1.0f, x->data, (int)in, w->data, (int)in,
                    b ? 1.0f : 0.0f, y->data, (int)out);
    wb_op_record(g, "linear", linear_bwd, y, x, w, b);
    return y;
}

static void matmul_bwd(wb_graph *g, wb_node *n) {
    const wb_backend *be = g->be;
    wb_tensor *a = n->in[0], *b = n->in[1], *c = n->out;
    int m = (int)a->shape[0], k = (int)a->shape[1], nn = (int)b->shape[1];
    if (wb_op_want(a)) /* dA (M,K) += dC (M,N) · Bᵀ */
        be->gemm(0, 1, m, k, nn, 1.0f, c->grad, nn, b->data, nn, 1.0f, a->grad, k);
    if (wb_op_want(b)) /* dB (K,N) += Aᵀ · dC */
        be->gemm(1, 0, k, nn, m, 1.0f, a->data, k, c->grad, nn, 1.0f, b->grad, nn);
}

wb_tensor *wb_matmul(wb_graph *g, wb_tensor *a, wb_tensor *b) {
    if (!a || !b) return NULL;
    if (wb_op_check_backend(g, "matmul", a) || wb_op_check_backend(g, "matmul", b)) return NULL;
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0]) {
        char s1[64], s2[64];
        wb_set_error("matmul: %s · %s: inner dimensions differ", wb_shape_str(a, s1, sizeof s1),
                     wb_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    wb_tensor *c = wb_new_2d(g, a->shape[0], b->shape[1]);
    if (!c) return NULL;
    g->be->gemm(0, 0, (int)a->shape[0], (int)b->shape[1], (int)a->shape[1], 1.0f, a->data,
                (int)a->shape[1], b->data, (int)b->shape[1], 0.0f, c->data, (int)b->shape[1]);
    wb_op_record(g, "matmul", matmul_bwd, c, a, b, NULL);
    return c;
}

/* ---- broadcasting binaries -------------------------------------------------- */
int wb_bcast_init(wb_bcast *bc, const wb_tensor *a, const wb_tensor *b) {
    memset(bc, 0, sizeof *bc);
    int64_t as[4], bs[4];
    for (int d = 0; d < 4; d++) as[d] = bs[d] = 1;
    for (int d = 0; d < a->ndim; d++) as[4 - a->ndim + d] = a->shape[d];
    for (int d = 0; d < b->ndim; d++) bs[4 - b->ndim + d] = b->shape[d];
    int64_t astr = 1, bstr = 1;
    bc->out_numel = 1;
    for (int d = 3; d >= 0; d--) {
        if (as[d] != bs[d] && as[d] != 1 && bs[d] != 1) {
            char s1[64], s2[64];
            wb_set_error("cannot broadcast %s with %s", wb_shape_str(a, s1, sizeof s1),
                         wb_shape_str(b, s2, sizeof s2));
            return -1;
        }
        bc->out_shape[d] = as[d] > bs[d] ? as[d] : bs[d];
        if (as[d] == 0 || bs[d] == 0) bc->out_shape[d] = 0;
        bc->a_stride[d] = as[d] == 1 ? 0 : astr;
        bc->b_stride[d] = bs[d] == 1 ? 0 : bstr;
        astr *= as[d];
        bstr *= bs[d];
        bc->out_numel *= bc->out_shape[d];
    }
    bc->a_numel = a->numel;
    bc->b_numel = b->numel;
    return 0;
}

static void binary_bwd(wb_graph *g, wb_node *n) {
    wb_bcast bc;
    wb_bcast_init(&bc, n->in[0], n->in[1]);
    g->be->binary_bwd((wb_binary_op)n->i[0], &bc, n->in[0]->data, n->in[1]->data, n->out->grad,
                      wb_op_want(n->in[0]) ? n->in[0]->grad : NULL, wb_op_want(n->in[1]) ? n->in[1]->grad : NULL);
}

static wb_tensor *binary(wb_graph *g, wb_binary_op op, const char *name, wb_tensor *a, wb_tensor *b) {
    if (!a || !b) return NULL;
    if (wb_op_check_backend(g, name, a) || wb_op_check_backend(g, name, b)) return NULL;
    wb_bcast bc;
    if (wb_bcast_init(&bc, a, b)) {
        wb_set_error("%s: %s", name, wb_last_error());
        return NULL;
    }
    /* Output rank is the larger input rank (right-aligned). */
    int ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[4];
    for (int d = 0; d < ndim; d++) shape[d] = bc.out_shape[4 - ndim + d];
    wb_tensor *y = wb_new(g, ndim, shape);
    if (!y) return NULL;
    g->be->binary(op, &bc, a->data, b->data, y->data);
    wb_node *node = wb_op_record(g, name, binary_bwd, y, a, b, NULL);
    if (node) node->i[0] = op;
    return y;
}

wb_tensor *wb_add(wb_graph *g, wb_tensor *a, wb_tensor *b) { return binary(g, WB_BINARY_ADD, "add", a, b); }
wb_tensor *wb_sub(wb_graph *g, wb_tensor *a, wb_tensor *b) { return binary(g, WB_BINARY_SUB, "sub", a, b); }
wb_tensor *wb_mul(wb_graph *g, wb_tensor *a, wb_tensor *b) { return binary(g, WB_BINARY_MUL, "mul", a, b); }
wb_tensor *wb_div(wb_graph *g, wb_tensor *a, wb_tensor *b) { return binary(g, WB_BINARY_DIV, "div", a, b); }

/* ---- unaries ------------------------------------------------------------------ */
static void unary_bwd(wb_graph *g, wb_node *n) {
    if (!wb_op_want(n->in[0])) return;
    wb_unary_op op = (wb_unary_op)n->i[0];
    /* SiLU's backward takes σ(x), not y (a taped SiLU is wb_silu's own node) */
    g->be->unary_bwd(op, n->out->numel, n->in[0]->data, op == WB_UNARY_SILU ? NULL : n->out->data,
                     n->out->grad, n->in[0]->grad, n->f[0]);
}

static wb_tensor *unary(wb_graph *g, wb_unary_op op, const char *name, wb_tensor *x, float alpha) {
    if (!x) return NULL;
    if (wb_op_check_backend(g, name, x) || wb_op_need_kernel(g, name, (const void *)g->be->unary)) return NULL;
    wb_tensor *y = wb_new_like(g, x);
    if (!y) return NULL;
    g->be->unary(op, x->numel, x->data, y->data, alpha);
    wb_node *node = wb_op_record(g, name, unary_bwd, y, x, NULL, NULL);
    if (node) {
        node->i[0] = op;
        node->f[0] = alpha;
    }
    return y;
}

wb_tensor *wb_scale(wb_graph *g, wb_tensor *x, float a) { return unary(g, WB_UNARY_SCALE, "scale", x, a); }
wb_tensor *wb_add_scalar(wb_graph *g, wb_tensor *x, float a) { return unary(g, WB_UNARY_ADD_SCALAR, "add_scalar", x, a); }
wb_tensor *wb_exp(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_EXP, "exp", x, 0); }
wb_tensor *wb_log(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_LOG, "log", x, 0); }
wb_tensor *wb_sigmoid(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_SIGMOID, "sigmoid", x, 0); }
wb_tensor *wb_softplus(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_SOFTPLUS, "softplus", x, 0); }
wb_tensor *wb_logsigmoid(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_LOGSIGMOID, "logsigmoid", x, 0); }
/* SiLU under a tape keeps s = σ(x) (one more tensor in the arena) and
 * computes y = x·s from it, so its backward, dx += dy·s·(1 + x·(1 − s)),
 * needs no second exponential: the MLP's SiLUs were a fifth of a 2-D
 * distillation step, their backward half of that. The bits are those of
 * the one-pass kernel: y = x·σ(x) is wb_siluf's own product, and
 * wb_silu_gradf is wb_silu_grad_sigf of the same σ(x) (tests/test_cpu_isa.c
 * compares the two backwards; tests/test_ops_grad.c checks the gradient by
 * finite differences). Without a tape: the one-pass kernel. */
static void silu_saved_bwd(wb_graph *g, wb_node *n) {
    if (!wb_op_want(n->in[0])) return;
    g->be->unary_bwd(WB_UNARY_SILU, n->out->numel, n->in[0]->data, n->in[1]->data, n->out->grad, n->in[0]->grad,
                     0.0f);
}

wb_tensor *wb_silu(wb_graph *g, wb_tensor *x) {
    if (!x || !g->grad_enabled || !x->requires_grad) return unary(g, WB_UNARY_SILU, "silu", x, 0);
    if (wb_op_check_backend(g, "silu", x) || wb_op_need_kernel(g, "silu", (const void *)g->be->unary) ||
        wb_op_need_kernel(g, "silu", (const void *)g->be->binary))
        return NULL;
    wb_tensor *s = wb_new_like(g, x), *y = s ? wb_new_like(g, x) : NULL;
    if (!y) return NULL;
    wb_bcast flat;
    if (wb_bcast_init(&flat, x, s)) return NULL;
    g->be->unary(WB_UNARY_SIGMOID, x->numel, x->data, s->data, 0.0f);
    g->be->binary(WB_BINARY_MUL, &flat, x->data, s->data, y->data);
    wb_op_record(g, "silu", silu_saved_bwd, y, x, s, NULL);
    return y;
}
wb_tensor *wb_tanh(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_TANH, "tanh", x, 0); }
wb_tensor *wb_relu(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_RELU, "relu", x, 0); }
wb_tensor *wb_square(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_SQUARE, "square", x, 0); }
wb_tensor *wb_sqrt(wb_graph *g, wb_tensor *x) { return unary(g, WB_UNARY_SQRT, "sqrt", x, 0); }

/* ---- concat / slice / reshape / detach -------------------------------------- */
static void concat_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    int64_t outer = y->shape[0], ca = a->numel / (outer ? outer : 1), cb = b->numel / (outer ? outer : 1);
    if (wb_op_want(a)) g->be->copy_2d(outer, ca, y->grad, ca + cb, a->grad, ca, 1);
    if (wb_op_want(b)) g->be->copy_2d(outer, cb, y->grad + ca, ca + cb, b->grad, cb, 1);
}

wb_tensor *wb_concat(wb_graph *g, wb_tensor *a, wb_tensor *b) {
    if (!a || !b) return NULL;
    if (wb_op_check_backend(g, "concat", a) || wb_op_check_backend(g, "concat", b)) return NULL;
    int ok = a->ndim == b->ndim && a->ndim >= 2 && a->shape[0] == b->shape[0];
    for (int d = 2; ok && d < a->ndim; d++) ok = a->shape[d] == b->shape[d];
    if (!ok) {
        char s1[64], s2[64];
        wb_set_error("concat: %s and %s differ outside dim 1", wb_shape_str(a, s1, sizeof s1),
                     wb_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    int64_t shape[4];
    memcpy(shape, a->shape, sizeof shape);
    shape[1] = a->shape[1] + b->shape[1];
    wb_tensor *y = wb_new(g, a->ndim, shape);
    if (!y) return NULL;
    int64_t outer = a->shape[0], ca = outer ? a->numel / outer : 0, cb = outer ? b->numel / outer : 0;
    g->be->copy_2d(outer, ca, a->data, ca, y->data, ca + cb, 0);
    g->be->copy_2d(outer, cb, b->data, cb, y->data + ca, ca + cb, 0);
    wb_op_record(g, "concat", concat_bwd, y, a, b, NULL);
    return y;
}

static void slice1_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0], *y = n->out;
    if (!wb_op_want(x)) return;
    int64_t outer = x->shape[0], inner = outer ? x->numel / outer / x->shape[1] : 0;
    int64_t start = n->i[0], count = n->i[1];
    g->be->copy_2d(outer, count * inner, y->grad, count * inner, x->grad + start * inner,
                   x->shape[1] * inner, 1);
}

wb_tensor *wb_slice1(wb_graph *g, wb_tensor *x, int64_t start, int64_t count) {
    if (!x) return NULL;
    if (x->ndim < 2 || start < 0 || count < 0 || start + count > x->shape[1]) {
        char s[64];
        wb_set_error("slice1: [%lld, %lld) out of range for %s", (long long)start,
                     (long long)(start + count), wb_shape_str(x, s, sizeof s));
        return NULL;
    }
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof shape);
    shape[1] = count;
    wb_tensor *y = wb_new(g, x->ndim, shape);
    if (!y) return NULL;
    int64_t outer = x->shape[0], inner = (outer && x->shape[1]) ? x->numel / outer / x->shape[1] : 0;
    g->be->copy_2d(outer, count * inner, x->data + start * inner, x->shape[1] * inner, y->data,
                   count * inner, 0);
    wb_node *node = wb_op_record(g, "slice1", slice1_bwd, y, x, NULL, NULL);
    if (node) {
        node->i[0] = start;
        node->i[1] = count;
    }
    return y;
}

static void reshape_bwd(wb_graph *g, wb_node *n) {
    if (wb_op_want(n->in[0])) g->be->axpy(n->out->numel, 1.0f, n->out->grad, n->in[0]->grad);
}

wb_tensor *wb_reshape(wb_graph *g, wb_tensor *x, int ndim, const int64_t *shape) {
    if (!x) return NULL;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    if (ndim < 1 || ndim > WB_MAX_DIMS || numel != x->numel) {
        char s[64];
        wb_set_error("reshape: %s has %lld elements, new shape has %lld", wb_shape_str(x, s, sizeof s),
                     (long long)x->numel, (long long)numel);
        return NULL;
    }
    wb_tensor *y = wb_arena_alloc(&g->meta, sizeof *y);
    if (!y) return NULL;
    *y = *x; /* shares data; gets its own grad */
    y->grad = NULL;
    y->node = NULL;
    y->requires_grad = 0;
    y->name = NULL;
    y->ndim = ndim;
    for (int d = 0; d < WB_MAX_DIMS; d++) y->shape[d] = d < ndim ? shape[d] : 0;
    wb_op_record(g, "reshape", reshape_bwd, y, x, NULL, NULL);
    return y;
}

wb_tensor *wb_detach(wb_graph *g, wb_tensor *x) {
    if (!x) return NULL;
    wb_tensor *y = wb_arena_alloc(&g->meta, sizeof *y);
    if (!y) return NULL;
    *y = *x;
    y->grad = NULL;
    y->node = NULL;
    y->requires_grad = 0;
    y->name = NULL;
    return y;
}

/* ---- reductions --------------------------------------------------------------- */
static void reduce_bwd(wb_graph *g, wb_node *n) {
    /* i[0] rows, i[1] cols, f[0] scale (1 for sum, 1/cols for mean) */
    if (wb_op_want(n->in[0])) g->be->bcast_rows_add(n->i[0], n->i[1], n->out->grad, n->f[0], n->in[0]->grad);
}

static wb_tensor *reduce(wb_graph *g, const char *name, wb_tensor *x, int per_row, int mean) {
    if (!x) return NULL;
    int64_t rows = per_row ? x->shape[0] : 1;
    int64_t cols = rows ? x->numel / rows : 0;
    wb_tensor *y = wb_new_1d(g, rows);
    if (!y) return NULL;
    g->be->sum_rows(rows, cols, x->data, y->data);
    float scale = mean ? (cols ? 1.0f / (float)cols : 0.0f) : 1.0f;
    if (mean) g->be->unary(WB_UNARY_SCALE, rows, y->data, y->data, scale);
    wb_node *node = wb_op_record(g, name, reduce_bwd, y, x, NULL, NULL);
    if (node) {
        node->i[0] = rows;
        node->i[1] = cols;
        node->f[0] = scale;
    }
    return y;
}

wb_tensor *wb_sum(wb_graph *g, wb_tensor *x) { return reduce(g, "sum", x, 0, 0); }
wb_tensor *wb_mean(wb_graph *g, wb_tensor *x) { return reduce(g, "mean", x, 0, 1); }
wb_tensor *wb_sum_rows(wb_graph *g, wb_tensor *x) { return reduce(g, "sum_rows", x, 1, 0); }
wb_tensor *wb_mean_rows(wb_graph *g, wb_tensor *x) { return reduce(g, "mean_rows", x, 1, 1); }

/* ---- sinusoidal embedding ------------------------------------------------------- */
static void sinusoidal_bwd(wb_graph *g, wb_node *n) {
    if (wb_op_want(n->in[0]))
        g->be->sinusoidal_bwd(n->in[0]->numel, (int)n->i[0], n->f[0], n->in[0]->data, n->out->grad,
                              n->in[0]->grad);
}

wb_tensor *wb_sinusoidal(wb_graph *g, wb_tensor *t, int dim, float max_period) {
    if (!t) return NULL;
    if (dim < 2 || dim % 2 || dim > 8192) {
        wb_set_error("sinusoidal: dim %d must be even and in [2, 8192]", dim);
        return NULL;
    }
    if (wb_op_need_kernel(g, "sinusoidal", (const void *)g->be->sinusoidal)) return NULL;
    wb_tensor *y = wb_new_2d(g, t->numel, dim);
    if (!y) return NULL;
    g->be->sinusoidal(t->numel, dim, max_period, t->data, y->data);
    wb_node *node = wb_op_record(g, "sinusoidal", sinusoidal_bwd, y, t, NULL, NULL);
    if (node) {
        node->i[0] = dim;
        node->f[0] = max_period;
    }
    return y;
}

/* ---- losses (composites: their gradients come from the parts) -------------------- */
wb_tensor *wb_mse(wb_graph *g, wb_tensor *a, wb_tensor *b) {
    if (a && b && !wb_same_shape(a, b)) {
        char s1[64], s2[64];
        wb_set_error("mse: shapes %s and %s differ", wb_shape_str(a, s1, sizeof s1), wb_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    return wb_mean(g, wb_square(g, wb_sub(g, a, b)));
}

wb_tensor *wb_bce_logits(wb_graph *g, wb_tensor *logit, wb_tensor *target) {
    if (logit && target && logit->numel != target->numel) {
        wb_set_error("bce_logits: %lld logits, %lld targets", (long long)logit->numel, (long long)target->numel);
        return NULL;
    }
    /* Pair element by element: (B,1) logits with (B) targets must not
     * broadcast into a (B,B) matrix. */
    if (logit && target && !wb_same_shape(logit, target))
        target = wb_reshape(g, target, logit->ndim, logit->shape);
    /* softplus(l) − t·l is BCE(σ(l), t) without ever forming log σ. */
    return wb_mean(g, wb_sub(g, wb_softplus(g, logit), wb_mul(g, target, logit)));
}
