/* host/core/rng.c — the counter-based random number generator of libwb:
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 * easy as 1, 2, 3", SC'11; the Random123 library), and the wb_rng streams
 * built on it (uniform, normal, raw u32, and wb_randn for graph tensors).
 *
 * Why counter-based: a number is a pure function of (seed, stream, position),
 * so a run can be replayed or resumed from a recorded offset, and separate
 * consumers (init, noise, data) get independent streams without sharing state.
 *
 * The stream rule (exact, so results are reproducible across versions):
 *   key     = (seed & 0xffffffff, seed >> 32)
 *   counter = (offset & 0xffffffff, offset >> 32, stream & 0xffffffff, stream >> 32)
 *   Each block yields 4 u32 words w[0..3]. Every call (uniform, normal, u32)
 *   starts at a fresh block — the one at rng->offset — and advances
 *   rng->offset by the number of blocks it used; unused words of its last
 *   block are discarded. So the numbers depend on how draws are chunked:
 *   uniform(3) then uniform(3) differs from uniform(6) (chunks that are
 *   multiples of 4 do agree). The seed, the stream and the sequence of calls
 *   with their sizes fix every number.
 *   - uniform: block k gives out[4k+j] = (w[j] >> 8) · 2^-24, in [0, 1).
 *   - normal:  block k gives out[4k..4k+3] from two Box–Muller pairs:
 *       pair p uses (a, b) = (w[2p], w[2p+1]),
 *       u1 = ((a >> 8) + 1) · 2^-24 in (0, 1]   (never log 0),
 *       u2 = (b >> 8) · 2^-24 in [0, 1),
 *       r = sqrt(-2 ln u1), out = r·cos(2π u2), r·sin(2π u2)
 *     computed in double and rounded to float.
 *   - u32: one block per call, returns w[0].
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"
#include "philox.h"
#include "wb/backend.h"
#include "wb/tensor.h"

void wb_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    wb_philox_rounds(counter, key, out);
}

void wb_rng_init(wb_rng *rng, uint64_t seed, uint64_t stream) {
    if (!rng) return;
    rng->seed = seed;
    rng->stream = stream;
    rng->offset = 0;
}

/* The block at rng->offset; advances the offset by one. */
static void next_block(wb_rng *rng, uint32_t w[4]) {
    wb_philox_block(rng->seed, rng->stream, rng->offset, w);
    rng->offset++;
}

/* Blocks a draw of n numbers uses: every call starts at a fresh block. */
static uint64_t blocks_for(int64_t n) { return (uint64_t)((n + 3) / 4); }

void wb_rng_uniform(wb_rng *rng, float *out, int64_t n) {
    if (!rng || !out || n <= 0) return;
    wb_philox_fill(0, rng->seed, rng->stream, rng->offset, n, out);
    rng->offset += blocks_for(n);
}

void wb_rng_normal(wb_rng *rng, float *out, int64_t n) {
    if (!rng || !out || n <= 0) return;
    wb_philox_fill(1, rng->seed, rng->stream, rng->offset, n, out);
    rng->offset += blocks_for(n);
}

uint32_t wb_rng_u32(wb_rng *rng) {
    if (!rng) return 0;
    uint32_t w[4];
    next_block(rng, w);
    return w[0];
}

void wb_rng_skip(wb_rng *rng, int64_t n) {
    if (rng && n > 0) rng->offset += blocks_for(n);
}

/* Element `first` of a draw is word first % 4 of block offset + first / 4:
 * a draw that starts mid-block makes its first block whole and drops the
 * leading words. */
void wb_rng_fill_at(const wb_rng *rng, int normal, int64_t first, int64_t n, float *out) {
    if (!rng || !out || n <= 0 || first < 0) return;
    uint64_t block = rng->offset + (uint64_t)(first / 4);
    int64_t lead = first % 4;
    if (lead == 0) {
        wb_philox_fill(normal, rng->seed, rng->stream, block, n, out);
        return;
    }
    float head[4];
    wb_philox_fill(normal, rng->seed, rng->stream, block, 4, head);
    int64_t m = 4 - lead < n ? 4 - lead : n;
    memcpy(out, head + lead, (size_t)m * sizeof *out);
    if (n > m) wb_philox_fill(normal, rng->seed, rng->stream, block + 1, n - m, out + m);
}

/* Numbers [first, first + numel) of the draw at rng's position into t: on
 * the backend when it has the draw kernel (a mid-block start draws into a
 * scratch tensor of g and copies), else on the host and uploaded. */
static int fill_tensor_at(wb_graph *g, const wb_rng *rng, int normal, int64_t first, wb_tensor *t, const char *op) {
    const wb_backend *be = wb_graph_backend(g);
    void (*kernel)(uint64_t, uint64_t, uint64_t, int64_t, float *) = normal ? be->rng_normal : be->rng_uniform;
    uint64_t block = rng->offset + (uint64_t)(first / 4);
    int64_t lead = first % 4;
    if (kernel && lead == 0) {
        kernel(rng->seed, rng->stream, block, t->numel, t->data);
        return 0;
    }
    if (kernel && be->copy) {
        int64_t n = t->numel + lead;
        wb_tensor *scratch = wb_new(g, 1, &n);
        if (!scratch) return -1;
        kernel(rng->seed, rng->stream, block, n, scratch->data);
        be->copy(t->data, scratch->data + lead, (size_t)t->numel * sizeof(float));
        return 0;
    }
    size_t bytes = (size_t)t->numel * sizeof(float);
    float *host = malloc(bytes);
    if (!host) {
        wb_set_error("%s: out of memory for %lld floats", op, (long long)t->numel);
        return -1;
    }
    wb_rng_fill_at(rng, normal, first, t->numel, host);
    wb_backend_upload(be, t->data, host, bytes);
    free(host);
    return 0;
}

wb_tensor *wb_rand_rows(wb_graph *g, const wb_rng *rng, int normal, int ndim, const int64_t *global_shape, int64_t row0,
                        int64_t rows) {
    const char *op = normal ? "wb_randn" : "wb_rand_uniform";
    if (!g || !rng || !global_shape || ndim < 1 || ndim > WB_MAX_DIMS) {
        wb_set_error("%s rows: %s", op, !g ? "graph is NULL" : !rng ? "rng is NULL" : "bad shape");
        return NULL;
    }
    if (row0 < 0 || rows < 0 || row0 + rows > global_shape[0]) {
        wb_set_error("%s rows: rows [%lld, %lld) outside a draw of %lld rows", op, (long long)row0,
                     (long long)(row0 + rows), (long long)global_shape[0]);
        return NULL;
    }
    int64_t shape[WB_MAX_DIMS], row_elems = 1;
    for (int i = 0; i < ndim; i++) shape[i] = global_shape[i];
    for (int i = 1; i < ndim; i++) row_elems *= shape[i];
    shape[0] = rows;
    wb_tensor *t = wb_new(g, ndim, shape);
    if (!t) return NULL;
    if (t->numel == 0) return t;
    return fill_tensor_at(g, rng, normal, row0 * row_elems, t, op) ? NULL : t;
}

int wb_graph_set_rows(wb_graph *g, int64_t global_rows, int64_t row0, int64_t rows) {
    if (!g) return -1;
    if (global_rows < 0 || row0 < 0 || rows < 0 || (global_rows > 0 && (rows < 1 || row0 + rows > global_rows))) {
        wb_set_error("wb_graph_set_rows: rows [%lld, %lld) of %lld", (long long)row0, (long long)(row0 + rows),
                     (long long)global_rows);
        return -1;
    }
    int whole = global_rows == 0 || (row0 == 0 && rows == global_rows);
    g->win_global = whole ? 0 : global_rows;
    g->win_row0 = whole ? 0 : row0;
    g->win_rows = whole ? 0 : rows;
    return 0;
}

/* A draw into a new tensor of g: on the backend when it has the draw
 * kernel (the same Philox rule, so the same numbers as wb_rng_normal /
 * wb_rng_uniform on the host, and no transfer), else drawn on the host and
 * uploaded. Under a row window (wb_graph_set_rows) a draw of the window's
 * rows is that slice of the global draw, and the stream moves past all of it. */
static wb_tensor *draw_tensor(wb_graph *g, wb_rng *rng, int normal, int ndim, const int64_t *shape) {
    const char *op = normal ? "wb_randn" : "wb_rand_uniform";
    if (!g || !rng) {
        wb_set_error("%s: %s is NULL", op, !g ? "graph" : "rng");
        return NULL;
    }
    if (g->win_global > 0 && ndim >= 1 && ndim <= WB_MAX_DIMS && shape[0] == g->win_rows) {
        int64_t global[WB_MAX_DIMS];
        for (int i = 0; i < ndim; i++) global[i] = shape[i];
        global[0] = g->win_global;
        wb_tensor *t = wb_rand_rows(g, rng, normal, ndim, global, g->win_row0, g->win_rows);
        if (t) wb_rng_skip(rng, t->numel / g->win_rows * g->win_global);
        return t;
    }
    wb_tensor *t = wb_new(g, ndim, shape);
    if (!t) return NULL; /* wb_new has set the error */
    if (t->numel == 0) return t;
    if (fill_tensor_at(g, rng, normal, 0, t, op)) return NULL;
    rng->offset += blocks_for(t->numel);
    return t;
}

wb_tensor *wb_randn(wb_graph *g, wb_rng *rng, int ndim, const int64_t *shape) {
    return draw_tensor(g, rng, 1, ndim, shape);
}

wb_tensor *wb_rand_uniform(wb_graph *g, wb_rng *rng, int ndim, const int64_t *shape) {
    return draw_tensor(g, rng, 0, ndim, shape);
}
