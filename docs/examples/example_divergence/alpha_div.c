/* alpha_div.c — a complete out-of-tree divergence plugin for distill-workbench,
 * meant to be copied: the Amari α-divergence as the f-divergence
 *
 *     f_α(ρ) = (ρ^α − α·ρ − (1 − α)) / (α(α − 1)),   ρ = p/q = e^l,
 *
 * with one NUMBER parameter, alpha. Its members include the Pearson χ²
 * divergence (α = 2: f = (ρ − 1)²/2, half of Pearson's (ρ − 1)²), forward KL
 * (α → 1), reverse KL (α → 0) and four times the squared Hellinger distance
 * (α = ½). Reference: Cichocki & Amari 2010, "Families of Alpha- Beta- and
 * Gamma-Divergences", Entropy 12(6).
 *
 * The gradient weight. f-distill (Xu, Nie, Vahdat 2025, arXiv:2502.15681,
 * Theorem 1) weights the score difference by w_s = f''(ρ)·ρ². Here
 *     f'(ρ)  = (ρ^{α−1} − 1)/(α − 1),   f''(ρ) = ρ^{α−2},
 * so w_s = ρ^α = e^{α·l}, and w_l = 0 (the gradient uses score differences,
 * so the host trains a fake-score network: score_free = 0). Checks: α = 1
 * gives e^l (the built-in fkl), α = 0 gives 1 (rkl), α = ½ gives e^{l/2}
 * (4 × the built-in sh weight ¼e^{l/2}).
 *
 * Overflow safety (wb/plugin.h: weights() must be finite for every finite
 * logit). ρ is never formed: everything is a function of l. The logit is
 * clamped so that neither l nor α·l leaves ±80 — the convention of the
 * built-in divergences, where a ratio beyond e^80 is an estimator failure,
 * not information. e^80 ≈ 5.5e34 fits a float (max 3.4e38). Clamping l
 * itself (rather than clamping only α·l) keeps weights() and value()
 * describing the same point, so value() never mixes a clamped e^{αl} with an
 * unclamped e^l and turns negative. NaN is passed through, so a diverged
 * ratio estimator shows up in the logs instead of as a quiet e^80.
 *
 * Build: see CMakeLists.txt (find_package(wb)) and README.md (pkg-config).
 * The only exported symbol is wb_plugin_entry: the build uses
 * -fvisibility=hidden and WB_PLUGIN_EXPORT re-exports the entry alone, so two
 * plugins' static helpers can never clash.
 */
#include <math.h>
#include <stdint.h>

#include "wb/plugin.h" /* all a plugin needs: the ABI, the helpers, wb/tensor.h */

#define ALPHA_DEFAULT 2.0 /* Pearson χ² (halved) */
#define EXP_CLAMP 80.0    /* the host's clamp for any exponent */

/* Parameters are data: the host lists them (`workbench plugins`,
 * wb.plugins()), fills in the default and rejects an out-of-range value with
 * an error naming this plugin and the key, all before calling any code here.
 * WB_PARAM_NUMBER(name, default, min, max, doc) writes the spec by field name
 * (wb/plugin.h has one macro per type).
 * The bounds keep e^{α·l} in double range for value() (|α·l| ≤ 80 always,
 * see clamp_logit) and cover every member named above. */
static const wb_param_spec alpha_params[] = {
    WB_PARAM_NUMBER("alpha", ALPHA_DEFAULT, -10.0, 10.0,
                    "alpha: w_s = exp(alpha*l) = (p/q)^alpha; 2 = Pearson chi^2/2, 1 = fkl, 0 = rkl, 0.5 = 4*sh"),
};

/* The host always passes the resolved config; the fallback only serves a
 * direct caller (a unit test) that passes a config without the key. */
static double alpha_of(const wb_config *cfg) {
    return cfg ? wb_config_number(cfg, "alpha", ALPHA_DEFAULT) : ALPHA_DEFAULT;
}

/* The logit clamped so that |l| ≤ 80 and |α·l| ≤ 80; NaN passes through
 * (every comparison with NaN is false). */
static double clamp_logit(double l, double alpha) {
    double a = fabs(alpha);
    double lim = a > 1.0 ? EXP_CLAMP / a : EXP_CLAMP;
    if (l > lim) return lim;
    if (l < -lim) return -lim;
    return l;
}

static void alpha_weights(const wb_config *cfg, int64_t n, const float *logit, float *w_s,
                          float *w_l) {
    double alpha = alpha_of(cfg);
    for (int64_t i = 0; i < n; i++) {
        /* f''(ρ)·ρ² = ρ^α = e^{α·l}; the exponent is formed in double and is
         * at most 80 in magnitude, so the float result is finite */
        w_s[i] = (float)exp(alpha * clamp_logit((double)logit[i], alpha));
        w_l[i] = 0.0f;
    }
}

/* One sample's f_α(e^l), in a form that does not cancel near l = 0:
 *   e^{αl} − α e^l − (1 − α) = expm1(αl) − α·expm1(l).
 * The expression is 0/0 at α = 0 and α = 1; there it takes its limits,
 * reverse KL (e^l − 1 − l) and forward KL (l e^l − (e^l − 1)). Each is ≥ 0 and
 * 0 at l = 0, so a perfect student reads 0. */
static double alpha_term(double l, double alpha) {
    if (fabs(alpha) < 1e-8) return expm1(l) - l;
    if (fabs(alpha - 1.0) < 1e-8) return l * exp(l) - expm1(l);
    return (expm1(alpha * l) - alpha * expm1(l)) / (alpha * (alpha - 1.0));
}

/* value(): the Monte-Carlo estimate of D_α(p‖q) = E_q[f_α(ρ)] from the
 * student's logits, in double (it is for logging). An empty batch reads 0 so
 * a metrics row stays numeric. */
static double alpha_value(const wb_config *cfg, int64_t n, const float *logit) {
    if (n <= 0 || logit == NULL) return 0.0;
    double alpha = alpha_of(cfg), sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += alpha_term(clamp_logit((double)logit[i], alpha), alpha);
    return sum / (double)n;
}

/* ---- the library: static data the host validates before any call --------- *
 * The wb/plugin.h helpers name every field and fill the ABI version and the
 * struct sizes the host checks. score_free = 0: the gradient uses score
 * differences (w_l = 0), so the host trains a fake-score network. */
static const wb_divergence_fns alpha_fns = WB_DIVERGENCE_FNS(0, alpha_weights, alpha_value);

static const wb_plugin_desc alpha_desc = WB_DIVERGENCE_DESC(
    "alpha",       /* unique across all loaded libraries, [a-z0-9_-]+ */
    "1.0.0",       /* recorded in every run: bump when a formula changes */
    "Amari alpha", /* the family result tables and `workbench plugins` show */
    "Amari alpha-divergence (example out-of-tree plugin): f(rho) = (rho^alpha - alpha rho - "
    "(1-alpha))/(alpha(alpha-1)), rho = p/q; w_s = exp(alpha*l)",
    WB_PARAMS(alpha_params), &alpha_fns);

static const wb_plugin_desc *const alpha_plugins[] = {&alpha_desc};
static const wb_plugin_library alpha_library = WB_LIBRARY(alpha_plugins);

/* The one exported symbol (wb/plugin.h declares it with WB_PLUGIN_EXPORT). */
WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &alpha_library; }
