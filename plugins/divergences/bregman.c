/* bregman.c — the Bregman family of Di-Bregman (Zhu, Tsonis, Degeorge,
 * Kalogeiton 2025, "One-step Diffusion Models with Bregman Density Ratio
 * Matching", arXiv:2510.16983) as one plugin library: lr, kl, be, ls, sba.
 *
 * Di-Bregman matches the density ratio r = q/p = e^{-l} to 1 under a Bregman
 * divergence with a convex generator h,
 *     D = E_p[ h(r) − h(1) − h'(1)(r − 1) ],
 * and its Theorem 1 gives the generator gradient as the score difference
 * weighted by h''(r)·r. In logit space (l = log p/q from the ratio estimator):
 *
 *   name  generator h(r)                          w_s(l)           w_l
 *   lr    r log r − (1+r) log(1+r)                σ(l)             0
 *   kl    r log r − r        (reverse KL, DMD)    1                0
 *   be    −log r                                  e^{l}            0
 *   ls    r²/2                                    e^{−l}           0
 *   sba   (r^{1+λ} − r)/(λ(λ+1)), param λ         e^{−λl}          0
 *
 * sba interpolates the others up to an affine term (which a Bregman divergence
 * ignores): λ = 0 is kl, λ = 1 is ls, λ = −1 is be. The paper finds λ = 3, 5,
 * 10 best and λ = −1 worst on CIFAR-10; the default is 5.
 *
 * Every exponential is clamped at ±WB_EXP_CLAMP (see divergence_common.h), so
 * weights are finite for every finite logit; r is never formed and divided.
 *
 * value(): the objective above is an expectation under p, but the host only
 * has the student's samples (from q). With E_p[g] = E_q[(p/q)·g] = E_q[e^l·g]:
 *     D ≈ mean_i  t(l_i),   t(l) = e^{l}·(h(r) − h(1) − h'(1)(r − 1)),  r = e^{−l}.
 * Each t is ≥ 0 (h is convex) and 0 at l = 0. Closed forms, per member:
 *   lr   (1+e^l)(log 2 − softplus(−l)) − l      (= the JS term of f-distill)
 *   kl   e^l − 1 − l                           (KL(q‖p) = E_q[−l], plus the
 *                                               zero-mean control variate e^l − 1)
 *   be   l·e^l − (e^l − 1)                     (KL(p‖q) = E_q[l e^l], likewise)
 *   ls   (e^{−l} − 2 + e^l)/2 = 2 sinh²(l/2)
 *   sba  (e^{−λl} − (1+λ) + λ e^l)/(λ(λ+1))     (kl / be in the limits λ → 0, −1)
 */
#include <math.h>
#include <stdint.h>

#include "divergence_common.h"

/* ---- lr: logistic-regression generator --------------------------------------- */
static void lr_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                       float *w_l) {
    (void)cfg;
    /* h''(r)·r = 1/(1+r) = σ(l) */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = wb_sigmoidf(logit[i]);
        w_l[i] = 0.0f;
    }
}

static double lr_term(double l, double param) {
    (void)param;
    return wb_div_js_term(l);
}

static double lr_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, lr_term, 0.0);
}

/* ---- kl: reverse KL (DMD / VSD) ---------------------------------------------- */
static void kl_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                       float *w_l) {
    (void)cfg;
    (void)logit;
    /* h''(r)·r = (1/r)·r = 1: the plain score difference of DMD */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = 1.0f;
        w_l[i] = 0.0f;
    }
}

/* e^l − 1 − l, with expm1 so that small |l| does not cancel */
static double kl_term(double l, double param) {
    (void)param;
    return expm1(l) - l;
}

static double kl_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, kl_term, 0.0);
}

/* ---- be: Burg entropy generator ---------------------------------------------- */
static void be_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                       float *w_l) {
    (void)cfg;
    /* h''(r)·r = (1/r²)·r = 1/r = e^l */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = wb_div_expf(logit[i]);
        w_l[i] = 0.0f;
    }
}

/* l·e^l − (e^l − 1) */
static double be_term(double l, double param) {
    (void)param;
    return l * exp(l) - expm1(l);
}

static double be_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, be_term, 0.0);
}

/* ---- ls: least-squares generator --------------------------------------------- */
static void ls_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                       float *w_l) {
    (void)cfg;
    /* h''(r)·r = r = e^{−l} */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = wb_div_expf(-logit[i]);
        w_l[i] = 0.0f;
    }
}

/* 2 sinh²(l/2): the same as (e^{−l} − 2 + e^l)/2 without the cancellation at l ≈ 0 */
static double ls_term(double l, double param) {
    (void)param;
    double s = sinh(0.5 * l);
    return 2.0 * s * s;
}

static double ls_value(const wb_config *cfg, int64_t n, const float *logit) {
    (void)cfg;
    return wb_div_mean(n, logit, ls_term, 0.0);
}

/* ---- sba: the λ-family ------------------------------------------------------- */
#define SBA_LAMBDA_DEFAULT 5.0

static const wb_param_spec sba_params[] = {
    WB_PARAM_NUMBER("lambda", SBA_LAMBDA_DEFAULT, -10.0, 20.0,
                    "exponent: w_s = exp(-lambda*l) = (q/p)^lambda; paper: 3, 5, 10 best, -1 worst "
                    "(0 = kl, 1 = ls, -1 = be)"),
};

/* The host always passes the resolved config; the NULL guard only keeps a
 * direct caller (a test, a benchmark) from crashing. */
static double sba_lambda(const wb_config *cfg) {
    return cfg ? wb_config_number(cfg, "lambda", SBA_LAMBDA_DEFAULT) : SBA_LAMBDA_DEFAULT;
}

static void sba_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                        float *w_l) {
    double lambda = sba_lambda(cfg);
    /* h''(r)·r = r^{λ−1}·r = r^λ = e^{−λl}. The exponent is formed and clamped
     * in double: −λ·l overflows float for large |l|. */
    for (int64_t i = 0; i < n; i++) {
        w_s[i] = wb_div_expf(wb_div_exponentf(-lambda * (double)logit[i]));
        w_l[i] = 0.0f;
    }
}

/* (e^{−λl} − (1+λ) + λe^l)/(λ(λ+1)) = (expm1(−λl) + λ·expm1(l))/(λ(λ+1)).
 * The expression is 0/0 at λ = 0 and λ = −1; there it is replaced by its
 * limit (kl, be). Near but not at the poles the expm1 form loses at most
 * ~1e-16/|λ| (or /|λ+1|) relative accuracy, which is ample for a log. */
static double sba_term(double l, double lambda) {
    if (fabs(lambda) < 1e-8) return kl_term(l, 0.0);
    if (fabs(lambda + 1.0) < 1e-8) return be_term(l, 0.0);
    double a = wb_div_clampd(-lambda * l);
    return (expm1(a) + lambda * expm1(l)) / (lambda * (lambda + 1.0));
}

static double sba_value(const wb_config *cfg, int64_t n, const float *logit) {
    return wb_div_mean(n, logit, sba_term, sba_lambda(cfg));
}

/* ---- the library ------------------------------------------------------------- */
/* The family every member declares: result tables and `workbench plugins` show it. */
#define BREGMAN_FAMILY "Bregman"

static const wb_divergence_fns lr_fns = WB_DIVERGENCE_FNS(0, lr_weights, lr_value);
static const wb_divergence_fns kl_fns = WB_DIVERGENCE_FNS(0, kl_weights, kl_value);
static const wb_divergence_fns be_fns = WB_DIVERGENCE_FNS(0, be_weights, be_value);
static const wb_divergence_fns ls_fns = WB_DIVERGENCE_FNS(0, ls_weights, ls_value);
static const wb_divergence_fns sba_fns = WB_DIVERGENCE_FNS(0, sba_weights, sba_value);

static const wb_plugin_desc lr_desc = WB_DIVERGENCE_DESC(
    "lr", WB_DIV_VERSION, BREGMAN_FAMILY,
    "Di-Bregman (arXiv:2510.16983) logistic-regression Bregman: h(r) = r log r - (1+r) log(1+r), "
    "r = q/p; w_s = sigmoid(l)",
    WB_NO_PARAMS, &lr_fns);
static const wb_plugin_desc kl_desc = WB_DIVERGENCE_DESC(
    "kl", WB_DIV_VERSION, BREGMAN_FAMILY,
    "Di-Bregman (arXiv:2510.16983) reverse KL as Bregman (DMD/VSD): h(r) = r log r - r, r = q/p; "
    "w_s = 1",
    WB_NO_PARAMS, &kl_fns);
static const wb_plugin_desc be_desc = WB_DIVERGENCE_DESC(
    "be", WB_DIV_VERSION, BREGMAN_FAMILY,
    "Di-Bregman (arXiv:2510.16983) Burg-entropy Bregman: h(r) = -log r, r = q/p; w_s = "
    "exp(l) = p/q",
    WB_NO_PARAMS, &be_fns);
static const wb_plugin_desc ls_desc = WB_DIVERGENCE_DESC(
    "ls", WB_DIV_VERSION, BREGMAN_FAMILY,
    "Di-Bregman (arXiv:2510.16983) least-squares Bregman: h(r) = r^2/2, r = q/p; w_s = "
    "exp(-l) = q/p",
    WB_NO_PARAMS, &ls_fns);
static const wb_plugin_desc sba_desc = WB_DIVERGENCE_DESC(
    "sba", WB_DIV_VERSION, BREGMAN_FAMILY,
    "Di-Bregman (arXiv:2510.16983) SBA family: h(r) = (r^(1+lambda) - r)/(lambda(lambda+1)), "
    "r = q/p; w_s = exp(-lambda*l)",
    WB_PARAMS(sba_params), &sba_fns);

static const wb_plugin_desc *const bregman_plugins[] = {&lr_desc, &kl_desc, &be_desc, &ls_desc,
                                                        &sba_desc};
static const wb_plugin_library bregman_library = WB_LIBRARY(bregman_plugins);

WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &bregman_library; }
