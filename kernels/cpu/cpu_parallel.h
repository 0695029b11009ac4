/* kernels/cpu/cpu_parallel.h — how the CPU backend's own kernels (elementwise,
 * optimiser, group norm, softmax) use more than one core: an OpenMP team of
 * the run's thread count over disjoint pieces of the work. Internal to libwb.
 *
 * Why it is safe for the numbers: work is only ever split where pieces are
 * independent (elements of a flat loop, rows, (sample, group) blocks,
 * channels), never inside a sum, so each output is computed by exactly the
 * code and in exactly the order of the one-thread run — results are
 * bit-identical for any thread count (tests/test_cpu_threads.c checks it).
 * Flat ranges are cut at multiples of WB_PAR_ALIGN floats (64 bytes): a
 * piece starts on the same alignment as the whole, so the vectoriser's
 * peeled and tail elements are the same elements as in one pass.
 *
 * Thread count: OpenBLAS's (openblas_get_num_threads: --threads,
 * OPENBLAS_NUM_THREADS / OMP_NUM_THREADS), the same knob as the GEMMs and
 * oneDNN's convolutions; 1 in builds without OpenMP. Loops below
 * WB_PAR_MIN_WORK floats stay on the calling thread (a team's start costs
 * microseconds).
 */
#ifndef WB_CPU_PARALLEL_H
#define WB_CPU_PARALLEL_H

#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#define WB_PAR_PRAGMA(x) _Pragma(#x)
/* Run the following block on `nt` threads (nt ≤ 1: the caller alone). */
#define WB_PARALLEL(nt) WB_PAR_PRAGMA(omp parallel num_threads(nt) if ((nt) > 1))
static inline int wb_par_thread(void) { return omp_get_thread_num(); }
static inline int wb_par_team(void) { return omp_get_num_threads(); }
#else
#define WB_PARALLEL(nt)
static inline int wb_par_thread(void) { return 0; }
static inline int wb_par_team(void) { return 1; }
#endif

#define WB_PAR_ALIGN 16
#define WB_PAR_MIN_WORK ((int64_t)1 << 15)

/* wb_cpu_par_threads(work): declared in wb/cpu.h (public, so a test can
 * see that work is split). */
#include "wb/cpu.h"

/* The piece [*lo, *hi) of [0, n) that thread t of nt takes: contiguous,
 * balanced, every boundary but n a multiple of `align`. */
static inline void wb_par_range(int64_t n, int64_t align, int t, int nt, int64_t *lo, int64_t *hi) {
    int64_t units = (n + align - 1) / align;
    int64_t per = units / nt, extra = units % nt;
    int64_t first = (int64_t)t * per + (t < extra ? t : extra);
    int64_t count = per + (t < extra ? 1 : 0);
    int64_t a = first * align, b = (first + count) * align;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

/* Run STMT (which reads int64_t lo, hi) over [0, n) cut into pieces of
 * multiples of `align` (the last piece ends at n), one per thread of a
 * team sized for `work` floats and at most one per piece; or once over
 * all of it, on the calling thread, when one thread is enough. */
#define WB_SPLIT(n, align, work, STMT)                                                      \
    do {                                                                                    \
        int64_t n_ = (n), align_ = (align), pieces_ = (n_ + align_ - 1) / align_;            \
        int nt_ = pieces_ > 1 ? wb_cpu_par_threads(work) : 1;                               \
        if (nt_ > pieces_) nt_ = (int)pieces_;                                              \
        if (nt_ <= 1) {                                                                     \
            int64_t lo = 0, hi = n_;                                                        \
            STMT;                                                                           \
        } else {                                                                            \
            WB_PARALLEL(nt_) {                                                              \
                int64_t lo, hi;                                                             \
                wb_par_range(n_, align_, wb_par_thread(), wb_par_team(), &lo, &hi);         \
                if (hi > lo) STMT;                                                          \
            }                                                                               \
        }                                                                                   \
    } while (0)
/* n floats of a flat loop; `units` independent rows/blocks of per_unit floats. */
#define WB_SPLIT_FLAT(n, STMT) WB_SPLIT(n, WB_PAR_ALIGN, n, STMT)
#define WB_SPLIT_UNITS(units, per_unit, STMT) WB_SPLIT(units, 1, (int64_t)(units) * (int64_t)(per_unit), STMT)

#endif
