/* host/engine/feature_net.c — the FID-style feature classifier (host/engine/feature_net.h):
 * architecture, training with its on-disk cache, batched feature
 * extraction, accuracy, and wb_image_metrics on top of host/engine/metrics.h.
 *
 * Shape legend: B batch, C channels, H×W image size, K classes present in
 * the training set, F = WB_FEATURE_DIM (128) features, N images.
 *
 * Everything runs on the CPU backend (as teacher and distillation do) with
 * fixed seeds: params from Philox stream 1 of `seed`, minibatches from
 * stream 2, so a cache file and a fresh training agree bit for bit on the
 * same build.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "engine/feature_net.h"
#include "engine/inception.h"
#include "engine/images.h"
#include "engine/metrics.h"
#include "wb/loss.h"
#include "wb/safetensors.h"

#define FN_BATCH 64          /* training minibatch                         */
#define FN_EVAL_BATCH 256    /* feature extraction batch (no tape: cheap)  */
#define FN_GROUPS 8          /* GroupNorm groups of every block            */
#define FN_LR 2e-3f          /* Adam; cosine-decayed to 10 % at the end     */
#define FN_MAX_LABELS 1024

static const int fn_widths[3] = {32, 64, WB_FEATURE_DIM};

struct wb_feature_net {
    wb_params *params;
    wb_graph *g;
    wb_net_shape shape;
    int k;
    int labels[FN_MAX_LABELS]; /* class index -> dataset label */
    int trained;
    char id[256];
    char path[1280]; /* "" when there is no cache dir */
    wb_tensor *w[3], *b[3], *gn_g[3], *gn_b[3], *head_w, *head_b;
};

/* ---- small helpers -------------------------------------------------------------- */
static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The "classes" metadata of a cache file ("0,1,2"), into buf; -1 when the
 * header cannot be read or has none. Checked on load because the file name
 * does not tell an include = {0, 1} set from an include = {2, 3} one of the
 * same name and size, and their heads have the same shape. Read through the
 * one validated safetensors reader (wb/safetensors.h), never a second
 * header parser of its own. */
static int read_meta_classes(const char *path, char *buf, size_t cap) {
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) return -1;
    const char *cl = wb_safetensors_meta(f, "classes");
    int rc = -1;
    if (cl && strlen(cl) < cap) {
        memcpy(buf, cl, strlen(cl) + 1);
        rc = 0;
    }
    wb_safetensors_close(f);
    return rc;
}

/* ---- architecture ------------------------------------------------------------------ */
static int declare_params(wb_feature_net *fn) {
    static const char *wn[3] = {"conv1.weight", "conv2.weight", "conv3.weight"};
    static const char *bn[3] = {"conv1.bias", "conv2.bias", "conv3.bias"};
    static const char *gn[3] = {"norm1.weight", "norm2.weight", "norm3.weight"};
    static const char *gb[3] = {"norm1.bias", "norm2.bias", "norm3.bias"};
    int cin = fn->shape.channels;
    for (int i = 0; i < 3; i++) {
        int64_t ws[4] = {fn_widths[i], cin, 3, 3}, c1 = fn_widths[i];
        /* U(±1/sqrt(fan_in)): torch's default conv init */
        fn->w[i] = wb_params_add(fn->params, wn[i], 4, ws, WB_INIT_UNIFORM_FAN_IN, 1.0f);
        fn->b[i] = wb_params_add(fn->params, bn[i], 1, &c1, WB_INIT_ZEROS, 0.0f);
        fn->gn_g[i] = wb_params_add(fn->params, gn[i], 1, &c1, WB_INIT_ONES, 0.0f);
        fn->gn_b[i] = wb_params_add(fn->params, gb[i], 1, &c1, WB_INIT_ZEROS, 0.0f);
        if (!fn->w[i] || !fn->b[i] || !fn->gn_g[i] || !fn->gn_b[i]) return -1;
        cin = fn_widths[i];
    }
    int64_t hs[2] = {fn->k, WB_FEATURE_DIM}, k1 = fn->k;
    fn->head_w = wb_params_add(fn->params, "head.weight", 2, hs, WB_INIT_UNIFORM_FAN_IN, 1.0f);
    fn->head_b = wb_params_add(fn->params, "head.bias", 1, &k1, WB_INIT_ZEROS, 0.0f);
    return fn->head_w && fn->head_b ? 0 : -1;
}

/* x (B, C, H, W) -> features (B, F); *logits (B, K) when asked. */
static wb_tensor *forward(wb_feature_net *fn, wb_tensor *x, wb_tensor **logits) {
    wb_graph *g = fn->g;
    wb_tensor *h = x;
    for (int i = 0; i < 3; i++) {
        h = wb_conv2d(g, h, fn->w[i], fn->b[i], 1, 1);
        h = wb_silu(g, wb_group_norm(g, h, FN_GROUPS, fn->gn_g[i], fn->gn_b[i], 1e-5f));
        if (i < 2) h = wb_avgpool2x(g, h);
    }
    if (!h) return NULL;
    /* global average pool: each (b, c) plane is a row of H/4·W/4 values */
    int64_t b = h->shape[0], planes[2] = {b * WB_FEATURE_DIM, h->shape[2] * h->shape[3]};
    int64_t fshape[2] = {b, WB_FEATURE_DIM};
    wb_tensor *f = wb_reshape(g, wb_mean_rows(g, wb_reshape(g, h, 2, planes)), 2, fshape);
    if (logits) *logits = wb_linear(g, f, fn->head_w, fn->head_b);
    return f;
}

/* ---- open / train ------------------------------------------------------------------- */
void wb_feature_net_free(wb_feature_net *fn) {
    if (!fn) return;
    wb_graph_free(fn->g);
    wb_params_free(fn->params);
    free(fn);
}

static int train(wb_feature_net *fn, wb_dataset *ds, int steps, uint64_t seed, int quiet, const int *class_of) {
    wb_adam *opt = wb_adam_new(fn->params, FN_LR, 0.9f, 0.999f, 1e-8f, 0.0f, 0);
    float *x = malloc((size_t)FN_BATCH * (size_t)ds->dim * sizeof *x);
    int *labels = malloc(FN_BATCH * sizeof *labels);
    int rc = -1;
    if (!opt || !x || !labels) {
        if (opt) wb_set_error("feature net: out of memory for a %d-image batch of %s", FN_BATCH, ds->name);
        goto done;
    }
    wb_rng rng;
    wb_rng_init(&rng, seed, 2);
    int64_t bshape[4];
    wb_batch_shape(&ds->shape, FN_BATCH, bshape);
    wb_progress prog;
    char label[96];
    snprintf(label, sizeof label, "feature net %s", ds->name);
    wb_progress_start(&prog, label, steps, !quiet);
    double loss_avg = 0.0; /* running mean of the last ~50 steps, for the progress line */
    char extra[96];
    for (int step = 0; step < steps; step++) {
        if (wb_images_sample_labeled(ds, &rng, FN_BATCH, x, labels)) goto done;
        for (int i = 0; i < FN_BATCH; i++) labels[i] = class_of[labels[i]];
        /* cosine from FN_LR to FN_LR/10: late steps settle instead of
         * bouncing, so the cached classifier is not a lucky snapshot */
        double t = steps > 1 ? (double)step / (steps - 1) : 1.0;
        wb_adam_set_lr(opt, FN_LR * (float)(0.1 + 0.45 * (1.0 + cos(M_PI * t))));
        wb_graph_reset(fn->g);
        wb_params_zero_grad(fn->params);
        wb_tensor *logits = NULL;
        wb_tensor *xt = wb_from_host(fn->g, 4, bshape, x);
        forward(fn, xt, &logits);
        wb_tensor *loss = wb_cross_entropy(fn->g, logits, labels);
        if (!loss || wb_backward(fn->g, loss, NULL) || wb_adam_step(opt)) {
            wb_set_error("feature net %s: step %d: %s", ds->name, step, wb_last_error());
            goto done;
        }
        float l = 0.0f;
        wb_to_host(loss, &l);
        if (!isfinite(l) || !wb_params_all_finite(fn->params)) {
            wb_set_error("feature net %s: step %d: loss or parameters not finite (loss %g)", ds->name, step, (double)l);
            goto done;
        }
        loss_avg = step == 0 ? l : 0.98 * loss_avg + 0.02 * l;
        snprintf(extra, sizeof extra, "loss=%.4f", loss_avg);
        wb_progress_update(&prog, step + 1, extra);
    }
    snprintf(extra, sizeof extra, "loss=%.4f, %d classes", loss_avg, fn->k);
    wb_progress_end(&prog, extra);
    rc = 0;
done:
    wb_adam_free(opt);
    free(x);
    free(labels);
    return rc;
}

wb_feature_net *wb_feature_net_open(wb_dataset *ds, const char *cache_dir, int steps, uint64_t seed, int quiet,
                                    const wb_backend *be) {
    if (!ds || !wb_images_is(ds)) {
        wb_set_error("feature net: dataset '%s' is not an image set", ds ? ds->name : "(null)");
        return NULL;
    }
    const wb_net_shape *s = &ds->shape;
    if (s->height < 4 || s->width < 4 || s->height % 4 || s->width % 4) {
        wb_set_error("feature net: dataset '%s' is %dx%d; height and width must be multiples of 4 (two 2x poolings)",
                     ds->name, s->height, s->width);
        return NULL;
    }
    if (steps < 1) {
        wb_set_error("feature net: steps = %d, want >= 1", steps);
        return NULL;
    }
    int n_space = wb_images_n_classes(ds);
    if (n_space < 1 || n_space > FN_MAX_LABELS) {
        wb_set_error("feature net: dataset '%s' has %d labels (1..%d supported)", ds->name, n_space, FN_MAX_LABELS);
        return NULL;
    }
    if (!be && !(be = wb_backend_select(NULL))) return NULL;
    wb_feature_net *fn = calloc(1, sizeof *fn);
    int *class_of = malloc((size_t)n_space * sizeof *class_of);
    if (!fn || !class_of) {
        free(fn);
        free(class_of);
        wb_set_error("feature net: out of memory");
        return NULL;
    }
    fn->shape = *s;
    /* Classes are the labels present (an include-filtered set has fewer than
     * its label space): absent classes would never be predicted and would
     * count as "missing modes" in the coverage check. */
    for (int i = 0; i < n_space; i++) class_of[i] = -1;
    int64_t count = wb_images_count(ds);
    for (int64_t i = 0; i < count; i++) {
        int l = wb_images_label(ds, i);
        if (l < 0 || l >= n_space) {
            wb_set_error("feature net: image %lld of '%s' has label %d outside 0..%d", (long long)i, ds->name, l,
                         n_space - 1);
            goto fail;
        }
        class_of[l] = 0;
    }
    for (int i = 0; i < n_space; i++)
        if (class_of[i] == 0) {
            fn->labels[fn->k] = i;
            class_of[i] = fn->k++;
        }
    if (fn->k < 2) {
        wb_set_error("feature net: dataset '%s' has %d class(es) present; a classifier needs at least 2 labelled "
                     "classes", ds->name, fn->k);
        goto fail;
    }
    snprintf(fn->id, sizeof fn->id, "%s-%dx%d-s%llu-n%d", ds->name, s->height, s->width, (unsigned long long)seed,
             steps);
    if (cache_dir && *cache_dir) snprintf(fn->path, sizeof fn->path, "%s/%s.safetensors", cache_dir, fn->id);
    fn->params = wb_params_new(be);
    fn->g = wb_graph_new(be);
    if (!fn->params || !fn->g || declare_params(fn)) goto fail;
    wb_rng rng;
    wb_rng_init(&rng, seed, 1);
    if (wb_params_finalize(fn->params, &rng)) goto fail;
    wb_named_params store = {"", fn->params};
    char classes[FN_MAX_LABELS * 5] = "";
    size_t used = 0;
    for (int i = 0; i < fn->k && used < sizeof classes; i++)
        used += (size_t)snprintf(classes + used, sizeof classes - used, "%s%d", i ? "," : "", fn->labels[i]);
    if (fn->path[0] && file_exists(fn->path)) {
        /* A cache that does not load is an error, not a silent retrain: the
         * user must see that the file is bad (and delete it). */
        if (wb_safetensors_load(fn->path, &store, 1, 0)) {
            wb_set_error("feature net: cache file '%s' does not load (delete it to retrain): %s", fn->path,
                         wb_last_error());
            goto fail;
        }
        char have[sizeof classes] = "";
        if (read_meta_classes(fn->path, have, sizeof have) || strcmp(have, classes) != 0) {
            wb_set_error("feature net: cache file '%s' was trained on classes {%s}, dataset '%s' has {%s} (delete "
                         "it, or use another cache directory)", fn->path, have[0] ? have : "?", ds->name, classes);
            goto fail;
        }
        wb_params_set_trainable(fn->params, 0);
        free(class_of);
        return fn;
    }
    wb_params_set_trainable(fn->params, 1);
    if (train(fn, ds, steps, seed, quiet, class_of)) goto fail;
    wb_params_set_trainable(fn->params, 0);
    fn->trained = 1;
    if (fn->path[0]) {
        char steps_s[32], seed_s[32];
        snprintf(steps_s, sizeof steps_s, "%d", steps);
        snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
        const char *meta[] = {"format", "wb_feature_net", "dataset", ds->name, "classes", classes,
                              "steps",  steps_s,          "seed",    seed_s};
        if (wb_mkdir_p(cache_dir)) {
            wb_set_error("feature net: cannot create cache directory '%s': %s", cache_dir, strerror(errno));
            goto fail;
        }
        if (wb_safetensors_save(fn->path, &store, 1, meta, 5)) {
            wb_set_error("feature net: cannot write cache file '%s': %s", fn->path, wb_last_error());
            goto fail;
        }
    }
    free(class_of);
    return fn;
fail:
    free(class_of);
    wb_feature_net_free(fn);
    return NULL;
}

int wb_feature_net_classes(const wb_feature_net *fn) { return fn->k; }
const wb_net_shape *wb_feature_net_shape(const wb_feature_net *fn) { return &fn->shape; }
const char *wb_feature_net_path(const wb_feature_net *fn) { return fn->path; }
int wb_feature_net_trained(const wb_feature_net *fn) { return fn->trained; }
const char *wb_feature_net_id(const wb_feature_net *fn) { return fn->id; }
int wb_feature_net_label(const wb_feature_net *fn, int i) { return i >= 0 && i < fn->k ? fn->labels[i] : -1; }

/* ---- features ------------------------------------------------------------------------ */
int wb_feature_net_features(wb_feature_net *fn, const float *images, int64_t n, float *feats, float *probs) {
    if (!fn || (n > 0 && (!images || !feats)) || n < 0) {
        wb_set_error("feature net: features: NULL argument or n = %lld < 0", (long long)n);
        return -1;
    }
    int64_t dim = (int64_t)fn->shape.channels * fn->shape.height * fn->shape.width;
    wb_graph_set_grad(fn->g, 0);
    int rc = 0;
    for (int64_t i0 = 0; i0 < n && rc == 0; i0 += FN_EVAL_BATCH) {
        int64_t b = n - i0 < FN_EVAL_BATCH ? n - i0 : FN_EVAL_BATCH, bshape[4];
        wb_batch_shape(&fn->shape, b, bshape);
        wb_graph_reset(fn->g);
        wb_tensor *logits = NULL;
        wb_tensor *f = forward(fn, wb_from_host(fn->g, 4, bshape, images + i0 * dim), probs ? &logits : NULL);
        wb_tensor *p = probs ? wb_softmax(fn->g, logits) : NULL;
        if (!f || (probs && !p)) {
            wb_set_error("feature net %s: features of images %lld..%lld: %s", fn->id, (long long)i0,
                         (long long)(i0 + b - 1), wb_last_error());
            rc = -1;
            break;
        }
        wb_to_host(f, feats + i0 * WB_FEATURE_DIM);
        if (p) wb_to_host(p, probs + i0 * fn->k);
    }
    wb_graph_reset(fn->g);
    wb_graph_set_grad(fn->g, 1);
    return rc;
}

double wb_feature_net_accuracy(wb_feature_net *fn, wb_dataset *ds, int64_t n) {
    if (!fn || !ds || !wb_images_is(ds)) {
        wb_set_error("feature net: accuracy needs an image set");
        return NAN;
    }
    if (ds->shape.channels != fn->shape.channels || ds->shape.height != fn->shape.height ||
        ds->shape.width != fn->shape.width) {
        wb_set_error("feature net %s: accuracy on '%s': images are %dx%dx%d, the classifier takes %dx%dx%d", fn->id,
                     ds->name, ds->shape.channels, ds->shape.height, ds->shape.width, fn->shape.channels,
                     fn->shape.height, fn->shape.width);
        return NAN;
    }
    int64_t count = wb_images_count(ds);
    if (n <= 0 || n > count) n = count;
    if (n < 1) {
        wb_set_error("feature net %s: accuracy on '%s': no images", fn->id, ds->name);
        return NAN;
    }
    int64_t chunk = FN_EVAL_BATCH * 4;
    float *x = malloc((size_t)chunk * (size_t)ds->dim * sizeof *x);
    float *f = malloc((size_t)chunk * WB_FEATURE_DIM * sizeof *f);
    float *p = malloc((size_t)chunk * (size_t)fn->k * sizeof *p);
    int *lab = malloc((size_t)chunk * sizeof *lab), *pred = malloc((size_t)chunk * sizeof *pred);
    double acc = NAN;
    int64_t right = 0;
    if (!x || !f || !p || !lab || !pred) {
        wb_set_error("feature net: out of memory");
        goto done;
    }
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        int64_t b = n - i0 < chunk ? n - i0 : chunk;
        for (int64_t i = 0; i < b; i++)
            if (wb_images_get(ds, i0 + i, x + i * ds->dim, &lab[i])) goto done;
        if (wb_feature_net_features(fn, x, b, f, p) || wb_argmax_rows(p, (int)b, fn->k, pred)) goto done;
        for (int64_t i = 0; i < b; i++) right += fn->labels[pred[i]] == lab[i];
    }
    acc = (double)right / (double)n;
done:
    free(x);
    free(f);
    free(p);
    free(lab);
    free(pred);
    return acc;
}

/* ---- image metrics ---------------------------------------------------------------------- */
static wb_feature_stats *stats_of(const float *feats, int64_t n, int dim) {
    wb_feature_stats *s = wb_feature_stats_new(dim);
    if (!s) return NULL;
    if (wb_feature_stats_add(s, feats, (int)n) || wb_feature_stats_finalize(s)) {
        wb_feature_stats_free(s);
        return NULL;
    }
    return s;
}

/* FID and precision/recall of n sample features against n reference
 * features (dim each); the reference statistics come from / go to `path`
 * when it is not empty (created atomically; a file of the wrong size is an
 * error naming it, never silently replaced). */
static int fid_pr(const float *feats, const float *rfeats, int64_t n, int dim, const char *cache_dir, const char *path,
                  double *fid, double *precision, double *recall) {
    wb_feature_stats *sa = NULL, *sb = NULL;
    int rc = -1;
    if (path[0] && file_exists(path)) {
        sb = wb_feature_stats_load(path);
        if (!sb) goto done;
        if (sb->dim != dim || sb->n != n) {
            wb_set_error("image metrics: reference statistics '%s' hold %lld samples of dimension %d, expected %lld of "
                         "%d (delete the file)", path, (long long)sb->n, sb->dim, (long long)n, dim);
            goto done;
        }
    } else {
        sb = stats_of(rfeats, n, dim);
        if (!sb) goto done;
        if (path[0]) {
            if (wb_mkdir_p(cache_dir)) {
                wb_set_error("image metrics: cannot create cache directory '%s': %s", cache_dir, strerror(errno));
                goto done;
            }
            if (wb_feature_stats_save(sb, path)) goto done;
        }
    }
    sa = stats_of(feats, n, dim);
    if (!sa || wb_frechet_distance_stats(sa, sb, fid)) goto done;
    if (wb_precision_recall(rfeats, (int)n, feats, (int)n, dim, 3, precision, recall)) goto done;
    rc = 0;
done:
    wb_feature_stats_free(sa);
    wb_feature_stats_free(sb);
    return rc;
}

int wb_image_metrics(wb_feature_net *fn, const float *samples, int64_t n, wb_dataset *ref, const char *cache_dir,
                     wb_inception *inception, const char *inception_id, wb_image_metrics_out *out) {
    if (!fn || !samples || !ref || !out || (inception && !inception_id)) {
        wb_set_error("image metrics: NULL argument");
        return -1;
    }
    out->fid_inception = out->precision_inception = out->recall_inception = NAN;
    if (n < 4 || n > INT32_MAX / 16) {
        /* precision/recall with k = 3 need more than 3 samples */
        wb_set_error("image metrics: %lld samples; need 4 .. %d", (long long)n, INT32_MAX / 16);
        return -1;
    }
    if (ref->shape.channels != fn->shape.channels || ref->shape.height != fn->shape.height ||
        ref->shape.width != fn->shape.width) {
        wb_set_error("image metrics: reference '%s' is %dx%dx%d, the classifier %s takes %dx%dx%d", ref->name,
                     ref->shape.channels, ref->shape.height, ref->shape.width, fn->id, fn->shape.channels,
                     fn->shape.height, fn->shape.width);
        return -1;
    }
    int k = fn->k, rc = -1;
    int64_t fdim = inception ? WB_INCEPTION_DIM : WB_FEATURE_DIM; /* the larger of the two feature sizes used */
    float *feats = malloc((size_t)n * (size_t)fdim * sizeof *feats);
    float *rfeats = malloc((size_t)n * (size_t)fdim * sizeof *rfeats);
    float *probs = malloc((size_t)n * (size_t)k * sizeof *probs);
    float *rimg = malloc((size_t)n * (size_t)ref->dim * sizeof *rimg);
    int *pred = malloc((size_t)n * sizeof *pred);
    if (!feats || !rfeats || !probs || !rimg || !pred) {
        wb_set_error("image metrics: out of memory for %lld samples", (long long)n);
        goto done;
    }
    if (wb_feature_net_features(fn, samples, n, feats, probs)) goto done;
    /* Reference: a fixed draw, so every method is scored against the same
     * images; precision/recall need its features, not only its moments. */
    wb_rng rng;
    wb_rng_init(&rng, WB_IMAGE_METRICS_REF_SEED, 0);
    if (ref->sample(ref, &rng, n, rimg)) goto done;
    if (wb_feature_net_features(fn, rimg, n, rfeats, NULL)) goto done;

    char path[1536] = "";
    if (cache_dir && *cache_dir)
        snprintf(path, sizeof path, "%s/%s-%dx%d-ref-%lld-%s.stats.safetensors", cache_dir, ref->name,
                 ref->shape.height, ref->shape.width, (long long)n, fn->id);
    if (fid_pr(feats, rfeats, n, WB_FEATURE_DIM, cache_dir, path, &out->fid, &out->precision, &out->recall)) goto done;
    if (wb_inception_score(probs, (int)n, k, n >= 10 ? 10 : 1, &out->is_mean, &out->is_std)) goto done;
    wb_mode_report mr;
    if (wb_argmax_rows(probs, (int)n, k, pred) || wb_mode_coverage(pred, (int)n, k, &mr, NULL)) goto done;
    out->classes_covered = mr.covered;
    out->n_classes = k;
    out->entropy = mr.entropy_norm;
    out->collapsed = mr.collapsed;

    if (inception) { /* the papers' FID: Inception-v3 pool3 features of the same two image sets */
        const wb_net_shape *sh = &ref->shape;
        if (wb_inception_features(inception, samples, n, sh->channels, sh->height, sh->width, feats) ||
            wb_inception_features(inception, rimg, n, sh->channels, sh->height, sh->width, rfeats))
            goto done;
        if (path[0])
            snprintf(path, sizeof path, "%s/%s-%dx%dx%d-ref-%lld-inception-%s.stats.safetensors", cache_dir,
                     ref->name, sh->channels, sh->height, sh->width, (long long)n, inception_id);
        if (fid_pr(feats, rfeats, n, WB_INCEPTION_DIM, cache_dir, path, &out->fid_inception,
                   &out->precision_inception, &out->recall_inception))
            goto done;
    }
    rc = 0;
done:
    free(feats);
    free(rfeats);
    free(probs);
    free(rimg);
    free(pred);
    return rc;
}
