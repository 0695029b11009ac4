/* kernels/cuda/cuda_image.cu — the CUDA backend's image kernels: im2col /
 * col2im, nearest 2× up-sampling and 2×2 mean pooling, k×k max and average
 * pooling, bilinear resizing (align_corners=False), each backward pass
 * included. Semantics: include/wb/backend.h; every rule (window clipping,
 * argmax tie-breaking, divisors, bilinear taps) is that of the CPU reference
 * kernels/cpu/cpu_conv.c and kernels/cpu/cpu_pool.c, mirrored operation for
 * operation so the two backends agree to float rounding (most to the bit).
 *
 * Shape legend: C channels, H×W input plane, kh×kw (or k×k) kernel, Ho×Wo
 * output plane (pooling: Ho = (H + 2·pad − k)/stride + 1, floor); col =
 * (C·kh·kw, Ho·Wo) row-major; "planes" = B·C independent H×W images, NCHW.
 *
 * Launch geometry: every kernel is a 1-D grid-stride loop with one thread
 * per element it WRITES (WB_CUDA_BLOCK threads, wb_cuda_grid(n) blocks;
 * int64 indices, n <= 0 launches nothing). The forward kernels give a
 * thread one output element. The backward kernels that scatter on the CPU
 * (col2im, upsample2x_bwd, maxpool2d_bwd, avgpool2d_bwd,
 * resize_bilinear_bwd) are GATHERS here: one thread per input (dx)
 * element walks the output elements that read it, in the CPU's order, and
 * adds their contributions to a register seeded with dx[i] — the same
 * sequence of float additions as the CPU's scatter, so no atomics, a
 * deterministic result and the CPU's rounding, at the price of re-deriving
 * the windows (cheap: a few taps per element).
 */
#include <math.h>

#include "cuda/cuda_backend.h"

/* Output size of a pooling / convolution axis: the CPU's formula, C's
 * truncating division included. */
static __host__ __device__ inline int out_size(int in, int k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

/* Outputs o of an axis (window o covers [o·stride − pad, o·stride − pad + k))
 * whose window contains input cell i: [*lo, *hi), clipped to [0, out). */
static __device__ inline void windows_of(int i, int k, int stride, int pad, int out, int *lo, int *hi) {
    int first = i + pad - k + 1; /* o·stride >= first */
    int l = first <= 0 ? 0 : (first + stride - 1) / stride;
    int h = (i + pad) / stride + 1; /* o·stride <= i + pad; i + pad >= 0 */
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* ---- im2col / col2im ------------------------------------------------------------ *
 * col[((ch·kh + ki)·kw + kj), oy·Wo + ox] = x[ch, oy·sh − pad_h + ki, ox·sw − pad_w + kj]
 * (0 in the padding). One thread per col element, ox fastest: consecutive
 * threads write consecutive columns and (at stride 1) read consecutive x. */
static __global__ void k_im2col(const float *x, int c, int h, int w, int kh, int kw, int sh, int sw,
                                int pad_h, int pad_w, int ho, int wo, int64_t total, float *col) {
    WB_GRID_STRIDE(i, total) {
        int64_t t = i;
        const int ox = (int)(t % wo);
        t /= wo;
        const int oy = (int)(t % ho);
        t /= ho;
        const int kj = (int)(t % kw);
        t /= kw;
        const int ki = (int)(t % kh);
        const int64_t ch = t / kh;
        const int iy = oy * sh - pad_h + ki, ix = ox * sw - pad_w + kj;
        col[i] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[(ch * h + iy) * w + ix] : 0.0f;
    }
}

/* dx[ch, iy, ix] += Σ over the taps (ki, kj) that read it, ki outer and kj
 * inner (the CPU's order; each tap reads a cell at most once). */
static __global__ void k_col2im(const float *col, int c, int h, int w, int kh, int kw, int sh, int sw,
                                int pad_h, int pad_w, int ho, int wo, int64_t total, float *dx) {
    const int64_t n = (int64_t)ho * wo;
    WB_GRID_STRIDE(i, total) {
        const int ix = (int)(i % w);
        const int64_t t = i / w;
        const int iy = (int)(t % h);
        const int64_t ch = t / h;
        float acc = dx[i];
        for (int ki = 0; ki < kh; ki++) {
            const int ty = iy + pad_h - ki; /* = oy·sh */
            if (ty < 0 || ty % sh != 0 || ty / sh >= ho) continue;
            const int oy = ty / sh;
            for (int kj = 0; kj < kw; kj++) {
                const int tx = ix + pad_w - kj; /* = ox·sw */
                if (tx < 0 || tx % sw != 0 || tx / sw >= wo) continue;
                acc += col[((ch * kh + ki) * kw + kj) * n + (int64_t)oy * wo + tx / sw];
            }
        }
        dx[i] = acc;
    }
}

void wb_cuda_im2col(const float *x, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h, int pad_w,
                    float *col) {
    const int ho = out_size(h, kh, sh, pad_h), wo = out_size(w, kw, sw, pad_w);
    if (c <= 0 || kh <= 0 || kw <= 0 || ho <= 0 || wo <= 0) return;
    const int64_t total = (int64_t)c * kh * kw * ho * wo;
    WB_CUDA_LAUNCH(k_im2col, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(x, c, h, w, kh, kw, sh, sw, pad_h, pad_w, ho,
                                                                    wo, total, col);
    wb_cuda_launched("im2col");
}

void wb_cuda_col2im(const float *col, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h, int pad_w,
                    float *dx) {
    const int ho = out_size(h, kh, sh, pad_h), wo = out_size(w, kw, sw, pad_w);
    if (c <= 0 || h <= 0 || w <= 0 || kh <= 0 || kw <= 0 || ho <= 0 || wo <= 0) return;
    const int64_t total = (int64_t)c * h * w;
    WB_CUDA_LAUNCH(k_col2im, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(col, c, h, w, kh, kw, sh, sw, pad_h, pad_w, ho,
                                                                    wo, total, dx);
    wb_cuda_launched("col2im");
}

/* ---- nearest 2× up-sampling and 2×2 mean pooling ---------------------------------- */

/* y (planes, 2H, 2W)[p, oy, ox] = x[p, oy/2, ox/2] */
static __global__ void k_upsample2x(int64_t total, int h, int w, const float *x, float *y) {
    const int w2 = 2 * w, h2 = 2 * h;
    WB_GRID_STRIDE(i, total) {
        const int ox = (int)(i % w2);
        const int64_t t = i / w2;
        const int oy = (int)(t % h2);
        const int64_t p = t / h2;
        y[i] = x[(p * h + oy / 2) * w + ox / 2];
    }
}

/* dx[p, i, j] += (r0[2j] + r0[2j+1]) + (r1[2j] + r1[2j+1]): the CPU's grouping */
static __global__ void k_upsample2x_bwd(int64_t total, int h, int w, const float *dy, float *dx) {
    const int w2 = 2 * w;
    WB_GRID_STRIDE(i, total) {
        const int j = (int)(i % w);
        const int64_t t = i / w;
        const int r = (int)(t % h);
        const int64_t p = t / h;
        const float *r0 = dy + (p * 2 * h + 2 * r) * (int64_t)w2, *r1 = r0 + w2;
        dx[i] += (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
    }
}

/* y (planes, H/2, W/2) = 0.25·(2×2 block sum); an odd last row / column is
 * dropped, as on the CPU. */
static __global__ void k_avgpool2x(int64_t total, int h, int w, const float *x, float *y) {
    const int ho = h / 2, wo = w / 2;
    WB_GRID_STRIDE(i, total) {
        const int j = (int)(i % wo);
        const int64_t t = i / wo;
        const int r = (int)(t % ho);
        const int64_t p = t / ho;
        const float *r0 = x + (p * h + 2 * r) * (int64_t)w, *r1 = r0 + w;
        y[i] = 0.25f * ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]));
    }
}

/* One thread per dx cell: each cell of the pooled area gets a quarter of
 * its one output's gradient (no scatter to turn into a gather); cells of an
 * odd last row / column get nothing. */
static __global__ void k_avgpool2x_bwd(int64_t total, int h, int w, const float *dy, float *dx) {
    const int ho = h / 2, wo = w / 2;
    WB_GRID_STRIDE(i, total) {
        const int ix = (int)(i % w);
        const int64_t t = i / w;
        const int iy = (int)(t % h);
        const int64_t p = t / h;
        if (iy / 2 >= ho || ix / 2 >= wo) continue;
        dx[i] += 0.25f * dy[(p * ho + iy / 2) * wo + ix / 2];
    }
}

void wb_cuda_upsample2x(int64_t planes, int h, int w, const float *x, float *y) {
    const int64_t total = planes * 4 * h * w;
    if (planes <= 0 || h <= 0 || w <= 0) return;
    WB_CUDA_LAUNCH(k_upsample2x, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, x, y);
    wb_cuda_launched("upsample2x");
}

void wb_cuda_upsample2x_bwd(int64_t planes, int h, int w, const float *dy, float *dx) {
    const int64_t total = planes * h * w;
    if (planes <= 0 || h <= 0 || w <= 0) return;
    WB_CUDA_LAUNCH(k_upsample2x_bwd, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, dy, dx);
    wb_cuda_launched("upsample2x_bwd");
}

void wb_cuda_avgpool2x(int64_t planes, int h, int w, const float *x, float *y) {
    const int64_t total = planes * (h / 2) * (w / 2);
    if (planes <= 0 || h / 2 <= 0 || w / 2 <= 0) return;
    WB_CUDA_LAUNCH(k_avgpool2x, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, x, y);
    wb_cuda_launched("avgpool2x");
}

void wb_cuda_avgpool2x_bwd(int64_t planes, int h, int w, const float *dy, float *dx) {
    const int64_t total = planes * h * w;
    if (planes <= 0 || h / 2 <= 0 || w / 2 <= 0) return;
    WB_CUDA_LAUNCH(k_avgpool2x_bwd, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, dy, dx);
    wb_cuda_launched("avgpool2x_bwd");
}

/* ---- max pooling ------------------------------------------------------------------ */
/* Index (in the plane) of the maximum of the window starting at (y0, x0),
 * as the CPU's window_argmax: first maximum in row-major order, a NaN wins
 * (`v > m || isnan(v)`), the first in-image cell when all are −inf. */
static __device__ inline int64_t window_argmax(const float *xp, int h, int w, int k, int y0, int x0) {
    const int ys = y0 < 0 ? 0 : y0, ye = y0 + k < h ? y0 + k : h;
    const int xs = x0 < 0 ? 0 : x0, xe = x0 + k < w ? x0 + k : w;
    int64_t best = (int64_t)ys * w + xs;
    float m = -INFINITY;
    for (int iy = ys; iy < ye; iy++)
        for (int ix = xs; ix < xe; ix++) {
            const float v = xp[(int64_t)iy * w + ix];
            if (v > m || isnan(v)) {
                m = v;
                best = (int64_t)iy * w + ix;
            }
        }
    return best;
}

static __global__ void k_maxpool2d(int64_t total, int h, int w, int k, int stride, int pad, int ho, int wo,
                                   const float *x, float *y) {
    WB_GRID_STRIDE(i, total) {
        const int ox = (int)(i % wo);
        const int64_t t = i / wo;
        const int oy = (int)(t % ho);
        const int64_t p = t / ho;
        const float *xp = x + p * h * w;
        y[i] = xp[window_argmax(xp, h, w, k, oy * stride - pad, ox * stride - pad)];
    }
}

/* One thread per input cell: every window containing it, in row-major
 * order (the CPU's scatter order), recomputes its argmax and adds its dy
 * when the argmax is this cell. */
static __global__ void k_maxpool2d_bwd(int64_t total, int h, int w, int k, int stride, int pad, int ho, int wo,
                                       const float *x, const float *dy, float *dx) {
    WB_GRID_STRIDE(i, total) {
        const int ix = (int)(i % w);
        const int64_t t = i / w;
        const int iy = (int)(t % h);
        const int64_t p = t / h;
        const float *xp = x + p * h * w, *dp = dy + p * ho * wo;
        const int64_t self = (int64_t)iy * w + ix;
        int oy0, oy1, ox0, ox1;
        windows_of(iy, k, stride, pad, ho, &oy0, &oy1);
        windows_of(ix, k, stride, pad, wo, &ox0, &ox1);
        float acc = dx[i];
        for (int oy = oy0; oy < oy1; oy++)
            for (int ox = ox0; ox < ox1; ox++)
                if (window_argmax(xp, h, w, k, oy * stride - pad, ox * stride - pad) == self)
                    acc += dp[(int64_t)oy * wo + ox];
        dx[i] = acc;
    }
}

void wb_cuda_maxpool2d(int64_t planes, int h, int w, int k, int stride, int pad, const float *x, float *y) {
    const int ho = out_size(h, k, stride, pad), wo = out_size(w, k, stride, pad);
    if (planes <= 0 || h <= 0 || w <= 0 || ho <= 0 || wo <= 0) return;
    const int64_t total = planes * ho * wo;
    WB_CUDA_LAUNCH(k_maxpool2d, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, k, stride, pad, ho, wo, x, y);
    wb_cuda_launched("maxpool2d");
}

void wb_cuda_maxpool2d_bwd(int64_t planes, int h, int w, int k, int stride, int pad, const float *x,
                           const float *dy, float *dx) {
    const int ho = out_size(h, k, stride, pad), wo = out_size(w, k, stride, pad);
    if (planes <= 0 || h <= 0 || w <= 0 || ho <= 0 || wo <= 0) return;
    const int64_t total = planes * h * w;
    WB_CUDA_LAUNCH(k_maxpool2d_bwd, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, k, stride, pad, ho, wo, x,
                                                                           dy, dx);
    wb_cuda_launched("maxpool2d_bwd");
}

/* ---- average pooling ---------------------------------------------------------------- */
/* Window of output (oy, ox) clipped to the image and its divisor, as the
 * CPU's avg_window: k² clipped to the padded image with count_include_pad,
 * else the number of in-image cells. */
typedef struct {
    int ys, ye, xs, xe;
    float inv;
} pool_win;

static __device__ inline pool_win avg_window(int h, int w, int k, int stride, int pad, int cip, int oy, int ox) {
    pool_win r;
    const int y0 = oy * stride - pad, x0 = ox * stride - pad;
    const int y1 = y0 + k < h + pad ? y0 + k : h + pad, x1 = x0 + k < w + pad ? x0 + k : w + pad;
    const int padded = (y1 - y0) * (x1 - x0);
    r.ys = y0 < 0 ? 0 : y0;
    r.xs = x0 < 0 ? 0 : x0;
    r.ye = y1 < h ? y1 : h;
    r.xe = x1 < w ? x1 : w;
    const int inside = (r.ye - r.ys) * (r.xe - r.xs);
    r.inv = 1.0f / (float)(cip ? padded : inside);
    return r;
}

static __global__ void k_avgpool2d(int64_t total, int h, int w, int k, int stride, int pad, int cip, int ho,
                                   int wo, const float *x, float *y) {
    WB_GRID_STRIDE(i, total) {
        const int ox = (int)(i % wo);
        const int64_t t = i / wo;
        const int oy = (int)(t % ho);
        const int64_t p = t / ho;
        const float *xp = x + p * h * w;
        const pool_win r = avg_window(h, w, k, stride, pad, cip, oy, ox);
        float s = 0.0f;
        for (int iy = r.ys; iy < r.ye; iy++)
            for (int ix = r.xs; ix < r.xe; ix++) s += xp[(int64_t)iy * w + ix];
        y[i] = s * r.inv;
    }
}

/* One thread per input cell: dy·(1/divisor) of every window containing it,
 * windows in row-major order (the CPU's scatter order). */
static __global__ void k_avgpool2d_bwd(int64_t total, int h, int w, int k, int stride, int pad, int cip, int ho,
                                       int wo, const float *dy, float *dx) {
    WB_GRID_STRIDE(i, total) {
        const int ix = (int)(i % w);
        const int64_t t = i / w;
        const int iy = (int)(t % h);
        const int64_t p = t / h;
        const float *dp = dy + p * ho * wo;
        int oy0, oy1, ox0, ox1;
        windows_of(iy, k, stride, pad, ho, &oy0, &oy1);
        windows_of(ix, k, stride, pad, wo, &ox0, &ox1);
        float acc = dx[i];
        for (int oy = oy0; oy < oy1; oy++)
            for (int ox = ox0; ox < ox1; ox++) {
                const pool_win r = avg_window(h, w, k, stride, pad, cip, oy, ox);
                if (iy < r.ys || iy >= r.ye || ix < r.xs || ix >= r.xe) continue; /* defensive: never here */
                acc += dp[(int64_t)oy * wo + ox] * r.inv;
            }
        dx[i] = acc;
    }
}

void wb_cuda_avgpool2d(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                       const float *x, float *y) {
    const int ho = out_size(h, k, stride, pad), wo = out_size(w, k, stride, pad);
    if (planes <= 0 || h <= 0 || w <= 0 || ho <= 0 || wo <= 0) return;
    const int64_t total = planes * ho * wo;
    WB_CUDA_LAUNCH(k_avgpool2d, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, k, stride, pad,
                                                                       count_include_pad, ho, wo, x, y);
    wb_cuda_launched("avgpool2d");
}

void wb_cuda_avgpool2d_bwd(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                           const float *dy, float *dx) {
    const int ho = out_size(h, k, stride, pad), wo = out_size(w, k, stride, pad);
    if (planes <= 0 || h <= 0 || w <= 0 || ho <= 0 || wo <= 0) return;
    const int64_t total = planes * h * w;
    WB_CUDA_LAUNCH(k_avgpool2d_bwd, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, k, stride, pad,
                                                                           count_include_pad, ho, wo, dy, dx);
    wb_cuda_launched("avgpool2d_bwd");
}

/* ---- bilinear resizing -------------------------------------------------------------- */
/* Source taps of output index o along an axis of `in` -> `out` cells: the
 * CPU's bilin (torch 1.13's float32 arithmetic: ratio in float, source
 * coordinate in double, weight rounded to float; equal sizes copy). */
typedef struct {
    int i0, i1;
    float l0, l1;
} bilin_tap;

static __device__ inline bilin_tap bilin(int o, int in, int out) {
    bilin_tap t;
    if (in == out) {
        t.i0 = t.i1 = o;
        t.l0 = 1.0f;
        t.l1 = 0.0f;
        return t;
    }
    const float scale = (float)in / (float)out;
    double src = (double)scale * ((double)o + 0.5) - 0.5;
    if (src < 0.0) src = 0.0;
    int i0 = (int)floor(src);
    if (i0 > in - 1) i0 = in - 1;
    float l1 = (float)(src - (double)i0);
    if (l1 < 0.0f) l1 = 0.0f;
    if (l1 > 1.0f) l1 = 1.0f;
    t.i0 = i0;
    t.i1 = i0 < in - 1 ? i0 + 1 : i0;
    t.l1 = l1;
    t.l0 = 1.0f - l1;
    return t;
}

/* Outputs o whose taps {i0, i1} ⊂ {i0, i0 + 1} include cell i: i0(o) is
 * non-decreasing in o, so they are the contiguous range with
 * i − 1 <= i0(o) <= i. A binary search finds its start. */
static __device__ inline void bilin_range(int i, int in, int out, int *lo, int *hi) {
    int a = 0, b = out;
    while (a < b) {
        const int mid = a + (b - a) / 2;
        if (bilin(mid, in, out).i0 >= i - 1) b = mid;
        else a = mid + 1;
    }
    int e = a;
    while (e < out && bilin(e, in, out).i0 <= i) e++;
    *lo = a;
    *hi = e;
}

static __global__ void k_resize_bilinear(int64_t total, int h, int w, int ho, int wo, const float *x, float *y) {
    WB_GRID_STRIDE(i, total) {
        const int ox = (int)(i % wo);
        const int64_t t = i / wo;
        const int oy = (int)(t % ho);
        const int64_t p = t / ho;
        const float *xp = x + p * h * w;
        const bilin_tap ty = bilin(oy, h, ho), tx = bilin(ox, w, wo);
        const float *r0 = xp + (int64_t)ty.i0 * w, *r1 = xp + (int64_t)ty.i1 * w;
        /* torch's association: rows first, then between rows */
        y[i] = ty.l0 * (tx.l0 * r0[tx.i0] + tx.l1 * r0[tx.i1]) + ty.l1 * (tx.l0 * r1[tx.i0] + tx.l1 * r1[tx.i1]);
    }
}

/* One thread per input cell: the outputs tapping it in row-major order,
 * and within one output its four taps in the CPU's order (r0·i0, r0·i1,
 * r1·i0, r1·i1), so a cell hit twice by one output (an edge, where
 * i1 = i0) is added to twice, as on the CPU. */
static __global__ void k_resize_bilinear_bwd(int64_t total, int h, int w, int ho, int wo, const float *dy,
                                             float *dx) {
    WB_GRID_STRIDE(i, total) {
        const int ix = (int)(i % w);
        const int64_t t = i / w;
        const int iy = (int)(t % h);
        const int64_t p = t / h;
        const float *dp = dy + p * ho * wo;
        int oy0, oy1, ox0, ox1;
        bilin_range(iy, h, ho, &oy0, &oy1);
        bilin_range(ix, w, wo, &ox0, &ox1);
        float acc = dx[i];
        for (int oy = oy0; oy < oy1; oy++) {
            const bilin_tap ty = bilin(oy, h, ho);
            for (int ox = ox0; ox < ox1; ox++) {
                const bilin_tap tx = bilin(ox, w, wo);
                const float g = dp[(int64_t)oy * wo + ox];
                if (ty.i0 == iy && tx.i0 == ix) acc += ty.l0 * tx.l0 * g;
                if (ty.i0 == iy && tx.i1 == ix) acc += ty.l0 * tx.l1 * g;
                if (ty.i1 == iy && tx.i0 == ix) acc += ty.l1 * tx.l0 * g;
                if (ty.i1 == iy && tx.i1 == ix) acc += ty.l1 * tx.l1 * g;
            }
        }
        dx[i] = acc;
    }
}

void wb_cuda_resize_bilinear(int64_t planes, int h, int w, int ho, int wo, const float *x, float *y) {
    if (planes <= 0 || h <= 0 || w <= 0 || ho <= 0 || wo <= 0) return;
    const int64_t total = planes * ho * wo;
    WB_CUDA_LAUNCH(k_resize_bilinear, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, ho, wo, x, y);
    wb_cuda_launched("resize_bilinear");
}

void wb_cuda_resize_bilinear_bwd(int64_t planes, int h, int w, int ho, int wo, const float *dy, float *dx) {
    if (planes <= 0 || h <= 0 || w <= 0 || ho <= 0 || wo <= 0) return;
    const int64_t total = planes * h * w;
    WB_CUDA_LAUNCH(k_resize_bilinear_bwd, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, h, w, ho, wo, dy, dx);
    wb_cuda_launched("resize_bilinear_bwd");
}
