/* kernels/cpu/cpu_ew_generic.c — the portable build of cpu_elementwise.inc. */
#define WB_EW(name) wb_cpu_##name##_generic
#include "cpu_elementwise.inc"
