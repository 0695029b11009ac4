/* wb/cpu.h — host-array helpers computed by the CPU reference backend's
 * vectorised kernels (kernels/cpu): no graph, no backend memory, plain
 * float arrays in and a double out. The engine's low-dimensional metrics use
 * them (host/engine/gmm2d.c: the RBF-kernel MMD); so may a plugin that
 * measures samples on the host.
 */
#ifndef WB_CPU_H
#define WB_CPU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* libwb exports what is declared here */

/* Σ_i Σ_j Σ_h exp(−‖a_i − b_j‖² · inv2h2[h]) over the rows a_i of a (na, dim)
 * and b_j of b (nb, dim), for n_bandwidths inverse bandwidths inv2h2 =
 * 1/(2h²): the unnormalised RBF-kernel sum of an MMD estimate. Each row's
 * terms are summed in float, the rows in double (the AVX2 build when the CPU
 * has it). NaN when it cannot allocate its nb-float scratch row. */
double wb_cpu_rbf_sum(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2,
                      int n_bandwidths);
/* The same sum (bit for bit) and, from the same exponentials, each
 * bandwidth's own: per_bandwidth[h] = Σ_i Σ_j exp(−‖a_i − b_j‖² · inv2h2[h])
 * (each row's terms summed in float, the rows in double), n_bandwidths
 * doubles; NULL: the combined sum only. NaN (and per_bandwidth untouched)
 * when it cannot allocate. */
double wb_cpu_rbf_sums(const float *a, int64_t na, const float *b, int64_t nb, int dim, const float *inv2h2,
                       int n_bandwidths, double *per_bandwidth);

/* The BLAS under the CPU backend, as loaded in this process: its kernel
 * family as OpenBLAS chose it ("Haswell", "SkylakeX", "Prescott", …: what
 * OPENBLAS_CORETYPE overrides) and its threading ("openmp", "pthreads",
 * "sequential"). Recorded in every run's config.json (they change the
 * last digits of every GEMM). */
const char *wb_cpu_blas_core(void);
/* How many threads the CPU backend's own kernels (elementwise, optimiser,
 * group norm, softmax) use on `work` floats of streaming work: 1 below 32768
 * floats or without OpenMP, else OpenBLAS's thread count (the run's
 * --threads / OMP_NUM_THREADS), at most one per 16384 floats. Splits never
 * change a result (kernels/cpu/cpu_parallel.h). */
int wb_cpu_par_threads(int64_t work);
const char *wb_cpu_blas_threading(void);
/* The thread count OpenBLAS (and with it oneDNN and the CPU backend's split
 * loops) runs with now. */
int wb_cpu_blas_threads(void);

/* Which build of the backend's own elementwise kernels runs: "avx512"
 * (the unary ops — SiLU, sigmoid, exp, … — in AVX-512, the rest in AVX2),
 * "avx2" (AVX2+FMA) or "generic" (baseline x86-64, or any other target).
 * The best the processor has, unless WB_CPU_ISA names a lower one. All
 * three give the same bits (ISO C: no FMA contraction; tests/test_cpu_isa.c),
 * so this is speed only. */
const char *wb_cpu_isa(void);
/* Sets it for the rest of the process ("generic", "avx2", "avx512",
 * "auto": the best there is); -1 (wb_last_error) for an unknown name or
 * one the processor or build does not have. */
int wb_cpu_set_isa(const char *name);

/* The deterministic mode: 1 when the CPU backend's results do not depend
 * on the thread count (WB_DETERMINISTIC=1 in the environment, read at the
 * first GEMM, or wb_cpu_set_deterministic). The backend's own kernels split
 * exactly anyway; in this mode its GEMMs (OpenBLAS) are cut into pieces
 * fixed by the shape, one thread each (kernels/cpu/cpu_gemm.c), and oneDNN
 * convolutions run on one thread. Its numbers differ from the default
 * mode's in the last bits (other GEMM edges), at every thread count the
 * same. Recorded in every run's config.json (build.blas.deterministic). */
int wb_cpu_deterministic(void);
/* Turns the mode on (1) or off (0) for the rest of the process, whatever
 * the environment says (for a host's own flag, and tests). */
void wb_cpu_set_deterministic(int on);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
