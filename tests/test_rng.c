/* tests/test_rng.c — the Philox4x32-10 generator and the wb_rng streams:
 * known-answer vectors from Random123, the documented stream rule (key,
 * counter layout, one fresh block per call), determinism, and the
 * distributions of uniform and normal draws. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wb/tensor.h"

#define TWO_PI 6.283185307179586476925286766559

/* Known-answer vectors from Random123, tests/kat_vectors
 * (https://github.com/DEShawResearch/random123), the three "philox4x32 10"
 * lines; columns are counter[4], key[2], expected output[4]:
 *   philox4x32 10 00000000 00000000 00000000 00000000 00000000 00000000   6627e8d5 e169c58d bc57ac4c 9b00dbd8
 *   philox4x32 10 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff   408f276d 41c83b0e a20bc7c6 6d5451fd
 *   philox4x32 10 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0   d16cfe09 94fdcceb 5001e420 24126ea1
 */
static const struct {
    uint32_t ctr[4], key[2], out[4];
} KAT[] = {
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

static void test_philox_kat(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof KAT / sizeof KAT[0]; i++) {
        uint32_t out[4] = {0};
        wb_philox4x32_10(KAT[i].ctr, KAT[i].key, out);
        for (int j = 0; j < 4; j++) assert_int_equal(out[j], KAT[i].out[j]);
    }
}

/* The stream rule documented in host/core/rng.c: key = seed halves, counter =
 * (offset halves, stream halves), one fresh block per call. */
static void test_stream_layout(void **state) {
    (void)state;
    const uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
    const uint32_t key[2] = {0x89abcdef, 0x01234567};
    wb_rng rng;
    wb_rng_init(&rng, seed, stream);
    assert_int_equal(rng.offset, 0);

    uint32_t ctr[4] = {0, 0, 0x76543210, 0xfedcba98}, w[4];
    wb_philox4x32_10(ctr, key, w);
    assert_int_equal(wb_rng_u32(&rng), w[0]);
    assert_int_equal(rng.offset, 1);

    /* uniform(6): blocks 1 and 2, words (u >> 8)·2^-24; the last block's
     * unused words are dropped. */
    float u[6];
    wb_rng_uniform(&rng, u, 6);
    assert_int_equal(rng.offset, 3);
    for (int k = 0; k < 6; k++) {
        ctr[0] = (uint32_t)(1 + k / 4);
        wb_philox4x32_10(ctr, key, w);
        assert_true(u[k] == (float)(w[k % 4] >> 8) / 16777216.0f);
    }

    /* normal(3): block 3, Box–Muller on (w0, w1) and (w2, w3). */
    float z[3];
    wb_rng_normal(&rng, z, 3);
    assert_int_equal(rng.offset, 4);
    ctr[0] = 3;
    wb_philox4x32_10(ctr, key, w);
    double u1 = ((double)(w[0] >> 8) + 1.0) / 16777216.0, u2 = (double)(w[1] >> 8) / 16777216.0;
    double r = sqrt(-2.0 * log(u1));
    assert_true(fabs(z[0] - r * cos(TWO_PI * u2)) < 1e-6);
    assert_true(fabs(z[1] - r * sin(TWO_PI * u2)) < 1e-6);

    /* The offset's high half reaches counter word 1. */
    rng.offset = 0x100000002ull;
    ctr[0] = 2;
    ctr[1] = 1;
    wb_philox4x32_10(ctr, key, w);
    assert_int_equal(wb_rng_u32(&rng), w[0]);

    /* Zero-length draws consume nothing. */
    wb_rng_uniform(&rng, u, 0);
    wb_rng_normal(&rng, z, 0);
    assert_int_equal(rng.offset, 0x100000003ull);
}

static void test_determinism(void **state) {
    (void)state;
    enum { N = 1001 };
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    assert_non_null(a);
    assert_non_null(b);
    wb_rng r1, r2;

    wb_rng_init(&r1, 42, 7);
    wb_rng_init(&r2, 42, 7);
    wb_rng_normal(&r1, a, N);
    wb_rng_normal(&r2, b, N);
    assert_memory_equal(a, b, N * sizeof(float));
    wb_rng_uniform(&r1, a, N);
    wb_rng_uniform(&r2, b, N);
    assert_memory_equal(a, b, N * sizeof(float));
    assert_int_equal(r1.offset, r2.offset);
    assert_int_equal(r1.offset, 2 * ((N + 3) / 4));

    /* Another stream, another seed, the high halves of either: different. */
    const uint64_t other[][2] = {{42, 8}, {43, 7}, {42, 7 | (1ull << 32)}, {42 | (1ull << 32), 7}};
    wb_rng_init(&r1, 42, 7);
    wb_rng_uniform(&r1, a, N);
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        wb_rng_init(&r2, other[k][0], other[k][1]);
        wb_rng_uniform(&r2, b, N);
        int same = 0;
        for (int i = 0; i < N; i++) same += a[i] == b[i];
        assert_true(same < 10); /* 24-bit values collide rarely */
    }
    free(a);
    free(b);
}

static void test_uniform_distribution(void **state) {
    (void)state;
    const int64_t n = 1000000;
    float *x = malloc((size_t)n * sizeof(float));
    assert_non_null(x);
    wb_rng rng;
    wb_rng_init(&rng, 1234, 0);
    wb_rng_uniform(&rng, x, n);
    double s = 0, s2 = 0, lo = 1, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        assert_true(x[i] >= 0.0f && x[i] < 1.0f);
        s += x[i];
        s2 += (double)x[i] * x[i];
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    double mean = s / n, var = s2 / n - mean * mean;
    /* Standard errors: mean 2.9e-4, variance 7.5e-5; tolerances ~10 sigma. */
    assert_true(fabs(mean - 0.5) < 3e-3);
    assert_true(fabs(var - 1.0 / 12.0) < 1e-3);
    assert_true(lo < 1e-4 && hi > 1.0 - 1e-4);
    free(x);
}

static void test_normal_distribution(void **state) {
    (void)state;
    const int64_t n = 1000000;
    float *x = malloc((size_t)n * sizeof(float));
    assert_non_null(x);
    wb_rng rng;
    wb_rng_init(&rng, 99, 3);
    wb_rng_normal(&rng, x, n);
    double s = 0, s2 = 0, s4 = 0;
    int64_t within1 = 0;
    for (int64_t i = 0; i < n; i++) {
        assert_true(isfinite(x[i]));
        /* u1 ≥ 2^-24 bounds the radius by sqrt(-2 ln 2^-24) ≈ 5.77. */
        assert_true(fabsf(x[i]) < 5.8f);
        double v = x[i];
        s += v;
        s2 += v * v;
        s4 += v * v * v * v;
        within1 += fabs(v) < 1.0;
    }
    double mean = s / n, var = s2 / n - mean * mean, kurt = s4 / n;
    /* Standard errors: mean 1e-3, variance 1.4e-3, P(|z|<1) 4.7e-4, E z^4 ~1e-2. */
    assert_true(fabs(mean) < 6e-3);
    assert_true(fabs(var - 1.0) < 1e-2);
    assert_true(fabs((double)within1 / n - 0.682689) < 3e-3);
    assert_true(fabs(kurt - 3.0) < 0.1);
    free(x);
}

/* A size that is not a multiple of 4 uses part of its last block. */
static void test_normal_odd_sizes(void **state) {
    (void)state;
    wb_rng a, b;
    float x[7], y[8];
    wb_rng_init(&a, 5, 5);
    wb_rng_init(&b, 5, 5);
    wb_rng_normal(&a, x, 7);
    wb_rng_normal(&b, y, 8);
    /* Same blocks, so the 7 are a prefix of the 8. */
    assert_memory_equal(x, y, sizeof x);
    assert_int_equal(a.offset, 2);
    for (int i = 0; i < 7; i++) assert_true(isfinite(x[i]));
}

static void test_randn(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    assert_non_null(g);
    wb_rng r1, r2;
    wb_rng_init(&r1, 2024, 1);
    wb_rng_init(&r2, 2024, 1);
    const int64_t shape[2] = {5, 3};
    wb_tensor *t = wb_randn(g, &r1, 2, shape);
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 5);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 15);
    float got[15], want[15];
    assert_int_equal(wb_to_host(t, got), 0);
    wb_rng_normal(&r2, want, 15);
    assert_memory_equal(got, want, sizeof got);
    assert_int_equal(r1.offset, r2.offset);
    assert_null(wb_randn(g, NULL, 2, shape));
    wb_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_stream_layout),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_uniform_distribution),
        cmocka_unit_test(test_normal_distribution),
        cmocka_unit_test(test_normal_odd_sizes),
        cmocka_unit_test(test_randn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
