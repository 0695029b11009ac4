/* kernels/cpu/cpu_conv.c — CPU kernels of the convolution family: batched
 * GEMM (OpenBLAS), im2col / col2im (the layout change that turns a
 * convolution into one GEMM per image), nearest 2× up-sampling and 2×2 mean
 * pooling with their backward passes. Installed in the vtable by
 * kernels/cpu/cpu_backend.c; declared in kernels/cpu/cpu_kernels.h.
 *
 * Shape legend: C channels, H×W input plane, kh×kw kernel, Ho×Wo output
 * plane (Ho = (H + 2·pad_h − kh)/sh + 1, Wo likewise with pad_w, sw),
 * col = (C·kh·kw, Ho·Wo) row-major; "planes" = B·C independent H×W images.
 * Backward kernels ACCUMULATE.
 */
#include <string.h>

#include "cpu_kernels.h"

/* ---- batched GEMM ------------------------------------------------------------ */
void wb_cpu_gemm_batched(int batch, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                         int lda, int64_t stride_a, const float *b, int ldb, int64_t stride_b, float beta,
                         float *c, int ldc, int64_t stride_c) {
    if (batch <= 0 || m == 0 || n == 0) return;
    for (int i = 0; i < batch; i++) {
        /* One sgemm per matrix: OpenBLAS's batch entry point is not in every
         * packaged version, and at these sizes the call overhead is small.
         * wb_cpu_sgemm keeps BLAS's k = 0 semantics and the deterministic
         * mode (cpu_gemm.c). */
        wb_cpu_sgemm(ta, tb, m, n, k, alpha, a + (int64_t)i * stride_a, lda, b + (int64_t)i * stride_b, ldb, beta,
                     c + (int64_t)i * stride_c, ldc);
    }
}

/* ---- im2col / col2im ------------------------------------------------------------ */
/* Output columns ox whose input column ix = ox·stride − pad + kj lies in
 * [0, w): [*lo, *hi). Computing the range once per kernel tap keeps the
 * bounds test out of the inner loop (which then is a memcpy at stride 1). */
static void valid_range(int k_off, int stride, int pad, int in, int out, int *lo, int *hi) {
    int first = pad - k_off; /* ox·stride >= first */
    int l = first <= 0 ? 0 : (first + stride - 1) / stride;
    int last = in - 1 + pad - k_off; /* ox·stride <= last */
    int h = last < 0 ? 0 : last / stride + 1;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

void wb_cpu_im2col(const float *x, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h, int pad_w,
                   float *col) {
    int ho = (h + 2 * pad_h - kh) / sh + 1, wo = (w + 2 * pad_w - kw) / sw + 1;
    int64_t n = (int64_t)ho * wo;
    for (int ch = 0; ch < c; ch++)
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++) {
                float *row = col + (((int64_t)ch * kh + ki) * kw + kj) * n;
                const float *plane = x + (int64_t)ch * h * w;
                int lo, hi;
                valid_range(kj, sw, pad_w, w, wo, &lo, &hi);
                for (int oy = 0; oy < ho; oy++) {
                    float *dst = row + (int64_t)oy * wo;
                    int iy = oy * sh - pad_h + ki;
                    if (iy < 0 || iy >= h || lo >= hi) {
                        memset(dst, 0, (size_t)wo * sizeof(float));
                        continue;
                    }
                    /* src[t] is input column lo·sw − pad_w + kj + t: in range */
                    const float *src = plane + (int64_t)iy * w + ((int64_t)lo * sw - pad_w + kj);
                    if (lo > 0) memset(dst, 0, (size_t)lo * sizeof(float));
                    if (sw == 1)
                        memcpy(dst + lo, src, (size_t)(hi - lo) * sizeof(float));
                    else
                        for (int ox = lo; ox < hi; ox++) dst[ox] = src[(int64_t)(ox - lo) * sw];
                    if (hi < wo) memset(dst + hi, 0, (size_t)(wo - hi) * sizeof(float));
                }
            }
}

void wb_cpu_col2im(const float *col, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h, int pad_w,
                   float *dx) {
    int ho = (h + 2 * pad_h - kh) / sh + 1, wo = (w + 2 * pad_w - kw) / sw + 1;
    int64_t n = (int64_t)ho * wo;
    for (int ch = 0; ch < c; ch++)
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++) {
                const float *row = col + (((int64_t)ch * kh + ki) * kw + kj) * n;
                float *plane = dx + (int64_t)ch * h * w;
                int lo, hi;
                valid_range(kj, sw, pad_w, w, wo, &lo, &hi);
                for (int oy = 0; oy < ho; oy++) {
                    int iy = oy * sh - pad_h + ki;
                    if (iy < 0 || iy >= h || lo >= hi) continue; /* padding: its gradient goes nowhere */
                    const float *src = row + (int64_t)oy * wo + lo;
                    float *dst = plane + (int64_t)iy * w + ((int64_t)lo * sw - pad_w + kj);
                    int cnt = hi - lo;
                    if (sw == 1)
                        for (int t = 0; t < cnt; t++) dst[t] += src[t];
                    else
                        for (int t = 0; t < cnt; t++) dst[(int64_t)t * sw] += src[t];
                }
            }
}

/* ---- nearest 2× up-sampling and 2×2 mean pooling ---------------------------------- */
void wb_cpu_upsample2x(int64_t planes, int h, int w, const float *x, float *y) {
    int w2 = 2 * w;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * 4 * h * w;
        for (int i = 0; i < h; i++) {
            float *r0 = yp + (int64_t)(2 * i) * w2;
            for (int j = 0; j < w; j++) r0[2 * j] = r0[2 * j + 1] = xp[(int64_t)i * w + j];
            memcpy(r0 + w2, r0, (size_t)w2 * sizeof(float)); /* the second output row is the first */
        }
    }
}

void wb_cpu_upsample2x_bwd(int64_t planes, int h, int w, const float *dy, float *dx) {
    int w2 = 2 * w;
    for (int64_t p = 0; p < planes; p++) {
        const float *dp = dy + p * 4 * h * w;
        float *xp = dx + p * h * w;
        for (int i = 0; i < h; i++) {
            const float *r0 = dp + (int64_t)(2 * i) * w2, *r1 = r0 + w2;
            for (int j = 0; j < w; j++)
                xp[(int64_t)i * w + j] += (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
        }
    }
}

void wb_cpu_avgpool2x(int64_t planes, int h, int w, const float *x, float *y) {
    int ho = h / 2, wo = w / 2;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * ho * wo;
        for (int i = 0; i < ho; i++) {
            const float *r0 = xp + (int64_t)(2 * i) * w, *r1 = r0 + w;
            for (int j = 0; j < wo; j++)
                yp[(int64_t)i * wo + j] = 0.25f * ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]));
        }
    }
}

void wb_cpu_avgpool2x_bwd(int64_t planes, int h, int w, const float *dy, float *dx) {
    int ho = h / 2, wo = w / 2;
    for (int64_t p = 0; p < planes; p++) {
        const float *dp = dy + p * ho * wo;
        float *xp = dx + p * h * w;
        for (int i = 0; i < ho; i++) {
            float *r0 = xp + (int64_t)(2 * i) * w, *r1 = r0 + w;
            for (int j = 0; j < wo; j++) {
                float g = 0.25f * dp[(int64_t)i * wo + j];
                r0[2 * j] += g;
                r0[2 * j + 1] += g;
                r1[2 * j] += g;
                r1[2 * j + 1] += g;
            }
        }
    }
}
