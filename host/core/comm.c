/* host/core/comm.c — wb_comm (comm.h): MPI between ranks, NCCL for CUDA
 * memory, or a single rank.
 *
 * Why these engines: researchers run on clusters whose launchers (mpirun,
 * srun) and interconnects MPI already knows; NCCL is what PyTorch DDP uses
 * between GPUs. The workbench adds no transport of its own.
 *
 * Where a buffer lives decides the path of wb_comm_allreduce_sum:
 *   cpu, cuda-emu   host memory: MPI_Allreduce in place
 *   cuda            NCCL (ncclAllReduce on a stream of its own, after the
 *                   backend's sync) when built with NCCL; else download,
 *                   MPI_Allreduce, upload
 * The MPI communicator returns errors (MPI_ERRORS_RETURN) so a failing call
 * becomes a message naming it rather than an abort inside the library.
 */
#include "core/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wb/tensor.h"

#ifdef WB_HAVE_MPI
#include <mpi.h>
#endif
#ifdef WB_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

struct wb_comm {
    int rank, size;
    int mpi;             /* MPI_Init was called */
    char library[256];
    wb_comm_stats stats;
#ifdef WB_HAVE_NCCL
    int nccl_ready;
    ncclComm_t nccl;
    cudaStream_t stream;
#endif
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#ifdef WB_HAVE_MPI
/* Started by a launcher that MPI_Init can talk to. */
static int launched(void) {
    const char *force = getenv("WB_MPI");
    if (force && force[0]) return strcmp(force, "0") != 0;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}
#endif

#ifdef WB_HAVE_MPI
static int mpi_fail(const char *call, int rc) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    wb_set_error("%s failed: %s", call, text);
    return -1;
}
#endif

wb_comm *wb_comm_init(int *argc, char ***argv) {
    wb_comm *c = calloc(1, sizeof *c);
    if (!c) {
        wb_set_error("comm: out of memory");
        return NULL;
    }
    c->size = 1;
    snprintf(c->library, sizeof c->library, "none");
    (void)argc;
    (void)argv;
#ifdef WB_HAVE_MPI
    if (launched()) {
        int rc = MPI_Init(argc, argv);
        if (rc != MPI_SUCCESS) {
            mpi_fail("MPI_Init", rc);
            free(c);
            return NULL;
        }
        c->mpi = 1;
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &c->size);
        char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
        int len = 0;
        MPI_Get_library_version(version, &len);
        char *nl = strchr(version, '\n');
        if (nl) *nl = 0;
        char *comma = strchr(version, ',');
        if (comma) *comma = 0; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
        snprintf(c->library, sizeof c->library, "%s", version);
    }
#endif
#ifdef WB_HAVE_NCCL
    {
        size_t used = strlen(c->library);
        snprintf(c->library + used, sizeof c->library - used, ", NCCL %d.%d.%d", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
    }
#endif
    return c;
}

void wb_comm_finalize(wb_comm *c) {
    if (!c) return;
#ifdef WB_HAVE_NCCL
    if (c->nccl_ready) {
        ncclCommDestroy(c->nccl);
        cudaStreamDestroy(c->stream);
    }
#endif
#ifdef WB_HAVE_MPI
    if (c->mpi) MPI_Finalize();
#endif
    free(c);
}

void wb_comm_abort(wb_comm *c, int status) {
#ifdef WB_HAVE_MPI
    if (c && c->mpi && c->size > 1) MPI_Abort(MPI_COMM_WORLD, status);
#endif
    (void)c;
    (void)status;
}

int wb_comm_rank(const wb_comm *c) { return c ? c->rank : 0; }
int wb_comm_size(const wb_comm *c) { return c ? c->size : 1; }
const char *wb_comm_library(const wb_comm *c) { return c ? c->library : "none"; }
wb_comm_stats wb_comm_get_stats(const wb_comm *c) {
    wb_comm_stats none = {0, 0, 0};
    return c ? c->stats : none;
}

static int single(const wb_comm *c) { return !c || c->size <= 1; }

static void account(wb_comm *c, double t0, double bytes) {
    c->stats.seconds += now_seconds() - t0;
    c->stats.bytes += bytes;
    c->stats.calls++;
}

#ifdef WB_HAVE_MPI
static int is_cuda(const wb_backend *be) { return be && strcmp(be->name, "cuda") == 0; }
#endif

#ifdef WB_HAVE_NCCL
static int nccl_fail(const char *call, ncclResult_t rc) {
    wb_set_error("%s failed: %s", call, ncclGetErrorString(rc));
    return -1;
}

/* The NCCL communicator, made at the first CUDA reduction (the backend has
 * chosen its device by then): rank 0's unique id goes out over MPI. */
static int nccl_ready(wb_comm *c) {
    if (c->nccl_ready) return 0;
    ncclUniqueId id;
    ncclResult_t nr;
    if (c->rank == 0 && (nr = ncclGetUniqueId(&id)) != ncclSuccess) return nccl_fail("ncclGetUniqueId", nr);
    int rc = MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail("MPI_Bcast (NCCL id)", rc);
    if (cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking) != cudaSuccess) {
        wb_set_error("NCCL: cudaStreamCreateWithFlags failed");
        return -1;
    }
    if ((nr = ncclCommInitRank(&c->nccl, c->size, id, c->rank)) != ncclSuccess) return nccl_fail("ncclCommInitRank", nr);
    c->nccl_ready = 1;
    return 0;
}

static int nccl_call(wb_comm *c, const wb_backend *be, float *buf, int64_t n, int root) {
    /* the backend's queued kernels wrote buf: wait for them first */
    if (wb_backend_sync(be)) return -1;
    if (nccl_ready(c)) return -1;
    ncclResult_t nr = root < 0 ? ncclAllReduce(buf, buf, (size_t)n, ncclFloat, ncclSum, c->nccl, c->stream)
                               : ncclBroadcast(buf, buf, (size_t)n, ncclFloat, root, c->nccl, c->stream);
    if (nr != ncclSuccess) return nccl_fail(root < 0 ? "ncclAllReduce" : "ncclBroadcast", nr);
    if (cudaStreamSynchronize(c->stream) != cudaSuccess) {
        wb_set_error("NCCL: cudaStreamSynchronize failed");
        return -1;
    }
    return 0;
}
#endif

#ifdef WB_HAVE_MPI
/* MPI on host memory; buf in be's memory when be is given and not host-addressable. */
static int mpi_float_call(wb_comm *c, const wb_backend *be, float *buf, int64_t n, int root) {
    float *host = buf;
    size_t bytes = (size_t)n * sizeof(float);
    if (is_cuda(be)) {
        if (!(host = malloc(bytes ? bytes : 1))) {
            wb_set_error("comm: out of memory for %lld floats", (long long)n);
            return -1;
        }
        wb_backend_download(be, host, buf, bytes);
    }
    int rc = MPI_SUCCESS;
    const char *call = root < 0 ? "MPI_Allreduce" : "MPI_Bcast";
    for (int64_t at = 0; at < n && rc == MPI_SUCCESS;) { /* counts are int */
        int count = n - at > (1 << 30) ? (1 << 30) : (int)(n - at);
        rc = root < 0 ? MPI_Allreduce(MPI_IN_PLACE, host + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD)
                      : MPI_Bcast(host + at, count, MPI_FLOAT, root, MPI_COMM_WORLD);
        at += count;
    }
    if (host != buf) {
        if (rc == MPI_SUCCESS) wb_backend_upload(be, buf, host, bytes);
        free(host);
    }
    return rc == MPI_SUCCESS ? 0 : mpi_fail(call, rc);
}
#endif

static int float_call(wb_comm *c, const wb_backend *be, float *buf, int64_t n, int root) {
    if (single(c) || n <= 0) return 0;
    double t0 = now_seconds();
    int rc = -1;
#ifdef WB_HAVE_NCCL
    if (is_cuda(be)) rc = nccl_call(c, be, buf, n, root);
    else
#endif
#ifdef WB_HAVE_MPI
        rc = mpi_float_call(c, be, buf, n, root);
#else
    (void)be;
    (void)buf;
    (void)root;
    wb_set_error("comm: %d ranks but no MPI in this build", c->size);
#endif
    account(c, t0, (double)n * sizeof(float));
    return rc;
}

int wb_comm_allreduce_sum(wb_comm *c, const wb_backend *be, float *buf, int64_t n) {
    return float_call(c, be, buf, n, -1);
}

int wb_comm_broadcast(wb_comm *c, const wb_backend *be, float *buf, int64_t n, int root) {
    return float_call(c, be, buf, n, root < 0 ? 0 : root);
}

int wb_comm_allgather(wb_comm *c, const void *mine, size_t bytes, void *all) {
    if (single(c)) {
        if (bytes && all != mine) memmove(all, mine, bytes);
        return 0;
    }
#ifdef WB_HAVE_MPI
    if (bytes > (size_t)1 << 30) {
        wb_set_error("MPI_Allgather: %zu bytes per rank (at most 1 GiB)", bytes);
        return -1;
    }
    double t0 = now_seconds();
    int rc = MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    account(c, t0, (double)bytes);
    return rc == MPI_SUCCESS ? 0 : mpi_fail("MPI_Allgather", rc);
#else
    wb_set_error("comm: %d ranks but no MPI in this build", c->size);
    return -1;
#endif
}

int wb_comm_max_int(wb_comm *c, int *value) {
    if (single(c)) return 0;
#ifdef WB_HAVE_MPI
    double t0 = now_seconds();
    int rc = MPI_Allreduce(MPI_IN_PLACE, value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    account(c, t0, sizeof *value);
    return rc == MPI_SUCCESS ? 0 : mpi_fail("MPI_Allreduce (max)", rc);
#else
    (void)value;
    return -1;
#endif
}

int wb_comm_barrier(wb_comm *c) {
    if (single(c)) return 0;
#ifdef WB_HAVE_MPI
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail("MPI_Barrier", rc);
#else
    return -1;
#endif
}
