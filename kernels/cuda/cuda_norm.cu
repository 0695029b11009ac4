/* kernels/cuda/cuda_norm.cu — the CUDA backend's group normalisation and
 * row-wise softmax, forward and backward (vtable entries group_norm,
 * group_norm_bwd, softmax_rows, softmax_rows_bwd). Semantics:
 * include/wb/backend.h; arithmetic: kernels/cpu/cpu_norm.c (statistics in
 * double, the group's shifted two-pass variance, softmax minus the row max),
 * mirrored per element so the backends agree to float rounding. Backward
 * kernels ACCUMULATE; group_norm_bwd's dx, dgamma, dbeta may each be NULL,
 * group_norm's gamma and beta too (identity affine).
 *
 * Shape legend: B batch, C channels, G groups, Cg = C/G channels per group,
 * HW pixels per channel; x is (B, C, HW) row-major, so one (sample, group)
 * is Cg·HW contiguous floats; mean/rstd are (B, G). Softmax: x (rows, cols)
 * normalised along cols.
 *
 * Launch geometry: every kernel here needs a reduction per group, channel
 * or row, so it gives ONE BLOCK (WB_CUDA_BLOCK threads) to each of them,
 * grid-striding over them with a bound that depends only on blockIdx (every
 * thread of a block reaches every barrier). The block's threads stride over
 * the group / row (coalesced), keep per-thread partial sums in double, and
 * combine them with wb_cuda_block_sum: a fixed summation order for a given
 * shape, no atomics, deterministic. Block-wide values (mean, rstd, the row
 * max, ...) reach every thread through one shared slot (block_bcast).
 */
#include <math.h>

#include "cuda/cuda_backend.h"

static unsigned rows_grid(int64_t rows) {
    return rows < WB_CUDA_MAX_BLOCKS ? (unsigned)rows : WB_CUDA_MAX_BLOCKS;
}

/* Maximum of v over the block (blockDim.x a multiple of 32), valid in
 * EVERY thread; the combine is the CPU's `a > b ? a : b`. Warp shuffles,
 * one value per warp through shared memory, then a broadcast. */
static __device__ float block_max(float v) {
    __shared__ float warp_max[32];
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (int off = 16; off > 0; off >>= 1) {
        const float o = __shfl_down_sync(0xffffffffu, v, off);
        v = o > v ? o : v;
    }
    if (lane == 0) warp_max[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (blockDim.x >> 5) ? warp_max[lane] : -INFINITY;
        for (int off = 16; off > 0; off >>= 1) {
            const float o = __shfl_down_sync(0xffffffffu, v, off);
            v = o > v ? o : v;
        }
    }
    return wb_cuda_block_bcast(v); /* its barriers also protect warp_max from the next call */
}

/* ---- group norm forward ----------------------------------------------------------- *
 * One block per (sample, group). Pass 1: Σ(x − x₀) and Σ(x − x₀)² with x₀
 * the group's first value (the CPU's shift: no cancellation of E[x²] − μ²
 * under a large mean), each difference and square formed in float as on the
 * CPU, summed in double. Pass 2: y = (x − μ)·a + b per channel. */
static __global__ void k_group_norm(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                                    const float *beta, float eps, float *y, float *mean, float *rstd) {
    const int cg = c / groups;
    const int64_t m = (int64_t)cg * hw, ngroups = (int64_t)b * groups;
    for (int64_t bg = blockIdx.x; bg < ngroups; bg += gridDim.x) {
        const int64_t n = bg / groups;
        const int gi = (int)(bg % groups);
        const int64_t off = (n * c + (int64_t)gi * cg) * hw;
        const float *xs = x + off;
        const float shift = m > 0 ? xs[0] : 0.0f;
        double s1 = 0.0, s2 = 0.0;
        for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
            const float d = xs[i] - shift;
            s1 += d;
            s2 += d * d;
        }
        s1 = wb_cuda_block_sum(s1);
        s2 = wb_cuda_block_sum(s2);
        double mu = 0.0, r = 0.0;
        if (threadIdx.x == 0) {
            const double dm = m > 0 ? s1 / (double)m : 0.0;
            mu = (double)shift + dm;
            double v = m > 0 ? s2 / (double)m - dm * dm : 0.0; /* biased variance, as torch */
            if (v < 0.0) v = 0.0;
            r = 1.0 / sqrt(v + (double)eps);
            mean[bg] = (float)mu;
            rstd[bg] = (float)r;
        }
        mu = wb_cuda_block_bcast(mu);
        r = wb_cuda_block_bcast(r);
        const float muf = (float)mu;
        for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
            const int ch = gi * cg + (int)(i / hw);
            /* centre before scaling, as the CPU: x·a − μ·a would cancel */
            const float af = (float)(r * (gamma ? gamma[ch] : 1.0f));
            const float bf = beta ? beta[ch] : 0.0f;
            y[off + i] = (xs[i] - muf) * af + bf;
        }
    }
}

void wb_cuda_group_norm(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                        const float *beta, float eps, float *y, float *mean, float *rstd) {
    if (b <= 0 || groups <= 0) return;
    const int64_t ngroups = (int64_t)b * groups;
    WB_CUDA_LAUNCH(k_group_norm, rows_grid(ngroups), WB_CUDA_BLOCK, 0)(b, c, hw, groups, x, gamma, beta, eps, y,
                                                                       mean, rstd);
    wb_cuda_launched("group_norm");
}

/* ---- group norm backward ---------------------------------------------------------- *
 * dγ[ch] += Σ_n rstd_n·Σ_hw dy·(x − μ_n) and dβ[ch] += Σ_n Σ_hw dy: one
 * block per channel whose threads stride over all B·HW values of the
 * channel, each term (rstd_n folded in) accumulated in double, then two
 * fixed-order block sums — two reductions per channel rather than two per
 * (sample, channel); in double the regrouping is far below float rounding. */
static __global__ void k_group_norm_bwd_affine(int b, int c, int64_t hw, int groups, const float *x,
                                               const float *mean, const float *rstd, const float *dy,
                                               float *dgamma, float *dbeta) {
    const int cg = c / groups;
    for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        const int gi = (int)(ch / cg);
        double sg = 0.0, sb = 0.0;
        for (int64_t i = threadIdx.x; i < (int64_t)b * hw; i += blockDim.x) {
            const int64_t n = i / hw, off = (n * c + ch) * hw + (i - n * hw);
            const float mu = mean[n * groups + gi];
            sb += dy[off];
            sg += (double)(dy[off] * (x[off] - mu)) * rstd[n * groups + gi];
        }
        sg = wb_cuda_block_sum(sg);
        sb = wb_cuda_block_sum(sb);
        if (threadIdx.x == 0) {
            if (dgamma) dgamma[ch] += (float)sg;
            if (dbeta) dbeta[ch] += (float)sb;
        }
    }
}

/* With g = dy·γ:  dx = rstd·(g − mean(g) − x̂·mean(g ⊙ x̂)), the means over
 * the (sample, group) block. One block per (sample, group): the two sums in
 * one pass (γ·Σdy and γ·rstd·Σdy·(x − μ), per element in double), then the
 * elementwise update with the CPU's float expression. */
static __global__ void k_group_norm_bwd_dx(int b, int c, int64_t hw, int groups, const float *x,
                                           const float *gamma, const float *mean, const float *rstd,
                                           const float *dy, float *dx) {
    const int cg = c / groups;
    const int64_t m = (int64_t)cg * hw, ngroups = (int64_t)b * groups;
    for (int64_t bg = blockIdx.x; bg < ngroups; bg += gridDim.x) {
        const int64_t n = bg / groups;
        const int gi = (int)(bg % groups);
        const int64_t off = (n * c + (int64_t)gi * cg) * hw;
        const float muf = mean[bg];
        const double r = rstd[bg];
        double sg = 0.0, sgx = 0.0;
        for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
            const double gm = gamma ? gamma[gi * cg + (int)(i / hw)] : 1.0;
            const float g = dy[off + i];
            sg += gm * g;
            sgx += gm * (double)(g * (x[off + i] - muf)) * r;
        }
        sg = wb_cuda_block_sum(sg);
        sgx = wb_cuda_block_sum(sgx);
        float mg = 0.0f, mgx = 0.0f;
        if (threadIdx.x == 0) {
            mg = (float)(sg / (double)m);
            mgx = (float)(sgx / (double)m);
        }
        mg = wb_cuda_block_bcast(mg);
        mgx = wb_cuda_block_bcast(mgx);
        const float rf = (float)r;
        for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
            const float gm = gamma ? gamma[gi * cg + (int)(i / hw)] : 1.0f;
            const float xh = (x[off + i] - muf) * rf;
            dx[off + i] += rf * (dy[off + i] * gm - mg - xh * mgx);
        }
    }
}

void wb_cuda_group_norm_bwd(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                            const float *mean, const float *rstd, const float *dy, float *dx, float *dgamma,
                            float *dbeta) {
    if (b <= 0 || c <= 0 || groups <= 0 || hw <= 0 || c / groups <= 0) return; /* empty groups: no gradient */
    if (dgamma || dbeta) {
        WB_CUDA_LAUNCH(k_group_norm_bwd_affine, rows_grid(c), WB_CUDA_BLOCK, 0)(b, c, hw, groups, x, mean, rstd,
                                                                                dy, dgamma, dbeta);
        wb_cuda_launched("group_norm_bwd");
    }
    if (dx) {
        const int64_t ngroups = (int64_t)b * groups;
        WB_CUDA_LAUNCH(k_group_norm_bwd_dx, rows_grid(ngroups), WB_CUDA_BLOCK, 0)(b, c, hw, groups, x, gamma, mean,
                                                                                  rstd, dy, dx);
        wb_cuda_launched("group_norm_bwd");
    }
}

/* ---- softmax ------------------------------------------------------------------------ *
 * One block per row: the row max (every exponent ≤ 0, so ±80 logits stay
 * finite), Σ e^(x − max) in double, then y ·= 1/Σ. Each thread rescales the
 * very elements it wrote, so no barrier is needed between the two passes. */
static __global__ void k_softmax_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    for (int64_t rr = blockIdx.x; rr < rows; rr += gridDim.x) {
        const float *xr = x + rr * cols;
        float *yr = y + rr * cols;
        float mx = -INFINITY;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = xr[j] > mx ? xr[j] : mx;
        mx = block_max(mx);
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const float e = expf(xr[j] - mx);
            yr[j] = e;
            s += e;
        }
        s = wb_cuda_block_sum(s);
        const float inv = wb_cuda_block_bcast(threadIdx.x == 0 ? (float)(1.0 / s) : 0.0f);
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] *= inv;
    }
}

/* dx += y ⊙ (dy − Σ dy ⊙ y), the dot in double. One block per row. */
static __global__ void k_softmax_rows_bwd(int64_t rows, int64_t cols, const float *y, const float *dy,
                                          float *dx) {
    for (int64_t rr = blockIdx.x; rr < rows; rr += gridDim.x) {
        const float *yr = y + rr * cols, *dyr = dy + rr * cols;
        float *dxr = dx + rr * cols;
        double dot = 0.0;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dot += (double)dyr[j] * yr[j];
        dot = wb_cuda_block_sum(dot);
        const float d = wb_cuda_block_bcast(threadIdx.x == 0 ? (float)dot : 0.0f);
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dxr[j] += yr[j] * (dyr[j] - d);
    }
}

void wb_cuda_softmax_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    if (rows <= 0 || cols <= 0) return;
    WB_CUDA_LAUNCH(k_softmax_rows, rows_grid(rows), WB_CUDA_BLOCK, 0)(rows, cols, x, y);
    wb_cuda_launched("softmax_rows");
}

void wb_cuda_softmax_rows_bwd(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx) {
    if (rows <= 0 || cols <= 0) return;
    WB_CUDA_LAUNCH(k_softmax_rows_bwd, rows_grid(rows), WB_CUDA_BLOCK, 0)(rows, cols, y, dy, dx);
    wb_cuda_launched("softmax_rows_bwd");
}
