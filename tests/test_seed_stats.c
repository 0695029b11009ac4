/* tests/test_seed_stats.c — the statistics of the multi-seed tables
 * (host/report/seed_stats.c) against scipy: the incomplete beta function,
 * Student's t CDF and quantiles, the 95 % interval of a mean and the paired
 * t-test. The reference values were printed by scipy 1.10 (Debian 12):
 *   special.betainc(a, b, x), stats.t.cdf(t, df), stats.t.ppf(p, df),
 *   stats.ttest_rel(a, b)
 * and are pinned here so the test runs without Python; where /usr/bin/python3
 * has scipy, random cases are also compared live (test_live_scipy).
 * Quantiles are compared at 1e-9 relative: scipy's own stdtrit is off by
 * ~1e-10 (our CDF at its ppf(0.6, 3) is 0.59999999999; its betainc agrees
 * with ours to 1e-16).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "report/seed_stats.h"

static void close_rel(double got, double want, double rel) {
    if (!(fabs(got - want) <= rel * fabs(want) + 1e-300)) {
        fail_msg("got %.17g, want %.17g (rel %.3g)", got, want, fabs(got - want) / fabs(want));
    }
}

static void test_betainc(void **state) {
    (void)state;
    static const double cases[][4] = {
        {1, 0.5, 0.3, 0.16333997346592449},     {2.5, 0.5, 0.9, 0.48958974456442739},
        {10, 0.5, 0.01, 1.7700349655285743e-21}, {0.5, 0.5, 0.5, 0.50000000000000011},
        {50, 0.5, 0.999, 0.75236901996537675},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        close_rel(wb_betainc(cases[i][0], cases[i][1], cases[i][2]), cases[i][3], 1e-12);
    assert_true(isnan(wb_betainc(-1, 1, 0.5)));
    assert_true(isnan(wb_betainc(1, 1, 1.5)));
    assert_true(wb_betainc(2, 3, 0) == 0 && wb_betainc(2, 3, 1) == 1);
}

static void test_t_cdf_and_quantile(void **state) {
    (void)state;
    static const double cdf[][3] = {
        {0.5, 2, 0.66666666666666674},   {-4.3026527299112747, 2, 0.024999999998258315},
        {2, 1, 0.85241638234956674},     {12.706, 1, 0.97499959882093334},
        {1.5, 9, 0.91607467197146264},   {-0.1, 30, 0.46050480589513554},
        {30, 2, 0.99944536865902023},    {-8, 4, 0.00066194845460858384},
    };
    for (size_t i = 0; i < sizeof cdf / sizeof cdf[0]; i++) close_rel(wb_t_cdf(cdf[i][0], cdf[i][1]), cdf[i][2], 1e-11);
    static const double ppf[][3] = {
        {0.975, 1, 12.706204736432095}, {0.975, 2, 4.3026527299112747}, {0.975, 4, 2.7764451051977987},
        {0.975, 9, 2.2621571627409915}, {0.995, 2, 9.9248432009180707}, {0.6, 3, 0.27667066230490933},
    };
    for (size_t i = 0; i < sizeof ppf / sizeof ppf[0]; i++) {
        close_rel(wb_t_quantile(ppf[i][0], ppf[i][1]), ppf[i][2], 1e-9);
        close_rel(wb_t_quantile(1 - ppf[i][0], ppf[i][1]), -ppf[i][2], 1e-9);
    }
    assert_true(wb_t_cdf(INFINITY, 3) == 1 && wb_t_cdf(-INFINITY, 3) == 0);
    assert_true(isnan(wb_t_quantile(0, 3)) && isnan(wb_t_quantile(0.5, 0)));
}

static void test_summary(void **state) {
    (void)state;
    const double x[] = {0.0829, 0.0911, 0.0765};
    wb_summary s;
    wb_summarize(x, 3, 0.95, &s);
    assert_int_equal(s.n, 3);
    close_rel(s.mean, 0.083500000000000005, 1e-14);
    close_rel(s.std, 0.0073184697854127958, 1e-12);
    close_rel(s.lo, 0.065319913213067016, 1e-9);
    close_rel(s.hi, 0.10168008678693299, 1e-9);
    wb_summarize(x, 1, 0.95, &s); /* one seed: a value, no spread */
    assert_true(s.mean == 0.0829 && isnan(s.std) && isnan(s.lo) && isnan(s.hi));
}

static void test_paired(void **state) {
    (void)state;
    const double a[] = {0.10, 0.12, 0.09}, b[] = {0.0829, 0.0911, 0.0765};
    wb_paired r;
    wb_paired_t(a, b, 3, &r);
    close_rel(r.t, 4.2643839188703501, 1e-11);
    close_rel(r.p, 0.050833852307539173, 1e-9);
    const double c[] = {0.30, 0.25, 0.41, 0.33}, d[] = {0.29, 0.27, 0.38, 0.35};
    wb_paired_t(c, d, 4, &r); /* differences sum to zero: t = 0, p = 1 */
    assert_true(fabs(r.t) < 1e-12);
    close_rel(r.p, 1.0, 1e-12);
    /* the same difference on every seed (a count, say 8 vs 7 modes): p = 0 */
    const double e[] = {8, 8, 8}, f[] = {7, 7, 7};
    wb_paired_t(e, f, 3, &r);
    assert_true(r.p == 0 && isinf(r.t) && r.t > 0);
    wb_paired_t(e, e, 3, &r);
    assert_true(r.p == 1 && r.t == 0);
    wb_paired_t(a, b, 1, &r); /* one pair: no test */
    assert_true(isnan(r.p));
}

/* Random cases against scipy itself, when the system Python has it. */
static void test_live_scipy(void **state) {
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s -c \"import scipy.stats as s, numpy as n\n"
             "r = n.random.default_rng(7)\n"
             "for i in range(40):\n"
             "  df = float(r.integers(1, 40)); t = float(r.normal() * 4); p = float(r.uniform(0.01, 0.99))\n"
             "  print(repr(df), repr(t), repr(float(s.t.cdf(t, df))), repr(p), repr(float(s.t.ppf(p, df))))\n\" "
             "2>/dev/null",
             WB_TEST_PYTHON);
    FILE *py = popen(cmd, "r");
    if (!py) skip();
    double df, t, cdf, p, q;
    int n = 0;
    while (fscanf(py, "%lf %lf %lf %lf %lf", &df, &t, &cdf, &p, &q) == 5) {
        close_rel(wb_t_cdf(t, df), cdf, 1e-10);
        close_rel(wb_t_quantile(p, df), q, 1e-8);
        n++;
    }
    int rc = pclose(py);
    if (n == 0 || rc != 0) {
        printf("SKIP: %s has no scipy\n", WB_TEST_PYTHON);
        skip();
    }
    assert_int_equal(n, 40);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_betainc),  cmocka_unit_test(test_t_cdf_and_quantile), cmocka_unit_test(test_summary),
        cmocka_unit_test(test_paired),   cmocka_unit_test(test_live_scipy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
