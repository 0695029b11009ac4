/* wb/elementwise.h — scalar math written once, used by the CPU kernels,
 * the CUDA kernels (WB_HD = __host__ __device__ under nvcc) and the
 * divergence plugins. Installed with the other public headers, so a plugin
 * built against an installed workbench computes exactly the formulas the
 * backends do. Every function here is overflow-safe over the whole float
 * range: no inf/NaN for finite inputs unless the math itself is infinite
 * (log 0). Header-only (static inline): nothing here is a libwb symbol.
 */
#ifndef WB_ELEMENTWISE_H
#define WB_ELEMENTWISE_H

#include <math.h>
#include <string.h>

#ifdef __CUDACC__
#define WB_HD __host__ __device__ __forceinline__
#else
#define WB_HD static inline
#endif

/* e^x for x ≤ 0 without a libm call, so loops over it vectorise (libm's
 * expf is an opaque call). Cephes' range reduction x = n·ln2 + r and its
 * degree-6 polynomial: relative error below 2e-7 where the result is a
 * normal float (x ≥ −87.3); below that the result is a denormal, rounded
 * once, and below −104 it is 0 — as expf. */
WB_HD float wb_exp_nonpos(float x) {
    x = x < -104.0f ? -104.0f : x;
    float n = floorf(x * 1.44269504088896341f + 0.5f); /* round(x·log2 e) ∈ [−150, 0] */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    /* 2^n as two normal factors 2^h·2^(n−h), h = n/2 ≥ −75: y·2^h is exact
     * and the second product rounds once into the denormals, where a single
     * 2^n would not be a normal float's exponent bits for n < −126. */
    /* n ≥ −150 for every x the clamp lets through (x = −104 gives −150), so
     * only the top needs a bound: x > 0 scales by 2^0. A NaN x gives a NaN n
     * (and y), and converting NaN to int is undefined: it fails n < 0 and
     * takes 0 (the result stays NaN through y, its bits y's).
     * Why not also clamp at −150 as a guard: a select with the constant
     * −150 lets GCC split that case off as its own path, y·2^−75·2^−75,
     * which its vectorised loops then compute for every lane and blend
     * away — a product that underflows, and every underflow costs a
     * microcode assist (~150 cycles on Intel), so SiLU, sigmoid and the
     * MMD ran 8× slower. The constant 0 path multiplies by 1. */
    float nc = n < 0.0f ? n : 0.0f;
    int ni = (int)nc, h = ni / 2;
    int bits1 = (h + 127) << 23, bits2 = (ni - h + 127) << 23;
    float s1, s2;
    memcpy(&s1, &bits1, sizeof s1);
    memcpy(&s2, &bits2, sizeof s2);
    return y * s1 * s2;
}

/* σ(x) = 1/(1+e^{-x}), with the exponent always ≤ 0: for x ≥ 0 it is
 * 1/(1+e^{-x}), for x < 0 it is e^{x}/(1+e^{x}). Branch-free so it
 * vectorises. */
WB_HD float wb_sigmoidf(float x) {
    float z = wb_exp_nonpos(-fabsf(x));
    float s = 1.0f / (1.0f + z);
    return x >= 0.0f ? s : z * s;
}

/* softplus(x) = log(1+e^x) = max(x,0) + log1p(e^{-|x|}). */
WB_HD float wb_softplusf(float x) {
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

/* log σ(x) = -softplus(-x). */
WB_HD float wb_logsigmoidf(float x) { return -wb_softplusf(-x); }

WB_HD float wb_siluf(float x) { return x * wb_sigmoidf(x); }

/* silu'(x) = σ(x)·(1 + x·(1−σ(x))), from x and s = σ(x) (a forward pass
 * that kept σ(x), wb_silu under a tape), or from x alone. One expression,
 * so both give the same bits. */
WB_HD float wb_silu_grad_sigf(float x, float s) { return s * (1.0f + x * (1.0f - s)); }
WB_HD float wb_silu_gradf(float x) { return wb_silu_grad_sigf(x, wb_sigmoidf(x)); }

/* e^x with the exponent clamped so the result stays finite in float
 * (|x| ≤ 80 → e^80 ≈ 5.5e34 < FLT_MAX). Used for ratio weights. */
#define WB_EXP_CLAMP 80.0f
WB_HD float wb_exp_clampedf(float x) {
    return expf(fminf(fmaxf(x, -WB_EXP_CLAMP), WB_EXP_CLAMP));
}

#endif
