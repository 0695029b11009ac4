/* fdiv.c — the f-divergences of f-distill (Xu, Nie, Vahdat 2025, "One-step
 * Diffusion Models with f-Divergence Distribution Matching", arXiv:2502.15681)
 * as one plugin library: rkl, srkl, js, sh, fkl, jeffreys.
 *
 * f-distill minimises D_f(p‖q) = E_q[f(ρ)], ρ = p/q = e^{l}, and its
 * Theorem 1 gives the generator gradient as the score difference weighted by
 * f''(ρ)·ρ². In logit space (l = log p/q from the ratio estimator):
 *
 *   name      f(ρ)                                 w_s(l)              w_l
 *   rkl       −log ρ                               1                   0
 *   srkl      (ρ+1) log((ρ+1)/(2ρ))                1/(1+ρ) = σ(−l)     0
 *   js        ρ log ρ − (ρ+1) log((ρ+1)/2)         ρ/(1+ρ) = σ(l)      0
 *   sh        1 − √ρ                               ¼·e^{l/2}           0
 *   fkl       ρ log ρ                              e^{l}               0
 *   jeffreys  (ρ−1) log ρ                          1 + e^{l}           0
 *
 * Every exponential is clamped at ±WB_EXP_CLAMP (see divergence_common.h), so
 * weights are finite for every finite logit; ρ is never formed and divided.
 * The weight normalisations of f-distill §4 (per-σ-bin ratio normalisation,
 * batch-mean weight normalisation) are the host's switches, not the plugin's:
 * they act on these raw weights.
 *
 * value(): the Monte-Carlo estimate mean_i f(e^{l_i}) over the student's
 * samples, each f rewritten in logit space (log(1+ρ) = l + softplus(−l)):
 *   rkl       −l                                        → KL(q‖p)
 *   srkl      (1+e^l)(softplus(−l) − log 2)             → 2·KL(m‖p), m = (p+q)/2
 *   js        see wb_div_js_term                        → 2·JS(p, q) ≤ 2 log 2
 *   sh        −expm1(l/2) = 1 − e^{l/2}                 → 1 − ∫√(pq) (squared Hellinger)
 *   fkl       l·e^l                                     → KL(p‖q)
 *   jeffreys  l·expm1(l) = (e^l − 1)·l                  → KL(p‖q) + KL(q‖p)
 * Every f(1) = 0, so a perfect student (l ≡ 0) reads 0. Single terms may be
 * negative (rkl, srkl, sh, fkl); only the expectation is a divergence.
 */
#include <math.h>
#include <stdint.h>

#include "divergence_common.h"

/* ---- rkl: reverse KL --------------------------------------------------------- */
static void rkl_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                        float *w_l) {
    (void)cfg;
    (void)logit;
    /* f'' = 1/ρ², so f''·ρ² = 1: reverse KL is DMD's unweighted gradient */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = 1.0f;
        w_l[i] = 0.0f;
    }
}

static double rkl_term(double l, double param) {
    (void)param;
    return -l;
}

static double rkl_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, rkl_term, 0.0);
}

/* ---- srkl: softened reverse KL ----------------------------------------------- */
static void srkl_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                         float *w_l) {
    (void)cfg;
    /* f'' = 1/(ρ²(ρ+1)), so f''·ρ² = 1/(1+ρ) = σ(−l) */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = wb_sigmoidf(-logit[i]);
        w_l[i] = 0.0f;
    }
}

/* (ρ+1)·log((ρ+1)/(2ρ)) with log((ρ+1)/ρ) = softplus(−l) */
static double srkl_term(double l, double param) {
    (void)param;
    return (1.0 + exp(l)) * (wb_div_softplusd(-l) - WB_DIV_LOG2);
}

static double srkl_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, srkl_term, 0.0);
}

/* ---- js: Jensen–Shannon ------------------------------------------------------ */
static void js_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                       float *w_l) {
    (void)cfg;
    /* f'' = 1/(ρ(ρ+1)), so f''·ρ² = ρ/(1+ρ) = σ(l) */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = wb_sigmoidf(logit[i]);
        w_l[i] = 0.0f;
    }
}

static double js_term(double l, double param) {
    (void)param;
    return wb_div_js_term(l);
}

static double js_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, js_term, 0.0);
}

/* ---- sh: squared Hellinger --------------------------------------------------- */
static void sh_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                       float *w_l) {
    (void)cfg;
    /* f'' = ¼ρ^{−3/2}, so f''·ρ² = ¼√ρ = ¼e^{l/2} */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = 0.25f * wb_div_expf(0.5f * logit[i]);
        w_l[i] = 0.0f;
    }
}

static double sh_term(double l, double param) {
    (void)param;
    return -expm1(0.5 * l);
}

static double sh_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, sh_term, 0.0);
}

/* ---- fkl: forward KL --------------------------------------------------------- */
static void fkl_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                        float *w_l) {
    (void)cfg;
    /* f'' = 1/ρ, so f''·ρ² = ρ = e^l */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = wb_div_expf(logit[i]);
        w_l[i] = 0.0f;
    }
}

static double fkl_term(double l, double param) {
    (void)param;
    return l * exp(l);
}

static double fkl_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, fkl_term, 0.0);
}

/* ---- jeffreys: symmetric KL -------------------------------------------------- */
static void jeffreys_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                             float *w_l) {
    (void)cfg;
    /* f'' = 1/ρ + 1/ρ², so f''·ρ² = ρ + 1 = 1 + e^l */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = 1.0f + wb_div_expf(logit[i]);
        w_l[i] = 0.0f;
    }
}

static double jeffreys_term(double l, double param) {
    (void)param;
    return l * expm1(l);
}

static double jeffreys_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, jeffreys_term, 0.0);
}

/* ---- the library ------------------------------------------------------------- */
/* The family every member declares: result tables and `workbench plugins` show it. */
#define FDIV_FAMILY "f-div"

static const wb_divergence_fns rkl_fns = WB_DIVERGENCE_FNS(0, rkl_weights, rkl_value);
static const wb_divergence_fns srkl_fns = WB_DIVERGENCE_FNS(0, srkl_weights, srkl_value);
static const wb_divergence_fns js_fns = WB_DIVERGENCE_FNS(0, js_weights, js_value);
static const wb_divergence_fns sh_fns = WB_DIVERGENCE_FNS(0, sh_weights, sh_value);
static const wb_divergence_fns fkl_fns = WB_DIVERGENCE_FNS(0, fkl_weights, fkl_value);
static const wb_divergence_fns jeffreys_fns = WB_DIVERGENCE_FNS(0, jeffreys_weights, jeffreys_value);

static const wb_plugin_desc rkl_desc = WB_DIVERGENCE_DESC(
    "rkl", WB_DIV_VERSION, FDIV_FAMILY,
    "f-distill (arXiv:2502.15681) reverse KL: f(rho) = -log rho, rho = p/q; w_s = 1",
    WB_NO_PARAMS, &rkl_fns);
static const wb_plugin_desc srkl_desc = WB_DIVERGENCE_DESC(
    "srkl", WB_DIV_VERSION, FDIV_FAMILY,
    "f-distill (arXiv:2502.15681) softened reverse KL: f(rho) = (rho+1) log((rho+1)/(2 rho)), "
    "rho = p/q; w_s = sigmoid(-l)",
    WB_NO_PARAMS, &srkl_fns);
static const wb_plugin_desc js_desc = WB_DIVERGENCE_DESC(
    "js", WB_DIV_VERSION, FDIV_FAMILY,
    "f-distill (arXiv:2502.15681) Jensen-Shannon: f(rho) = rho log rho - (rho+1) log((rho+1)/2), "
    "rho = p/q; w_s = sigmoid(l)",
    WB_NO_PARAMS, &js_fns);
static const wb_plugin_desc sh_desc = WB_DIVERGENCE_DESC(
    "sh", WB_DIV_VERSION, FDIV_FAMILY,
    "f-distill (arXiv:2502.15681) squared Hellinger: f(rho) = 1 - sqrt(rho), rho = p/q; "
    "w_s = exp(l/2)/4",
    WB_NO_PARAMS, &sh_fns);
static const wb_plugin_desc fkl_desc = WB_DIVERGENCE_DESC(
    "fkl", WB_DIV_VERSION, FDIV_FAMILY,
    "f-distill (arXiv:2502.15681) forward KL: f(rho) = rho log rho, rho = p/q; w_s = exp(l)",
    WB_NO_PARAMS, &fkl_fns);
static const wb_plugin_desc jeffreys_desc = WB_DIVERGENCE_DESC(
    "jeffreys", WB_DIV_VERSION, FDIV_FAMILY,
    "f-distill (arXiv:2502.15681) Jeffreys: f(rho) = (rho-1) log rho, rho = p/q; w_s = 1 + exp(l)",
    WB_NO_PARAMS, &jeffreys_fns);

static const wb_plugin_desc *const fdiv_plugins[] = {&rkl_desc, &srkl_desc, &js_desc,
                                                     &sh_desc,  &fkl_desc,  &jeffreys_desc};
static const wb_plugin_library fdiv_library = WB_LIBRARY(fdiv_plugins);

WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &fdiv_library; }
