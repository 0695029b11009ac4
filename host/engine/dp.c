/* host/engine/dp.c — data-parallel shards and reductions of one training run
 * (dp.h). The arithmetic contract: what a shard contributes does not depend
 * on the number of ranks, and in deterministic mode neither does the order
 * in which contributions are added, so 1, 2 or 4 ranks give the same bits.
 */
#include "engine/dp.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wb_dp_init(wb_dp *dp, wb_comm *comm, const char *what, int64_t batch, int deterministic, int shards,
               int64_t hash_every) {
    memset(dp, 0, sizeof *dp);
    dp->comm = comm;
    dp->rank = wb_comm_rank(comm);
    dp->world = wb_comm_size(comm);
    dp->deterministic = deterministic != 0;
    dp->batch = batch;
    dp->hash_every = hash_every;
    snprintf(dp->what, sizeof dp->what, "%s", what);
    dp->shards = dp->deterministic ? shards : dp->world;
    if (dp->shards < 1 || dp->shards % dp->world != 0) {
        wb_set_error("%s: reduction = deterministic cuts the batch into shards = %d, which must be a multiple of the "
                     "%d ranks",
                     what, dp->shards, dp->world);
        return -1;
    }
    if (batch < dp->shards) {
        wb_set_error("%s: batch %lld is smaller than its %d shards (%s)", what, (long long)batch, dp->shards,
                     dp->deterministic ? "the shards option" : "one per rank");
        return -1;
    }
    dp->mine = dp->shards / dp->world;
    dp->first = dp->rank * dp->mine;
    dp->comm_seconds_at_start = wb_comm_get_stats(comm).seconds;
    return 0;
}

void wb_dp_free(wb_dp *dp) {
    free(dp->slots);
    free(dp->gathered);
    dp->slots = dp->gathered = NULL;
}

int wb_dp_active(const wb_dp *dp) { return dp->world > 1 || dp->shards > 1; }

static int64_t shard_start(const wb_dp *dp, int s) { return (int64_t)s * dp->batch / dp->shards; }

void wb_dp_rows(const wb_dp *dp, int k, int64_t *row0, int64_t *rows) {
    int s = dp->first + k;
    *row0 = shard_start(dp, s);
    *rows = shard_start(dp, s + 1) - *row0;
}

void wb_dp_rank_rows(const wb_dp *dp, int64_t *row0, int64_t *rows) {
    *row0 = shard_start(dp, dp->first);
    *rows = shard_start(dp, dp->first + dp->mine) - *row0;
}

static int64_t stores_floats(wb_params *const *stores, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        if (stores[i]) total += wb_params_numel(stores[i]);
    return total;
}

/* Room for mine (and S) slots of `floats` floats each. */
static int reserve(wb_dp *dp, int64_t floats) {
    dp->slot_floats = floats;
    if (floats <= dp->slot_cap) return 0;
    float *slots = realloc(dp->slots, (size_t)(floats * dp->mine) * sizeof(float));
    if (slots) dp->slots = slots;
    float *gathered = slots ? realloc(dp->gathered, (size_t)(floats * dp->shards) * sizeof(float)) : NULL;
    if (gathered) dp->gathered = gathered;
    if (!slots || !gathered) {
        wb_set_error("%s: out of memory for %d shards' gradients (%lld floats each)", dp->what, dp->shards,
                     (long long)floats);
        return -1;
    }
    dp->slot_cap = floats;
    return 0;
}

int wb_dp_collect(wb_dp *dp, int k, wb_params *const *stores, int n) {
    if (!dp->deterministic || !wb_dp_active(dp)) return 0;
    if (reserve(dp, stores_floats(stores, n))) return -1;
    float *slot = dp->slots + (int64_t)k * dp->slot_floats;
    for (int i = 0; i < n; i++) {
        if (!stores[i]) continue;
        int64_t m = wb_params_numel(stores[i]);
        wb_backend_download(wb_params_backend(stores[i]), slot, wb_params_grad(stores[i]), (size_t)m * sizeof(float));
        slot += m;
    }
    return 0;
}

int wb_dp_reduce(wb_dp *dp, wb_params *const *stores, int n) {
    if (!wb_dp_active(dp)) return 0;
    if (!dp->deterministic) {
        for (int i = 0; i < n; i++) {
            if (!stores[i]) continue;
            if (wb_comm_allreduce_sum(dp->comm, wb_params_backend(stores[i]), wb_params_grad(stores[i]),
                                      wb_params_numel(stores[i]))) {
                wb_set_error("%s: gradient all-reduce: %s", dp->what, wb_last_error());
                return -1;
            }
        }
        return 0;
    }
    int64_t m = dp->slot_floats;
    if (m != stores_floats(stores, n)) {
        wb_set_error("%s: gradients collected for %lld floats, reduced for %lld", dp->what, (long long)m,
                     (long long)stores_floats(stores, n));
        return -1;
    }
    if (wb_comm_allgather(dp->comm, dp->slots, (size_t)(m * dp->mine) * sizeof(float), dp->gathered)) {
        wb_set_error("%s: gradient gather: %s", dp->what, wb_last_error());
        return -1;
    }
    /* shard order, left to right: ((g0 + g1) + g2) + g3 on every rank and for any N */
    float *sum = dp->gathered;
    for (int s = 1; s < dp->shards; s++) {
        const float *g = dp->gathered + (int64_t)s * m;
        for (int64_t j = 0; j < m; j++) sum[j] += g[j];
    }
    for (int i = 0; i < n; i++) {
        if (!stores[i]) continue;
        int64_t c = wb_params_numel(stores[i]);
        wb_backend_upload(wb_params_backend(stores[i]), wb_params_grad(stores[i]), sum, (size_t)c * sizeof(float));
        sum += c;
    }
    return 0;
}

int wb_dp_sum(wb_dp *dp, const double *mine, int n, double *out) {
    if (!wb_dp_active(dp)) {
        for (int j = 0; j < n; j++) out[j] = mine[j];
        return 0;
    }
    double *all = malloc((size_t)(n * dp->shards) * sizeof *all);
    if (!all) {
        wb_set_error("%s: out of memory", dp->what);
        return -1;
    }
    if (wb_comm_allgather(dp->comm, mine, (size_t)(n * dp->mine) * sizeof *mine, all)) {
        wb_set_error("%s: reducing the logged numbers: %s", dp->what, wb_last_error());
        free(all);
        return -1;
    }
    for (int j = 0; j < n; j++) {
        double s = all[j];
        for (int k = 1; k < dp->shards; k++) s += all[(int64_t)k * n + j];
        out[j] = s;
    }
    free(all);
    return 0;
}

int wb_dp_gather_rows(wb_dp *dp, const float *mine, float *global) {
    int64_t row0, rows;
    wb_dp_rank_rows(dp, &row0, &rows);
    if (dp->world == 1) {
        if (global != mine) memmove(global, mine, (size_t)rows * sizeof *global);
        return 0;
    }
    /* ranks may differ by a row: every rank sends the largest count */
    int64_t most = 0;
    for (int r = 0; r < dp->world; r++) {
        int64_t a = shard_start(dp, r * dp->mine), b = shard_start(dp, (r + 1) * dp->mine);
        if (b - a > most) most = b - a;
    }
    float *send = calloc((size_t)most, sizeof *send), *all = malloc((size_t)(most * dp->world) * sizeof *all);
    int rc = -1;
    if (!send || !all) {
        wb_set_error("%s: out of memory", dp->what);
    } else {
        memcpy(send, mine, (size_t)rows * sizeof *send);
        if (wb_comm_allgather(dp->comm, send, (size_t)most * sizeof *send, all)) {
            wb_set_error("%s: gathering the ratio logits: %s", dp->what, wb_last_error());
        } else {
            for (int r = 0; r < dp->world; r++) {
                int64_t a = shard_start(dp, r * dp->mine), b = shard_start(dp, (r + 1) * dp->mine);
                memcpy(global + a, all + (int64_t)r * most, (size_t)(b - a) * sizeof *global);
            }
            rc = 0;
        }
    }
    free(send);
    free(all);
    return rc;
}

int wb_dp_broadcast(wb_dp *dp, wb_params *const *stores, int n) {
    if (dp->world == 1) return 0;
    for (int i = 0; i < n; i++) {
        if (!stores[i]) continue;
        if (wb_comm_broadcast(dp->comm, wb_params_backend(stores[i]), wb_params_data(stores[i]),
                              wb_params_numel(stores[i]), 0)) {
            wb_set_error("%s: broadcasting rank 0's parameters: %s", dp->what, wb_last_error());
            return -1;
        }
    }
    return 0;
}

/* FNV-1a, 64 bits, over the stores' values as bytes. */
static int hash_stores(wb_params *const *stores, int n, uint64_t *out) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        if (!stores[i]) continue;
        int64_t m = wb_params_numel(stores[i]);
        float *host = malloc((size_t)(m ? m : 1) * sizeof *host);
        if (!host) return -1;
        wb_backend_download(wb_params_backend(stores[i]), host, wb_params_data(stores[i]), (size_t)m * sizeof *host);
        const unsigned char *p = (const unsigned char *)host;
        for (size_t j = 0; j < (size_t)m * sizeof *host; j++) h = (h ^ p[j]) * 1099511628211ull;
        free(host);
    }
    *out = h;
    return 0;
}

/* WB_DP_TEST_DIVERGE=RANK:STEP (tests only): at that step that rank's first
 * parameter moves by 1e-3, as a rank whose optimiser went its own way would
 * (tests/dp/ranks_agree.sh shows the hash check stops the run). */
static void test_diverge(const wb_dp *dp, int64_t step, wb_params *const *stores, int n) {
    const char *spec = getenv("WB_DP_TEST_DIVERGE");
    int rank = -1;
    long long at = -1;
    if (!spec || sscanf(spec, "%d:%lld", &rank, &at) != 2 || rank != dp->rank || at != step || n < 1 || !stores[0])
        return;
    float v;
    const wb_backend *be = wb_params_backend(stores[0]);
    wb_backend_download(be, &v, wb_params_data(stores[0]), sizeof v);
    v += 1e-3f;
    wb_backend_upload(be, wb_params_data(stores[0]), &v, sizeof v);
}

int wb_dp_check_same(wb_dp *dp, int64_t step, wb_params *const *stores, int n) {
    test_diverge(dp, step, stores, n);
    if (dp->world == 1 || dp->hash_every <= 0 || step % dp->hash_every != 0) return 0;
    uint64_t mine = 0, *all = malloc((size_t)dp->world * sizeof *all);
    if (!all || hash_stores(stores, n, &mine)) {
        free(all);
        wb_set_error("%s step %lld: out of memory hashing the parameters", dp->what, (long long)step);
        return -1;
    }
    int rc = wb_comm_allgather(dp->comm, &mine, sizeof mine, all);
    if (rc) {
        wb_set_error("%s step %lld: comparing parameter hashes: %s", dp->what, (long long)step, wb_last_error());
    } else {
        for (int r = 1; r < dp->world; r++)
            if (all[r] != all[0]) {
                wb_set_error("%s step %lld: the parameters of rank %d differ from rank 0's (hash %016llx vs %016llx): "
                             "the ranks' optimiser steps diverged",
                             dp->what, (long long)step, r, (unsigned long long)all[r], (unsigned long long)all[0]);
                rc = -1;
                break;
            }
    }
    free(all);
    return rc;
}

int wb_dp_agree(wb_dp *dp, int *flag) {
    if (dp->world == 1) return 0;
    if (wb_comm_max_int(dp->comm, flag)) {
        wb_set_error("%s: %s", dp->what, wb_last_error());
        return -1;
    }
    return 0;
}

int wb_dp_barrier(wb_dp *dp) { return dp->world == 1 ? 0 : wb_comm_barrier(dp->comm); }

double wb_dp_comm_seconds(const wb_dp *dp) { return wb_comm_get_stats(dp->comm).seconds - dp->comm_seconds_at_start; }

int wb_dp_run_start(wb_dp *dp, wb_run *run, cJSON *root, int resume, int64_t steps, wb_start_mode *mode,
                    int64_t *step) {
    /* how the batch was reduced: config.json's "data_parallel" */
    cJSON *par = cJSON_AddObjectToObject(root, "data_parallel");
    if (!par) {
        wb_set_error("%s: out of memory", dp->what);
        return -1;
    }
    cJSON_AddNumberToObject(par, "ranks", dp->world);
    cJSON_AddStringToObject(par, "reduction", dp->deterministic ? "deterministic" : "fast");
    if (dp->deterministic) cJSON_AddNumberToObject(par, "shards", dp->shards);
    if (dp->world == 1) return wb_run_start(run, root, resume, steps, mode, step);
    int64_t mine[3] = {0, WB_START_FRESH, 0}, all[3 * 64];
    int64_t *gathered = dp->world <= 64 ? all : malloc((size_t)(3 * dp->world) * sizeof *gathered);
    if (!gathered) {
        wb_set_error("%s: out of memory", dp->what);
        return -1;
    }
    char err[1024] = "";
    if (dp->rank == 0) {
        wb_start_mode m = WB_START_FRESH;
        int64_t s = 0;
        mine[0] = wb_run_start(run, root, resume, steps, &m, &s);
        mine[1] = m;
        mine[2] = s;
        if (mine[0]) snprintf(err, sizeof err, "%s", wb_last_error());
    }
    int rc = wb_comm_allgather(dp->comm, mine, sizeof mine, gathered);
    if (rc) {
        wb_set_error("%s: agreeing on the run's start: %s", dp->what, wb_last_error());
    } else if (gathered[0]) {
        if (dp->rank == 0) wb_set_error("%s", err);
        else wb_set_error("rank 0 could not start the run in %s (its message says why)", run->dir);
        rc = -1;
    } else {
        *mode = (wb_start_mode)gathered[1];
        *step = gathered[2];
    }
    if (gathered != all) free(gathered);
    return rc;
}

int wb_dp_streams_add(wb_dp_streams *s, wb_rng *rng) {
    if (!rng) return 0;
    if (s->n >= WB_DP_MAX_STREAMS) {
        wb_set_error("data parallel: more than %d random streams in one update", WB_DP_MAX_STREAMS);
        return -1;
    }
    s->live[s->n++] = rng;
    return 0;
}

int wb_dp_streams_add_net(wb_dp_streams *s, wb_net *net) {
    if (!net || !net->desc || !net->desc->net || !net->desc->net->random_streams) return 0;
    int n = 0;
    wb_rng *streams = net->desc->net->random_streams(net->self, &n);
    for (int i = 0; i < n && streams; i++)
        if (wb_dp_streams_add(s, &streams[i])) return -1;
    return 0;
}

void wb_dp_streams_save(wb_dp_streams *s) {
    for (int i = 0; i < s->n; i++) s->saved[i] = *s->live[i];
}

void wb_dp_streams_restore(const wb_dp_streams *s) {
    for (int i = 0; i < s->n; i++) *s->live[i] = s->saved[i];
}
