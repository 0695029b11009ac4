/* host/core/net_services.c — the host services wb/plugin.h promises a plugin
 * (net forward with feature capture, EDM preconditioning, feature lookup).
 * They live in libwb, beside the tensor API, because plugins link libwb
 * alone; net instances themselves are made by the engine (host/engine/net.c).
 * EDM preconditioning is done once here for every net plugin (DESIGN §1.6,
 * σ_data = 0.5):
 *
 *   D(x, σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x, c_noise(σ))
 *   c_skip = σd²/(σ²+σd²)   c_out = σ·σd/√(σ²+σd²)   c_in = 1/√(σ²+σd²)
 *   c_noise = ln(σ)/4
 *
 * The coefficients are ops on σ (wb_edm_precond, host/core/ops_diffusion.c),
 * computed on the graph's backend as (B, 1[, 1, 1]) tensors that broadcast
 * against x: no trip through the host.
 */
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

#define WB_SIGMA_DATA 0.5f

wb_tensor *wb_net_forward(wb_net *net, wb_graph *g, wb_tensor *x_in, wb_tensor *c_noise, wb_tensor *labels,
                          wb_features *feats) {
    if (!x_in || !c_noise) return NULL;
    if (feats) feats->n = 0;
    wb_tensor *y = net->desc->net->forward(net->self, g, x_in, c_noise, labels, feats);
    if (!y && strcmp(wb_last_error(), "no error") == 0) wb_set_error("net '%s': forward failed", net->desc->name);
    return y;
}

static int check_sigma(const wb_tensor *sigma, const wb_tensor *x) {
    if (sigma->numel != x->shape[0]) {
        wb_set_error("denoise: %lld noise levels for a batch of %lld", (long long)sigma->numel,
                     (long long)x->shape[0]);
        return -1;
    }
    return 0;
}

wb_tensor *wb_edm_c_in_x(wb_graph *g, wb_tensor *x, wb_tensor *sigma) {
    if (!x || !sigma || check_sigma(sigma, x)) return NULL;
    wb_edm_coefs c;
    if (wb_edm_precond(g, sigma, x->ndim, WB_SIGMA_DATA, &c)) return NULL;
    return wb_mul(g, x, c.c_in);
}

wb_tensor *wb_edm_c_noise(wb_graph *g, wb_tensor *sigma) {
    if (!sigma) return NULL;
    return wb_scale(g, wb_log(g, sigma), 0.25f);
}

/* EDM's VPPrecond and VEPrecond (its defaults: β_d = 19.9, β_min = 0.1,
 * M = 1000), as ops on σ broadcasting against x:
 *   VP: D = x − σ·F(x/√(σ²+1), (M−1)·(√(β_min² + 2β_d·ln(1+σ²)) − β_min)/β_d)
 *   VE: D = x + σ·F(x, ln(σ/2)) */
#define VP_BETA_D 19.9f
#define VP_BETA_MIN 0.1f
#define VP_M 1000.0f

static wb_tensor *denoise_vp_ve(wb_net *net, wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor *labels,
                                wb_features *feats) {
    int64_t bs[4] = {sigma->numel, 1, 1, 1};
    wb_tensor *s = wb_reshape(g, sigma, x->ndim < 4 ? x->ndim : 4, bs); /* (B, 1[, 1, 1]) */
    wb_tensor *x_in, *c_noise, *c_out;
    if (net->precond == WB_PRECOND_VP) {
        wb_tensor *s2p1 = wb_add_scalar(g, wb_square(g, sigma), 1.0f);
        x_in = wb_div(g, x, wb_sqrt(g, wb_reshape(g, s2p1, x->ndim < 4 ? x->ndim : 4, bs)));
        wb_tensor *inv = wb_add_scalar(g, wb_sqrt(g, wb_add_scalar(g, wb_scale(g, wb_log(g, s2p1), 2.0f * VP_BETA_D),
                                                                   VP_BETA_MIN * VP_BETA_MIN)),
                                       -VP_BETA_MIN);
        c_noise = wb_scale(g, inv, (VP_M - 1.0f) / VP_BETA_D);
        c_out = wb_scale(g, s, -1.0f);
    } else {
        x_in = x;
        c_noise = wb_log(g, wb_scale(g, sigma, 0.5f));
        c_out = s;
    }
    wb_tensor *f = wb_net_forward(net, g, x_in, c_noise, labels, feats);
    if (f && !wb_same_shape(f, x)) {
        char s1[64], s2[64];
        wb_set_error("net '%s': output %s does not match input %s", net->desc->name, wb_shape_str(f, s1, sizeof s1),
                     wb_shape_str(x, s2, sizeof s2));
        return NULL;
    }
    return wb_add(g, x, wb_mul(g, f, c_out));
}

wb_tensor *wb_net_denoise(wb_net *net, wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor *labels,
                          wb_features *feats) {
    if (!x || !sigma || check_sigma(sigma, x)) return NULL;
    if (net->precond == WB_PRECOND_VP || net->precond == WB_PRECOND_VE)
        return denoise_vp_ve(net, g, x, sigma, labels, feats);
    wb_edm_coefs c;
    if (wb_edm_precond(g, sigma, x->ndim, WB_SIGMA_DATA, &c)) return NULL;
    wb_tensor *f = wb_net_forward(net, g, wb_mul(g, x, c.c_in), c.c_noise, labels, feats);
    if (f && !wb_same_shape(f, x)) {
        char s1[64], s2[64];
        wb_set_error("net '%s': output %s does not match input %s", net->desc->name,
                     wb_shape_str(f, s1, sizeof s1), wb_shape_str(x, s2, sizeof s2));
        return NULL;
    }
    return wb_add(g, wb_mul(g, x, c.c_skip), wb_mul(g, f, c.c_out));
}

wb_tensor *wb_features_get(const wb_features *feats, const char *name) {
    if (!feats) return NULL;
    for (int i = 0; i < feats->n; i++)
        if (strcmp(feats->names[i], name) == 0) return feats->maps[i];
    return NULL;
}
