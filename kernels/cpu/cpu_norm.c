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

void wb_cpu_group_norm(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                    const float *beta, float eps, float *y, float *mean, float *rstd) {
    const int cg = c / groups;
    const int64_t m = (int64_t)cg * hw;
    for (int n = 0; n < b; n++) {
        for (int gi = 0; gi < groups; gi++) {
            const int64_t off = ((int64_t)n * c + (int64_t)gi * cg) * hw;
            const float *xs = x + off;
            /* two passes (mean, then Σ(x−μ)²): no cancellation of E[x²]−μ²
             * when the mean is large against the spread */
            double s = 0.0;
            for (int64_t i = 0; i < m; i++) s += xs[i];
            const double mu = m > 0 ? s / (double)m : 0.0;
            double v = 0.0;
            for (int64_t i = 0; i < m; i++) {
                double d = xs[i] - mu;
                v += d * d;
            }
            v = m > 0 ? v / (double)m : 0.0; /* biased variance, as torch */
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

void wb_cpu_group_norm_bwd(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                        const float *mean, const float *rstd, const float *dy, float *dx,
                        float *dgamma, float *dbeta) {
    const int cg = c / groups;
    const int64_t m = (int64_t)cg * hw;
    /* dγ[ch] = Σ_{n,hw} dy·x̂, dβ[ch] = Σ_{n,hw} dy: channel-outer so each
     * channel's sum over the batch stays in one double accumulator */
    if (dgamma || dbeta) {
        for (int ch = 0; ch < c; ch++) {
            const int gi = ch / cg;
            double sg = 0.0, sb = 0.0;
            for (int n = 0; n < b; n++) {
                const double mu = mean[n * groups + gi], r = rstd[n * groups + gi];
                const int64_t off = ((int64_t)n * c + ch) * hw;
                for (int64_t i = 0; i < hw; i++) {
                    sg += (double)dy[off + i] * ((x[off + i] - mu) * r);
                    sb += dy[off + i];
                }
            }
            if (dgamma) dgamma[ch] += (float)sg;
            if (dbeta) dbeta[ch] += (float)sb;
        }
    }
    if (!dx) return;
    /* With g = dy·γ (the gradient reaching x̂):
     *   dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))
     * the two means being over the (sample, group) block x̂ was normalised
     * over — the derivative of both μ and σ folded in. */
    for (int n = 0; n < b; n++) {
        for (int gi = 0; gi < groups; gi++) {
            if (m == 0) continue;
            const int64_t off = ((int64_t)n * c + (int64_t)gi * cg) * hw;
            const double mu = mean[n * groups + gi], r = rstd[n * groups + gi];
            double sg = 0.0, sgx = 0.0;
            for (int k = 0; k < cg; k++) {
                const double gm = gamma ? gamma[gi * cg + k] : 1.0;
                const float *xc = x + off + (int64_t)k * hw, *dyc = dy + off + (int64_t)k * hw;
                for (int64_t i = 0; i < hw; i++) {
                    const double gv = dyc[i] * gm;
                    sg += gv;
                    sgx += gv * ((xc[i] - mu) * r);
                }
            }
            const double mg = sg / (double)m, mgx = sgx / (double)m;
            for (int k = 0; k < cg; k++) {
                const double gm = gamma ? gamma[gi * cg + k] : 1.0;
                const float *xc = x + off + (int64_t)k * hw, *dyc = dy + off + (int64_t)k * hw;
                float *dxc = dx + off + (int64_t)k * hw;
                for (int64_t i = 0; i < hw; i++) {
                    const double xh = (xc[i] - mu) * r;
                    dxc[i] += (float)(r * (dyc[i] * gm - mg - xh * mgx));
                }
            }
        }
    }
}

void wb_cpu_softmax_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    if (cols <= 0) return;
    for (int64_t rr = 0; rr < rows; rr++) {
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

void wb_cpu_softmax_rows_bwd(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx) {
    for (int64_t rr = 0; rr < rows; rr++) {
        const float *yr = y + rr * cols, *dyr = dy + rr * cols;
        float *dxr = dx + rr * cols;
        /* ∂y_j/∂x_k = y_j(δ_jk − y_k)  ⇒  dx = y ⊙ (dy − Σ dy ⊙ y) */
        double dot = 0.0;
        for (int64_t j = 0; j < cols; j++) dot += (double)dyr[j] * yr[j];
        const float d = (float)dot;
        for (int64_t j = 0; j < cols; j++) dxr[j] += yr[j] * (dyr[j] - d);
    }
}
