/* kernels/cpu/cpu_gemm.c — the CPU backend's one GEMM entry (row-major
 * C = α·op(A)·op(B) + β·C): OpenBLAS's sgemm as it comes, or, in the
 * deterministic mode (WB_DETERMINISTIC=1, wb_cpu_set_deterministic), a
 * split of C into pieces fixed by the shape alone, each computed by a
 * one-thread sgemm. cpu_gemm (kernels/cpu/cpu_backend.c) and the batched
 * GEMM of the convolutions (kernels/cpu/cpu_conv.c) both come here.
 *
 * Why a mode at all (issue 10, defect 4): OpenBLAS cuts a threaded sgemm
 * into one block of C per thread, and the value of an element depends on
 * where the block edges fall (the same GEMM at one thread, computed as
 * 64-row blocks, differs from one call in 2051 of its 32768 elements) —
 * measured on OpenBLAS 0.3.21, Haswell kernels: 256×128×34, the MLP's
 * first layer at batch 256, differs in 3480 of 32768 elements between 1
 * and 2 threads, 256×128×128 in 4057; no GEMM at or below 2^18
 * multiply-adds differs (OpenBLAS never threads those). Over a training run those last bits grow into different
 * weights and different table numbers. The split here cuts C into pieces
 * of WB_DET_GEMM_PIECE rows (or columns, when C is wider than tall) —
 * the same pieces at every thread count — and runs each with OpenBLAS on
 * one thread: inside an OpenMP team the OpenMP build of OpenBLAS runs one
 * thread per call (omp_in_parallel), other builds are set to one thread
 * for the call. The pieces go to the run's threads, so the mode is still
 * parallel; its numbers differ from the default mode's (other edges), at
 * every thread count the same.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "wb/cpu.h"
#include "wb/tensor.h" /* wb_set_error */
#include "cpu_kernels.h"
#include "cpu_parallel.h"

/* Rows (or columns) of C per piece: a multiple of every sgemm kernel's
 * unroll, and large enough that packing stays a small share of the work. */
#define WB_DET_GEMM_PIECE 64
/* m·n·k at or below which OpenBLAS computes on the calling thread whatever
 * its thread count (interface/gemm.c: GEMM_MULTITHREAD_THRESHOLD 4 × 65536,
 * the build default): such a GEMM is thread-independent as it comes and is
 * left whole, with the default mode's numbers. (Should a build thread
 * smaller GEMMs, tests/test_cpu_threads.c's deterministic case fails.) */
#define WB_DET_GEMM_SMALL 262144.0

/* ---- the mode ------------------------------------------------------------------ */
/* -1: not decided yet (WB_DETERMINISTIC is read at the first GEMM), else 0/1.
 * Written once by the main thread (or by the setter); readers only read. */
static int det_mode = -1;

/* WB_DETERMINISTIC's value: 1 / 0, or -1 when it is none of the spellings. */
static int parse_mode(const char *v) {
    static const char *const on[] = {"1", "true", "yes", "on"}, *const off[] = {"", "0", "false", "no", "off"};
    if (!v) return 0;
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++)
        if (strcmp(v, on[i]) == 0) return 1;
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
        if (strcmp(v, off[i]) == 0) return 0;
    return -1;
}

int wb_cpu_deterministic(void) {
    if (det_mode < 0) det_mode = parse_mode(getenv("WB_DETERMINISTIC")) == 1;
    return det_mode;
}

void wb_cpu_set_deterministic(int on) { det_mode = on != 0; }

/* A misspelt WB_DETERMINISTIC must not quietly give a thread-dependent run:
 * the CPU backend's graphs check it when they are made (cpu_conv_dnnl.c's
 * conv context, which every graph gets), as WB_CONV is checked. */
int wb_cpu_check_deterministic_env(void) {
    const char *v = getenv("WB_DETERMINISTIC");
    if (parse_mode(v) >= 0) return 0;
    wb_set_error("WB_DETERMINISTIC=%s: want 1 (results independent of the thread count) or 0", v);
    return -1;
}

/* ---- the GEMMs ------------------------------------------------------------------ */
static void sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                  float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
                b, ldb, beta, c, ldc);
}

/* Piece p of the split: rows [p·P, ...) of C (and of op(A)), or columns
 * (and of op(B)). Row r of op(A) starts at a + r·lda untransposed, at
 * a + r transposed; column j of op(B) at b + j untransposed, b + j·ldb
 * transposed. */
static void det_piece(int by_rows, int p, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc) {
    int lo = p * WB_DET_GEMM_PIECE, len = by_rows ? m : n;
    int cnt = len - lo < WB_DET_GEMM_PIECE ? len - lo : WB_DET_GEMM_PIECE;
    if (by_rows)
        sgemm(ta, tb, cnt, n, k, alpha, a + (size_t)lo * (ta ? 1 : (size_t)lda), lda, b, ldb, beta,
              c + (size_t)lo * ldc, ldc);
    else
        sgemm(ta, tb, m, cnt, k, alpha, a, lda, b + (size_t)lo * (tb ? (size_t)ldb : 1), ldb, beta, c + lo, ldc);
}

static void det_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc) {
    if ((double)m * n * k <= WB_DET_GEMM_SMALL) { /* on one thread at any count: as it comes */
        sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int by_rows = m >= n, len = by_rows ? m : n;
    int pieces = (len + WB_DET_GEMM_PIECE - 1) / WB_DET_GEMM_PIECE;
    int nt = openblas_get_num_threads();
    if (nt <= 1) { /* OpenBLAS is on one thread already */
        for (int p = 0; p < pieces; p++) det_piece(by_rows, p, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#ifdef _OPENMP
    if (openblas_get_parallel() == 2) {
        /* The OpenMP OpenBLAS runs a call made inside an active team on the
         * calling thread. A team of at least two, even for one piece: a
         * team of one is not active. */
        int team = pieces < nt ? (pieces < 2 ? 2 : pieces) : nt, alone = 0;
        WB_PARALLEL(team) {
            if (wb_par_team() < 2) alone = 1; /* the runtime gave one thread (a thread limit): below */
            else
                for (int p = wb_par_thread(); p < pieces; p += wb_par_team())
                    det_piece(by_rows, p, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
        if (!alone) return;
    }
#endif
    /* pthreads OpenBLAS (or no team): one thread for these calls, then as it was */
    openblas_set_num_threads(1);
    for (int p = 0; p < pieces; p++) det_piece(by_rows, p, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    openblas_set_num_threads(nt);
}

void wb_cpu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                  float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k == 0) { /* C = beta·C, and beta = 0 clears C (even NaN), as BLAS does */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    if (wb_cpu_deterministic()) det_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
