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

/* A draw into a new tensor of g: on the backend when it has the draw
 * kernel (the same Philox rule, so the same numbers as wb_rng_normal /
 * wb_rng_uniform on the host, and no transfer), else drawn on the host and
 * uploaded. */
static wb_tensor *draw_tensor(wb_graph *g, wb_rng *rng, int normal, int ndim, const int64_t *shape) {
    const char *op = normal ? "wb_randn" : "wb_rand_uniform";
    if (!g || !rng) {
        wb_set_error("%s: %s is NULL", op, !g ? "graph" : "rng");
        return NULL;
    }
    wb_tensor *t = wb_new(g, ndim, shape);
    if (!t) return NULL; /* wb_new has set the error */
    if (t->numel == 0) return t;
    const wb_backend *be = wb_graph_backend(g);
    void (*kernel)(uint64_t, uint64_t, uint64_t, int64_t, float *) = normal ? be->rng_normal : be->rng_uniform;
    if (kernel) {
        kernel(rng->seed, rng->stream, rng->offset, t->numel, t->data);
        rng->offset += blocks_for(t->numel);
        return t;
    }
    size_t bytes = (size_t)t->numel * sizeof(float);
    float *host = malloc(bytes);
    if (!host) {
        wb_set_error("%s: out of memory for %lld floats", op, (long long)t->numel);
        return NULL;
    }
    if (normal) wb_rng_normal(rng, host, t->numel);
    else wb_rng_uniform(rng, host, t->numel);
    wb_backend_upload(be, t->data, host, bytes);
    free(host);
    return t;
}

wb_tensor *wb_randn(wb_graph *g, wb_rng *rng, int ndim, const int64_t *shape) {
    return draw_tensor(g, rng, 1, ndim, shape);
}

wb_tensor *wb_rand_uniform(wb_graph *g, wb_rng *rng, int ndim, const int64_t *shape) {
    return draw_tensor(g, rng, 0, ndim, shape);
}
