/* kernels/cpu/cpu_diffusion.c — the CPU kernels of the distillation step's
 * own ops (host/core/ops_diffusion.c): Philox draws, Karras noise levels,
 * DMD's time weight, and the non-finite flag the engine checks once a step.
 * Signatures and semantics: the matching entries of struct wb_backend
 * (wb/backend.h).
 *
 * Each kernel computes, operation for operation, what the engine used to
 * compute in host loops (same float/double promotions, same order), so
 * moving the step onto the backend changed no number.
 *
 * Shape legend: rows = B samples, cols = D floats per sample.
 */
#include <math.h>
#include <stdint.h>

#include "cpu_kernels.h"
#include "philox.h"

void wb_cpu_flag_nonfinite(int64_t n, const float *x, int *flag) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            *flag = 1;
            return;
        }
}

void wb_cpu_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out) {
    wb_philox_fill(1, seed, stream, offset, n, out);
}

void wb_cpu_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out) {
    wb_philox_fill(0, seed, stream, offset, n, out);
}

void wb_cpu_karras_sigma(int64_t n, const float *u, float t_min, float t_max, double sigma_min, double sigma_max,
                         double rho, float *sigma) {
    double a = pow(sigma_min, 1.0 / rho), b = pow(sigma_max, 1.0 / rho);
    for (int64_t i = 0; i < n; i++) {
        float t = t_min + (t_max - t_min) * u[i];
        sigma[i] = (float)pow(a + t * (b - a), rho);
    }
}

/* mean_j |x0 − d| of one row, in double; the floor keeps a perfect teacher
 * match from dividing by zero. */
static double row_mad(int64_t cols, const float *x0, const float *d) {
    double mad = 0;
    for (int64_t j = 0; j < cols; j++) mad += fabs(x0[j] - d[j]);
    return mad / (double)cols;
}

void wb_cpu_dmd_weight(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma, float *w) {
    for (int64_t i = 0; i < rows; i++) {
        double mad = row_mad(cols, x0 + i * cols, d + i * cols);
        float s2 = sigma[i] * sigma[i];
        w[i] = (float)(s2 / (mad > 1e-8 ? mad : 1e-8));
    }
}

void wb_cpu_dmd_weight_bwd(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma,
                           const float *dw, float *dx0, float *dd, float *dsigma) {
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x0 + i * cols, *dr = d + i * cols;
        double mad = row_mad(cols, xr, dr), m = mad > 1e-8 ? mad : 1e-8;
        double s = sigma[i];
        if (dsigma) dsigma[i] += (float)(dw[i] * 2.0 * s / m);
        if (mad <= 1e-8 || (!dx0 && !dd)) continue; /* the floor is flat */
        /* ∂w/∂x0_j = −σ²/m² · sign(x0_j − d_j)/D;  ∂w/∂d_j is its negative */
        double k = -(double)dw[i] * s * s / (m * m) / (double)cols;
        for (int64_t j = 0; j < cols; j++) {
            float diff = xr[j] - dr[j];
            double g = diff > 0 ? k : diff < 0 ? -k : 0.0;
            if (dx0) dx0[i * cols + j] += (float)g;
            if (dd) dd[i * cols + j] -= (float)g;
        }
    }
}
