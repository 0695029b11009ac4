/* kernels/cpu/cpu_norm.c — CPU kernels for group normalisation and the
 * row-wise softmax (vtable entries group_norm, group_norm_bwd, softmax_rows,
 * softmax_rows_bwd; contracts in wb/backend.h, declarations in
 * cpu_kernels.h). Backward kernels ACCUMULATE into their outputs.
 *
 * Shape legend: B batch, C channels, G groups, Cg = C/G channels per group,
 * HW pixels per channel plane; x is (B, C, HW) row-major, so one (sample,
 * group) block is Cg·HW contiguous floats. mean/rstd are (B, G).
 * Softmax: x (rows, cols), normalised along cols.
 *
 * Statistics and every reduction are accumulated in double: a group holds
 * up to C·HW/G values (thousands for 32×32 images), and a float running sum
 * over that many terms loses digits the gradient check would notice.
 */
#include <math.h>
#include <stddef.h>

#include "cpu_kernels.h"
#include "cpu_parallel.h" /* (sample, group) blocks, channels and rows split over threads */

/* Blocked sums: 8 independent float lanes inside blocks of SUM_BLOCK
 * values (the compiler vectorises them without reassociating anything),
 * block totals added in double — as accurate as a 512-term float sum, so
 * the double accumulation the note above asks for, at vector speed. */
#define SUM_LANES 8
#define SUM_BLOCK 512

/* Σ (x − mu) and Σ (x − mu)², over n values. */
static void centred_sums(const float *x, int64_t n, float mu, double *s1, double *s2) {
    double t1 = 0.0, t2 = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        int64_t len = n - start < SUM_BLOCK ? n - start : SUM_BLOCK;
        const float *xb = x + start;
        float a1[SUM_LANES] = {0}, a2[SUM_LANES] = {0};
        int64_t i = 0;
        for (; i + SUM_LANES <= len; i += SUM_LANES)
            for (int l = 0; l < SUM_LANES; l++) {
                float d = xb[i + l] - mu;
                a1[l] += d;
                a2[l] += d * d;
            }
        for (; i < len; i++) {
            float d = xb[i] - mu;
            a1[0] += d;
            a2[0] += d * d;
        }
        for (int l = 0; l < SUM_LANES; l++) t1 += a1[l], t2 += a2[l];
    }
    *s1 = t1;
    *s2 = t2;
}

/* Σ dy and Σ dy·(x − mu), over n values. */
static void grad_sums(const float *dy, const float *x, int64_t n, float mu, double *sdy, double *sdyx) {
    double t1 = 0.0, t2 = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        int64_t len = n - start < SUM_BLOCK ? n - start : SUM_BLOCK;
        const float *xb = x + start, *gb = dy + start;
        float a1[SUM_LANES] = {0}, a2[SUM_LANES] = {0};
        int64_t i = 0;
        for (; i + SUM_LANES <= len; i += SUM_LANES)
            for (int l = 0; l < SUM_LANES; l++) {
                a1[l] += gb[i + l];
                a2[l] += gb[i + l] * (xb[i + l] - mu);
            }
        for (; i < len; i++) {
            a1[0] += gb[i];
            a2[0] += gb[i] * (xb[i] - mu);
        }
        for (int l = 0; l < SUM_LANES; l++) t1 += a1[l], t2 += a2[l];
    }
    *sdy = t1;
    *sdyx = t2;
}

/* Blocks u0..u1 of the (sample, group) blocks, u = n·G + g. */
static void group_norm_blocks(int64_t u0, int64_t u1, int c, int64_t hw, int groups, const float *x,
                              const float *gamma, const float *beta, float eps, float *y, float *mean, float *rstd) {
    const int cg = c / groups;
    const int64_t m = (int64_t)cg * hw;
    for (int64_t u = u0; u < u1; u++) {
        {
            const int n = (int)(u / groups), gi = (int)(u % groups);
            const int64_t off = ((int64_t)n * c + (int64_t)gi * cg) * hw;
            const float *xs = x + off;
            /* a rough mean first (the first value), then Σ(x−x₀) and
             * Σ(x−x₀)²: the variance comes out shifted, with no cancellation
             * of E[x²]−μ² when the mean is large against the spread */
            const float shift = m > 0 ? xs[0] : 0.0f;
            double s1 = 0.0, s2 = 0.0;
            centred_sums(xs, m, shift, &s1, &s2);
            const double dm = m > 0 ? s1 / (double)m : 0.0;
            const double mu = (double)shift + dm;
            double v = m > 0 ? s2 / (double)m - dm * dm : 0.0; /* biased variance, as torch */
            if (v < 0.0) v = 0.0;
            const double r = 1.0 / sqrt(v + (double)eps);
            mean[n * groups + gi] = (float)mu;
            rstd[n * groups + gi] = (float)r;
            for (int k = 0; k < cg; k++) {
                const int ch = gi * cg + k;
                /* one scale per channel, but centre before scaling: folding
                 * μ into the shift (x·a − μ·a) would cancel digits when
                 * |μ| is large against the spread */
                const float af = (float)(r * (gamma ? gamma[ch] : 1.0f));
                const float bf = beta ? beta[ch] : 0.0f, muf = (float)mu;
                const float *xc = xs + (int64_t)k * hw;
                float *yc = y + off + (int64_t)k * hw;
                for (int64_t i = 0; i < hw; i++) yc[i] = (xc[i] - muf) * af + bf;
            }
        }
    }
}

void wb_cpu_group_norm(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                    const float *beta, float eps, float *y, float *mean, float *rstd) {
    WB_SPLIT_UNITS((int64_t)b * groups, (int64_t)(c / groups) * hw,
                   group_norm_blocks(lo, hi, c, hw, groups, x, gamma, beta, eps, y, mean, rstd));
}

/* dγ, dβ for channels ch0..ch1 (each channel's sum over samples in order). */
static void group_norm_bwd_params(int ch0, int ch1, int b, int c, int64_t hw, int groups, const float *x,
                                  const float *mean, const float *rstd, const float *dy, float *dgamma,
                                  float *dbeta) {
    const int cg = c / groups;
    /* One pass over (dy, x) per (sample, channel) gives Σdy and Σdy·(x−μ),
     * which is all of: dβ[ch] = Σ_n Σdy, dγ[ch] = Σ_n rstd·Σdy·(x−μ), and
     * the two block means of the dx formula below. */
    for (int ch = ch0; ch < ch1; ch++) { /* channel-outer: one accumulator per channel */
        const int gi = ch / cg;
        double sg = 0.0, sb = 0.0;
        for (int n = 0; n < b; n++) {
            const int64_t off = ((int64_t)n * c + ch) * hw;
            double sdy, sdyx;
            grad_sums(dy + off, x + off, hw, mean[n * groups + gi], &sdy, &sdyx);
            sg += sdyx * rstd[n * groups + gi];
            sb += sdy;
        }
        if (dgamma) dgamma[ch] += (float)sg;
        if (dbeta) dbeta[ch] += (float)sb;
    }
}

/* dx for the (sample, group) blocks u0..u1. With g = dy·γ (the gradient
 * reaching x̂):
 *   dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))
 * the two means being over the (sample, group) block x̂ was normalised
 * over — the derivative of both μ and σ folded in. */
static void group_norm_bwd_blocks(int64_t u0, int64_t u1, int c, int64_t hw, int groups, const float *x,
                                  const float *gamma, const float *mean, const float *rstd, const float *dy,
                                  float *dx) {
    const int cg = c / groups;
    const int64_t m = (int64_t)cg * hw;
    for (int64_t u = u0; u < u1; u++) {
        {
            const int n = (int)(u / groups), gi = (int)(u % groups);
            const int64_t off = ((int64_t)n * c + (int64_t)gi * cg) * hw;
            const float muf = mean[n * groups + gi];
            const double r = rstd[n * groups + gi];
            double sg = 0.0, sgx = 0.0;
            for (int k = 0; k < cg; k++) {
                const double gm = gamma ? gamma[gi * cg + k] : 1.0;
                double sdy, sdyx;
                grad_sums(dy + off + (int64_t)k * hw, x + off + (int64_t)k * hw, hw, muf, &sdy, &sdyx);
                sg += gm * sdy;
                sgx += gm * sdyx * r;
            }
            const float rf = (float)r, mg = (float)(sg / (double)m), mgx = (float)(sgx / (double)m);
            for (int k = 0; k < cg; k++) {
                const float gm = gamma ? gamma[gi * cg + k] : 1.0f;
                const float *xc = x + off + (int64_t)k * hw, *dyc = dy + off + (int64_t)k * hw;
                float *dxc = dx + off + (int64_t)k * hw;
                for (int64_t i = 0; i < hw; i++) {
                    const float xh = (xc[i] - muf) * rf;
                    dxc[i] += rf * (dyc[i] * gm - mg - xh * mgx);
                }
            }
        }
    }
}

void wb_cpu_group_norm_bwd(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                        const float *mean, const float *rstd, const float *dy, float *dx,
                        float *dgamma, float *dbeta) {
    const int64_t m = (int64_t)(c / groups) * hw;
    if (m == 0) return;
    if (dgamma || dbeta)
        WB_SPLIT_UNITS(c, (int64_t)b * hw,
                       group_norm_bwd_params((int)lo, (int)hi, b, c, hw, groups, x, mean, rstd, dy, dgamma, dbeta));
    if (dx) WB_SPLIT_UNITS((int64_t)b * groups, m, group_norm_bwd_blocks(lo, hi, c, hw, groups, x, gamma, mean, rstd, dy, dx));
}

static void softmax_range(int64_t r0, int64_t r1, int64_t cols, const float *x, float *y) {
    for (int64_t rr = r0; rr < r1; rr++) {
        const float *xr = x + rr * cols;
        float *yr = y + rr * cols;
        /* subtract the row max: every exponent ≤ 0, so logits of any size
         * stay finite (e^80 alone overflows float) */
        float mx = xr[0];
        for (int64_t j = 1; j < cols; j++) mx = xr[j] > mx ? xr[j] : mx;
        double s = 0.0;
        for (int64_t j = 0; j < cols; j++) {
            yr[j] = expf(xr[j] - mx);
            s += yr[j];
        }
        const float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < cols; j++) yr[j] *= inv;
    }
}

void wb_cpu_softmax_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    if (cols <= 0) return;
    WB_SPLIT_UNITS(rows, cols, softmax_range(lo, hi, cols, x, y));
}

static void softmax_bwd_range(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *dy, float *dx) {
    for (int64_t rr = r0; rr < r1; rr++) {
        const float *yr = y + rr * cols, *dyr = dy + rr * cols;
        float *dxr = dx + rr * cols;
        /* ∂y_j/∂x_k = y_j(δ_jk − y_k)  ⇒  dx = y ⊙ (dy − Σ dy ⊙ y) */
        double dot = 0.0;
        for (int64_t j = 0; j < cols; j++) dot += (double)dyr[j] * yr[j];
        const float d = (float)dot;
        for (int64_t j = 0; j < cols; j++) dxr[j] += yr[j] * (dyr[j] - d);
    }
}

void wb_cpu_softmax_rows_bwd(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx) {
    WB_SPLIT_UNITS(rows, cols, softmax_bwd_range(lo, hi, cols, y, dy, dx));
}
