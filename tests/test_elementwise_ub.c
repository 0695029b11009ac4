/* tests/test_elementwise_ub.c — the shared scalar math (include/wb/elementwise.h)
 * on every kind of float, built with -fsanitize=undefined
 * -fno-sanitize-recover (tests/CMakeLists.txt), so undefined behaviour — a
 * NaN converted to int, a negative value shifted — aborts the test instead
 * of passing silently (issue 10, defect 6: wb_exp_nonpos on NaN, reached by
 * SiLU and the sigmoid on NaN activations). The values are checked too:
 * NaN in, NaN out; ±inf and the denormal range give the closed forms.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wb/elementwise.h"

static void test_nan_and_inf(void **state) {
    (void)state;
    /* volatile: values the compiler cannot fold, so the checks run */
    volatile float vnan = nanf(""), vinf = INFINITY;
    const float nan_ = vnan, inf = vinf;
    assert_true(isnan(wb_exp_nonpos(nan_)));
    assert_true(isnan(wb_exp_nonpos(-nan_)));
    assert_true(isnan(wb_sigmoidf(nan_)));
    assert_true(isnan(wb_siluf(nan_)));
    assert_true(isnan(wb_logsigmoidf(nan_)));
    assert_true(wb_exp_nonpos(-inf) == 0.0f);
    assert_true(wb_sigmoidf(inf) == 1.0f);
    assert_true(wb_sigmoidf(-inf) == 0.0f);
    assert_true(wb_exp_nonpos(0.0f) == 1.0f);
}

/* Every exponent the clamp lets through, into the denormals: within 2 ulp
 * of expf (relative 1e-6 above the denormals, absolute below). */
static void test_range(void **state) {
    (void)state;
    volatile float step = 0.0137f;
    for (float x = -110.0f; x <= 0.0f; x += step) {
        float got = wb_exp_nonpos(x), want = expf(x < -104.0f ? -104.0f : x);
        if (want > 1e-37f) assert_true(fabsf(got - want) <= 2e-6f * want);
        else assert_true(fabsf(got - want) <= 1e-44f + 1e-5f * want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_nan_and_inf), cmocka_unit_test(test_range)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
