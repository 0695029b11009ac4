/* host/engine/inception.c — the FID Inception-v3 network (wb/inception.h): weights
 * from a user-supplied safetensors file in torchvision's state-dict names,
 * BatchNorm folded into the convolutions at load, and the pool3 forward
 * pass of pytorch-fid's FIDInceptionV3 on any backend that has the pooling
 * kernels (host/core/ops_pool.c).
 *
 * The network (torchvision's Inception3 layout with pytorch-fid's blocks):
 *   stem   Conv2d_1a_3x3 (s2) · 2a_3x3 · 2b_3x3 (p1) · maxpool 3/2 ·
 *          Conv2d_3b_1x1 · 4a_3x3 · maxpool 3/2
 *   35×35  Mixed_5b/5c/5d  block A (pool features 32, 64, 64)
 *   17×17  Mixed_6a block B; Mixed_6b..6e block C (c7 = 128, 160, 160, 192)
 *   8×8    Mixed_7a block D; Mixed_7b block E (avg pool); Mixed_7c block E
 *          (max pool in the pool branch: the TF graph's quirk pytorch-fid keeps)
 *   pool3  mean over the 8×8 plane -> 2048
 * Every BasicConv2d is conv (no bias) + BatchNorm (eps 1e-3, eval) + ReLU.
 * The FID blocks' 3×3 average pools leave the padding out of the divisor
 * (count_include_pad = False) — the difference from torchvision's blocks.
 *
 * Shape legend: B images in a chunk, C channels, H×W plane; layer weights
 * W (Cout, Cin, kh, kw), per-channel vectors (Cout).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/backend.h"
#include "engine/inception.h"
#include "wb/tensor.h"

#define INC_CHUNK 16     /* images per forward pass                       */
#define INC_BN_EPS 1e-3  /* BatchNorm eps of torchvision's BasicConv2d    */
#define INC_MAX_LAYERS 96
#define INC_NAME 48

/* One BasicConv2d: geometry, and after load the folded weight and bias. */
typedef struct inc_layer {
    char name[INC_NAME]; /* state-dict prefix, e.g. "Mixed_6b.branch7x7_2" */
    int cin, cout, kh, kw, sh, sw, ph, pw;
    wb_tensor *w, *gamma, *beta, *mean, *var; /* beta holds the folded bias after load */
} inc_layer;

struct wb_inception {
    const wb_backend *be;
    wb_params *params;
    inc_layer layers[INC_MAX_LAYERS];
    int n_layers;
    /* The forward pass's two activation arenas (see `fwd`), kept between
     * calls: a chunk's activations are a few hundred MB, and fresh memory
     * costs the kernel a page clear per page on every call. */
    wb_graph *g[2];
};

/* ---- architecture: the layer table ---------------------------------------------- */
static void add(wb_inception *m, const char *block, const char *branch, int cin, int cout, int kh, int kw, int s,
                int ph, int pw) {
    if (m->n_layers == INC_MAX_LAYERS) return; /* cannot happen: the table below has 94 */
    inc_layer *l = &m->layers[m->n_layers++];
    snprintf(l->name, sizeof l->name, "%s%s%s", block, branch[0] ? "." : "", branch);
    l->cin = cin;
    l->cout = cout;
    l->kh = kh;
    l->kw = kw;
    l->sh = l->sw = s;
    l->ph = ph;
    l->pw = pw;
}

/* torchvision's InceptionA..E constructors, branch by branch. */
static void add_a(wb_inception *m, const char *p, int cin, int pool_features) {
    add(m, p, "branch1x1", cin, 64, 1, 1, 1, 0, 0);
    add(m, p, "branch5x5_1", cin, 48, 1, 1, 1, 0, 0);
    add(m, p, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
    add(m, p, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0);
    add(m, p, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    add(m, p, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
    add(m, p, "branch_pool", cin, pool_features, 1, 1, 1, 0, 0);
}

static void add_b(wb_inception *m, const char *p, int cin) {
    add(m, p, "branch3x3", cin, 384, 3, 3, 2, 0, 0);
    add(m, p, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0);
    add(m, p, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    add(m, p, "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
}

static void add_c(wb_inception *m, const char *p, int cin, int c7) {
    add(m, p, "branch1x1", cin, 192, 1, 1, 1, 0, 0);
    add(m, p, "branch7x7_1", cin, c7, 1, 1, 1, 0, 0);
    add(m, p, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
    add(m, p, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
    add(m, p, "branch7x7dbl_1", cin, c7, 1, 1, 1, 0, 0);
    add(m, p, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
    add(m, p, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
    add(m, p, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
    add(m, p, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
    add(m, p, "branch_pool", cin, 192, 1, 1, 1, 0, 0);
}

static void add_d(wb_inception *m, const char *p, int cin) {
    add(m, p, "branch3x3_1", cin, 192, 1, 1, 1, 0, 0);
    add(m, p, "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
    add(m, p, "branch7x7x3_1", cin, 192, 1, 1, 1, 0, 0);
    add(m, p, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    add(m, p, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    add(m, p, "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
}

static void add_e(wb_inception *m, const char *p, int cin) {
    add(m, p, "branch1x1", cin, 320, 1, 1, 1, 0, 0);
    add(m, p, "branch3x3_1", cin, 384, 1, 1, 1, 0, 0);
    add(m, p, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
    add(m, p, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
    add(m, p, "branch3x3dbl_1", cin, 448, 1, 1, 1, 0, 0);
    add(m, p, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
    add(m, p, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
    add(m, p, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
    add(m, p, "branch_pool", cin, 192, 1, 1, 1, 0, 0);
}

static void build_table(wb_inception *m) {
    add(m, "Conv2d_1a_3x3", "", 3, 32, 3, 3, 2, 0, 0);
    add(m, "Conv2d_2a_3x3", "", 32, 32, 3, 3, 1, 0, 0);
    add(m, "Conv2d_2b_3x3", "", 32, 64, 3, 3, 1, 1, 1);
    add(m, "Conv2d_3b_1x1", "", 64, 80, 1, 1, 1, 0, 0);
    add(m, "Conv2d_4a_3x3", "", 80, 192, 3, 3, 1, 0, 0);
    add_a(m, "Mixed_5b", 192, 32);
    add_a(m, "Mixed_5c", 256, 64);
    add_a(m, "Mixed_5d", 288, 64);
    add_b(m, "Mixed_6a", 288);
    add_c(m, "Mixed_6b", 768, 128);
    add_c(m, "Mixed_6c", 768, 160);
    add_c(m, "Mixed_6d", 768, 160);
    add_c(m, "Mixed_6e", 768, 192);
    add_d(m, "Mixed_7a", 768);
    add_e(m, "Mixed_7b", 1280);
    add_e(m, "Mixed_7c", 2048);
}

/* ---- load ----------------------------------------------------------------------- */
static wb_tensor *declare(wb_params *ps, const char *layer, const char *suffix, int ndim, const int64_t *shape) {
    char key[INC_NAME + 32];
    snprintf(key, sizeof key, "%s.%s", layer, suffix);
    return wb_params_add(ps, key, ndim, shape, WB_INIT_ZEROS, 0.0f);
}

/* W ← W·s, β ← β − μ·s with s = γ/√(σ² + eps) per output channel: eval-mode
 * BatchNorm after a bias-free convolution is this convolution with a bias.
 * In double, so folding adds no more rounding than the stored weights have. */
static int fold_bn(wb_inception *m, const char *path) {
    const wb_backend *be = m->be;
    int64_t most_w = 1, most_c = 1;
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i].w->numel > most_w) most_w = m->layers[i].w->numel;
        if (m->layers[i].cout > most_c) most_c = m->layers[i].cout;
    }
    float *w = malloc((size_t)most_w * sizeof *w), *v = malloc((size_t)(4 * most_c) * sizeof *v);
    int rc = -1;
    if (!w || !v) {
        wb_set_error("%s: out of memory folding BatchNorm", path);
        goto out;
    }
    for (int i = 0; i < m->n_layers; i++) {
        inc_layer *l = &m->layers[i];
        size_t nw = (size_t)l->w->numel, nc = (size_t)l->cout, per = nw / nc;
        float *gamma = v, *beta = v + nc, *mean = v + 2 * nc, *var = v + 3 * nc;
        wb_backend_download(be, w, l->w->data, nw * sizeof *w);
        wb_backend_download(be, gamma, l->gamma->data, nc * sizeof *v);
        wb_backend_download(be, beta, l->beta->data, nc * sizeof *v);
        wb_backend_download(be, mean, l->mean->data, nc * sizeof *v);
        wb_backend_download(be, var, l->var->data, nc * sizeof *v);
        for (size_t c = 0; c < nc; c++) {
            if (!(var[c] + INC_BN_EPS > 0.0)) { /* also NaN */
                wb_set_error("%s: key '%s.bn.running_var': entry %zu is %g, not > -eps", path, l->name, c,
                             (double)var[c]);
                goto out;
            }
            double s = gamma[c] / sqrt(var[c] + INC_BN_EPS);
            for (size_t j = 0; j < per; j++) w[c * per + j] = (float)(w[c * per + j] * s);
            beta[c] = (float)(beta[c] - mean[c] * s);
        }
        wb_backend_upload(be, l->w->data, w, nw * sizeof *w);
        wb_backend_upload(be, l->beta->data, beta, nc * sizeof *v);
    }
    rc = 0;
out:
    free(w);
    free(v);
    return rc;
}

wb_inception *wb_inception_load(const char *path, const wb_backend *be) {
    if (!path) {
        wb_set_error("inception: no weight file given");
        return NULL;
    }
    if (!be && !(be = wb_backend_select(NULL))) return NULL;
    wb_clear_error(); /* so a failure below reports its own message, not a stale one */
    wb_inception *m = calloc(1, sizeof *m);
    if (!m) {
        wb_set_error("inception: out of memory");
        return NULL;
    }
    m->be = be;
    build_table(m);
    m->params = wb_params_new(be);
    if (!m->params) goto fail;
    for (int i = 0; i < m->n_layers; i++) {
        inc_layer *l = &m->layers[i];
        int64_t ws[4] = {l->cout, l->cin, l->kh, l->kw}, cs = l->cout;
        l->w = declare(m->params, l->name, "conv.weight", 4, ws);
        l->gamma = declare(m->params, l->name, "bn.weight", 1, &cs);
        l->beta = declare(m->params, l->name, "bn.bias", 1, &cs);
        l->mean = declare(m->params, l->name, "bn.running_mean", 1, &cs);
        l->var = declare(m->params, l->name, "bn.running_var", 1, &cs);
        if (!l->w || !l->gamma || !l->beta || !l->mean || !l->var) goto fail;
    }
    if (wb_params_finalize(m->params, NULL)) goto fail;
    wb_params_set_trainable(m->params, 0);
    /* allow_extra: the classifier (fc.*), the auxiliary head (AuxLogits.*)
     * and BatchNorm's num_batches_tracked counters (I64) are not features. */
    wb_named_params store = {"", m->params};
    if (wb_safetensors_load(path, &store, 1, 1)) goto fail;
    if (fold_bn(m, path)) goto fail;
    return m;
fail:;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", wb_last_error());
    wb_set_error("FID Inception-v3 weights: %s", msg[0] ? msg : "out of memory");
    wb_inception_free(m);
    return NULL;
}

void wb_inception_free(wb_inception *m) {
    if (!m) return;
    wb_graph_free(m->g[0]);
    wb_graph_free(m->g[1]);
    wb_params_free(m->params);
    free(m);
}

/* ---- forward ---------------------------------------------------------------------- */
/* Activations of a chunk are large (the stem's 147×147 planes: ~1.4 M floats
 * per image per layer) and the tape is off, so nothing needs the earlier
 * ones: each stage (a stem layer, a Mixed block) runs in one of two graphs
 * and its output is copied into the other, which is reset first. The peak
 * is one stage's activations, not the whole network's. */
typedef struct fwd {
    wb_inception *m;
    wb_graph *g[2];
    int cur;
} fwd;

static wb_graph *G(fwd *f) { return f->g[f->cur]; }

static wb_tensor *next_stage(fwd *f, wb_tensor *x) {
    if (!x) return NULL;
    wb_graph *o = f->g[!f->cur];
    wb_graph_reset(o);
    wb_tensor *y = wb_new(o, x->ndim, x->shape);
    if (!y) return NULL;
    if (x->numel) f->m->be->copy(y->data, x->data, (size_t)x->numel * sizeof(float));
    f->cur = !f->cur;
    return y;
}

/* BasicConv2d `block[.branch]`: folded conv + ReLU. */
static wb_tensor *conv(fwd *f, wb_tensor *x, const char *block, const char *branch) {
    if (!x) return NULL;
    char name[INC_NAME];
    snprintf(name, sizeof name, "%s%s%s", block, branch[0] ? "." : "", branch);
    for (int i = 0; i < f->m->n_layers; i++) {
        inc_layer *l = &f->m->layers[i];
        if (strcmp(l->name, name) == 0)
            return wb_relu(G(f), wb_conv2d_ex(G(f), x, l->w, l->beta, l->sh, l->sw, l->ph, l->pw));
    }
    wb_set_error("inception: internal error: no layer %s", name);
    return NULL;
}

static wb_tensor *cat(fwd *f, wb_tensor *a, wb_tensor *b) { return wb_concat(G(f), a, b); }

/* 3×3 stride-1 average pool of the FID blocks: padding not counted. */
static wb_tensor *fid_avgpool(fwd *f, wb_tensor *x) { return wb_avgpool2d(G(f), x, 3, 1, 1, 0); }

static wb_tensor *block_a(fwd *f, wb_tensor *x, const char *p) {
    wb_tensor *b1 = conv(f, x, p, "branch1x1");
    wb_tensor *b5 = conv(f, conv(f, x, p, "branch5x5_1"), p, "branch5x5_2");
    wb_tensor *b3 = conv(f, conv(f, conv(f, x, p, "branch3x3dbl_1"), p, "branch3x3dbl_2"), p, "branch3x3dbl_3");
    wb_tensor *bp = conv(f, fid_avgpool(f, x), p, "branch_pool");
    return next_stage(f, cat(f, cat(f, cat(f, b1, b5), b3), bp));
}

static wb_tensor *block_b(fwd *f, wb_tensor *x, const char *p) {
    wb_tensor *b3 = conv(f, x, p, "branch3x3");
    wb_tensor *bd = conv(f, conv(f, conv(f, x, p, "branch3x3dbl_1"), p, "branch3x3dbl_2"), p, "branch3x3dbl_3");
    wb_tensor *bp = wb_maxpool2d(G(f), x, 3, 2, 0);
    return next_stage(f, cat(f, cat(f, b3, bd), bp));
}

static wb_tensor *block_c(fwd *f, wb_tensor *x, const char *p) {
    wb_tensor *b1 = conv(f, x, p, "branch1x1");
    wb_tensor *b7 = conv(f, conv(f, conv(f, x, p, "branch7x7_1"), p, "branch7x7_2"), p, "branch7x7_3");
    wb_tensor *bd = conv(f, x, p, "branch7x7dbl_1");
    bd = conv(f, conv(f, bd, p, "branch7x7dbl_2"), p, "branch7x7dbl_3");
    bd = conv(f, conv(f, bd, p, "branch7x7dbl_4"), p, "branch7x7dbl_5");
    wb_tensor *bp = conv(f, fid_avgpool(f, x), p, "branch_pool");
    return next_stage(f, cat(f, cat(f, cat(f, b1, b7), bd), bp));
}

static wb_tensor *block_d(fwd *f, wb_tensor *x, const char *p) {
    wb_tensor *b3 = conv(f, conv(f, x, p, "branch3x3_1"), p, "branch3x3_2");
    wb_tensor *b7 = conv(f, conv(f, x, p, "branch7x7x3_1"), p, "branch7x7x3_2");
    b7 = conv(f, conv(f, b7, p, "branch7x7x3_3"), p, "branch7x7x3_4");
    wb_tensor *bp = wb_maxpool2d(G(f), x, 3, 2, 0);
    return next_stage(f, cat(f, cat(f, b3, b7), bp));
}

/* max_pool: Mixed_7c (pytorch-fid's FIDInceptionE_2) pools its pool branch
 * with a 3×3 max pool, Mixed_7b (E_1) with the FID average pool. */
static wb_tensor *block_e(fwd *f, wb_tensor *x, const char *p, int max_pool) {
    wb_tensor *b1 = conv(f, x, p, "branch1x1");
    wb_tensor *t = conv(f, x, p, "branch3x3_1");
    wb_tensor *b3 = cat(f, conv(f, t, p, "branch3x3_2a"), conv(f, t, p, "branch3x3_2b"));
    wb_tensor *u = conv(f, conv(f, x, p, "branch3x3dbl_1"), p, "branch3x3dbl_2");
    wb_tensor *bd = cat(f, conv(f, u, p, "branch3x3dbl_3a"), conv(f, u, p, "branch3x3dbl_3b"));
    wb_tensor *pooled = max_pool ? wb_maxpool2d(G(f), x, 3, 1, 1) : fid_avgpool(f, x);
    wb_tensor *bp = conv(f, pooled, p, "branch_pool");
    return next_stage(f, cat(f, cat(f, cat(f, b1, b3), bd), bp));
}

/* x (B, 3, 299, 299) in [-1, 1] -> pool3 (B·2048) in the current graph. */
static wb_tensor *forward(fwd *f, wb_tensor *x) {
    x = next_stage(f, conv(f, x, "Conv2d_1a_3x3", ""));
    x = next_stage(f, conv(f, x, "Conv2d_2a_3x3", ""));
    x = next_stage(f, wb_maxpool2d(G(f), conv(f, x, "Conv2d_2b_3x3", ""), 3, 2, 0));
    x = next_stage(f, conv(f, x, "Conv2d_3b_1x1", ""));
    x = next_stage(f, wb_maxpool2d(G(f), conv(f, x, "Conv2d_4a_3x3", ""), 3, 2, 0));
    x = block_a(f, x, "Mixed_5b");
    x = block_a(f, x, "Mixed_5c");
    x = block_a(f, x, "Mixed_5d");
    x = block_b(f, x, "Mixed_6a");
    x = block_c(f, x, "Mixed_6b");
    x = block_c(f, x, "Mixed_6c");
    x = block_c(f, x, "Mixed_6d");
    x = block_c(f, x, "Mixed_6e");
    x = block_d(f, x, "Mixed_7a");
    x = block_e(f, x, "Mixed_7b", 0);
    x = block_e(f, x, "Mixed_7c", 1);
    if (!x) return NULL;
    /* adaptive average pooling to 1×1: the mean of each (image, channel) plane */
    int64_t rows[2] = {x->shape[0] * x->shape[1], x->shape[2] * x->shape[3]};
    return wb_mean_rows(G(f), wb_reshape(G(f), x, 2, rows));
}

int wb_inception_features(wb_inception *m, const float *images, int64_t n, int c, int h, int w, float *out) {
    if (!m || (n > 0 && (!images || !out))) {
        wb_set_error("inception_features: NULL network, images or output");
        return -1;
    }
    if (n < 0 || (c != 1 && c != 3) || h < 1 || w < 1 || (int64_t)h * w > INT32_MAX / 4) {
        wb_set_error("inception_features: %lld images of %dx%dx%d: want n >= 0, 1 or 3 channels, a non-empty plane",
                     (long long)n, c, h, w);
        return -1;
    }
    if (n == 0) return 0;
    int64_t plane = (int64_t)h * w, img = (int64_t)c * plane;
    for (int k = 0; k < 2; k++)
        if (!m->g[k] && (m->g[k] = wb_graph_new(m->be))) wb_graph_set_grad(m->g[k], 0);
    fwd f = {m, {m->g[0], m->g[1]}, 0};
    float *rgb = malloc((size_t)(INC_CHUNK * 3 * plane) * sizeof *rgb);
    int rc = -1;
    if (!f.g[0] || !f.g[1] || !rgb) {
        wb_set_error("inception_features: out of memory");
        goto out;
    }
    for (int64_t i0 = 0; i0 < n; i0 += INC_CHUNK) {
        int64_t b = n - i0 < INC_CHUNK ? n - i0 : INC_CHUNK;
        /* 1-channel images are repeated to RGB (pytorch-fid's users do this
         * before calling it: the network only knows 3 channels). */
        for (int64_t i = 0; i < b; i++)
            for (int ch = 0; ch < 3; ch++)
                memcpy(rgb + (i * 3 + ch) * plane, images + (i0 + i) * img + (c == 3 ? ch : 0) * plane,
                       (size_t)plane * sizeof *rgb);
        wb_graph_reset(f.g[f.cur]);
        int64_t shape[4] = {b, 3, h, w};
        wb_tensor *x = wb_from_host(G(&f), 4, shape, rgb);
        if (x && (h != WB_INCEPTION_SIZE || w != WB_INCEPTION_SIZE))
            x = wb_resize_bilinear(G(&f), x, WB_INCEPTION_SIZE, WB_INCEPTION_SIZE);
        wb_tensor *feat = forward(&f, x);
        if (!feat) goto out;
        if (wb_to_host(feat, out + i0 * WB_INCEPTION_DIM)) goto out;
    }
    rc = 0;
out:
    free(rgb);
    return rc;
}
