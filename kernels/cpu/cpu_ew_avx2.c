/* kernels/cpu/cpu_ew_avx2.c — the AVX2+FMA build of cpu_elementwise.inc
 * (compiled with -mavx2 -mfma on x86-64; empty elsewhere). */
#if defined(__x86_64__) && defined(__AVX2__)
#define WB_EW(name) wb_cpu_##name##_avx2
#include "cpu_elementwise.inc"
#else
typedef int wb_cpu_ew_avx2_unused; /* ISO C forbids an empty unit */
#endif
