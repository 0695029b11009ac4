/* bench/bench_conv.c — micro-benchmark of the two CPU convolution paths
 * (host/core/ops_conv.c): im2col + OpenBLAS GEMM and the fused oneDNN kernels
 * (kernels/cpu/cpu_conv_dnnl.c), on the conv shapes of the experiments'
 * cpu-profile UNet (channels 16, multipliers 1,2,2: 16 channels at 32×32,
 * 32 at 16×16 and 8×8) at the teacher's batch 32 and the distillation's 16.
 *
 * Per shape and path: forward (with bias) and forward + backward (dx, dW,
 * db) of one wb_conv2d_ex on a graph created with WB_CONV=<path>; the two
 * paths alternate iteration by iteration (ABAB…), so a machine that is
 * busy with something else slows both alike. Reported: the median over
 * --iters after --warmup, in ms, and im2col / dnnl (> 1: oneDNN faster).
 *
 * Shape legend: x (B, Cin, H, W), W (Cout, Cin, k, k), stride 1, pad k/2.
 *
 *   bench_conv [--threads T] [--warmup W] [--iters N]
 *
 * Threads: --threads T calls openblas_set_num_threads(T); oneDNN follows
 * OpenBLAS's count. A plain executable, never a CTest test; without oneDNN
 * it says so and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wb/tensor.h"
#include "cli/process_tuning.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

typedef struct shape {
    int b, cin, cout, hw, k;
} shape;

static const shape SHAPES[] = {
    {32, 1, 16, 32, 3},  {32, 3, 16, 32, 3},  {32, 16, 16, 32, 3}, {32, 32, 32, 16, 3}, {32, 32, 32, 8, 3},
    {32, 32, 64, 16, 1}, {16, 16, 16, 32, 3}, {16, 32, 32, 16, 3}, {16, 32, 32, 8, 3},
};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))
#define MAX_ITERS 1000

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One iteration on g: fresh leaves, conv, backward; fwd and total ms. */
static int iterate(wb_graph *g, const shape *s, const float *xh, const float *wh, const float *bh, const float *sh,
                   double *fwd, double *total) {
    int pad = s->k / 2;
    int64_t xs[4] = {s->b, s->cin, s->hw, s->hw}, ws[4] = {s->cout, s->cin, s->k, s->k}, bs = s->cout;
    int64_t ys[4] = {s->b, s->cout, s->hw, s->hw};
    wb_graph_reset(g);
    wb_tensor *x = wb_leaf(g, 4, xs, xh, 1), *w = wb_leaf(g, 4, ws, wh, 1), *b = wb_leaf(g, 1, &bs, bh, 1);
    wb_tensor *seed = wb_from_host(g, 4, ys, sh);
    if (!x || !w || !b || !seed) return -1;
    double t0 = now_ms();
    wb_tensor *y = wb_conv2d_ex(g, x, w, b, 1, 1, pad, pad);
    double t1 = now_ms();
    if (!y || wb_backward(g, y, seed)) return -1;
    double t2 = now_ms();
    *fwd = t1 - t0;
    *total = t2 - t0;
    return 0;
}

static float *filled(int64_t n, float v) {
    float *p = malloc((size_t)n * sizeof *p);
    if (p)
        for (int64_t i = 0; i < n; i++) p[i] = v * (float)((i * 7919) % 13 - 6);
    return p;
}

int main(int argc, char **argv) {
    wb_process_tuning(argv); /* OMP_WAIT_POLICY, OPENBLAS_CORETYPE: as the workbench runs */
    int threads = 0, warmup = 3, iters = 15;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--warmup") == 0) warmup = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--iters") == 0) iters = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_conv [--threads T] [--warmup W] [--iters N]\n");
            return 2;
        }
    }
    if (argc % 2 == 0 || warmup < 0 || iters < 1 || iters > MAX_ITERS || threads < 0) {
        fprintf(stderr, "usage: bench_conv [--threads T] [--warmup W] [--iters N (1..%d)]\n", MAX_ITERS);
        return 2;
    }
    if (threads > 0) openblas_set_num_threads(threads);
    static const char *const path[2] = {"im2col", "dnnl"};
    wb_graph *g[2];
    for (int p = 0; p < 2; p++) {
        setenv("WB_CONV", path[p], 1);
        g[p] = wb_graph_new(wb_backend_cpu());
        if (!g[p]) {
            printf("bench_conv: %s\n", wb_last_error());
            return p == 1 ? 0 : 1; /* no oneDNN in this build: nothing to compare */
        }
    }
    printf("threads %d, median of %d after %d warm-up, ms (fwd | fwd+bwd)\n", openblas_get_num_threads(), iters,
           warmup);
    printf("%-26s %9s %9s %9s %9s %7s %7s\n", "shape", "im2col", "dnnl", "im2col", "dnnl", "fwd", "f+b");
    static double tf[2][MAX_ITERS], tt[2][MAX_ITERS];
    for (int si = 0; si < N_SHAPES; si++) {
        const shape *s = &SHAPES[si];
        int64_t nx = (int64_t)s->b * s->cin * s->hw * s->hw, nw = (int64_t)s->cout * s->cin * s->k * s->k;
        int64_t ny = (int64_t)s->b * s->cout * s->hw * s->hw;
        float *xh = filled(nx, 0.1f), *wh = filled(nw, 0.05f), *bh = filled(s->cout, 0.01f), *sh = filled(ny, 0.1f);
        if (!xh || !wh || !bh || !sh) return 1;
        for (int it = 0; it < warmup + iters; it++)
            for (int p = 0; p < 2; p++) {
                double f, t;
                if (iterate(g[p], s, xh, wh, bh, sh, &f, &t)) {
                    fprintf(stderr, "bench_conv (%s): %s\n", path[p], wb_last_error());
                    return 1;
                }
                if (it >= warmup) {
                    tf[p][it - warmup] = f;
                    tt[p][it - warmup] = t;
                }
            }
        double mf[2], mt[2];
        for (int p = 0; p < 2; p++) {
            mf[p] = median(tf[p], iters);
            mt[p] = median(tt[p], iters);
        }
        char name[64];
        snprintf(name, sizeof name, "B%d %d->%d %dx%d k%d", s->b, s->cin, s->cout, s->hw, s->hw, s->k);
        printf("%-26s %9.3f %9.3f %9.3f %9.3f %6.2fx %6.2fx\n", name, mf[0], mf[1], mt[0], mt[1], mf[0] / mf[1],
               mt[0] / mt[1]);
        fflush(stdout);
        free(xh);
        free(wh);
        free(bh);
        free(sh);
    }
    wb_graph_free(g[0]);
    wb_graph_free(g[1]);
    return 0;
}
