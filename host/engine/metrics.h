/* host/engine/metrics.h — sample-quality metrics for distilled one-step generators,
 * computed on the host from features/probabilities that a feature network
 * (Inception or any stand-in) has already produced:
 *   - streaming Gaussian feature statistics (mean, unbiased covariance),
 *     cached on disk per dataset/resolution,
 *   - the Fréchet distance between two such Gaussians (FID when the features
 *     are Inception pool3 features),
 *   - k-NN precision/recall (Kynkäänniemi et al. 2019),
 *   - an Inception-Score analogue from class probabilities,
 *   - a mode-collapse check from predicted classes,
 *   - a PNG sample grid for images.
 *
 * Conventions (as in wb/tensor.h): functions that can fail return non-zero
 * (or NULL) with the reason in wb_last_error(); nothing here exits. Feature
 * matrices are row-major, one sample a row (n x dim floats). Accumulation is
 * in double so that 50k x 2048 features do not lose the covariance to
 * float round-off.
 */
#ifndef WB_METRICS_H
#define WB_METRICS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- feature statistics ---------------------------------------------------- */
/* mean[dim] and cov[dim*dim] (row-major, symmetric) are valid after
 * wb_feature_stats_finalize() (or a load). Between adds, cov is stale; the
 * running sum of centred outer products lives in m2 (private). */
typedef struct wb_feature_stats {
    int dim;
    int64_t n;    /* samples accumulated */
    double *mean; /* dim */
    double *cov;  /* dim x dim, unbiased (divides by n - 1, as numpy.cov / pytorch-fid) */
    double *m2;   /* private: Σ (x - mean)(x - mean)ᵀ, upper triangle valid */
    int64_t n_final; /* private: n at the last finalize/load (save refuses stale cov) */
} wb_feature_stats;

/* dim in 1..65536 (the dim x dim doubles must fit in memory). */
wb_feature_stats *wb_feature_stats_new(int dim);
void wb_feature_stats_free(wb_feature_stats *s);
/* Adds n rows of dim floats. Numerically stable for any n: each batch is
 * centred on its own mean and merged with Chan et al.'s parallel update, so
 * large feature offsets do not cancel catastrophically. Non-finite features
 * are an error (the statistics would be silently poisoned). */
int wb_feature_stats_add(wb_feature_stats *s, const float *x, int n);
/* Computes cov = m2 / (n - 1) (symmetrised); needs n >= 2. More batches may
 * be added afterwards and finalize called again. */
int wb_feature_stats_finalize(wb_feature_stats *s);
/* A safetensors file (F64 tensors "mean" [dim] and "cov" [dim, dim],
 * metadata {"format": "wb_feature_stats", "n": "<count>"}), readable by
 * numpy/safetensors tooling. Saving finalizes first (s is const, so the
 * caller must have finalized: n >= 2 and cov current). Written and read by
 * host/core/safetensors.c (core/safetensors.h): atomically (a cache file is
 * never half-written), header, dtypes, shapes and sizes validated on load;
 * errors name the file. A loaded object can take further adds (m2 is
 * rebuilt from cov). */
int wb_feature_stats_save(const wb_feature_stats *s, const char *path);
wb_feature_stats *wb_feature_stats_load(const char *path);

/* ---- Fréchet distance ---------------------------------------------------------
 * d² = ‖μ1−μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1 Σ2)^{1/2}.
 * tr (Σ1 Σ2)^{1/2} = tr (A Σ2 A)^{1/2} with A = Σ1^{1/2}: Σ1 Σ2 = A·(A Σ2)
 * and A Σ2 A = (A Σ2)·A share their eigenvalues (XY and YX always do, even
 * for singular A), and A Σ2 A is symmetric PSD, so two symmetric
 * eigendecompositions (LAPACK dsyevd) replace the non-symmetric sqrtm of
 * pytorch-fid: no complex parts, no eps offset, and rank-deficient
 * covariances (n < dim) need no special case. Tiny negative eigenvalues from
 * round-off are clamped to 0. The result is clamped at 0 as well.
 * Covariances need only be symmetric (upper triangle is read). */
int wb_frechet_distance(int dim, const double *mu1, const double *cov1, const double *mu2,
                        const double *cov2, double *out);
/* The same on two finalized statistics (dims must match). */
int wb_frechet_distance_stats(const wb_feature_stats *a, const wb_feature_stats *b, double *out);

/* ---- precision / recall (Kynkäänniemi et al. 2019) --------------------------
 * Each real feature gets a ball whose radius is the distance to its k-th
 * nearest other real feature; precision = share of generated features inside
 * at least one real ball (d ≤ r). Recall swaps the roles (balls around the
 * generated features). k <= 0 means 3, the paper's default; each set needs
 * more than k rows. Squared distances come from blocked cblas_sgemm
 * (‖a‖² + ‖b‖² − 2 a·b, norms in double), O(n² dim) work, O(block²) memory. */
int wb_precision_recall(const float *real, int n_real, const float *fake, int n_fake, int dim,
                        int k, double *precision, double *recall);

/* ---- Inception-Score analogue -------------------------------------------------
 * probs: n x k rows of class probabilities p(y|x) (non-negative, finite;
 * rows are renormalised so slightly-off softmax outputs are fine). The rows
 * are cut into `splits` consecutive parts (splits <= 0 means 10, as in the
 * reference implementation; each part gets n*i/splits .. n*(i+1)/splits);
 * each part scores exp(mean_x KL(p(y|x) ‖ p(y))) with p(y) the part's
 * marginal. mean and std (population, ddof = 0, as numpy.std) over parts. */
int wb_inception_score(const float *probs, int n, int k, int splits, double *mean, double *std);

/* ---- mode collapse -------------------------------------------------------------
 * From predicted classes (labels in 0..k-1, e.g. the argmax of a classifier
 * on n generated images):
 *   covered      classes with at least 20 % of the expected count n/k
 *                (a class seen once or twice in 10k samples is not "covered")
 *   entropy_norm entropy of the label histogram / log k, in [0, 1]
 *                (1: perfectly balanced; 0: a single class)
 *   collapsed    1 when covered <= k/2 (rounded down) or entropy_norm < 0.5:
 *                half or more of the modes missing, or the mass
 *                concentrated on a few classes, either of which a FID
 *                number alone can hide.
 * k >= 2. counts (k ints) may be NULL; it receives the histogram. */
typedef struct wb_mode_report {
    int n, k;
    int covered;
    double entropy_norm;
    int collapsed;
} wb_mode_report;

int wb_mode_coverage(const int *labels, int n, int k, wb_mode_report *out, int *counts);
/* labels[i] = argmax_j probs[i*k + j] (the first maximum; NaN never wins). */
int wb_argmax_rows(const float *probs, int n, int k, int *labels);

#ifdef __cplusplus
}
#endif

#endif /* WB_METRICS_H */
