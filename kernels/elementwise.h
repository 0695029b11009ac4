/* kernels/elementwise.h — scalar math written once, used by the CPU kernels,
 * the CUDA kernels (WB_HD = __host__ __device__ under nvcc) and the
 * divergence plugins. Every function here is overflow-safe over the whole
 * float range: no inf/NaN for finite inputs unless the math itself is
 * infinite (log 0).
 */
#ifndef WB_ELEMENTWISE_H
#define WB_ELEMENTWISE_H

#include <math.h>

#ifdef __CUDACC__
#define WB_HD __host__ __device__ __forceinline__
#else
#define WB_HD static inline
#endif

/* σ(x) = 1/(1+e^{-x}), evaluated on the side where the exponent is ≤ 0. */
WB_HD float wb_sigmoidf(float x) {
    if (x >= 0.0f) {
        float z = expf(-x);
        return 1.0f / (1.0f + z);
    }
    float z = expf(x);
    return z / (1.0f + z);
}

/* softplus(x) = log(1+e^x) = max(x,0) + log1p(e^{-|x|}). */
WB_HD float wb_softplusf(float x) {
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

/* log σ(x) = -softplus(-x). */
WB_HD float wb_logsigmoidf(float x) { return -wb_softplusf(-x); }

WB_HD float wb_siluf(float x) { return x * wb_sigmoidf(x); }

/* silu'(x) = σ(x)·(1 + x·(1−σ(x))) */
WB_HD float wb_silu_gradf(float x) {
    float s = wb_sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
}

/* e^x with the exponent clamped so the result stays finite in float
 * (|x| ≤ 80 → e^80 ≈ 5.5e34 < FLT_MAX). Used for ratio weights. */
#define WB_EXP_CLAMP 80.0f
WB_HD float wb_exp_clampedf(float x) {
    return expf(fminf(fmaxf(x, -WB_EXP_CLAMP), WB_EXP_CLAMP));
}

#endif
