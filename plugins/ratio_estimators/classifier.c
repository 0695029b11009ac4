/* plugins/ratio_estimators/classifier.c — ratio estimator `classifier`: a
 * separate, noise-conditioned network (any net plugin, chosen with the
 * `net` key) whose output, averaged over positions, is the logit
 *
 *   l(x_t, σ) = mean F_η(c_in(σ)·x_t, c_noise(σ))  ≈ log p_σ(x_t)/q_σ(x_t)
 *
 * Trained by the host with BCE (label 1 on noisy data, 0 on noisy student
 * samples). This is the discriminator of the score-free paper (there: the
 * encoder half of a UNet with a scalar output). The host builds the backbone
 * with out_channels = 1 and hands it over in env->backbone.
 *
 *   x (B, D) or (B, C, H, W)  ->  F (B, 1[, H, W])  ->  l (B)
 */
#include <stdio.h>
#include <stdlib.h>

#include "wb/plugin.h"

typedef struct classifier {
    wb_net *backbone;
    int precondition;
    float logit_scale;
} classifier;

static const wb_param_spec classifier_params[] = {
    WB_PARAM_BOOL("precondition", 1, "feed c_in(σ)·x (EDM input scaling) instead of raw x"),
    WB_PARAM_NUMBER("logit_scale", 1, 1e-3, 1e3, "multiplies the network output"),
};

static void *classifier_create(const wb_config *cfg, const wb_ratio_env *env, wb_params *params, char *err,
                               size_t err_len) {
    (void)params; /* all weights live in the backbone's own store */
    if (!env->backbone) {
        snprintf(err, err_len, "needs a backbone net (give net = {\"mlp\", ...})");
        return NULL;
    }
    if (env->backbone->shape.out_channels != 1) {
        snprintf(err, err_len, "backbone must have out_channels = 1, has %d", env->backbone->shape.out_channels);
        return NULL;
    }
    classifier *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->backbone = env->backbone;
    c->precondition = wb_config_bool(cfg, "precondition", 1);
    c->logit_scale = (float)wb_config_number(cfg, "logit_scale", 1.0);
    return c;
}

static void classifier_destroy(void *self) { free(self); }

static wb_tensor *classifier_logit(void *self, wb_graph *g, const wb_ratio_input *in) {
    classifier *c = self;
    wb_tensor *x = c->precondition ? wb_edm_c_in_x(g, in->x, in->sigma) : in->x;
    wb_tensor *f = wb_net_forward(c->backbone, g, x, wb_edm_c_noise(g, in->sigma), NULL, NULL);
    wb_tensor *l = wb_mean_rows(g, f);
    return c->logit_scale == 1.0f ? l : wb_scale(g, l, c->logit_scale);
}

static const wb_ratio_fns classifier_fns =
    WB_RATIO_FNS(1 /* wants_backbone */, classifier_create, classifier_destroy, classifier_logit);

static const wb_plugin_desc classifier_desc = WB_RATIO_DESC(
    "classifier", "1.0.0", NULL, "separate σ-conditioned network (any net plugin via `net`) with a scalar logit",
    WB_PARAMS(classifier_params), &classifier_fns);

static const wb_plugin_desc *const classifier_list[] = {&classifier_desc};
static const wb_plugin_library classifier_library = WB_LIBRARY(classifier_list);

WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &classifier_library; }
