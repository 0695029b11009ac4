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

#include "wb/backend.h"
#include "wb/tensor.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1  */

static inline void mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void wb_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        /* The key schedule bumps between rounds, not before the first. */
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo32(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo32(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void wb_rng_init(wb_rng *rng, uint64_t seed, uint64_t stream) {
    if (!rng) return;
    rng->seed = seed;
    rng->stream = stream;
    rng->offset = 0;
}

/* The block at rng->offset; advances the offset by one. */
static void next_block(wb_rng *rng, uint32_t w[4]) {
    const uint32_t key[2] = {(uint32_t)rng->seed, (uint32_t)(rng->seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)rng->offset, (uint32_t)(rng->offset >> 32),
                             (uint32_t)rng->stream, (uint32_t)(rng->stream >> 32)};
    wb_philox4x32_10(ctr, key, w);
    rng->offset++;
}

/* 24 bits is all a float mantissa holds, so (u >> 8)·2^-24 is exactly
 * representable and never rounds up to 1.0. */
static inline float u24_to_unit(uint32_t u) {
    return (float)(u >> 8) * (1.0f / 16777216.0f);
}

void wb_rng_uniform(wb_rng *rng, float *out, int64_t n) {
    if (!rng || !out || n <= 0) return;
    for (int64_t i = 0; i < n; i += 4) {
        uint32_t w[4];
        next_block(rng, w);
        int64_t m = n - i < 4 ? n - i : 4;
        for (int64_t j = 0; j < m; j++) out[i + j] = u24_to_unit(w[j]);
    }
}

void wb_rng_normal(wb_rng *rng, float *out, int64_t n) {
    if (!rng || !out || n <= 0) return;
    const double two_pi = 6.283185307179586476925286766559;
    const double inv24 = 1.0 / 16777216.0;
    for (int64_t i = 0; i < n; i += 4) {
        uint32_t w[4];
        next_block(rng, w);
        float z[4];
        for (int p = 0; p < 2; p++) {
            /* u1 in (0, 1]: the +1 keeps log() finite; the largest radius is
             * sqrt(-2 ln 2^-24) ≈ 5.77. */
            double u1 = ((double)(w[2 * p] >> 8) + 1.0) * inv24;
            double u2 = (double)(w[2 * p + 1] >> 8) * inv24;
            double r = sqrt(-2.0 * log(u1));
            double th = two_pi * u2;
            z[2 * p] = (float)(r * cos(th));
            z[2 * p + 1] = (float)(r * sin(th));
        }
        int64_t m = n - i < 4 ? n - i : 4;
        for (int64_t j = 0; j < m; j++) out[i + j] = z[j];
    }
}

uint32_t wb_rng_u32(wb_rng *rng) {
    if (!rng) return 0;
    uint32_t w[4];
    next_block(rng, w);
    return w[0];
}

wb_tensor *wb_randn(wb_graph *g, wb_rng *rng, int ndim, const int64_t *shape) {
    if (!g || !rng) {
        wb_set_error("wb_randn: %s is NULL", !g ? "graph" : "rng");
        return NULL;
    }
    wb_tensor *t = wb_new(g, ndim, shape);
    if (!t) return NULL; /* wb_new has set the error */
    if (t->numel == 0) return t;
    const wb_backend *be = wb_graph_backend(g);
    if (!be || !be->upload) {
        wb_set_error("wb_randn: graph backend has no upload");
        return NULL;
    }
    /* Drawn on the host so every backend produces the same numbers. */
    size_t bytes = (size_t)t->numel * sizeof(float);
    float *host = malloc(bytes);
    if (!host) {
        wb_set_error("wb_randn: out of memory for %lld floats", (long long)t->numel);
        return NULL;
    }
    wb_rng_normal(rng, host, t->numel);
    be->upload(t->data, host, bytes);
    free(host);
    return t;
}
