/* kernels/cpu/cpu_ew_avx512.c — the AVX-512 build of cpu_elementwise.inc
 * (compiled with -mavx512f/vl/dq/bw/cd on x86-64; empty elsewhere). Only
 * its unary ops are called (cpu_backend.c, isa()): they give the AVX2
 * build's bits, 16 floats a vector instead of 8 (tests/test_cpu_isa.c).
 * The other loops stay on the AVX2 build: they are memory-bound, and none
 * of them needs checking again. */
#if defined(__x86_64__) && defined(__AVX512F__)
#define WB_EW(name) wb_cpu_##name##_avx512
#include "cpu_elementwise.inc"
#else
typedef int wb_cpu_ew_avx512_unused; /* ISO C forbids an empty unit */
#endif
