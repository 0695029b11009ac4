/* plugins/ratio_estimators/gan_head.c — ratio estimator `gan-head`: a small
 * head on the intermediate features of the teacher (f-distill) or of the
 * fake-score network (DMD2 / SiDA), evaluated at the noisy sample:
 *
 *   φ_k = features_net(c_in(σ)·x_t, c_noise(σ))[feature_k]  (B, C_k[, H_k, W_k])
 *   φ̄ = concat_k(φ_k averaged over positions)                (B, Σ C_k)
 *   l = Linear(act(Linear(φ̄)))                                (B)
 *
 * `feature` names one map or several, comma-separated: f-distill's CIFAR-10
 * head reads the teacher encoder at 32, 16 and 8 ("enc32,enc16,enc8" with
 * the unet plugin); SiDA uses one mean feature.
 *
 * For the MLP the feature is its last hidden layer ("hidden"). Only the head
 * is trained by the BCE loss; gradients still flow through the feature
 * network to x_t, so ∇_x l and the GAN term are exact. The output layer
 * starts at zero: the initial estimate is l = 0, i.e. p = q.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/plugin.h"

#define GAN_HEAD_MAX_MAPS 8
typedef struct gan_head {
    wb_net *features_net;
    char feature[64];                    /* as given, for messages            */
    char names[GAN_HEAD_MAX_MAPS][32];   /* parsed from the comma list        */
    int n_maps;
    wb_tensor *w0, *b0, *w1, *b1;
    int64_t in_dim, hidden;
} gan_head;

static const wb_param_spec gan_head_params[] = {
    WB_PARAM_STRING("features", "teacher", "teacher|fake",
                    "whose features: the frozen teacher (f-distill) or the fake-score net (DMD2)"),
    WB_PARAM_STRING("feature", "hidden", NULL,
                    "feature map(s) exposed by the net, comma-separated ('hidden' for mlp; e.g. 'enc32,enc16,enc8' "
                    "for unet)"),
    WB_PARAM_INT("hidden", 128, 1, 8192, "head width"),
};

/* h->feature ("enc32, enc16,enc8") -> h->names. A name the head cannot hold
 * (too long, one too many) is an error naming it: a silently dropped map
 * would train a head on fewer features than the user asked for. */
static int parse_feature_names(gan_head *h, char *err, size_t err_len) {
    for (const char *p = h->feature + strspn(h->feature, ", "); *p;) {
        size_t n = strcspn(p, ", ");
        if (h->n_maps == GAN_HEAD_MAX_MAPS) {
            snprintf(err, err_len, "feature '%s' names more than %d feature maps", h->feature, GAN_HEAD_MAX_MAPS);
            return -1;
        }
        if (n >= sizeof h->names[0]) {
            snprintf(err, err_len, "feature '%s': map name '%.*s' is longer than %zu characters", h->feature, (int)n,
                     p, sizeof h->names[0] - 1);
            return -1;
        }
        memcpy(h->names[h->n_maps], p, n);
        h->names[h->n_maps++][n] = 0;
        p += n;
        p += strspn(p, ", ");
    }
    if (h->n_maps == 0) {
        snprintf(err, err_len, "feature '%s' names no feature map", h->feature);
        return -1;
    }
    return 0;
}

/* Total feature width: run the net once on a zero batch of one and look. */
static int64_t probe_feature_width(wb_net *net, const gan_head *h, const wb_backend *be, char *err, size_t err_len) {
    wb_graph *g = wb_graph_new(be);
    if (!g) return -1;
    wb_graph_set_grad(g, 0);
    int64_t shape[4] = {1, net->shape.channels, net->shape.height, net->shape.width};
    int vector = net->shape.height == 1 && net->shape.width == 1;
    wb_tensor *x = wb_zeros(g, vector ? 2 : 4, shape);
    int64_t one = 1;
    wb_tensor *c = wb_zeros(g, 1, &one);
    wb_features feats = {0};
    int64_t width = -1;
    if (wb_net_forward(net, g, x, c, NULL, &feats)) {
        width = 0;
        for (int k = 0; k < h->n_maps && width >= 0; k++) {
            wb_tensor *f = wb_features_get(&feats, h->names[k]);
            if (f) {
                width += f->shape[1];
            } else {
                char known[256] = "";
                size_t used = 0;
                for (int i = 0; i < feats.n && used < sizeof known; i++)
                    used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", feats.names[i]);
                snprintf(err, err_len, "net '%s' exposes no feature '%s' (it has: %s)", net->desc->name, h->names[k], known);
                width = -1;
            }
        }
    } else {
        snprintf(err, err_len, "probing features: %s", wb_last_error());
    }
    wb_graph_free(g);
    return width;
}

static void *gan_head_create(const wb_config *cfg, const wb_ratio_env *env, wb_params *params, char *err,
                             size_t err_len) {
    const char *which = wb_config_string(cfg, "features", "teacher");
    wb_net *net = strcmp(which, "fake") == 0 ? env->fake : env->teacher;
    if (!net) {
        snprintf(err, err_len, "features = '%s' but there is no %s network%s", which, which,
                 strcmp(which, "fake") == 0 ? " (score-free divergences train none; use features = \"teacher\")" : "");
        return NULL;
    }
    gan_head *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->features_net = net;
    snprintf(h->feature, sizeof h->feature, "%s", wb_config_string(cfg, "feature", "hidden"));
    if (parse_feature_names(h, err, err_len)) {
        free(h);
        return NULL;
    }
    h->hidden = wb_config_int(cfg, "hidden", 128);
    h->in_dim = probe_feature_width(net, h, env->backend, err, err_len);
    if (h->in_dim <= 0) {
        free(h);
        return NULL;
    }
    int64_t s0[2] = {h->hidden, h->in_dim}, s1[2] = {1, h->hidden}, one = 1;
    h->w0 = wb_params_add(params, "head0.weight", 2, s0, WB_INIT_UNIFORM_FAN_IN, 1.0f);
    h->b0 = wb_params_add(params, "head0.bias", 1, &h->hidden, WB_INIT_ZEROS, 0.0f);
    h->w1 = wb_params_add(params, "head1.weight", 2, s1, WB_INIT_ZEROS, 0.0f);
    h->b1 = wb_params_add(params, "head1.bias", 1, &one, WB_INIT_ZEROS, 0.0f);
    if (!h->w0 || !h->b0 || !h->w1 || !h->b1) {
        snprintf(err, err_len, "%s", wb_last_error());
        free(h);
        return NULL;
    }
    return h;
}

static void gan_head_destroy(void *self) { free(self); }

static wb_tensor *gan_head_logit(void *self, wb_graph *g, const wb_ratio_input *in) {
    gan_head *h = self;
    wb_features feats = {0};
    wb_tensor *x_in = wb_edm_c_in_x(g, in->x, in->sigma);
    if (!wb_net_forward(h->features_net, g, x_in, wb_edm_c_noise(g, in->sigma), NULL, &feats)) return NULL;
    wb_tensor *pooled = NULL;
    for (int k = 0; k < h->n_maps; k++) {
        wb_tensor *f = wb_features_get(&feats, h->names[k]);
        if (!f) {
            wb_set_error("gan-head: net exposes no feature '%s'", h->names[k]);
            return NULL;
        }
        if (f->ndim == 4) { /* (B, C, H, W) -> mean over positions -> (B, C) */
            int64_t s[2] = {f->shape[0] * f->shape[1], f->shape[2] * f->shape[3]}, s2[2] = {f->shape[0], f->shape[1]};
            f = wb_reshape(g, wb_mean_rows(g, wb_reshape(g, f, 2, s)), 2, s2);
        }
        pooled = pooled ? wb_concat(g, pooled, f) : f;
    }
    wb_tensor *f = pooled;
    wb_tensor *z = wb_silu(g, wb_linear(g, f, h->w0, h->b0));
    wb_tensor *l = wb_linear(g, z, h->w1, h->b1); /* (B, 1) */
    int64_t b = in->x->shape[0];
    return wb_reshape(g, l, 1, &b);
}

static const wb_ratio_fns gan_head_fns =
    WB_RATIO_FNS(0 /* wants_backbone */, gan_head_create, gan_head_destroy, gan_head_logit);

static const wb_plugin_desc gan_head_desc =
    WB_RATIO_DESC("gan-head", "1.0.0", NULL, "two-layer head on teacher or fake-score features (f-distill, DMD2)",
                  WB_PARAMS(gan_head_params), &gan_head_fns);

static const wb_plugin_desc *const gan_head_list[] = {&gan_head_desc};
static const wb_plugin_library gan_head_library = WB_LIBRARY(gan_head_list);

WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &gan_head_library; }
