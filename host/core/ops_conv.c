/* host/core/ops_conv.c — the differentiable image ops of wb/tensor.h that are
 * GEMM- or resampling-shaped: 2-D convolution (square, or per-axis strides
 * and pads), nearest 2× up-sampling, 2×2 average pooling and batched
 * matmul (general pooling and bilinear resizing: host/core/ops_pool.c). Like
 * host/core/ops.c: shape checks with errors naming the op, output in the
 * graph's arena, a tape node, and a backward rule; all arithmetic goes
 * through the backend vtable. conv2d has two paths: im2col + GEMM (the
 * reference, below) and a backend's optional fused kernels (CPU: oneDNN),
 * which the graph's conv context selects per geometry (WB_CONV).
 *
 * Shape legend: B batch, Cin/Cout channels, H×W input plane, kh×kw kernel
 * (strides sh, sw and zero pads ph, pw per axis), Ho×Wo output plane,
 * K = Cin·kh·kw (im2col rows), P = Ho·Wo (im2col columns); bmm: N matrices
 * of (M, K) · (K, P).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

/* ---- helpers (same contract as host/core/ops.c's; static there) ------------------ */

/* Arena scratch of n floats in backend memory (freed with the graph's reset). */
static float *scratch(wb_graph *g, int64_t n) {
    wb_tensor *t = wb_new_1d(g, n > 0 ? n : 1);
    return t ? t->data : NULL;
}

/* 1×1, stride 1, no padding: the input plane already is the column matrix. */
static int is_pointwise(int kh, int kw, int sh, int sw, int ph, int pw) {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
}

/* ---- conv2d ---------------------------------------------------------------------- */
/* The fused path (be->conv2d_*, e.g. oneDNN) is taken when the graph has a
 * conv context (WB_CONV, read by be->conv_ctx_new at wb_graph_new) that
 * wants this geometry; the im2col + GEMM path stays as the reference, and
 * takes the degenerate Cin = 0 (y = bias) that fused libraries need not
 * accept. */
static wb_conv_geom conv_geom(const wb_tensor *x, const wb_tensor *w, const wb_tensor *y, int sh, int sw, int ph,
                              int pw) {
    wb_conv_geom c = {(int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)w->shape[0],
                      (int)w->shape[2], (int)w->shape[3], sh, sw, ph, pw, (int)y->shape[2], (int)y->shape[3]};
    return c;
}

static int use_fused(const wb_graph *g, const wb_conv_geom *geom) {
    const wb_backend *be = g->be;
    return g->conv_ctx && be->conv2d_fwd && be->conv2d_bwd && geom->cin > 0 &&
           (!be->conv2d_use_fused || be->conv2d_use_fused(g->conv_ctx, geom));
}

static void conv2d_bwd(wb_graph *g, wb_node *n) {
    const wb_backend *be = g->be;
    wb_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *y = n->out;
    int bsz = (int)x->shape[0], cin = (int)x->shape[1], h = (int)x->shape[2], wd = (int)x->shape[3];
    int cout = (int)w->shape[0], kh = (int)w->shape[2], kw = (int)w->shape[3];
    int sh = (int)n->i[0], sw = (int)n->i[1], ph = (int)n->i[2], pw = (int)n->i[3];
    int p = (int)(y->shape[2] * y->shape[3]), k = cin * kh * kw;
    int64_t xs = (int64_t)cin * h * wd, ys = (int64_t)cout * p;
    int dx = wb_op_want(x), dw = wb_op_want(w), pointwise = is_pointwise(kh, kw, sh, sw, ph, pw);

    wb_conv_geom geom = conv_geom(x, w, y, sh, sw, ph, pw);
    if (use_fused(g, &geom)) {
        if (be->conv2d_bwd(g->conv_ctx, &geom, x->data, w->data, y->grad, dx ? x->grad : NULL, dw ? w->grad : NULL,
                           wb_op_want(b) ? b->grad : NULL))
            g->bwd_failed = 1;
        return;
    }
    if (wb_op_want(b)) { /* db += Σ_{b,pixels} dY: per-(b, c) sums, then over b */
        float *rows = scratch(g, (int64_t)bsz * cout);
        if (!rows) return;
        be->sum_rows((int64_t)bsz * cout, p, y->grad, rows);
        be->sum_cols(bsz, cout, rows, b->grad, 1);
    }
    if (pointwise) { /* no columns: x_b is (K, P) itself */
        if (dw) /* dW (Cout, K) += Σ_b dY_b (Cout, P) · x_bᵀ */
            for (int i = 0; i < bsz; i++)
                be->gemm(0, 1, cout, k, p, 1.0f, y->grad + i * ys, p, x->data + i * xs, p, 1.0f, w->grad, k);
        if (dx) /* dx_b (K, P) += Wᵀ (K, Cout) · dY_b, every image with the same W */
            be->gemm_batched(bsz, 1, 0, k, p, cout, 1.0f, w->data, k, 0, y->grad, p, ys, 1.0f, x->grad, p, xs);
        return;
    }
    /* Columns are recomputed rather than kept from the forward pass: a 3×3
     * kernel's columns are 9× the input, and im2col costs far less than the
     * GEMMs around it. */
    float *col = dw ? scratch(g, (int64_t)k * p) : NULL;
    float *dcol = dx ? scratch(g, (int64_t)k * p) : NULL;
    if ((dw && !col) || (dx && !dcol)) return;
    for (int i = 0; i < bsz; i++) {
        const float *dy = y->grad + i * ys;
        if (dw) {
            be->im2col(x->data + i * xs, cin, h, wd, kh, kw, sh, sw, ph, pw, col);
            be->gemm(0, 1, cout, k, p, 1.0f, dy, p, col, p, 1.0f, w->grad, k); /* dW += dY_b · colᵀ */
        }
        if (dx) {
            be->gemm(1, 0, k, p, cout, 1.0f, w->data, k, dy, p, 0.0f, dcol, p); /* dcol = Wᵀ · dY_b */
            be->col2im(dcol, cin, h, wd, kh, kw, sh, sw, ph, pw, x->grad + i * xs);
        }
    }
}

wb_tensor *wb_conv2d(wb_graph *g, wb_tensor *x, wb_tensor *w, wb_tensor *b, int stride, int pad) {
    return wb_conv2d_ex(g, x, w, b, stride, stride, pad, pad);
}

wb_tensor *wb_conv2d_ex(wb_graph *g, wb_tensor *x, wb_tensor *w, wb_tensor *b, int stride_h, int stride_w, int pad_h,
                        int pad_w) {
    if (!x || !w) return NULL;
    if (wb_op_check_backend(g, "conv2d", x) || wb_op_check_backend(g, "conv2d", w) || (b && wb_op_check_backend(g, "conv2d", b)))
        return NULL;
    char s1[64], s2[64];
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1] || (b && (b->ndim != 1 || b->numel != w->shape[0]))) {
        wb_set_error("conv2d: x %s and W %s do not match (want x (B, Cin, H, W), W (Cout, Cin, kh, kw), b (Cout))",
                     wb_shape_str(x, s1, sizeof s1), wb_shape_str(w, s2, sizeof s2));
        return NULL;
    }
    if (stride_h < 1 || stride_w < 1 || pad_h < 0 || pad_w < 0) {
        wb_set_error("conv2d: strides (%d, %d) must be >= 1 and pads (%d, %d) >= 0", stride_h, stride_w, pad_h,
                     pad_w);
        return NULL;
    }
    int64_t bsz = x->shape[0], cin = x->shape[1], h = x->shape[2], wd = x->shape[3];
    int64_t cout = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    if (kh < 1 || kw < 1 || h + 2 * pad_h < kh || wd + 2 * pad_w < kw) {
        wb_set_error("conv2d: kernel %lldx%lld does not fit input %s with pad (%d, %d)", (long long)kh, (long long)kw,
                     wb_shape_str(x, s1, sizeof s1), pad_h, pad_w);
        return NULL;
    }
    int64_t ho = (h + 2 * pad_h - kh) / stride_h + 1, wo = (wd + 2 * pad_w - kw) / stride_w + 1;
    int64_t p = ho * wo, k = cin * kh * kw;
    /* The kernels take int dimensions (BLAS does). */
    if (p > INT32_MAX || k > INT32_MAX || cout > INT32_MAX || bsz > INT32_MAX || h * wd > INT32_MAX) {
        wb_set_error("conv2d: x %s, W %s: dimensions too large", wb_shape_str(x, s1, sizeof s1),
                     wb_shape_str(w, s2, sizeof s2));
        return NULL;
    }
    int pointwise = is_pointwise((int)kh, (int)kw, stride_h, stride_w, pad_h, pad_w);
    int64_t shape[4] = {bsz, cout, ho, wo};
    wb_tensor *y = wb_new(g, 4, shape);
    if (!y) return NULL;
    wb_conv_geom geom = conv_geom(x, w, y, stride_h, stride_w, pad_h, pad_w);
    int fused = use_fused(g, &geom);
    if (!fused && (wb_op_need_kernel(g, "conv2d", (const void *)g->be->gemm_batched) ||
                   (!pointwise && (wb_op_need_kernel(g, "conv2d", (const void *)g->be->im2col) ||
                                   wb_op_need_kernel(g, "conv2d", (const void *)g->be->col2im)))))
        return NULL;
    const wb_backend *be = g->be;
    int64_t xs = cin * h * wd, ys = cout * p;
    if (fused && y->numel > 0) {
        if (be->conv2d_fwd(g->conv_ctx, &geom, x->data, w->data, b ? b->data : NULL, y->data)) return NULL;
    } else if (y->numel > 0) {
        float beta = 0.0f;
        if (b) { /* y_b = b (Cout, 1) · 1ᵀ (1, P): the bias as a rank-1 GEMM, then accumulate W·col on top */
            float *ones = scratch(g, p);
            if (!ones) return NULL;
            be->fill(ones, p, 1.0f);
            be->gemm_batched((int)bsz, 0, 0, (int)cout, (int)p, 1, 1.0f, b->data, 1, 0, ones, (int)p, 0, 0.0f,
                             y->data, (int)p, ys);
            beta = 1.0f;
        }
        if (pointwise) { /* y_b = W (Cout, Cin) · x_b (Cin, P) for all images in one call */
            be->gemm_batched((int)bsz, 0, 0, (int)cout, (int)p, (int)k, 1.0f, w->data, (int)k, 0, x->data, (int)p,
                             xs, beta, y->data, (int)p, ys);
        } else {
            float *col = scratch(g, k * p);
            if (!col) return NULL;
            for (int64_t i = 0; i < bsz; i++) { /* y_b = W (Cout, K) · col_b (K, P) */
                be->im2col(x->data + i * xs, (int)cin, (int)h, (int)wd, (int)kh, (int)kw, stride_h, stride_w, pad_h,
                           pad_w, col);
                be->gemm(0, 0, (int)cout, (int)p, (int)k, 1.0f, w->data, (int)k, col, (int)p, beta,
                         y->data + i * ys, (int)p);
            }
        }
    }
    wb_node *node = wb_op_record(g, "conv2d", conv2d_bwd, y, x, w, b);
    if (node) {
        node->i[0] = stride_h;
        node->i[1] = stride_w;
        node->i[2] = pad_h;
        node->i[3] = pad_w;
    }
    return y;
}

/* ---- upsample2x / avgpool2x ---------------------------------------------------------- */
static void upsample2x_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0];
    if (wb_op_want(x))
        g->be->upsample2x_bwd(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], n->out->grad, x->grad);
}

static void avgpool2x_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0];
    if (wb_op_want(x))
        g->be->avgpool2x_bwd(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], n->out->grad, x->grad);
}

/* Shared checks: NCHW input, planes small enough for int indexing. */
static int check_image(wb_graph *g, const char *op, const wb_tensor *x, const void *fwd, const void *bwd) {
    if (wb_op_check_backend(g, op, x) || wb_op_need_kernel(g, op, fwd) || wb_op_need_kernel(g, op, bwd)) return -1;
    char s[64];
    if (x->ndim != 4) {
        wb_set_error("%s: x %s is not (B, C, H, W)", op, wb_shape_str(x, s, sizeof s));
        return -1;
    }
    if (x->shape[2] > INT32_MAX / 4 || x->shape[3] > INT32_MAX / 4) {
        wb_set_error("%s: x %s: plane too large", op, wb_shape_str(x, s, sizeof s));
        return -1;
    }
    return 0;
}

wb_tensor *wb_upsample2x(wb_graph *g, wb_tensor *x) {
    if (!x) return NULL;
    if (check_image(g, "upsample2x", x, (const void *)g->be->upsample2x, (const void *)g->be->upsample2x_bwd))
        return NULL;
    int64_t shape[4] = {x->shape[0], x->shape[1], 2 * x->shape[2], 2 * x->shape[3]};
    wb_tensor *y = wb_new(g, 4, shape);
    if (!y) return NULL;
    if (y->numel > 0) g->be->upsample2x(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], x->data, y->data);
    wb_op_record(g, "upsample2x", upsample2x_bwd, y, x, NULL, NULL);
    return y;
}

wb_tensor *wb_avgpool2x(wb_graph *g, wb_tensor *x) {
    if (!x) return NULL;
    if (check_image(g, "avgpool2x", x, (const void *)g->be->avgpool2x, (const void *)g->be->avgpool2x_bwd))
        return NULL;
    if (x->shape[2] % 2 || x->shape[3] % 2) {
        char s[64];
        wb_set_error("avgpool2x: x %s: H and W must be even", wb_shape_str(x, s, sizeof s));
        return NULL;
    }
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] / 2, x->shape[3] / 2};
    wb_tensor *y = wb_new(g, 4, shape);
    if (!y) return NULL;
    if (y->numel > 0) g->be->avgpool2x(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], x->data, y->data);
    wb_op_record(g, "avgpool2x", avgpool2x_bwd, y, x, NULL, NULL);
    return y;
}

/* ---- bmm ---------------------------------------------------------------------------- */
/* C_i = op(A_i) · op(B_i), op(A) (M, K), op(B) (K, P). Stored A is (M, K) or
 * (K, M) when trans_a; stored B is (K, P) or (P, K) when trans_b. */
static void bmm_bwd(wb_graph *g, wb_node *n) {
    const wb_backend *be = g->be;
    wb_tensor *a = n->in[0], *b = n->in[1], *c = n->out;
    int ta = (int)n->i[0], tb = (int)n->i[1];
    int nb = (int)c->shape[0], m = (int)c->shape[1], p = (int)c->shape[2];
    int k = (int)(ta ? a->shape[1] : a->shape[2]);
    int lda = ta ? m : k, ldb = tb ? k : p;
    int64_t sa = (int64_t)m * k, sb = (int64_t)k * p, sc = (int64_t)m * p;
    if (wb_op_want(a)) {
        if (!ta) /* dA (M, K) += dC (M, P) · op(B)ᵀ */
            be->gemm_batched(nb, 0, !tb, m, k, p, 1.0f, c->grad, p, sc, b->data, ldb, sb, 1.0f, a->grad, k, sa);
        else /* dA (K, M) = (dC · op(B)ᵀ)ᵀ = op(B) · dCᵀ */
            be->gemm_batched(nb, tb, 1, k, m, p, 1.0f, b->data, ldb, sb, c->grad, p, sc, 1.0f, a->grad, m, sa);
    }
    if (wb_op_want(b)) {
        if (!tb) /* dB (K, P) += op(A)ᵀ · dC */
            be->gemm_batched(nb, !ta, 0, k, p, m, 1.0f, a->data, lda, sa, c->grad, p, sc, 1.0f, b->grad, p, sb);
        else /* dB (P, K) = (op(A)ᵀ · dC)ᵀ = dCᵀ · op(A) */
            be->gemm_batched(nb, 1, ta, p, k, m, 1.0f, c->grad, p, sc, a->data, lda, sa, 1.0f, b->grad, k, sb);
    }
}

wb_tensor *wb_bmm(wb_graph *g, wb_tensor *a, wb_tensor *b, int trans_a, int trans_b) {
    if (!a || !b) return NULL;
    if (wb_op_check_backend(g, "bmm", a) || wb_op_check_backend(g, "bmm", b) ||
        wb_op_need_kernel(g, "bmm", (const void *)g->be->gemm_batched))
        return NULL;
    char s1[64], s2[64];
    if (a->ndim != 3 || b->ndim != 3) {
        wb_set_error("bmm: a %s and b %s must both be (N, rows, cols)", wb_shape_str(a, s1, sizeof s1),
                     wb_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    trans_a = trans_a != 0;
    trans_b = trans_b != 0;
    int64_t m = trans_a ? a->shape[2] : a->shape[1], ka = trans_a ? a->shape[1] : a->shape[2];
    int64_t kb = trans_b ? b->shape[2] : b->shape[1], p = trans_b ? b->shape[1] : b->shape[2];
    if (a->shape[0] != b->shape[0] || ka != kb) {
        wb_set_error("bmm: a %s%s · b %s%s: batch or inner dimensions differ", wb_shape_str(a, s1, sizeof s1),
                     trans_a ? "ᵀ" : "", wb_shape_str(b, s2, sizeof s2), trans_b ? "ᵀ" : "");
        return NULL;
    }
    if (a->shape[0] > INT32_MAX || m > INT32_MAX || ka > INT32_MAX || p > INT32_MAX) {
        wb_set_error("bmm: a %s, b %s: dimensions too large", wb_shape_str(a, s1, sizeof s1),
                     wb_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    int64_t shape[3] = {a->shape[0], m, p};
    wb_tensor *c = wb_new(g, 3, shape);
    if (!c) return NULL;
    int k = (int)ka;
    g->be->gemm_batched((int)a->shape[0], trans_a, trans_b, (int)m, (int)p, k, 1.0f, a->data, trans_a ? (int)m : k,
                        m * ka, b->data, trans_b ? k : (int)p, ka * p, 0.0f, c->data, (int)p, m * p);
    wb_node *node = wb_op_record(g, "bmm", bmm_bwd, c, a, b, NULL);
    if (node) {
        node->i[0] = trans_a;
        node->i[1] = trans_b;
    }
    return c;
}
