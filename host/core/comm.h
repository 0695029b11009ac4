/* host/core/comm.h — the process's communicator for data-parallel training:
 * MPI (Debian's Open MPI) between ranks, NCCL for gradients that live on a
 * CUDA device, or a single rank when the workbench runs alone.
 *
 * One wb_comm per process, made by the executable (host/cli/main.c) before
 * anything else and handed down: the Lua binding reads rank and size from
 * it, the engine (host/engine/dp.c) reduces gradients and broadcasts
 * parameters through it. Every call is collective: all ranks make the same
 * calls in the same order. Errors return -1 with wb_last_error() naming the
 * call; a rank that dies is noticed by the launcher (mpirun / srun), which
 * ends the others (docs/DESIGN.md, "Ranks, seeds and writes").
 *
 * Built without MPI (-DWB_MPI=OFF, or libopenmpi-dev missing), or started
 * without a launcher, the communicator is one rank and every call is a copy
 * or nothing.
 */
#ifndef WB_COMM_H
#define WB_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "wb/backend.h"

typedef struct wb_comm wb_comm;

/* What a communicator has done so far: for benches and progress lines. */
typedef struct wb_comm_stats {
    double seconds;   /* wall time inside collective calls */
    double bytes;     /* payload this rank sent into them */
    int64_t calls;
} wb_comm_stats;

/* MPI_Init when this build has MPI and the process was started by a launcher
 * (Open MPI's mpirun, PMIx/PMI: srun) or WB_MPI=1; else one rank. NULL only
 * on out-of-memory or a failing MPI_Init (message in wb_last_error()). */
wb_comm *wb_comm_init(int *argc, char ***argv);
/* MPI_Finalize (a barrier first) and free. */
void wb_comm_finalize(wb_comm *comm);
/* End every rank now (MPI_Abort), for an error that one rank alone sees;
 * returns only for a single rank. */
void wb_comm_abort(wb_comm *comm, int status);

int wb_comm_rank(const wb_comm *comm);   /* 0 for NULL */
int wb_comm_size(const wb_comm *comm);   /* 1 for NULL */
/* "none", or the MPI library's version line (+ ", NCCL x.y.z" when built). */
const char *wb_comm_library(const wb_comm *comm);
wb_comm_stats wb_comm_get_stats(const wb_comm *comm);

/* buf (n floats in be's memory) := the sum over ranks, the same on every
 * rank. CUDA memory goes through NCCL when built, else through the host. */
int wb_comm_allreduce_sum(wb_comm *comm, const wb_backend *be, float *buf, int64_t n);
/* buf (n floats in be's memory) := rank root's. */
int wb_comm_broadcast(wb_comm *comm, const wb_backend *be, float *buf, int64_t n, int root);
/* Host memory: every rank gives `bytes` bytes, all receives size·bytes in
 * rank order. */
int wb_comm_allgather(wb_comm *comm, const void *mine, size_t bytes, void *all);
/* Host memory: *value := the largest over ranks (stop requests). */
int wb_comm_max_int(wb_comm *comm, int *value);
int wb_comm_barrier(wb_comm *comm);

#endif
