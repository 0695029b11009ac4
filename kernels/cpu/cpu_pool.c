/* kernels/cpu/cpu_pool.c — CPU kernels of the pooling and resampling ops of
 * host/core/ops_pool.c: k×k max pooling, k×k average pooling (with or without
 * the padding in the divisor) and bilinear resizing, each with its backward
 * pass. Installed in the vtable by kernels/cpu/cpu_backend.c; declared in
 * kernels/cpu/cpu_kernels.h. Every rule follows PyTorch's CPU kernels, so
 * the FID Inception network computes what pytorch-fid computes.
 *
 * Shape legend: "planes" = B·C independent H×W images; pooling output
 * Ho×Wo with Ho = (H + 2·pad − k)/stride + 1 (floor); resizing output
 * Ho×Wo as asked. Backward kernels ACCUMULATE into dx.
 */
#include <math.h>
#include <stdint.h>

#include "cpu_kernels.h"

/* ---- max pooling ------------------------------------------------------------------ */
/* Index (in the plane) of the maximum of the window starting at (y0, x0):
 * the first one in row-major order, a NaN wins (torch's `val > max ||
 * isnan(val)`); the window's first in-image cell when every value is −inf.
 * The op guarantees pad <= k/2, so every window holds an image cell. */
static int64_t window_argmax(const float *xp, int h, int w, int k, int y0, int x0) {
    int ys = y0 < 0 ? 0 : y0, ye = y0 + k < h ? y0 + k : h;
    int xs = x0 < 0 ? 0 : x0, xe = x0 + k < w ? x0 + k : w;
    int64_t best = (int64_t)ys * w + xs;
    float m = -INFINITY;
    for (int iy = ys; iy < ye; iy++)
        for (int ix = xs; ix < xe; ix++) {
            float v = xp[(int64_t)iy * w + ix];
            if (v > m || isnan(v)) {
                m = v;
                best = (int64_t)iy * w + ix;
            }
        }
    return best;
}

void wb_cpu_maxpool2d(int64_t planes, int h, int w, int k, int stride, int pad, const float *x, float *y) {
    int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * ho * wo;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++)
                yp[(int64_t)oy * wo + ox] = xp[window_argmax(xp, h, w, k, oy * stride - pad, ox * stride - pad)];
    }
}

/* The argmax is recomputed from x instead of being saved by the forward
 * pass: it costs one more sweep of the windows and no index buffer. */
void wb_cpu_maxpool2d_bwd(int64_t planes, int h, int w, int k, int stride, int pad, const float *x,
                          const float *dy, float *dx) {
    int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w, *dp = dy + p * ho * wo;
        float *gp = dx + p * h * w;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++)
                gp[window_argmax(xp, h, w, k, oy * stride - pad, ox * stride - pad)] += dp[(int64_t)oy * wo + ox];
    }
}

/* ---- average pooling ---------------------------------------------------------------- */
/* Window of output (oy, ox) clipped to the image, and its divisor: torch
 * counts the cells inside the padded image (k² away from the far edge) with
 * count_include_pad, else only those inside the image. */
typedef struct { int ys, ye, xs, xe; float inv; } pool_win;

static pool_win avg_window(int h, int w, int k, int stride, int pad, int cip, int oy, int ox) {
    pool_win r;
    int y0 = oy * stride - pad, x0 = ox * stride - pad;
    int y1 = y0 + k < h + pad ? y0 + k : h + pad, x1 = x0 + k < w + pad ? x0 + k : w + pad;
    int padded = (y1 - y0) * (x1 - x0);
    r.ys = y0 < 0 ? 0 : y0;
    r.xs = x0 < 0 ? 0 : x0;
    r.ye = y1 < h ? y1 : h;
    r.xe = x1 < w ? x1 : w;
    int inside = (r.ye - r.ys) * (r.xe - r.xs);
    r.inv = 1.0f / (float)(cip ? padded : inside);
    return r;
}

void wb_cpu_avgpool2d(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                      const float *x, float *y) {
    int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * ho * wo;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                pool_win r = avg_window(h, w, k, stride, pad, count_include_pad, oy, ox);
                float s = 0.0f;
                for (int iy = r.ys; iy < r.ye; iy++)
                    for (int ix = r.xs; ix < r.xe; ix++) s += xp[(int64_t)iy * w + ix];
                yp[(int64_t)oy * wo + ox] = s * r.inv;
            }
    }
}

void wb_cpu_avgpool2d_bwd(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                          const float *dy, float *dx) {
    int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
    for (int64_t p = 0; p < planes; p++) {
        const float *dp = dy + p * ho * wo;
        float *gp = dx + p * h * w;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                pool_win r = avg_window(h, w, k, stride, pad, count_include_pad, oy, ox);
                float g = dp[(int64_t)oy * wo + ox] * r.inv;
                for (int iy = r.ys; iy < r.ye; iy++)
                    for (int ix = r.xs; ix < r.xe; ix++) gp[(int64_t)iy * w + ix] += g;
            }
    }
}

/* ---- bilinear resizing -------------------------------------------------------------- */
/* Source taps of output index o along an axis of `in` -> `out` cells, as
 * torch's upsample_bilinear2d (align_corners=False): source coordinate
 * (o + ½)·in/out − ½ clamped at 0, taps i0 and i0+1 (i0 at the last cell),
 * weights l0 = 1 − l1. Equal sizes copy. */
typedef struct { int i0, i1; float l0, l1; } bilin_tap;

static bilin_tap bilin(int o, int in, int out) {
    bilin_tap t;
    if (in == out) {
        t.i0 = t.i1 = o;
        t.l0 = 1.0f;
        t.l1 = 0.0f;
        return t;
    }
    /* torch's (1.13) float32 arithmetic: the ratio in float, the source
     * coordinate from it in double, the weight rounded to float. Computing
     * the coordinate in float instead moves weights by ~1e-6 at 32 -> 299. */
    float scale = (float)in / (float)out;
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

void wb_cpu_resize_bilinear(int64_t planes, int h, int w, int ho, int wo, const float *x, float *y) {
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * ho * wo;
        for (int oy = 0; oy < ho; oy++) {
            bilin_tap ty = bilin(oy, h, ho);
            const float *r0 = xp + (int64_t)ty.i0 * w, *r1 = xp + (int64_t)ty.i1 * w;
            for (int ox = 0; ox < wo; ox++) {
                bilin_tap tx = bilin(ox, w, wo);
                /* torch's association: rows first, then between rows */
                yp[(int64_t)oy * wo + ox] = ty.l0 * (tx.l0 * r0[tx.i0] + tx.l1 * r0[tx.i1]) +
                                            ty.l1 * (tx.l0 * r1[tx.i0] + tx.l1 * r1[tx.i1]);
            }
        }
    }
}

void wb_cpu_resize_bilinear_bwd(int64_t planes, int h, int w, int ho, int wo, const float *dy, float *dx) {
    for (int64_t p = 0; p < planes; p++) {
        const float *dp = dy + p * ho * wo;
        float *gp = dx + p * h * w;
        for (int oy = 0; oy < ho; oy++) {
            bilin_tap ty = bilin(oy, h, ho);
            float *r0 = gp + (int64_t)ty.i0 * w, *r1 = gp + (int64_t)ty.i1 * w;
            for (int ox = 0; ox < wo; ox++) {
                bilin_tap tx = bilin(ox, w, wo);
                float g = dp[(int64_t)oy * wo + ox];
                r0[tx.i0] += ty.l0 * tx.l0 * g;
                r0[tx.i1] += ty.l0 * tx.l1 * g;
                r1[tx.i0] += ty.l1 * tx.l0 * g;
                r1[tx.i1] += ty.l1 * tx.l1 * g;
            }
        }
    }
}
