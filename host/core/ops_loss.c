/* host/core/ops_loss.c — wb_cross_entropy (include/wb/loss.h): softmax cross
 * entropy with integer labels, for the feature classifier.
 *
 * Shape legend: B batch, K classes; logits (B, K), labels (B) host ints.
 *
 * The loss is computed on the host: labels live there already, K is small
 * (tens of classes), and a double log-sum-exp keeps a confidently wrong
 * logit of 1e4 from overflowing. The forward pass also stores the gradient
 * (softmax − onehot)/B in the arena, so the backward rule is one axpy
 * scaled by the incoming scalar gradient, on whatever backend holds x.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "wb/loss.h"
#include "wb/backend.h"
#include "core/wb_internal.h"

static void cross_entropy_bwd(wb_graph *g, wb_node *n) {
    wb_tensor *x = n->in[0], *dsave = n->in[1], *y = n->out;
    if (!wb_op_want(x)) return;
    float dy = 0.0f;
    wb_backend_download(g->be, &dy, y->grad, sizeof dy);
    g->be->axpy(x->numel, dy, dsave->data, x->grad);
}

wb_tensor *wb_cross_entropy(wb_graph *g, wb_tensor *logits, const int *labels) {
    if (!logits) return NULL;
    const char *op = "cross_entropy";
    if (wb_op_check_backend(g, op, logits)) return NULL;
    char s1[64];
    if (logits->ndim != 2 || logits->shape[0] < 1 || logits->shape[1] < 1) {
        wb_set_error("cross_entropy: logits %s: want (B, K) with B, K ≥ 1", wb_shape_str(logits, s1, sizeof s1));
        return NULL;
    }
    if (!labels) {
        wb_set_error("cross_entropy: labels is NULL");
        return NULL;
    }
    int64_t b = logits->shape[0], k = logits->shape[1];
    float *host = malloc((size_t)logits->numel * sizeof *host);
    if (!host) {
        wb_set_error("cross_entropy: out of memory for %s logits", wb_shape_str(logits, s1, sizeof s1));
        return NULL;
    }
    wb_backend_download(g->be, host, logits->data, (size_t)logits->numel * sizeof *host);
    double total = 0.0;
    for (int64_t i = 0; i < b; i++) {
        float *row = host + i * k;
        if (labels[i] < 0 || labels[i] >= k) {
            wb_set_error("cross_entropy: label %d of row %lld is outside 0..%lld", labels[i], (long long)i,
                         (long long)(k - 1));
            free(host);
            return NULL;
        }
        double mx = -INFINITY;
        for (int64_t j = 0; j < k; j++) {
            if (!isfinite(row[j])) {
                /* a NaN would silently become a NaN loss three steps later */
                wb_set_error("cross_entropy: logit (%lld, %lld) is %g", (long long)i, (long long)j, (double)row[j]);
                free(host);
                return NULL;
            }
            if (row[j] > mx) mx = row[j];
        }
        double s = 0.0;
        for (int64_t j = 0; j < k; j++) s += exp((double)row[j] - mx);
        double lse = mx + log(s);
        total += lse - (double)row[labels[i]];
        /* row becomes its gradient: (softmax − onehot) / B */
        for (int64_t j = 0; j < k; j++) {
            double p = exp((double)row[j] - lse);
            row[j] = (float)((p - (j == labels[i] ? 1.0 : 0.0)) / (double)b);
        }
    }
    int64_t one = 1;
    float loss = (float)(total / (double)b);
    wb_tensor *y = wb_from_host(g, 1, &one, &loss);
    wb_tensor *dsave = NULL;
    /* the gradient is only worth keeping when a node will use it */
    if (y && wb_graph_grad_enabled(g) && logits->requires_grad) dsave = wb_from_host(g, 2, logits->shape, host);
    free(host);
    if (!y) return NULL;
    if (dsave) wb_op_record(g, op, cross_entropy_bwd, y, logits, dsave, NULL);
    return y;
}
