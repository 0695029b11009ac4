/* tests/test_memory.c — the memory guard's pieces (host/engine/memory.h):
 * WB_MEMORY_LIMIT's sizes (binary K/M/G/T, "off"; anything else refused),
 * the byte formatting of the messages, what is available (the limit when
 * set, something positive read from the system otherwise), and a check that
 * refuses 2^40 samples with the estimate and the memory available, and lets
 * them pass with the guard off. The estimates of training and sampling are
 * tested end to end in tests/lua/memory_guard.lua.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "engine/memory.h"
#include "wb/tensor.h"

static void test_parse_bytes(void **state) {
    (void)state;
    static const struct { const char *text; double bytes; } good[] = {
        {"100", 100},           {"100B", 100},           {"2K", 2048},
        {"512M", 536870912.0},  {"2G", 2147483648.0},    {"2GiB", 2147483648.0},
        {"2gb", 2147483648.0},  {"1.5T", 1649267441664.0}, {"8 G", 8589934592.0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -1;
        assert_int_equal(wb_parse_bytes(good[i].text, &v), 0);
        assert_true(v == good[i].bytes);
    }
    static const char *const bad[] = {"", "x", "-1", "2Q", "2GG", "nan", "inf", "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v;
        if (wb_parse_bytes(bad[i], &v) == 0) fail_msg("'%s' parsed as %g", bad[i], v);
    }
}

static void test_format_bytes(void **state) {
    (void)state;
    char buf[32];
    wb_format_bytes(512, buf, sizeof buf);
    assert_string_equal(buf, "512 B");
    wb_format_bytes(8.0 * 1099511627776.0, buf, sizeof buf);
    assert_string_equal(buf, "8.0 TiB");
    wb_format_bytes(22.5 * 1073741824.0, buf, sizeof buf);
    assert_string_equal(buf, "22.5 GiB");
    wb_format_bytes(758.0 * 1024, buf, sizeof buf);
    assert_string_equal(buf, "758 KiB");
}

static void test_available(void **state) {
    (void)state;
    double v = 0;
    char source[128];
    setenv("WB_MEMORY_LIMIT", "3G", 1);
    assert_int_equal(wb_memory_available(&v, source, sizeof source), 1);
    assert_true(v == 3.0 * 1073741824.0);
    assert_string_equal(source, "WB_MEMORY_LIMIT=3G");
    setenv("WB_MEMORY_LIMIT", "off", 1);
    assert_int_equal(wb_memory_available(&v, source, sizeof source), 0);
    setenv("WB_MEMORY_LIMIT", "lots", 1);
    assert_int_equal(wb_memory_available(&v, source, sizeof source), -1);
    assert_non_null(strstr(wb_last_error(), "WB_MEMORY_LIMIT=lots"));
    unsetenv("WB_MEMORY_LIMIT");
    /* Linux: MemAvailable (or a tighter limit) is always there */
    assert_int_equal(wb_memory_available(&v, source, sizeof source), 1);
    assert_true(v > 0);
    assert_true(source[0] != 0);
}

static void test_check_samples(void **state) {
    (void)state;
    unsetenv("WB_MEMORY_LIMIT");
    int64_t n = (int64_t)1 << 40;
    assert_int_equal(wb_memory_check_samples(n, 2), -1);
    const char *msg = wb_last_error();
    if (!strstr(msg, "needs ~8.0 TiB for the output alone (1099511627776 × 2 floats)") || !strstr(msg, "available ("))
        fail_msg("unclear message: %s", msg);
    assert_int_equal(wb_memory_check_samples(1000, 2), 0);
    setenv("WB_MEMORY_LIMIT", "1K", 1);
    assert_int_equal(wb_memory_check_samples(1000, 2), -1); /* 8000 bytes > 1 KiB */
    assert_non_null(strstr(wb_last_error(), "1.0 KiB available (WB_MEMORY_LIMIT=1K)"));
    setenv("WB_MEMORY_LIMIT", "off", 1);
    assert_int_equal(wb_memory_check_samples(n, 2), 0);
    unsetenv("WB_MEMORY_LIMIT");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_format_bytes),
        cmocka_unit_test(test_available),
        cmocka_unit_test(test_check_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
