/* scorefree.c — the score-free objectives of Zhang et al. 2025, "Towards
 * Training One-Step Diffusion Models Without Distillation" (arXiv:2502.08005)
 * as one plugin library: dikl, dijs, dirm.
 *
 * These never use a score difference (score_free = 1, w_s ≡ 0, so the host
 * trains no fake-score network). The generator is pushed along the gradient of
 * the ratio estimator's logit alone, g = −w_l(l)·∇_x l, with d = σ(l):
 *
 *   name  generator objective (min over q)     ∇_x of it             w_s   w_l(l)
 *   dikl  E_q[logit(1 − d)] = E_q[−l]  (Eq. 8)  −∇_x l                0     1
 *   dijs  E_q[log(1 − d)]              (Eq. 9)  −σ(l)·∇_x l           0     σ(l)
 *   dirm  E_q[−log d]                  (Eq. 10) −σ(−l)·∇_x l          0     σ(−l)
 *
 * dikl is KL(q‖p) directly; dijs is the saturating GAN generator loss, whose
 * optimum is the Jensen–Shannon divergence; dirm ("realness maximisation") is
 * the non-saturating one. σ is evaluated on its stable side (wb_sigmoidf), so
 * every weight is finite and in [0, 1] for every finite logit.
 *
 * value(): Monte-Carlo estimates from the student's samples (from q):
 *   dikl  mean(−l)                    → KL(q‖p)
 *   dijs  mean(wb_div_js_term(l))     → 2·JS(p, q), the f-divergence form of
 *                                       fdiv.c's js, so the two are comparable
 *   dirm  mean(softplus(−l))          → E_q[−log d]; not a divergence: it reads
 *                                       log 2 (not 0) at p = q
 */
#include <math.h>
#include <stdint.h>

#include "divergence_common.h"

/* ---- dikl: diffusive KL ------------------------------------------------------ */
static void dikl_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                         float *w_l) {
    (void)cfg;
    (void)logit;
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = 0.0f;
        w_l[i] = 1.0f;
    }
}

static double dikl_term(double l, double param) {
    (void)param;
    return -l;
}

static double dikl_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, dikl_term, 0.0);
}

/* ---- dijs: diffusive Jensen–Shannon ------------------------------------------ */
static void dijs_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                         float *w_l) {
    (void)cfg;
    /* ∇ log(1 − σ(l)) = −σ(l)·∇l */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = 0.0f;
        w_l[i] = wb_sigmoidf(logit[i]);
    }
}

static double dijs_term(double l, double param) {
    (void)param;
    return wb_div_js_term(l);
}

static double dijs_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, dijs_term, 0.0);
}

/* ---- dirm: diffusive realness maximisation ----------------------------------- */
static void dirm_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                         float *w_l) {
    (void)cfg;
    /* ∇(−log σ(l)) = −σ(−l)·∇l */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = 0.0f;
        w_l[i] = wb_sigmoidf(-logit[i]);
    }
}

/* −log σ(l) = softplus(−l) */
static double dirm_term(double l, double param) {
    (void)param;
    return wb_div_softplusd(-l);
}

static double dirm_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, dirm_term, 0.0);
}

/* ---- the library ------------------------------------------------------------- */
/* The family every member declares: result tables and `workbench plugins` show it. */
#define SCOREFREE_FAMILY "score-free"

static const wb_divergence_fns dikl_fns = WB_DIVERGENCE_FNS(1, dikl_weights, dikl_value);
static const wb_divergence_fns dijs_fns = WB_DIVERGENCE_FNS(1, dijs_weights, dijs_value);
static const wb_divergence_fns dirm_fns = WB_DIVERGENCE_FNS(1, dirm_weights, dirm_value);

static const wb_plugin_desc dikl_desc = WB_DIVERGENCE_DESC(
    "dikl", WB_DIV_VERSION, SCOREFREE_FAMILY,
    "score-free diffusive KL (arXiv:2502.08005 Eq. 8): min E_q[-l] = KL(q||p); w_s = 0, w_l = 1",
    WB_NO_PARAMS, &dikl_fns);
static const wb_plugin_desc dijs_desc = WB_DIVERGENCE_DESC(
    "dijs", WB_DIV_VERSION, SCOREFREE_FAMILY,
    "score-free diffusive JS (arXiv:2502.08005 Eq. 9): min E_q[log(1 - sigmoid(l))]; w_s = 0, "
    "w_l = sigmoid(l)",
    WB_NO_PARAMS, &dijs_fns);
static const wb_plugin_desc dirm_desc = WB_DIVERGENCE_DESC(
    "dirm", WB_DIV_VERSION, SCOREFREE_FAMILY,
    "score-free realness maximisation (arXiv:2502.08005 Eq. 10): min E_q[-log "
    "sigmoid(l)]; w_s = 0, "
    "w_l = sigmoid(-l)",
    WB_NO_PARAMS, &dirm_fns);

static const wb_plugin_desc *const scorefree_plugins[] = {&dikl_desc, &dijs_desc, &dirm_desc};
static const wb_plugin_library scorefree_library = WB_LIBRARY(scorefree_plugins);

WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &scorefree_library; }
