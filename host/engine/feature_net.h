/* host/engine/feature_net.h — a small deterministic image classifier whose pooled
 * features stand in for Inception's in FID-style metrics (FID, precision /
 * recall, Inception-Score analogue, mode coverage) on the workbench's small
 * image sets, trained once per dataset and cached as safetensors.
 *
 * Shape legend: B batch, C channels, H×W image size (both divisible by 4),
 * K classes (the labels present in the training set, in increasing order),
 * F = WB_FEATURE_DIM features.
 *
 *   x (B, C, H, W) in [−1, 1]
 *   conv3x3(C→32) GN SiLU avgpool2x   (B, 32, H/2, W/2)
 *   conv3x3(32→64) GN SiLU avgpool2x  (B, 64, H/4, W/4)
 *   conv3x3(64→128) GN SiLU           (B, 128, H/4, W/4)
 *   global average pool              (B, F)      <- the features
 *   linear(F→K)                      (B, K)      <- logits, softmax = probs
 *
 * Errors: NULL / non-zero with the reason in wb_last_error() (naming the
 * cache file when it is at fault); nothing exits.
 */
#ifndef WB_FEATURE_NET_H
#define WB_FEATURE_NET_H

#include <stdint.h>

#include "engine/engine.h"

#define WB_FEATURE_DIM 128

typedef struct wb_feature_net wb_feature_net;

/* Opens the classifier of image set train_ds (from wb_images_open, labelled,
 * at least 2 classes present): loads
 *   <cache_dir>/<ds->name>-<H>x<W>-s<seed>-n<steps>.safetensors
 * when it exists (a file that does not load is an error naming it, never
 * silently retrained over), else trains `steps` Adam steps (batch 64, cross
 * entropy on wb_images_sample_labeled draws; deterministic in seed), creates
 * cache_dir if needed and saves atomically. Unless quiet, one progress line
 * on stderr (redrawn in place on a terminal). */
wb_feature_net *wb_feature_net_open(wb_dataset *train_ds, const char *cache_dir, int steps, uint64_t seed,
                                    int quiet, const wb_backend *be /* NULL: wb_backend_select(NULL) */);
void wb_feature_net_free(wb_feature_net *fn);

/* Geometry and identity. */
int wb_feature_net_classes(const wb_feature_net *fn);        /* K */
const wb_net_shape *wb_feature_net_shape(const wb_feature_net *fn);
const char *wb_feature_net_path(const wb_feature_net *fn);    /* its cache file */
int wb_feature_net_trained(const wb_feature_net *fn);         /* 1: trained by open, 0: loaded */
/* "<ds name>-<H>x<W>-s<seed>-n<steps>": names the classifier in cache files
 * derived from it (reference statistics). */
const char *wb_feature_net_id(const wb_feature_net *fn);
/* The dataset label of class index i (0..K−1). */
int wb_feature_net_label(const wb_feature_net *fn, int i);

/* n images (n × C·H·W floats, NCHW rows) -> feats (n × F) and, when probs is
 * not NULL, softmax probabilities (n × K). Batched, no gradients. */
int wb_feature_net_features(wb_feature_net *fn, const float *images, int64_t n, float *feats, float *probs);

/* Share of the first n kept images of image set ds (all when n <= 0 or n >
 * count) whose argmax class is their label; images whose label the
 * classifier never saw count as wrong. NaN (error set) on failure. */
double wb_feature_net_accuracy(wb_feature_net *fn, wb_dataset *ds, int64_t n);

/* ---- image metrics ------------------------------------------------------------ */
typedef struct wb_image_metrics_out {
    double fid;               /* Fréchet distance of the F-d feature Gaussians          */
    double precision, recall; /* k = 3 (Kynkäänniemi et al.)                           */
    double is_mean, is_std;   /* Inception-Score analogue from the classifier, 10 splits */
    int classes_covered, n_classes;
    double entropy;           /* normalised entropy of the argmax histogram             */
    int collapsed;
    /* the papers' FID and precision/recall on Inception-v3 pool3 features
     * (NaN unless an Inception network was given) */
    double fid_inception, precision_inception, recall_inception;
} wb_image_metrics_out;

/* Seed of the reference draw (stream 0 of `reference`'s sampler). */
#define WB_IMAGE_METRICS_REF_SEED 20260202u

/* samples: n images (n × C·H·W) in [−1, 1], n ≥ 4 (precision/recall with
 * k = 3 need more than k rows). Reference: n images of `reference` drawn
 * with WB_IMAGE_METRICS_REF_SEED; their statistics are cached as
 *   <cache_dir>/<ref name>-<H>x<W>-ref-<n>-<feature net id>.stats.safetensors
 * (the classifier's id is part of the name: statistics of another
 * classifier's features must never be reused). With `inception` (NULL:
 * none) the same two image sets also get FID and precision/recall on its
 * pool3 features, reference statistics cached as
 *   <cache_dir>/<ref name>-<C>x<H>x<W>-ref-<n>-inception-<inception_id>.stats.safetensors
 * (inception_id names the weights, e.g. file name and size). */
struct wb_inception;
int wb_image_metrics(wb_feature_net *fn, const float *samples, int64_t n, wb_dataset *reference,
                     const char *cache_dir, struct wb_inception *inception, const char *inception_id,
                     wb_image_metrics_out *out);

#endif
