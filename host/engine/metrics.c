/* host/engine/metrics.c — sample-quality metrics (see metrics.h): streaming feature
 * statistics and their safetensors cache, Fréchet distance through symmetric
 * eigendecompositions (LAPACK dsyevd from OpenBLAS), k-NN precision/recall
 * with blocked SGEMM distances, an Inception-Score analogue and a
 * mode-collapse check. The PNG sample grid lives in image_grid.c.
 */
#include "engine/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "wb/safetensors.h"
#include "wb/tensor.h"

/* OpenBLAS exports LAPACK but ships no lapack.h in the cblas include dir;
 * the Fortran symbol is declared here. CHARACTER*1 arguments: the hidden
 * length arguments are omitted, as every C caller of LAPACK does. */
extern void dsyevd_(const char *jobz, const char *uplo, const blasint *n, double *a, const blasint *lda,
                    double *w, double *work, const blasint *lwork, blasint *iwork, const blasint *liwork,
                    blasint *info);

#define STATS_MAX_DIM 65536
#define STATS_CHUNK 512 /* rows centred per dsyrk: bounds the scratch to 512*dim doubles */

/* ---- feature statistics ---------------------------------------------------- */

wb_feature_stats *wb_feature_stats_new(int dim) {
    if (dim < 1 || dim > STATS_MAX_DIM) {
        wb_set_error("feature stats: invalid dim %d (1..%d)", dim, STATS_MAX_DIM);
        return NULL;
    }
    wb_feature_stats *s = calloc(1, sizeof *s);
    size_t d = (size_t)dim;
    if (s) {
        s->dim = dim;
        s->mean = calloc(d, sizeof *s->mean);
        s->cov = calloc(d * d, sizeof *s->cov);
        s->m2 = calloc(d * d, sizeof *s->m2);
    }
    if (!s || !s->mean || !s->cov || !s->m2) {
        wb_feature_stats_free(s);
        wb_set_error("feature stats: out of memory for dim %d", dim);
        return NULL;
    }
    s->n_final = -1;
    return s;
}

void wb_feature_stats_free(wb_feature_stats *s) {
    if (!s) return;
    free(s->mean);
    free(s->cov);
    free(s->m2);
    free(s);
}

int wb_feature_stats_add(wb_feature_stats *s, const float *x, int n) {
    if (!s || (!x && n > 0) || n < 0) {
        wb_set_error("feature stats: add: NULL statistics/features or negative count");
        return -1;
    }
    const int d = s->dim;
    /* Validate everything first so a bad batch leaves the statistics as they were. */
    for (size_t i = 0; i < (size_t)n * (size_t)d; i++)
        if (!isfinite(x[i])) {
            wb_set_error("feature stats: add: non-finite feature at row %zu, column %zu", i / (size_t)d,
                         i % (size_t)d);
            return -1;
        }
    if (n == 0) return 0;
    int chunk = n < STATS_CHUNK ? n : STATS_CHUNK;
    double *xc = malloc((size_t)chunk * (size_t)d * sizeof *xc);
    double *bm = malloc((size_t)d * sizeof *bm);
    if (!xc || !bm) {
        free(xc);
        free(bm);
        wb_set_error("feature stats: add: out of memory (%d x %d)", chunk, d);
        return -1;
    }
    for (int r0 = 0; r0 < n; r0 += chunk) {
        int m = n - r0 < chunk ? n - r0 : chunk;
        const float *xb = x + (size_t)r0 * (size_t)d;
        for (int j = 0; j < d; j++) bm[j] = 0.0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < d; j++) bm[j] += (double)xb[(size_t)i * d + j];
        for (int j = 0; j < d; j++) bm[j] /= (double)m;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < d; j++) xc[(size_t)i * d + j] = (double)xb[(size_t)i * d + j] - bm[j];
        /* Chan et al.: M2 += M2_batch + δδᵀ·n·m/(n+m), mean += δ·m/(n+m), with
         * δ = batch mean − mean. The batch's own centred scatter goes straight
         * into m2 (beta = 1). */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, m, 1.0, xc, d, 1.0, s->m2, d);
        double nn = (double)s->n, mm = (double)m, tot = nn + mm;
        for (int j = 0; j < d; j++) bm[j] -= s->mean[j]; /* δ */
        if (s->n > 0) cblas_dsyr(CblasRowMajor, CblasUpper, d, nn * mm / tot, bm, 1, s->m2, d);
        for (int j = 0; j < d; j++) s->mean[j] += bm[j] * (mm / tot);
        s->n += m;
    }
    free(xc);
    free(bm);
    return 0;
}

int wb_feature_stats_finalize(wb_feature_stats *s) {
    if (!s) {
        wb_set_error("feature stats: finalize: NULL statistics");
        return -1;
    }
    if (s->n < 2) {
        wb_set_error("feature stats: finalize: need at least 2 samples for a covariance, have %lld",
                     (long long)s->n);
        return -1;
    }
    const size_t d = (size_t)s->dim;
    const double inv = 1.0 / (double)(s->n - 1);
    for (size_t i = 0; i < d; i++)
        for (size_t j = i; j < d; j++) s->cov[i * d + j] = s->cov[j * d + i] = s->m2[i * d + j] * inv;
    s->n_final = s->n;
    return 0;
}

/* The cache is a safetensors file written and read by host/core/safetensors.c:
 * F64 "mean" [dim] and "cov" [dim, dim], metadata format = wb_feature_stats
 * and n = the sample count. */
#define STATS_FORMAT "wb_feature_stats"

int wb_feature_stats_save(const wb_feature_stats *s, const char *path) {
    if (!path || !path[0]) {
        wb_set_error("feature stats: save: NULL or empty path");
        return -1;
    }
    if (!s || s->n < 2 || s->n_final != s->n) {
        wb_set_error("feature stats: cannot save %s: statistics not finalized (call "
                     "wb_feature_stats_finalize after the last add)",
                     path);
        return -1;
    }
    char n_text[32];
    snprintf(n_text, sizeof n_text, "%lld", (long long)s->n);
    const char *meta[] = {"format", STATS_FORMAT, "n", n_text};
    wb_st_array arrays[2] = {{.name = "mean", .dtype = WB_ST_F64, .ndim = 1, .shape = {s->dim}, .data = s->mean},
                             {.name = "cov", .dtype = WB_ST_F64, .ndim = 2, .shape = {s->dim, s->dim}, .data = s->cov}};
    if (wb_safetensors_save_arrays(path, arrays, 2, meta, 2)) {
        wb_set_error("feature stats: cannot save: %s", wb_last_error());
        return -1;
    }
    return 0;
}

wb_feature_stats *wb_feature_stats_load(const char *path) {
    if (!path || !path[0]) {
        wb_set_error("feature stats: load: NULL or empty path");
        return NULL;
    }
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) {
        wb_set_error("feature stats: cannot load: %s", wb_last_error());
        return NULL;
    }
    wb_feature_stats *s = NULL;
    const char *fmt = wb_safetensors_meta(f, "format"), *n_text = wb_safetensors_meta(f, "n");
    if (!fmt || strcmp(fmt, STATS_FORMAT) != 0 || !n_text) {
        wb_set_error("feature stats: cannot load %s: not a wb_feature_stats file (metadata format/n missing)", path);
        goto fail;
    }
    char *endp = NULL;
    long long n = strtoll(n_text, &endp, 10);
    int nd_mean = 0, nd_cov = 0;
    int64_t sh_mean[WB_MAX_DIMS], sh_cov[WB_MAX_DIMS];
    if (!endp || *endp || endp == n_text || n < 2) {
        wb_set_error("feature stats: cannot load %s: invalid sample count n '%s'", path, n_text);
        goto fail;
    }
    if (wb_safetensors_shape(f, "mean", WB_ST_F64, &nd_mean, sh_mean) ||
        wb_safetensors_shape(f, "cov", WB_ST_F64, &nd_cov, sh_cov)) {
        wb_set_error("feature stats: cannot load: %s", wb_last_error());
        goto fail;
    }
    int64_t d = nd_mean == 1 ? sh_mean[0] : -1;
    if (!(d >= 1 && d <= STATS_MAX_DIM) || nd_cov != 2 || sh_cov[0] != d || sh_cov[1] != d) {
        wb_set_error("feature stats: cannot load %s: mean must be [dim] and cov [dim, dim] with 1 <= dim <= %d",
                     path, STATS_MAX_DIM);
        goto fail;
    }
    s = wb_feature_stats_new((int)d);
    if (!s) goto fail;
    if (wb_safetensors_read(f, "mean", WB_ST_F64, s->mean, d) ||
        wb_safetensors_read(f, "cov", WB_ST_F64, s->cov, d * d)) {
        wb_set_error("feature stats: cannot load: %s", wb_last_error());
        goto fail;
    }
    for (int64_t i = 0; i < d * d; i++)
        if (!isfinite(s->cov[i]) || (i < d && !isfinite(s->mean[i]))) {
            wb_set_error("feature stats: cannot load %s: non-finite values", path);
            goto fail;
        }
    s->n = n;
    s->n_final = n;
    /* m2 rebuilt so that more features can be added to cached statistics. */
    for (int64_t i = 0; i < d * d; i++) s->m2[i] = s->cov[i] * (double)(n - 1);
    wb_safetensors_close(f);
    return s;
fail:
    wb_feature_stats_free(s);
    wb_safetensors_close(f);
    return NULL;
}

/* ---- Fréchet distance ---------------------------------------------------------- */

/* Eigenvalues (ascending) of the symmetric d x d matrix a (its upper
 * triangle in row-major = lower in column-major; LAPACK is told "L"); with
 * vectors, a is overwritten by them: row i (row-major) is eigenvector i. */
static int sym_eig(double *a, int d, double *w, int vectors) {
    blasint n = d, lda = d, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double wq = 0.0;
    const char *jobz = vectors ? "V" : "N";
    dsyevd_(jobz, "L", &n, a, &lda, w, &wq, &lwork, &iwq, &liwork, &info); /* workspace query */
    if (info != 0) {
        wb_set_error("frechet: dsyevd workspace query failed (info %d)", (int)info);
        return -1;
    }
    lwork = (blasint)wq + 1;
    liwork = iwq > 0 ? iwq : 1;
    double *work = malloc((size_t)lwork * sizeof *work);
    blasint *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        wb_set_error("frechet: out of memory for the eigendecomposition (dim %d)", d);
        return -1;
    }
    dsyevd_(jobz, "L", &n, a, &lda, w, work, &lwork, iwork, &liwork, &info);
    free(work);
    free(iwork);
    if (info != 0) {
        wb_set_error("frechet: dsyevd failed (info %d) on a %dx%d matrix", (int)info, d, d);
        return -1;
    }
    return 0;
}

int wb_frechet_distance(int dim, const double *mu1, const double *cov1, const double *mu2, const double *cov2,
                        double *out) {
    if (!mu1 || !cov1 || !mu2 || !cov2 || !out || dim < 1 || dim > STATS_MAX_DIM) {
        wb_set_error("frechet: NULL argument or invalid dim %d", dim);
        return -1;
    }
    const size_t d = (size_t)dim;
    for (size_t i = 0; i < d * d; i++)
        if (!isfinite(cov1[i]) || !isfinite(cov2[i]) || (i < d && (!isfinite(mu1[i]) || !isfinite(mu2[i])))) {
            wb_set_error("frechet: non-finite mean or covariance entry");
            return -1;
        }
    double *a = malloc(d * d * sizeof *a), *b = malloc(d * d * sizeof *b), *t = malloc(d * d * sizeof *t);
    double *w = malloc(d * sizeof *w);
    int rc = -1;
    if (!a || !b || !t || !w) {
        wb_set_error("frechet: out of memory (dim %d)", dim);
        goto done;
    }
    double diff2 = 0.0, tr1 = 0.0, tr2 = 0.0;
    for (size_t i = 0; i < d; i++) {
        double dm = mu1[i] - mu2[i];
        diff2 += dm * dm;
        tr1 += cov1[i * d + i];
        tr2 += cov2[i * d + i];
    }
    /* Symmetric copies from the upper triangles (callers may fill only that). */
    for (size_t i = 0; i < d; i++)
        for (size_t j = i; j < d; j++) {
            a[i * d + j] = a[j * d + i] = cov1[i * d + j];
            b[i * d + j] = b[j * d + i] = cov2[i * d + j];
        }
    if (sym_eig(a, dim, w, 1)) goto done;
    /* Σ1^{1/2} = Σ_i √λ_i v_i v_iᵀ = Fᵀ F with row i of F = λ_i^{1/4} v_i.
     * Negative λ are round-off on a PSD matrix: clamped to 0. */
    for (size_t i = 0; i < d; i++) {
        double s = w[i] > 0.0 ? sqrt(sqrt(w[i])) : 0.0;
        for (size_t j = 0; j < d; j++) a[i * d + j] *= s;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, dim, 1.0, a, dim, 0.0, t, dim);
    for (size_t i = 0; i < d; i++)
        for (size_t j = i + 1; j < d; j++) t[j * d + i] = t[i * d + j];
    /* M = A Σ2 A (A = Σ1^{1/2} in t): a = t·b, then b = a·t. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0, t, dim, b, dim, 0.0, a, dim);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0, a, dim, t, dim, 0.0, b, dim);
    /* Round-off makes M slightly asymmetric; its symmetric part has the same trace. */
    for (size_t i = 0; i < d; i++)
        for (size_t j = i + 1; j < d; j++) b[i * d + j] = b[j * d + i] = 0.5 * (b[i * d + j] + b[j * d + i]);
    if (sym_eig(b, dim, w, 0)) goto done;
    double trsq = 0.0;
    for (size_t i = 0; i < d; i++) trsq += w[i] > 0.0 ? sqrt(w[i]) : 0.0;
    double fd = diff2 + tr1 + tr2 - 2.0 * trsq;
    /* A true distance² is ≥ 0; a tiny negative value is cancellation. */
    *out = fd > 0.0 ? fd : 0.0;
    rc = 0;
done:
    free(a);
    free(b);
    free(t);
    free(w);
    return rc;
}

int wb_frechet_distance_stats(const wb_feature_stats *a, const wb_feature_stats *b, double *out) {
    if (!a || !b || !out) {
        wb_set_error("frechet: NULL statistics or output");
        return -1;
    }
    if (a->dim != b->dim) {
        wb_set_error("frechet: feature dims differ (%d vs %d)", a->dim, b->dim);
        return -1;
    }
    if (a->n < 2 || a->n_final != a->n || b->n < 2 || b->n_final != b->n) {
        wb_set_error("frechet: statistics not finalized (call wb_feature_stats_finalize)");
        return -1;
    }
    return wb_frechet_distance(a->dim, a->mean, a->cov, b->mean, b->cov, out);
}

/* ---- precision / recall ---------------------------------------------------------- */

#define PR_QB 256  /* query rows a block */
#define PR_CB 2048 /* reference rows a block: 256 x 2048 floats = 2 MiB of distances */

static double *row_norms(const float *x, int n, int dim) {
    double *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    if (!r) return NULL;
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < dim; j++) {
            double v = x[(size_t)i * dim + j];
            s += v * v;
        }
        r[i] = s;
    }
    return r;
}

/* Squared distances of queries q[q0..q0+mq) to refs r[r0..r0+mr) into g
 * (mq x mr, row stride mr), clamped at 0 (the GEMM identity can dip below). */
static void block_d2(const float *q, const double *qn, int q0, int mq, const float *r, const double *rn, int r0, int mr,
                     int dim, float *g) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mq, mr, dim, 1.0f, q + (size_t)q0 * dim, dim,
                r + (size_t)r0 * dim, dim, 0.0f, g, mr);
    for (int i = 0; i < mq; i++)
        for (int j = 0; j < mr; j++) {
            double v = qn[q0 + i] + rn[r0 + j] - 2.0 * (double)g[(size_t)i * mr + j];
            g[(size_t)i * mr + j] = v > 0.0 ? (float)v : 0.0f;
        }
}

/* rad2[i] = squared distance from x_i to its k-th nearest x_j, j ≠ i. */
static int knn_radii2(const float *x, const double *xn, int n, int dim, int k, float *g, float *rad2) {
    float *best = malloc((size_t)PR_QB * (size_t)k * sizeof *best);
    if (!best) return -1;
    for (int q0 = 0; q0 < n; q0 += PR_QB) {
        int mq = n - q0 < PR_QB ? n - q0 : PR_QB;
        for (int i = 0; i < mq * k; i++) best[i] = INFINITY;
        for (int r0 = 0; r0 < n; r0 += PR_CB) {
            int mr = n - r0 < PR_CB ? n - r0 : PR_CB;
            block_d2(x, xn, q0, mq, x, xn, r0, mr, dim, g);
            for (int i = 0; i < mq; i++) {
                float *b = best + (size_t)i * k;
                const float *gr = g + (size_t)i * mr;
                for (int j = 0; j < mr; j++) {
                    float v = gr[j];
                    if (v >= b[k - 1] || r0 + j == q0 + i) continue;
                    int p = k - 1; /* insertion into the sorted k smallest */
                    while (p > 0 && b[p - 1] > v) {
                        b[p] = b[p - 1];
                        p--;
                    }
                    b[p] = v;
                }
            }
        }
        for (int i = 0; i < mq; i++) rad2[q0 + i] = best[(size_t)i * k + k - 1];
    }
    free(best);
    return 0;
}

/* Share of queries within (≤) the radius of at least one reference. */
static double coverage(const float *q, const double *qn, int nq, const float *r, const double *rn, const float *rad2,
                       int nr, int dim, float *g) {
    int64_t inside = 0;
    unsigned char hit[PR_QB];
    for (int q0 = 0; q0 < nq; q0 += PR_QB) {
        int mq = nq - q0 < PR_QB ? nq - q0 : PR_QB, left = mq;
        memset(hit, 0, sizeof hit);
        /* Stop scanning references once every query of the block is inside:
         * a good generator makes this the common case. */
        for (int r0 = 0; r0 < nr && left > 0; r0 += PR_CB) {
            int mr = nr - r0 < PR_CB ? nr - r0 : PR_CB;
            block_d2(q, qn, q0, mq, r, rn, r0, mr, dim, g);
            for (int i = 0; i < mq; i++) {
                if (hit[i]) continue;
                const float *gr = g + (size_t)i * mr;
                for (int j = 0; j < mr; j++)
                    if (gr[j] <= rad2[r0 + j]) {
                        hit[i] = 1;
                        left--;
                        break;
                    }
            }
        }
        inside += mq - left;
    }
    return (double)inside / (double)nq;
}

int wb_precision_recall(const float *real, int n_real, const float *fake, int n_fake, int dim, int k,
                        double *precision, double *recall) {
    if (k <= 0) k = 3;
    if (!real || !fake || !precision || !recall || dim < 1) {
        wb_set_error("precision/recall: NULL argument or invalid dim %d", dim);
        return -1;
    }
    if (n_real <= k || n_fake <= k) {
        wb_set_error("precision/recall: need more than k = %d samples in each set (real %d, generated %d)", k, n_real,
                     n_fake);
        return -1;
    }
    for (size_t i = 0; i < (size_t)n_real * dim; i++)
        if (!isfinite(real[i])) {
            wb_set_error("precision/recall: non-finite real feature (row %zu)", i / (size_t)dim);
            return -1;
        }
    for (size_t i = 0; i < (size_t)n_fake * dim; i++)
        if (!isfinite(fake[i])) {
            wb_set_error("precision/recall: non-finite generated feature (row %zu)", i / (size_t)dim);
            return -1;
        }
    double *rn = row_norms(real, n_real, dim), *fn = row_norms(fake, n_fake, dim);
    float *rr = malloc((size_t)n_real * sizeof *rr), *fr = malloc((size_t)n_fake * sizeof *fr);
    float *g = malloc((size_t)PR_QB * PR_CB * sizeof *g);
    int rc = -1;
    if (!rn || !fn || !rr || !fr || !g || knn_radii2(real, rn, n_real, dim, k, g, rr) ||
        knn_radii2(fake, fn, n_fake, dim, k, g, fr)) {
        wb_set_error("precision/recall: out of memory (%d real, %d generated)", n_real, n_fake);
        goto done;
    }
    *precision = coverage(fake, fn, n_fake, real, rn, rr, n_real, dim, g);
    *recall = coverage(real, rn, n_real, fake, fn, fr, n_fake, dim, g);
    rc = 0;
done:
    free(rn);
    free(fn);
    free(rr);
    free(fr);
    free(g);
    return rc;
}

/* ---- Inception-Score analogue --------------------------------------------------- */

int wb_inception_score(const float *probs, int n, int k, int splits, double *mean, double *std) {
    if (splits <= 0) splits = 10;
    if (!probs || !mean || !std || n < 1 || k < 1) {
        wb_set_error("inception score: NULL argument or empty input (n %d, k %d)", n, k);
        return -1;
    }
    if (splits > n) {
        wb_set_error("inception score: %d splits for only %d samples", splits, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < k; j++) {
            float p = probs[(size_t)i * k + j];
            if (!(p >= 0.0f) || !isfinite(p)) {
                wb_set_error("inception score: probability at row %d, class %d is negative or not finite", i, j);
                return -1;
            }
            s += p;
        }
        if (!(s > 0.0)) {
            wb_set_error("inception score: row %d sums to 0", i);
            return -1;
        }
    }
    double *py = malloc((size_t)k * sizeof *py), *scores = malloc((size_t)splits * sizeof *scores);
    if (!py || !scores) {
        free(py);
        free(scores);
        wb_set_error("inception score: out of memory");
        return -1;
    }
    for (int sp = 0; sp < splits; sp++) {
        int a = (int)((int64_t)n * sp / splits), b = (int)((int64_t)n * (sp + 1) / splits);
        for (int j = 0; j < k; j++) py[j] = 0.0;
        for (int i = a; i < b; i++) {
            const float *p = probs + (size_t)i * k;
            double s = 0.0;
            for (int j = 0; j < k; j++) s += p[j];
            for (int j = 0; j < k; j++) py[j] += p[j] / s;
        }
        for (int j = 0; j < k; j++) py[j] /= (double)(b - a);
        double kl = 0.0;
        for (int i = a; i < b; i++) {
            const float *p = probs + (size_t)i * k;
            double s = 0.0;
            for (int j = 0; j < k; j++) s += p[j];
            for (int j = 0; j < k; j++) {
                double pj = p[j] / s; /* 0·log 0 = 0; pj > 0 implies py[j] > 0 */
                if (pj > 0.0) kl += pj * log(pj / py[j]);
            }
        }
        scores[sp] = exp(kl / (double)(b - a));
    }
    double m = 0.0, v = 0.0;
    for (int sp = 0; sp < splits; sp++) m += scores[sp];
    m /= splits;
    for (int sp = 0; sp < splits; sp++) v += (scores[sp] - m) * (scores[sp] - m);
    *mean = m;
    *std = sqrt(v / splits);
    free(py);
    free(scores);
    return 0;
}

/* ---- mode collapse ---------------------------------------------------------------- */

int wb_argmax_rows(const float *probs, int n, int k, int *labels) {
    if (!probs || !labels || n < 0 || k < 1) {
        wb_set_error("argmax: NULL argument or invalid size (n %d, k %d)", n, k);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (p[j] > p[best] || (isnan(p[best]) && !isnan(p[j]))) best = j;
        labels[i] = best;
    }
    return 0;
}

int wb_mode_coverage(const int *labels, int n, int k, wb_mode_report *out, int *counts) {
    if (!labels || !out || n < 1 || k < 2) {
        wb_set_error("mode coverage: NULL argument or invalid size (n %d, k %d; need n >= 1, k >= 2)", n, k);
        return -1;
    }
    int *c = counts ? counts : calloc((size_t)k, sizeof *c);
    if (!c) {
        wb_set_error("mode coverage: out of memory");
        return -1;
    }
    if (counts) memset(c, 0, (size_t)k * sizeof *c);
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= k) {
            wb_set_error("mode coverage: label %d at sample %d is outside 0..%d", labels[i], i, k - 1);
            if (!counts) free(c);
            return -1;
        }
        c[labels[i]]++;
    }
    /* "Covered" needs a real share of the samples, 20 % of the n/k a
     * balanced generator would give, not a stray hit. */
    const double need = 0.2 * (double)n / (double)k;
    int covered = 0;
    double h = 0.0;
    for (int j = 0; j < k; j++) {
        if (c[j] > 0 && (double)c[j] >= need) covered++;
        if (c[j] > 0) {
            double p = (double)c[j] / (double)n;
            h -= p * log(p);
        }
    }
    out->n = n;
    out->k = k;
    out->covered = covered;
    out->entropy_norm = h / log((double)k);
    out->collapsed = (covered <= k / 2 || out->entropy_norm < 0.5) ? 1 : 0;
    if (!counts) free(c);
    return 0;
}
