/* host/core/ops_pool.c — the pooling and resampling ops of wb/tensor.h that the
 * FID Inception network needs (host/engine/inception.c) and that are general
 * enough for any net: k×k max pooling, k×k average pooling with torch's
 * two divisor rules, and bilinear resizing (torch's align_corners=False).
 * Like host/core/ops_conv.c: shape checks with errors naming the op, output in
 * the graph's arena, a tape node and a backward rule; the arithmetic is the
 * backend's (kernels/cpu/cpu_pool.c). A backend without these kernels gets
 * "<op>: not implemented on backend '<name>'".
 *
 * Shape legend: x (B, C, H, W), planes = B·C; pooling output (B, C, Ho, Wo),
 * Ho = (H + 2·pad − k)/stride + 1 rounded down, Wo likewise; resizing
 * output (B, C, out_h, out_w).
 */
#include <stdint.h>

#include "core/wb_internal.h"

/* NCHW input with planes small enough for the kernels' int indexing, both
 * kernels present on the graph's backend. */
static int check_x(wb_graph *g, const char *op, const wb_tensor *x, const void *fwd, const void *bwd) {
    if (wb_op_check_backend(g, op, x) || wb_op_need_kernel(g, op, fwd) || wb_op_need_kernel(g, op, bwd)) return -1;
    char s[64];
    if (x->ndim != 4) {
        wb_set_error("%s: x %s is not (B, C, H, W)", op, wb_shape_str(x, s, sizeof s));
        return -1;
    }
    if (x->shape[2] * x->shape[3] > INT32_MAX / 2) {
        wb_set_error("%s: x %s: plane too large", op, wb_shape_str(x, s, sizeof s));
        return -1;
    }
    return 0;
}

/* Pooling geometry as torch checks it: k >= 1, stride >= 1, 0 <= pad <= k/2
 * (so every window holds at least one image cell), a window fits. */
static int check_pool(const char *op, const wb_tensor *x, int k, int stride, int pad, int64_t *ho, int64_t *wo) {
    char s[64];
    if (k < 1 || stride < 1 || pad < 0 || pad > k / 2) {
        wb_set_error("%s: kernel %d, stride %d, pad %d: want k >= 1, stride >= 1, 0 <= pad <= k/2", op, k, stride,
                     pad);
        return -1;
    }
    int64_t h = x->shape[2], w = x->shape[3];
    if (h + 2 * pad < k || w + 2 * pad < k) {
        wb_set_error("%s: kernel %d does not fit x %s with pad %d", op, k, wb_shape_str(x, s, sizeof s), pad);
        return -1;
    }
    *ho = (h + 2 * pad - k) / stride + 1;
    *wo = (w + 2 * pad - k) / stride + 1;
    return 0;
}

/* ---- max pooling ------------------------------------------------------------------ */
static void maxpool2d_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0];
    if (wb_op_want(x))
        g->be->maxpool2d_bwd(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)n->i[0],
                             (int)n->i[1], (int)n->i[2], x->data, n->out->grad, x->grad);
}

wb_tensor *wb_maxpool2d(wb_graph *g, wb_tensor *x, int k, int stride, int pad) {
    if (!x) return NULL;
    int64_t ho, wo;
    if (check_x(g, "maxpool2d", x, (const void *)g->be->maxpool2d, (const void *)g->be->maxpool2d_bwd) ||
        check_pool("maxpool2d", x, k, stride, pad, &ho, &wo))
        return NULL;
    int64_t shape[4] = {x->shape[0], x->shape[1], ho, wo};
    wb_tensor *y = wb_new(g, 4, shape);
    if (!y) return NULL;
    if (y->numel > 0)
        g->be->maxpool2d(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], k, stride, pad, x->data,
                         y->data);
    wb_node *node = wb_op_record(g, "maxpool2d", maxpool2d_bwd, y, x, NULL, NULL);
    if (node) {
        node->i[0] = k;
        node->i[1] = stride;
        node->i[2] = pad;
    }
    return y;
}

/* ---- average pooling ------------------------------------------------------------- */
static void avgpool2d_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0];
    if (wb_op_want(x))
        g->be->avgpool2d_bwd(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)n->i[0],
                             (int)n->i[1], (int)n->i[2], (int)n->i[3], n->out->grad, x->grad);
}

wb_tensor *wb_avgpool2d(wb_graph *g, wb_tensor *x, int k, int stride, int pad, int count_include_pad) {
    if (!x) return NULL;
    int64_t ho, wo;
    if (check_x(g, "avgpool2d", x, (const void *)g->be->avgpool2d, (const void *)g->be->avgpool2d_bwd) ||
        check_pool("avgpool2d", x, k, stride, pad, &ho, &wo))
        return NULL;
    count_include_pad = count_include_pad != 0;
    int64_t shape[4] = {x->shape[0], x->shape[1], ho, wo};
    wb_tensor *y = wb_new(g, 4, shape);
    if (!y) return NULL;
    if (y->numel > 0)
        g->be->avgpool2d(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], k, stride, pad,
                         count_include_pad, x->data, y->data);
    wb_node *node = wb_op_record(g, "avgpool2d", avgpool2d_bwd, y, x, NULL, NULL);
    if (node) {
        node->i[0] = k;
        node->i[1] = stride;
        node->i[2] = pad;
        node->i[3] = count_include_pad;
    }
    return y;
}

/* ---- bilinear resizing ---------------------------------------------------------- */
static void resize_bilinear_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0], *y = n->out;
    if (wb_op_want(x))
        g->be->resize_bilinear_bwd(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)y->shape[2],
                                   (int)y->shape[3], y->grad, x->grad);
}

wb_tensor *wb_resize_bilinear(wb_graph *g, wb_tensor *x, int out_h, int out_w) {
    if (!x) return NULL;
    if (check_x(g, "resize_bilinear", x, (const void *)g->be->resize_bilinear,
                (const void *)g->be->resize_bilinear_bwd))
        return NULL;
    char s[64];
    if (out_h < 1 || out_w < 1 || (int64_t)out_h * out_w > INT32_MAX / 2 || x->shape[2] < 1 || x->shape[3] < 1) {
        wb_set_error("resize_bilinear: x %s to %dx%d: want a non-empty input plane and 1 <= out_h·out_w < 2^30",
                     wb_shape_str(x, s, sizeof s), out_h, out_w);
        return NULL;
    }
    int64_t shape[4] = {x->shape[0], x->shape[1], out_h, out_w};
    wb_tensor *y = wb_new(g, 4, shape);
    if (!y) return NULL;
    if (y->numel > 0)
        g->be->resize_bilinear(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], out_h, out_w, x->data,
                               y->data);
    wb_op_record(g, "resize_bilinear", resize_bilinear_bwd, y, x, NULL, NULL);
    return y;
}
