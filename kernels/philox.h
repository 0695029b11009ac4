/* kernels/philox.h — Philox4x32-10 and the two block rules of wb_rng
 * (uniform and Box–Muller normal), as static inline functions so that the
 * host generator (host/core/rng.c) and every backend's draw kernels compute
 * exactly the same numbers from (seed, stream, block offset). The stream rule
 * itself is documented at the top of host/core/rng.c.
 *
 * WB_PHILOX_FN lets a device compiler mark these __host__ __device__.
 */
#ifndef WB_PHILOX_H
#define WB_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifndef WB_PHILOX_FN
#define WB_PHILOX_FN static inline
#endif

#define WB_PHILOX_M0 0xD2511F53u
#define WB_PHILOX_M1 0xCD9E8D57u
#define WB_PHILOX_W0 0x9E3779B9u /* golden ratio */
#define WB_PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1  */

WB_PHILOX_FN void wb_philox_rounds(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        /* The key schedule bumps between rounds, not before the first. */
        if (round > 0) {
            k0 += WB_PHILOX_W0;
            k1 += WB_PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)WB_PHILOX_M0 * (uint64_t)c0, p1 = (uint64_t)WB_PHILOX_M1 * (uint64_t)c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0, hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
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

/* The block at `offset` of (seed, stream). */
WB_PHILOX_FN void wb_philox_block(uint64_t seed, uint64_t stream, uint64_t offset, uint32_t w[4]) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)offset, (uint32_t)(offset >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    wb_philox_rounds(ctr, key, w);
}

/* 24 bits is all a float mantissa holds, so (u >> 8)·2^-24 is exactly
 * representable and never rounds up to 1.0. */
WB_PHILOX_FN void wb_philox_uniform4(const uint32_t w[4], float out[4]) {
    for (int j = 0; j < 4; j++) out[j] = (float)(w[j] >> 8) * (1.0f / 16777216.0f);
}

/* Two Box–Muller pairs from one block, in double, rounded to float. */
WB_PHILOX_FN void wb_philox_normal4(const uint32_t w[4], float z[4]) {
    const double two_pi = 6.283185307179586476925286766559;
    const double inv24 = 1.0 / 16777216.0;
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
}

/* n floats from the blocks offset, offset + 1, ... (ceil(n/4) blocks; the
 * unused words of the last block are dropped, as wb_rng does). */
WB_PHILOX_FN void wb_philox_fill(int normal, uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i += 4) {
        uint32_t w[4];
        float v[4];
        wb_philox_block(seed, stream, offset + (uint64_t)(i / 4), w);
        if (normal) wb_philox_normal4(w, v);
        else wb_philox_uniform4(w, v);
        int64_t m = n - i < 4 ? n - i : 4;
        for (int64_t j = 0; j < m; j++) out[i + j] = v[j];
    }
}

#endif
