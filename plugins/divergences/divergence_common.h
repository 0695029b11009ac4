/* divergence_common.h — small static inline numerics shared by the three
 * divergence plugins (bregman.c, fdiv.c, scorefree.c). Private to
 * plugins/divergences/: nothing here is ABI, and every plugin .so gets its own
 * copy, so the only exported symbol stays wb_plugin_entry. It needs nothing
 * but the public headers (wb/plugin.h, wb/elementwise.h); the descriptor and
 * parameter helpers are wb/plugin.h's.
 *
 * Two kinds of helpers:
 *   - float, for weights(): the NaN-propagating clamped exponential. Weights
 *     run once per sample per step, so they stay in float like the kernels.
 *   - double, for value(): the Monte-Carlo estimate is for logging, so it
 *     is accumulated in double and every per-sample term is written in a form
 *     that neither overflows nor cancels badly.
 *
 * Clamping convention, shared by weights and values: a logit (or any exponent)
 * beyond ±WB_EXP_CLAMP = ±80 is treated as ±80. A ratio beyond e^80 ≈ 5.5e34
 * is a ratio-estimator failure, not information, and clamping keeps every
 * weight finite in float and every value term finite in double. NaN is never
 * clamped: a NaN logit gives a NaN weight / value, so a diverged estimator
 * shows up in the logs instead of as a silent e^80.
 */
#ifndef WB_DIVERGENCE_COMMON_H
#define WB_DIVERGENCE_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "wb/elementwise.h"
#include "wb/plugin.h"

/* Version recorded in every run; bump when a weight or value formula changes. */
#define WB_DIV_VERSION "1.0.0"

#define WB_DIV_LOG2 0.69314718055994530942

/* ---- float: weights ---------------------------------------------------------- */

/* e^x with the exponent clamped to ±WB_EXP_CLAMP (wb_exp_clampedf), except
 * that NaN stays NaN (fminf/fmaxf would turn it into e^±80). */
static inline float wb_div_expf(float x) { return isnan(x) ? x : wb_exp_clampedf(x); }

/* Clamp a double exponent to ±WB_EXP_CLAMP and only then narrow it to float:
 * −λ·l can exceed FLT_MAX (λ = 20, l = FLT_MAX/2) and narrowing an
 * out-of-range double is undefined behaviour in C11. */
static inline float wb_div_exponentf(double x) {
    if (isnan(x)) return (float)x;
    if (x > (double)WB_EXP_CLAMP) return WB_EXP_CLAMP;
    if (x < -(double)WB_EXP_CLAMP) return -WB_EXP_CLAMP;
    return (float)x;
}

/* ---- double: values ---------------------------------------------------------- */

/* The logit as value() sees it: clamped to ±WB_EXP_CLAMP (±inf included),
 * NaN passed through. */
static inline double wb_div_clampd(double x) {
    if (isnan(x)) return x;
    if (x > (double)WB_EXP_CLAMP) return (double)WB_EXP_CLAMP;
    if (x < -(double)WB_EXP_CLAMP) return -(double)WB_EXP_CLAMP;
    return x;
}

/* e^x with the exponent clamped the same way. */
static inline double wb_div_expd(double x) { return exp(wb_div_clampd(x)); }

/* softplus(x) = log(1+e^x) = max(x,0) + log1p(e^{-|x|}), in double. */
static inline double wb_div_softplusd(double x) { return fmax(x, 0.0) + log1p(exp(-fabs(x))); }

/* Per-sample term of the Jensen–Shannon f-divergence of f-distill,
 *   f(ρ) = ρ log ρ − (ρ+1) log((ρ+1)/2),   ρ = e^l,
 * which is also the Bregman LR term e^l·D_h(e^{-l}, 1) (the same function:
 * Di-Bregman's LR generator is the JS divergence in ratio form). Its
 * expectation under q is 2·JS(p, q) (at most 2 log 2).
 * Written in logit space, using log(1+ρ) = l + softplus(−l):
 *   l ≥ 0:  (1+e^l)·(log 2 − softplus(−l)) − l
 *   l < 0:  log 2 − softplus(l) + e^l·(log 2 + l − softplus(l))
 * Each branch keeps its large terms bounded: no overflow and no cancellation
 * of two large numbers. */
static inline double wb_div_js_term(double l) {
    if (l >= 0.0) {
        return (1.0 + exp(l)) * (WB_DIV_LOG2 - wb_div_softplusd(-l)) - l;
    }
    double sp = wb_div_softplusd(l);
    return WB_DIV_LOG2 - sp + exp(l) * (WB_DIV_LOG2 + l - sp);
}

/* The Monte-Carlo value estimate: the mean over the student's samples of a
 * per-sample term of the (clamped) logit. param carries λ for sba and is
 * ignored by the others. An empty batch has no estimate; it reports 0 so a
 * metrics row stays numeric. */
typedef double (*wb_div_term_fn)(double l, double param);

static inline double wb_div_mean(int64_t n, const float *logit, wb_div_term_fn term, double param) {
    if (n <= 0 || logit == NULL) return 0.0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += term(wb_div_clampd((double)logit[i]), param);
    }
    return sum / (double)n;
}

#endif
