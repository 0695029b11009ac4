/* plugins/ratio_estimators/fake_encoder.c — ratio estimator `fake-encoder`:
 * SiDA's discriminator (Zhou et al., "Adversarial Score identity
 * Distillation", 2024), the one Di-Bregman builds on. The fake-score
 * (auxiliary) network's encoder is the discriminator and "the mean feature
 * vector is used as the predicted discriminator logits":
 *
 *   φ = F_fake(c_in(σ)·x_t, c_noise(σ))[feature]   (B, C) or (B, C, H, W)
 *   l(x_t, σ) = mean of φ over channels (and positions)   (B)
 *   (reduce = "signed": mean of the first C/2 channels − mean of the next C/2)
 *
 * It has no parameters of its own. Its BCE (real = 1, student = 0) trains
 * the fake-score net itself, added to the fake score's DSM loss, one loss
 * and one optimiser (trains_fake_jointly in wb/plugin.h):
 *
 *   L_fake = DSM + adv_weight · BCE            (+ R1 with the `r1` option)
 *
 * so the host runs no separate ratio update. Contrast `gan-head
 * features=fake` (DMD2): a separate two-layer head on the same features,
 * with its own optimiser, trained by the ratio update while the fake net
 * is left to DSM (docs/DESIGN.md, "Ratio estimators").
 *
 * feature = "auto": the mlp's "hidden" (its last hidden layer); for the
 * unet the deepest encoder map ("enc8" at 32×32 with three levels): EDM's
 * SongUNet, which SiDA uses, counts the lowest-resolution blocks before
 * the decoder as its encoder's end; the unet's "mid" can be named instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/plugin.h"

typedef struct fake_encoder {
    wb_net *fake;
    char feature[32]; /* the map read, resolved from "auto" */
    double adv_weight;
    int signed_mean;  /* reduce = "signed": first half's mean − second half's */
} fake_encoder;

static const wb_param_spec fake_encoder_params[] = {
    WB_PARAM_NUMBER("adv_weight", 1.0, 0.0, 1e6,
                    "weight of the BCE inside the fake-score loss, L_fake = DSM + adv_weight·BCE (SiDA's --lsd, "
                    "default 1)"),
    WB_PARAM_STRING("feature", "auto", NULL,
                    "the fake net's feature map whose mean is the logit; 'auto': 'hidden' (mlp), the deepest "
                    "'enc*' map (unet)"),
    WB_PARAM_STRING("reduce", "mean", "mean|signed",
                    "'mean': SiDA's mean over channels (and positions); 'signed': the first half of the channels' "
                    "mean minus the second half's (a post-activation map such as the mlp's 'hidden' has a floor, "
                    "silu's -0.28, that the plain mean cannot go below)"),
};

/* Run the fake net once on a zero batch of one: the maps it exposes. Picks
 * the map for "auto", or checks that a named one exists. */
static int resolve_feature(fake_encoder *e, const char *want, const wb_backend *be, char *err, size_t err_len) {
    wb_net *net = e->fake;
    wb_graph *g = wb_graph_new(be);
    if (!g) return -1;
    wb_graph_set_grad(g, 0);
    int64_t shape[4] = {1, net->shape.channels, net->shape.height, net->shape.width};
    int vector = net->shape.height == 1 && net->shape.width == 1;
    int64_t one = 1;
    wb_features feats = {0};
    int rc = -1;
    if (!wb_net_forward(net, g, wb_zeros(g, vector ? 2 : 4, shape), wb_zeros(g, 1, &one), NULL, &feats)) {
        snprintf(err, err_len, "probing the fake net's features: %s", wb_last_error());
    } else if (strcmp(want, "auto") == 0) {
        const char *pick = wb_features_get(&feats, "hidden") ? "hidden" : NULL;
        for (int i = 0; !wb_features_get(&feats, "hidden") && i < feats.n; i++)
            if (strncmp(feats.names[i], "enc", 3) == 0) pick = feats.names[i]; /* the last is the deepest */
        if (!pick && feats.n > 0) pick = feats.names[feats.n - 1];
        if (pick) {
            snprintf(e->feature, sizeof e->feature, "%s", pick);
            rc = 0;
        } else {
            snprintf(err, err_len, "net '%s' exposes no feature map", net->desc->name);
        }
    } else if (wb_features_get(&feats, want)) {
        snprintf(e->feature, sizeof e->feature, "%s", want);
        rc = 0;
    } else {
        char known[256] = "";
        size_t used = 0;
        for (int i = 0; i < feats.n && used < sizeof known; i++)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", feats.names[i]);
        snprintf(err, err_len, "net '%s' exposes no feature '%s' (it has: %s)", net->desc->name, want, known);
    }
    wb_graph_free(g);
    return rc;
}

static void *fake_encoder_create(const wb_config *cfg, const wb_ratio_env *env, wb_params *params, char *err,
                                 size_t err_len) {
    (void)params; /* no weights of its own: the logit is the fake net's */
    if (!env->fake) {
        snprintf(err, err_len, "needs the fake-score net, which score-free divergences do not train (use "
                               "`classifier` or `gan-head` with features = \"teacher\")");
        return NULL;
    }
    const char *want = wb_config_string(cfg, "feature", "auto");
    if (strlen(want) >= sizeof ((fake_encoder *)0)->feature) {
        snprintf(err, err_len, "feature '%s' is longer than %zu characters", want,
                 sizeof ((fake_encoder *)0)->feature - 1);
        return NULL;
    }
    fake_encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->fake = env->fake;
    e->adv_weight = wb_config_number(cfg, "adv_weight", 1.0);
    e->signed_mean = strcmp(wb_config_string(cfg, "reduce", "mean"), "signed") == 0;
    if (resolve_feature(e, want, env->backend, err, err_len)) {
        free(e);
        return NULL;
    }
    return e;
}

static void fake_encoder_destroy(void *self) { free(self); }

static wb_tensor *fake_encoder_logit(void *self, wb_graph *g, const wb_ratio_input *in) {
    fake_encoder *e = self;
    wb_features feats = {0};
    wb_tensor *x_in = wb_edm_c_in_x(g, in->x, in->sigma);
    if (!wb_net_forward(e->fake, g, x_in, wb_edm_c_noise(g, in->sigma), NULL, &feats)) return NULL;
    wb_tensor *f = wb_features_get(&feats, e->feature);
    if (!f) {
        wb_set_error("fake-encoder: the fake net exposes no feature '%s'", e->feature);
        return NULL;
    }
    if (!e->signed_mean) return wb_mean_rows(g, f); /* (B, C[, H, W]) -> (B): over channels and positions */
    int64_t half = f->shape[1] / 2;
    if (half < 1) {
        wb_set_error("fake-encoder: reduce = \"signed\" needs at least 2 channels in '%s'", e->feature);
        return NULL;
    }
    return wb_sub(g, wb_mean_rows(g, wb_slice1(g, f, 0, half)), wb_mean_rows(g, wb_slice1(g, f, half, half)));
}

static double fake_encoder_weight(void *self) { return ((const fake_encoder *)self)->adv_weight; }

static const wb_ratio_fns fake_encoder_fns =
    WB_RATIO_FNS_JOINT(fake_encoder_create, fake_encoder_destroy, fake_encoder_logit, fake_encoder_weight);

static const wb_plugin_desc fake_encoder_desc =
    WB_RATIO_DESC("fake-encoder", "1.0.0", "SiDA",
                  "the fake-score net's encoder, mean feature as logit, trained jointly with its DSM (SiDA, Di-Bregman)",
                  WB_PARAMS(fake_encoder_params), &fake_encoder_fns);

static const wb_plugin_desc *const fake_encoder_list[] = {&fake_encoder_desc};
static const wb_plugin_library fake_encoder_library = WB_LIBRARY(fake_encoder_list);

WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &fake_encoder_library; }
