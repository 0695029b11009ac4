/* tests/test_cpu_isa.c — the CPU backend's instruction-set builds
 * (kernels/cpu/cpu_backend.c, isa()): the AVX-512 build of the unary ops
 * gives the AVX2 build's bits, and the AVX2 build the generic build's,
 * forward and backward, for every op (ISO C: no FMA contraction, every
 * build does the same IEEE operations); the selection API names what runs,
 * refuses what the processor lacks, and WB_CPU_ISA's choice holds. Without
 * AVX-512 (or AVX2) the pairs it lacks are left out and it says so.
 *
 * Inputs: 2^24 float bit patterns, one in every 256 of the 2^32 (every
 * exponent, both signs, denormals, ±0, ±inf, NaNs), at a pseudo-random
 * offset inside each step; WB_ISA_EXHAUSTIVE=1 takes all 2^32 (forward
 * only, about a minute an op: run by hand, not by CTest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "wb/backend.h"
#include "wb/cpu.h"
#include "wb/tensor.h"

#define CHUNK ((int64_t)1 << 22)

static char initial_isa[16]; /* wb_cpu_isa() before any test set it */

static const wb_unary_op OPS[] = {WB_UNARY_SCALE,   WB_UNARY_ADD_SCALAR, WB_UNARY_EXP,        WB_UNARY_LOG,
                                  WB_UNARY_SIGMOID, WB_UNARY_SOFTPLUS,   WB_UNARY_LOGSIGMOID, WB_UNARY_SILU,
                                  WB_UNARY_TANH,    WB_UNARY_RELU,       WB_UNARY_SQUARE,     WB_UNARY_SQRT};
#define N_OPS (sizeof OPS / sizeof OPS[0])

/* Whether the processor (and build) has kernels `name`; the level stays. */
static int have_isa(const char *name) {
    char keep[16];
    snprintf(keep, sizeof keep, "%s", wb_cpu_isa());
    int ok = wb_cpu_set_isa(name) == 0;
    assert_int_equal(wb_cpu_set_isa(keep), 0);
    return ok;
}

static uint32_t mix(uint32_t v) {
    v ^= v >> 16;
    v *= 0x7feb352du;
    v ^= v >> 15;
    v *= 0x846ca68bu;
    return v ^ (v >> 16);
}

/* bits equal, or both NaN (a NaN's payload is not a result) */
static int same(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b); }

static void first_difference(const char *what, const float *x, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!same(a[i], b[i])) fail_msg("%s: differ at x = %a: %a vs %a", what, (double)x[i], (double)a[i], (double)b[i]);
}

/* One chunk of inputs, one op, kernels `lo` against kernels `hi`. */
static void compare_chunk(const wb_backend *be, wb_unary_op op, const char *lo, const char *hi, const float *x,
                          int64_t n, int backward, float *ya, float *yb, float *sig, const float *dy) {
    char what[64];
    snprintf(what, sizeof what, "unary%s op %d, %s vs %s", backward ? "_bwd" : "", (int)op, lo, hi);
    if (!backward) {
        assert_int_equal(wb_cpu_set_isa(lo), 0);
        be->unary(op, n, x, ya, 0.7f);
        assert_int_equal(wb_cpu_set_isa(hi), 0);
        be->unary(op, n, x, yb, 0.7f);
    } else {
        /* y as the graph passes it: f(x), and σ(x) for SiLU; dx starts at dy */
        assert_int_equal(wb_cpu_set_isa(lo), 0);
        be->unary(op == WB_UNARY_SILU ? WB_UNARY_SIGMOID : op, n, x, sig, 0.7f);
        memcpy(ya, dy, (size_t)n * sizeof(float));
        memcpy(yb, dy, (size_t)n * sizeof(float));
        be->unary_bwd(op, n, x, sig, dy, ya, 0.7f);
        assert_int_equal(wb_cpu_set_isa(hi), 0);
        be->unary_bwd(op, n, x, sig, dy, yb, 0.7f);
    }
    first_difference(what, x, ya, yb, n);
}

static void test_builds_give_the_same_bits(void **state) {
    (void)state;
    /* the comparison itself tells one ulp apart, and NaN from a number */
    assert_false(same(1.0f, 0x1.000002p0f));
    assert_false(same(0.0f, -0.0f));
    assert_true(same(NAN, -NAN));
    assert_false(same(NAN, 1.0f));
    const char *pairs[2][2] = {{"generic", "avx2"}, {"avx2", "avx512"}};
    int have[2];
    for (int p = 0; p < 2; p++) {
        have[p] = have_isa(pairs[p][1]);
        if (!have[p]) printf("SKIP part: no %s here, %s vs %s not compared\n", pairs[p][1], pairs[p][0], pairs[p][1]);
    }
    const wb_backend *be = wb_backend_cpu();
    int exhaustive = getenv("WB_ISA_EXHAUSTIVE") && strcmp(getenv("WB_ISA_EXHAUSTIVE"), "1") == 0;
    int64_t total = exhaustive ? (int64_t)1 << 32 : (int64_t)1 << 24;
    float *x = malloc(CHUNK * sizeof(float)), *ya = malloc(CHUNK * sizeof(float)), *yb = malloc(CHUNK * sizeof(float));
    float *sig = malloc(CHUNK * sizeof(float)), *dy = malloc(CHUNK * sizeof(float));
    assert_true(x && ya && yb && sig && dy);
    for (int64_t i = 0; i < CHUNK; i++) dy[i] = (float)((int32_t)mix((uint32_t)i * 7u + 3u)) * 0x1p-31f * 4.0f;
    for (size_t k = 0; k < N_OPS; k++)
        for (int64_t start = 0; start < total; start += CHUNK) {
            int64_t n = total - start < CHUNK ? total - start : CHUNK;
            for (int64_t i = 0; i < n; i++) {
                uint32_t bits = exhaustive ? (uint32_t)(start + i)
                                           : (uint32_t)((start + i) << 8) | (mix((uint32_t)(start + i)) & 0xffu);
                memcpy(&x[i], &bits, sizeof bits);
            }
            for (int p = 0; p < 2; p++) {
                if (!have[p]) continue;
                compare_chunk(be, OPS[k], pairs[p][0], pairs[p][1], x, n, 0, ya, yb, sig, dy);
                if (!exhaustive) compare_chunk(be, OPS[k], pairs[p][0], pairs[p][1], x, n, 1, ya, yb, sig, dy);
            }
        }
    assert_int_equal(wb_cpu_set_isa("auto"), 0);
    free(x);
    free(ya);
    free(yb);
    free(sig);
    free(dy);
}

/* The SiLU backward from a saved σ(x) is the recomputing one's bits on
 * whatever build runs here (generic included). */
static void test_silu_saved_sigmoid_same_bits(void **state) {
    (void)state;
    const wb_backend *be = wb_backend_cpu();
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    int64_t n = 1 << 20;
    float *x = malloc(n * sizeof(float)), *s = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float));
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    assert_true(x && s && dy && a && b);
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)((int32_t)mix((uint32_t)i)) * 0x1p-31f * 40.0f;
        dy[i] = (float)((int32_t)mix((uint32_t)i + 99u)) * 0x1p-31f;
    }
    for (int k = 0; k < 3; k++) {
        if (wb_cpu_set_isa(isas[k])) continue; /* not on this processor */
        be->unary(WB_UNARY_SIGMOID, n, x, s, 0.0f);
        memset(a, 0, n * sizeof(float));
        memset(b, 0, n * sizeof(float));
        be->unary_bwd(WB_UNARY_SILU, n, x, s, dy, a, 0.0f);
        be->unary_bwd(WB_UNARY_SILU, n, x, NULL, dy, b, 0.0f);
        char what[64];
        snprintf(what, sizeof what, "SiLU backward (%s), saved σ vs recomputed", isas[k]);
        first_difference(what, x, a, b, n);
    }
    assert_int_equal(wb_cpu_set_isa("auto"), 0);
    free(x);
    free(s);
    free(dy);
    free(a);
    free(b);
}

static void test_isa_api(void **state) {
    (void)state;
    assert_int_equal(wb_cpu_set_isa("auto"), 0);
    const char *best = wb_cpu_isa();
    assert_true(strcmp(best, "generic") == 0 || strcmp(best, "avx2") == 0 || strcmp(best, "avx512") == 0);
    assert_int_equal(wb_cpu_set_isa("generic"), 0);
    assert_string_equal(wb_cpu_isa(), "generic");
    assert_int_equal(wb_cpu_set_isa("avx1024"), -1);
    assert_non_null(strstr(wb_last_error(), "avx1024"));
    assert_string_equal(wb_cpu_isa(), "generic"); /* a refused name changes nothing */
    if (strcmp(best, "avx512") != 0) {
        assert_int_equal(wb_cpu_set_isa("avx512"), -1);
        assert_non_null(strstr(wb_last_error(), "at most"));
    }
    assert_int_equal(wb_cpu_set_isa("auto"), 0);
    /* WB_CPU_ISA, when the test runs under it (CTest's test_cpu_isa_env):
     * what the first kernel call chose */
    const char *expect = getenv("WB_CPU_ISA_EXPECT");
    printf("kernels at start: %s (WB_CPU_ISA=%s); best here: %s\n", initial_isa,
           getenv("WB_CPU_ISA") ? getenv("WB_CPU_ISA") : "unset", best);
    if (expect) assert_string_equal(initial_isa, expect);
    else if (!getenv("WB_CPU_ISA")) assert_string_equal(initial_isa, best);
}

int main(void) {
    snprintf(initial_isa, sizeof initial_isa, "%s", wb_cpu_isa());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_api),
        cmocka_unit_test(test_silu_saved_sigmoid_same_bits),
        cmocka_unit_test(test_builds_give_the_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
