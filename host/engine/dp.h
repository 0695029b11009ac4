/* host/engine/dp.h — data parallelism for one training run: how the global
 * batch is cut into shards, which shards this rank computes, and how their
 * gradients and logged numbers are reduced (host/core/comm.h carries them).
 *
 *   global batch B  = shards 0 .. S-1, shard s = rows [s·B/S, (s+1)·B/S)
 *   fast            S = ranks, rank r computes shard r; gradients summed by
 *                   one all-reduce per parameter store (MPI / NCCL order)
 *   deterministic   S fixed (the `shards` option, a multiple of the ranks);
 *                   rank r computes shards [r·S/N, (r+1)·S/N) one after the
 *                   other, every shard's gradient is gathered and summed in
 *                   shard order — the same floating-point sums whatever N
 *
 * A shard draws its rows of the global batch's random numbers (the graph's
 * row window, wb_graph_set_rows), and its loss is its mean times rows/B, so
 * the sum over shards is the global batch's gradient. With one rank and
 * fast reduction nothing here does anything: the single-process numbers.
 * Engine-private.
 */
#ifndef WB_DP_H
#define WB_DP_H

#include <stdint.h>

#include "core/comm.h"
#include "engine/train_state.h"
#include "wb/tensor.h"

typedef struct wb_dp {
    wb_comm *comm;          /* NULL: one rank */
    int rank, world;
    int deterministic;      /* fixed-order reduction over `shards` */
    int shards;             /* S */
    int first, mine;        /* this rank's shards: [first, first + mine) */
    int64_t batch;          /* B, the global batch */
    int64_t hash_every;     /* compare a parameter hash across ranks every this many steps (0: never) */
    char what[32];          /* "teacher", "distill": messages */
    float *slots;           /* deterministic: mine × slot_floats gradients (host) */
    float *gathered;        /* S × slot_floats */
    int64_t slot_floats;
    int64_t slot_cap;
    double comm_seconds_at_start;
} wb_dp;

/* 0, or -1 with the error set (shards not a multiple of the ranks, batch
 * smaller than the shards). reduction: 0 fast, 1 deterministic. */
int wb_dp_init(wb_dp *dp, wb_comm *comm, const char *what, int64_t batch, int deterministic, int shards,
               int64_t hash_every);
void wb_dp_free(wb_dp *dp);
/* Anything to do: more than one rank or more than one shard. */
int wb_dp_active(const wb_dp *dp);
/* Global rows of this rank's k-th shard (0 <= k < dp->mine). */
void wb_dp_rows(const wb_dp *dp, int k, int64_t *row0, int64_t *rows);
/* This rank's rows over all its shards, and the first of them. */
void wb_dp_rank_rows(const wb_dp *dp, int64_t *row0, int64_t *rows);

/* After shard k's backward: keep the gradients of the n stores (deterministic
 * mode; nothing in fast mode). */
int wb_dp_collect(wb_dp *dp, int k, wb_params *const *stores, int n);
/* The stores' gradients := the sum over every shard of every rank. */
int wb_dp_reduce(wb_dp *dp, wb_params *const *stores, int n);
/* out[j] := Σ over all shards in shard order of mine[k·n + j] (this rank's
 * shard k's value j): the logged numbers of a step. */
int wb_dp_sum(wb_dp *dp, const double *mine, int n, double *out);
/* global (B floats) := every shard's per-row values, mine holding this
 * rank's rows in order (the ratio logits of a generator update). */
int wb_dp_gather_rows(wb_dp *dp, const float *mine, float *global);
/* Rank 0's values of the stores on every rank (the start of a run). */
int wb_dp_broadcast(wb_dp *dp, wb_params *const *stores, int n);
/* Every hash_every steps: the stores' values hashed on each rank and
 * compared; a difference is an error naming the step and the ranks. */
int wb_dp_check_same(wb_dp *dp, int64_t step, wb_params *const *stores, int n);
/* *flag := the largest over ranks (a stop request seen by any rank stops
 * every rank at the same step). */
int wb_dp_agree(wb_dp *dp, int *flag);
/* The run's start, decided by rank 0 (wb_run_start: fresh, continue,
 * done; it alone touches the directory) and taken by every rank, which
 * then loads the same checkpoint. root gains "data_parallel": ranks,
 * reduction, shards (a resume on another number of ranks is warned about,
 * not refused; another reduction is refused). */
int wb_dp_run_start(wb_dp *dp, wb_run *run, struct cJSON *root, int resume, int64_t steps, wb_start_mode *mode,
                    int64_t *step);
/* The random streams one update draws from: saved before its first shard
 * and restored before each further one, so every shard of a rank starts
 * from the update's position (each shard's draws move a stream past the
 * whole batch's numbers). */
#define WB_DP_MAX_STREAMS 32
typedef struct wb_dp_streams {
    wb_rng *live[WB_DP_MAX_STREAMS];
    wb_rng saved[WB_DP_MAX_STREAMS];
    int n;
} wb_dp_streams;
int wb_dp_streams_add(wb_dp_streams *s, wb_rng *rng);
int wb_dp_streams_add_net(wb_dp_streams *s, wb_net *net); /* a net's own (dropout) streams */
void wb_dp_streams_save(wb_dp_streams *s);
void wb_dp_streams_restore(const wb_dp_streams *s);
/* Every rank has got here (a stop: rank 0's checkpoint is written). */
int wb_dp_barrier(wb_dp *dp);
/* Seconds spent in communication since wb_dp_init. */
double wb_dp_comm_seconds(const wb_dp *dp);

#endif
