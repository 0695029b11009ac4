/* host/core/ops_loss.h — classification losses for host-side models (the FID
 * feature classifier, host/engine/feature_net.c). Kept out of wb/tensor.h: labels
 * are host integers, which the plugin-facing op set does not traffic in.
 *
 * Shape legend: B batch, K classes.
 */
#ifndef WB_OPS_LOSS_H
#define WB_OPS_LOSS_H

#include "wb/tensor.h"

/* mean_b −log softmax(logits_b)[labels_b]: logits (B, K), labels host ints
 * in 0..K−1 (B of them) -> scalar (1). Log-sum-exp in double (stable for
 * any logit range); backward: d logits = (softmax − onehot) / B · dy.
 * NULL (message in wb_last_error()) on a bad shape, label or non-finite
 * logit. */
wb_tensor *wb_cross_entropy(wb_graph *g, wb_tensor *logits, const int *labels);

#endif
