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
 * The coefficients depend only on σ, which never needs a gradient, so they
 * are computed on the host and uploaded as (B, 1[, 1, 1]) tensors that
 * broadcast against x.
 */
#include <math.h>
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

/* (B, 1, ...) with x's rank, so per-sample scalars broadcast over x. */
static wb_tensor *per_sample(wb_graph *g, const wb_tensor *x, const float *host) {
    int64_t shape[WB_MAX_DIMS] = {x->shape[0], 1, 1, 1};
    return wb_from_host(g, x->ndim, shape, host);
}

static int download_sigma(const wb_tensor *sigma, const wb_tensor *x, float **out) {
    if (sigma->numel != x->shape[0]) {
        wb_set_error("denoise: %lld noise levels for a batch of %lld", (long long)sigma->numel,
                     (long long)x->shape[0]);
        return -1;
    }
    *out = malloc((size_t)(sigma->numel ? sigma->numel : 1) * sizeof(float));
    if (!*out) return -1;
    wb_to_host(sigma, *out);
    return 0;
}

wb_tensor *wb_edm_c_in_x(wb_graph *g, wb_tensor *x, wb_tensor *sigma) {
    if (!x || !sigma) return NULL;
    float *s;
    if (download_sigma(sigma, x, &s)) return NULL;
    for (int64_t i = 0; i < sigma->numel; i++) s[i] = 1.0f / sqrtf(s[i] * s[i] + WB_SIGMA_DATA * WB_SIGMA_DATA);
    wb_tensor *c_in = per_sample(g, x, s);
    free(s);
    return wb_mul(g, x, c_in);
}

wb_tensor *wb_edm_c_noise(wb_graph *g, wb_tensor *sigma) {
    if (!sigma) return NULL;
    float *s = malloc((size_t)(sigma->numel ? sigma->numel : 1) * sizeof(float));
    if (!s) return NULL;
    wb_to_host(sigma, s);
    for (int64_t i = 0; i < sigma->numel; i++) s[i] = logf(s[i]) / 4.0f;
    wb_tensor *c = wb_from_host(g, 1, &sigma->numel, s);
    free(s);
    return c;
}

wb_tensor *wb_net_denoise(wb_net *net, wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor *labels,
                          wb_features *feats) {
    if (!x || !sigma) return NULL;
    float *s;
    if (download_sigma(sigma, x, &s)) return NULL;
    int64_t b = sigma->numel;
    float *coef = malloc((size_t)(b ? b : 1) * 4 * sizeof(float));
    if (!coef) {
        free(s);
        return NULL;
    }
    float *c_skip = coef, *c_out = coef + b, *c_in = coef + 2 * b, *c_noise = coef + 3 * b;
    const float sd2 = WB_SIGMA_DATA * WB_SIGMA_DATA;
    for (int64_t i = 0; i < b; i++) {
        float s2 = s[i] * s[i];
        c_skip[i] = sd2 / (s2 + sd2);
        c_out[i] = s[i] * WB_SIGMA_DATA / sqrtf(s2 + sd2);
        c_in[i] = 1.0f / sqrtf(s2 + sd2);
        c_noise[i] = logf(s[i]) / 4.0f;
    }
    wb_tensor *t_skip = per_sample(g, x, c_skip), *t_out = per_sample(g, x, c_out);
    wb_tensor *t_in = per_sample(g, x, c_in), *t_noise = wb_from_host(g, 1, &b, c_noise);
    free(coef);
    free(s);
    wb_tensor *f = wb_net_forward(net, g, wb_mul(g, x, t_in), t_noise, labels, feats);
    if (f && !wb_same_shape(f, x)) {
        char s1[64], s2[64];
        wb_set_error("net '%s': output %s does not match input %s", net->desc->name,
                     wb_shape_str(f, s1, sizeof s1), wb_shape_str(x, s2, sizeof s2));
        return NULL;
    }
    return wb_add(g, wb_mul(g, x, t_skip), wb_mul(g, f, t_out));
}

wb_tensor *wb_features_get(const wb_features *feats, const char *name) {
    if (!feats) return NULL;
    for (int i = 0; i < feats->n; i++)
        if (strcmp(feats->names[i], name) == 0) return feats->maps[i];
    return NULL;
}
