/* wb/loss.h — classification losses with host integer labels (the FID
 * feature classifier, host/engine/feature_net.c, and any plugin that trains
 * a classifier). Apart from wb/tensor.h's losses because its labels are host
 * ints, not tensors; like every op it runs on the graph's backend.
 *
 * Shape legend: B batch, K classes.
 */
#ifndef WB_LOSS_H
#define WB_LOSS_H

#include "wb/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* libwb exports what is declared here */

/* mean_b −log softmax(logits_b)[labels_b]: logits (B, K), labels host ints
 * in 0..K−1 (B of them) -> scalar (1). Log-sum-exp in double (stable for
 * any logit range); backward: d logits = (softmax − onehot) / B · dy.
 * NULL (message in wb_last_error()) on a bad shape, label or non-finite
 * logit. */
wb_tensor *wb_cross_entropy(wb_graph *g, wb_tensor *logits, const int *labels);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
