/* host/engine/inception.h — the FID Inception-v3 feature extractor (host/engine/inception.c):
 * the 2048-d pool3 features the FID papers use, computed by the network of
 * pytorch-fid (TF's 'pt_inception-2015-12-05' graph in torchvision's
 * Inception3 layout with the FID blocks) from weights the user supplies as
 * a safetensors file. No weights ship with the workbench.
 *
 * Weight file: torchvision's / pytorch-fid's state-dict names and shapes,
 * every tensor F32, e.g. `Conv2d_1a_3x3.conv.weight` (32, 3, 3, 3) and
 * `Conv2d_1a_3x3.bn.{weight,bias,running_mean,running_var}` (32), ...,
 * `Mixed_7c.branch_pool.conv.weight` (192, 2048, 1, 1). `fc.*`,
 * `AuxLogits.*`, `*.num_batches_tracked` and any other extra tensor are
 * ignored. Converting pytorch-fid's .pth: load it with torch and write the
 * state dict with safetensors.torch.save_file (tensors made contiguous).
 *
 * Shape legend: N images, C channels (1 or 3), H×W image size; features
 * (N, WB_INCEPTION_DIM) row-major.
 */
#ifndef WB_INCEPTION_H
#define WB_INCEPTION_H

#include <stdint.h>

#include "wb/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WB_INCEPTION_DIM 2048 /* pool3 features  */
#define WB_INCEPTION_SIZE 299 /* input resolution */

typedef struct wb_inception wb_inception;

/* Loads and validates the weights onto backend be (NULL:
 * wb_backend_select(NULL)) and folds every eval-mode BatchNorm into its
 * convolution. NULL on error, with a message naming the file and the
 * offending key (missing, wrong shape, not F32, truncated data). */
wb_inception *wb_inception_load(const char *path, const wb_backend *be);
void wb_inception_free(wb_inception *m);

/* Pool3 features of n images (host memory, NCHW float32, values in [-1, 1]
 * as the workbench's datasets and samplers produce them) into out (host,
 * n × WB_INCEPTION_DIM). Each image is resized bilinearly to 299×299
 * (torch's align_corners=False, as pytorch-fid) and a 1-channel image is
 * repeated to 3 channels. Runs in chunks of 16 images with grad mode off;
 * the activation memory of a chunk (a few hundred MB) stays with `m` for
 * the next call until wb_inception_free, so one `m` serves one thread at a
 * time. 0, or -1 with wb_last_error() set. */
int wb_inception_features(wb_inception *m, const float *images, int64_t n, int c, int h, int w, float *out);

#ifdef __cplusplus
}
#endif
#endif
