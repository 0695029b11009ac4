/* bench/mpi_allreduce.c — the bare cost of the collectives a data-parallel
 * step makes, without the training around them: for each float count on the
 * command line, MPI_Allreduce (sum, in place: reduction = fast) and
 * MPI_Allgather (reduction = deterministic gathers every shard's gradient),
 * each after an MPI_Barrier so that every rank enters together (no waiting
 * for a slower rank is counted), median of REPS calls. Built and run by
 * bench/dp_scaling.sh with mpicc (no CMake target: a benchmark, never a
 * test); it prints one line per count:
 *   MPI_COLL floats=N allreduce_ms=… allgather_ms=…
 *
 *   mpicc -O2 bench/mpi_allreduce.c -o mpi_allreduce
 *   mpirun -np 2 ./mpi_allreduce [--reps 50] N1 N2 ...
 */
#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int reps = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1) reps = 1;
            continue;
        }
        long n = atol(argv[i]);
        if (n < 1) continue;
        float *buf = calloc((size_t)n, sizeof *buf), *all = calloc((size_t)n * (size_t)size, sizeof *all);
        double *ar = malloc((size_t)reps * sizeof *ar), *ag = malloc((size_t)reps * sizeof *ag);
        if (!buf || !all || !ar || !ag) {
            fprintf(stderr, "mpi_allreduce: out of memory for %ld floats\n", n);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        for (int r = -2; r < reps; r++) { /* two calls of warm-up */
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t1 = MPI_Wtime();
            MPI_Barrier(MPI_COMM_WORLD);
            double t2 = MPI_Wtime();
            MPI_Allgather(buf, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
            double t3 = MPI_Wtime();
            if (r >= 0) {
                ar[r] = t1 - t0;
                ag[r] = t3 - t2;
            }
        }
        if (rank == 0)
            printf("MPI_COLL floats=%ld ranks=%d allreduce_ms=%.4f allgather_ms=%.4f\n", n, size, 1e3 * median(ar, reps),
                   1e3 * median(ag, reps));
        fflush(stdout);
        free(buf);
        free(all);
        free(ar);
        free(ag);
    }
    MPI_Finalize();
    return 0;
}
