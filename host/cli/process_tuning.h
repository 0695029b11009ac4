/* host/cli/process_tuning.h — process-wide settings that the libraries read
 * once, when they are loaded (before main), so an executable fixes them at
 * the top of main and runs itself again, once. For executables only
 * (host/cli/main.c and the bench executables): library code never execs. A variable the
 * user set is always left alone.
 *
 *   OMP_WAIT_POLICY=PASSIVE  libgomp's workers sleep between parallel
 *       regions instead of spinning. With the OpenMP-threaded OpenBLAS
 *       (CMakeLists.txt, WB_BLAS) all threads are one pool and the policy
 *       hardly matters (measured ±3 % on the cifar10-ddpmpp step); with
 *       the pthread build, OpenBLAS's own threads fight spinning ones for
 *       the cores (2-4× slower steps on 2 cores), so passive is the default.
 *   OMP_NUM_THREADS = OPENBLAS_NUM_THREADS  when only the latter is set: the
 *       OpenMP-threaded OpenBLAS takes its count from OMP_NUM_THREADS and
 *       ignores OPENBLAS_NUM_THREADS, which still means "this many threads"
 *       to anyone who set it.
 *   OPENBLAS_CORETYPE=Haswell  OpenBLAS (DYNAMIC_ARCH) picks its kernels
 *       from the CPU's family/model numbers; a virtual machine that reports
 *       a generic model ("Intel Xeon Processor") gets the SSE3 "Prescott"
 *       kernels even on an AVX-512 processor — 2-3× slower GEMMs
 *       (bench/README.md, "Measured (cifar10-ddpmpp, CPU)"). When OpenBLAS chose a family
 *       older than Haswell but the processor has AVX2 and FMA, the Haswell
 *       kernels are taken (measured faster than SkylakeX's here).
 */
#ifndef WB_PROCESS_TUNING_H
#define WB_PROCESS_TUNING_H

#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "wb/cpu.h"

/* OpenBLAS families below Haswell (x86-64), lower-case as it reports them. */
static int wb_blas_core_predates_avx2(const char *core) {
    static const char *const older[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                                        "sandybridge", "opteron", "barcelona", "bobcat", "bulldozer",
                                        "piledriver", "steamroller", "excavator", "katmai", "coppermine",
                                        "northwood", "banias", "unknown"};
    if (!core) return 0;
    for (size_t i = 0; i < sizeof older / sizeof older[0]; i++)
        if (strcasecmp(core, older[i]) == 0) return 1;
    return 0;
}

static void wb_process_tuning(char **argv) {
    int again = 0;
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0) again = 1;
    const char *blas_threads = getenv("OPENBLAS_NUM_THREADS");
    if (blas_threads && *blas_threads && !getenv("OMP_NUM_THREADS") && setenv("OMP_NUM_THREADS", blas_threads, 1) == 0)
        again = 1;
#if defined(__x86_64__)
    if (!getenv("OPENBLAS_CORETYPE") && wb_blas_core_predates_avx2(wb_cpu_blas_core()) &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        setenv("OPENBLAS_CORETYPE", "Haswell", 1) == 0)
        again = 1;
#endif
    if (!again) return;
    /* the executable's real path, not /proc/self/exe: the kernel names a
     * process after the file it executed, and "exe" in ps, top and OOM logs
     * says nothing (issue 10, defect 11) */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = 0;
        execv(self, argv);
    }
    execv("/proc/self/exe", argv);
    /* exec failed: carry on as loaded (correct, maybe slower) */
}

#endif
