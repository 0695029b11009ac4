/* kernels/cuda/cuda_diffusion.cu — the CUDA backend's kernels of the
 * distillation step's own ops (host/core/ops_diffusion.c): Philox draws
 * (normal and uniform), Karras noise levels, DMD's time weight and its
 * backward pass. Semantics: include/wb/backend.h; arithmetic:
 * kernels/cpu/cpu_diffusion.c, operation for operation, and the Philox
 * rules themselves come from the same header as the CPU's (kernels/philox.h,
 * compiled here as __host__ __device__), so draws are the CPU's numbers bit
 * for bit. The bwd kernel ACCUMULATES; dx0, dd and dsigma may each be NULL.
 *
 * Shape legend: rows = B samples, cols = D floats per sample; rng: n floats
 * from Philox blocks offset, offset + 1, ... (4 floats a block).
 *
 * Launch geometry: rng — one thread per Philox BLOCK (the unit
 * wb_philox_fill draws: 4 numbers, the last block's unused words dropped),
 * so each thread computes exactly the words the CPU computes for those 4
 * outputs; karras — one thread per element; dmd — one block per row
 * (WB_CUDA_BLOCK threads, grid-striding over rows with a bound that depends
 * only on blockIdx), the row's mean |x0 − d| summed in double with
 * wb_cuda_block_sum: a fixed order, no atomics.
 */
#include <math.h>

#include "cuda/cuda_backend.h"

#define WB_PHILOX_FN static __host__ __device__ inline
#include "philox.h"

/* Plain rounded products and sums on the device: nvcc would otherwise
 * contract a·b + c into one fma, which rounds once where the CPU rounds
 * twice, and karras_sigma must reproduce the CPU's numbers exactly. (The
 * emulation, and nvcc's host pass, compile the plain operators.) */
#ifdef __CUDA_ARCH__
#define FMUL(a, b) __fmul_rn((a), (b))
#define FADD(a, b) __fadd_rn((a), (b))
#define DMUL(a, b) __dmul_rn((a), (b))
#define DADD(a, b) __dadd_rn((a), (b))
#else
#define FMUL(a, b) ((a) * (b))
#define FADD(a, b) ((a) + (b))
#define DMUL(a, b) ((a) * (b))
#define DADD(a, b) ((a) + (b))
#endif

/* ---- Philox draws --------------------------------------------------------------- */
static __global__ void k_rng(int normal, uint64_t seed, uint64_t stream, uint64_t offset, int64_t n,
                             int64_t nblocks, float *out) {
    WB_GRID_STRIDE(blk, nblocks) {
        uint32_t w[4];
        float v[4];
        wb_philox_block(seed, stream, offset + (uint64_t)blk, w);
        if (normal) wb_philox_normal4(w, v);
        else wb_philox_uniform4(w, v);
        const int64_t i = blk * 4, m = n - i < 4 ? n - i : 4;
        for (int64_t j = 0; j < m; j++) out[i + j] = v[j];
    }
}

static void rng_launch(int normal, uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out,
                       const char *op) {
    if (n <= 0) return;
    const int64_t nblocks = (n + 3) / 4;
    WB_CUDA_LAUNCH(k_rng, wb_cuda_grid(nblocks), WB_CUDA_BLOCK, 0)(normal, seed, stream, offset, n, nblocks, out);
    wb_cuda_launched(op);
}

void wb_cuda_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out) {
    rng_launch(1, seed, stream, offset, n, out, "rng_normal");
}

void wb_cuda_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out) {
    rng_launch(0, seed, stream, offset, n, out, "rng_uniform");
}

/* ---- Karras noise levels ----------------------------------------------------------- *
 * t = t_min + (t_max − t_min)·u in float, σ = (a + t·(b − a))^ρ in double;
 * a and b are computed once on the host, with the CPU's pow. */
static __global__ void k_karras_sigma(int64_t n, const float *u, float t_min, float t_max, double a, double b,
                                      double rho, float *sigma) {
    WB_GRID_STRIDE(i, n) {
        const float t = FADD(t_min, FMUL(t_max - t_min, u[i]));
        sigma[i] = (float)pow(DADD(a, DMUL((double)t, b - a)), rho);
    }
}

void wb_cuda_karras_sigma(int64_t n, const float *u, float t_min, float t_max, double sigma_min, double sigma_max,
                          double rho, float *sigma) {
    if (n <= 0) return;
    const double a = pow(sigma_min, 1.0 / rho), b = pow(sigma_max, 1.0 / rho);
    WB_CUDA_LAUNCH(k_karras_sigma, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(n, u, t_min, t_max, a, b, rho, sigma);
    wb_cuda_launched("karras_sigma");
}

/* ---- DMD's time weight --------------------------------------------------------------- *
 * mean_j |x0 − d| of row r in double (each difference in float, as the
 * CPU), valid in every thread of the block. cols == 0 gives 0/0 = NaN, as
 * on the CPU, which the 1e-8 floor then replaces. */
static __device__ double row_mad(int64_t cols, const float *x0, const float *d) {
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += fabs((double)(x0[j] - d[j]));
    s = wb_cuda_block_sum(s);
    return wb_cuda_block_bcast(threadIdx.x == 0 ? s / (double)cols : 0.0);
}

/* w_i = σ_i² / max(mad_i, 1e-8) */
static __global__ void k_dmd_weight(int64_t rows, int64_t cols, const float *x0, const float *d,
                                    const float *sigma, float *w) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const double mad = row_mad(cols, x0 + r * cols, d + r * cols);
        if (threadIdx.x == 0) {
            const float s2 = sigma[r] * sigma[r];
            w[r] = (float)(s2 / (mad > 1e-8 ? mad : 1e-8));
        }
    }
}

/* dσ_i += dw·2σ/m;  ∂w/∂x0_j = −dw·σ²/m² · sign(x0_j − d_j)/D, ∂w/∂d_j its
 * negative; nothing through x0, d where the floor is active (it is flat). */
static __global__ void k_dmd_weight_bwd(int64_t rows, int64_t cols, const float *x0, const float *d,
                                        const float *sigma, const float *dw, float *dx0, float *dd,
                                        float *dsigma) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x0 + r * cols, *dr = d + r * cols;
        const double mad = row_mad(cols, xr, dr), m = mad > 1e-8 ? mad : 1e-8;
        const double s = sigma[r];
        if (dsigma && threadIdx.x == 0) dsigma[r] += (float)(dw[r] * 2.0 * s / m);
        if (mad <= 1e-8 || (!dx0 && !dd)) continue; /* block-uniform: every thread skips alike */
        const double k = -(double)dw[r] * s * s / (m * m) / (double)cols;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const float diff = xr[j] - dr[j];
            const double g = diff > 0 ? k : diff < 0 ? -k : 0.0;
            if (dx0) dx0[r * cols + j] += (float)g;
            if (dd) dd[r * cols + j] -= (float)g;
        }
    }
}

void wb_cuda_dmd_weight(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma, float *w) {
    if (rows <= 0) return;
    const unsigned grid = rows < WB_CUDA_MAX_BLOCKS ? (unsigned)rows : WB_CUDA_MAX_BLOCKS;
    WB_CUDA_LAUNCH(k_dmd_weight, grid, WB_CUDA_BLOCK, 0)(rows, cols, x0, d, sigma, w);
    wb_cuda_launched("dmd_weight");
}

void wb_cuda_dmd_weight_bwd(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma,
                            const float *dw, float *dx0, float *dd, float *dsigma) {
    if (rows <= 0 || (!dx0 && !dd && !dsigma)) return;
    const unsigned grid = rows < WB_CUDA_MAX_BLOCKS ? (unsigned)rows : WB_CUDA_MAX_BLOCKS;
    WB_CUDA_LAUNCH(k_dmd_weight_bwd, grid, WB_CUDA_BLOCK, 0)(rows, cols, x0, d, sigma, dw, dx0, dd, dsigma);
    wb_cuda_launched("dmd_weight_bwd");
}
