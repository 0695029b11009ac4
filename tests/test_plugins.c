/* test_plugins.c — the plugin registry (host/core/registry.c) as a host sees it:
 * discovery of the build's plugin folders, validation of broken libraries
 * (the fixtures in <build>/test_fixtures), and resolved configurations.
 *
 * What is checked:
 *   - the build's plugin folder yields exactly the 19 shipped plugins (14
 *     divergences, classifier, gan-head, mlp, unet), each findable by kind and
 *     name, with no errors; loading the folder again adds nothing;
 *   - every fixture is rejected, and the message (wb_last_error() and the
 *     registry's error list) names the file and the reason: ABI 999 vs 1, a
 *     missing entry symbol, a NULL required 'weights', a duplicate 'kl'
 *     naming the library that registered it first; after all that the 19
 *     good plugins are still there and work (kl's weights are called);
 *   - a folder mixing good and bad libraries, plus a non-ELF *.so, a non-.so
 *     file and a library two levels deep: the return value counts exactly the
 *     accepted libraries, the error list names each rejected file, and the
 *     scan depth is one sub-folder;
 *   - configurations: defaults of every parameter type, the checked setters'
 *     errors naming plugin and key (bounds, integer-ness, wrong type, string
 *     choices, list lengths and element bounds, unknown keys listing the known
 *     ones), lookups with fallbacks, and wb_config_to_json;
 *   - struct sizes: a first-release (prefix-size) descriptor loads and its
 *     appended `family` reads as NULL although the bytes after its struct
 *     hold a string; a descriptor smaller than the prefix or larger than the
 *     host's is rejected naming the file; the shipped divergences declare
 *     their families;
 *   - gan-head's `feature` list: a name longer than the head can hold and a
 *     ninth name are errors naming them, a 31-character name is held (it
 *     reaches the feature probe), eight names are accepted;
 *   - descriptors a user could not reproduce (issue 10, defect 9; the
 *     fixture_bad_*.so of tests/fixtures/bad_desc.c): an INT default 1.5, an
 *     INTS default "1,x,3", of 20 values, or outside its bounds, a STRING
 *     default not among its choices or longer than 63 bytes, a BOOL default
 *     0.5, a second kind's function table, n_plugins 3 with plugins NULL —
 *     each refused naming the file, the plugin and the parameter;
 *   - descriptors built in memory (wb_registry_add_library, what the loader
 *     runs after the entry): INT defaults beyond int64, infinite defaults,
 *     empty choices, space-separated INTS defaults refused; wb_config_to_json
 *     stays valid JSON for long integer lists and strings holding quotes,
 *     backslashes and control bytes; an infinite value is refused;
 *     wb_config_int saturates a huge NUMBER; strings from the library are
 *     shown escaped in messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/registry.h"
#include "engine/engine.h"
#include "wb/plugin.h"

#ifndef WB_TEST_PLUGIN_DIR
#error "WB_TEST_PLUGIN_DIR must name the build's plugin directory"
#endif
#ifndef WB_TEST_BUILD_DIR
#error "WB_TEST_BUILD_DIR must name the build directory"
#endif

#define FIXTURES WB_TEST_BUILD_DIR "/test_fixtures"

static const char *const DIVERGENCES[] = {"lr",  "kl", "be",  "ls",       "sba",  "rkl",  "srkl",
                                          "js",  "sh", "fkl", "jeffreys", "dikl", "dijs", "dirm"};
#define N_DIVERGENCES ((int)(sizeof DIVERGENCES / sizeof DIVERGENCES[0]))
#define N_SHIPPED 20 /* 14 divergences + classifier + gan-head + fake-encoder + mlp + unet + adm */

/* Fails with both strings shown when needle is not in hay. */
#define EXPECT_IN(hay, needle)                                                                     \
    do {                                                                                           \
        const char *hay_ = (hay);                                                                  \
        if (!hay_ || !strstr(hay_, (needle))) {                                                    \
            print_error("expected \"%s\" in \"%s\"\n", (needle), hay_ ? hay_ : "(null)");          \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* The last entry of the registry's error list. */
static const char *last_error(const wb_registry *reg) {
    int n = wb_registry_error_count(reg);
    return n ? wb_registry_error(reg, n - 1) : NULL;
}

static wb_registry *load_shipped(void) {
    wb_registry *reg = wb_registry_new();
    assert_non_null(reg);
    /* eight libraries: bregman, fdiv, scorefree, mlp, unet, classifier, gan_head, fake_encoder */
    assert_int_equal(wb_registry_load_dir(reg, WB_TEST_PLUGIN_DIR), 8);
    return reg;
}

/* ---- the build's plugins ----------------------------------------------------- */
static void test_shipped_plugins(void **state) {
    (void)state;
    wb_registry *reg = load_shipped();
    assert_int_equal(wb_registry_count(reg), N_SHIPPED);
    assert_int_equal(wb_registry_error_count(reg), 0);
    int n_div = 0, n_ratio = 0, n_net = 0;
    for (int i = 0; i < wb_registry_count(reg); i++) {
        const wb_plugin_info *info = wb_registry_at(reg, i);
        n_div += info->desc->kind == WB_KIND_DIVERGENCE;
        n_ratio += info->desc->kind == WB_KIND_RATIO;
        n_net += info->desc->kind == WB_KIND_NET;
        /* the path is the resolved file the plugin came from */
        assert_non_null(info->path);
        assert_int_equal(info->path[0], '/');
    }
    assert_int_equal(n_div, N_DIVERGENCES);
    assert_int_equal(n_ratio, 3);
    assert_int_equal(n_net, 3);
    for (int i = 0; i < N_DIVERGENCES; i++) {
        const wb_plugin_info *info = wb_registry_find(reg, WB_KIND_DIVERGENCE, DIVERGENCES[i]);
        if (!info) fail_msg("divergence '%s' not loaded", DIVERGENCES[i]);
        EXPECT_IN(info->path, "/divergences/div_");
    }
    assert_non_null(wb_registry_find(reg, WB_KIND_RATIO, "classifier"));
    assert_non_null(wb_registry_find(reg, WB_KIND_RATIO, "gan-head"));
    const wb_plugin_info *fe = wb_registry_find(reg, WB_KIND_RATIO, "fake-encoder");
    assert_non_null(fe);
    assert_int_equal(fe->desc->ratio->trains_fake_jointly, 1);
    assert_non_null(fe->desc->ratio->fake_loss_weight);
    assert_null(wb_registry_find(reg, WB_KIND_RATIO, "gan-head")->desc->ratio->fake_loss_weight);
    assert_non_null(wb_registry_find(reg, WB_KIND_NET, "mlp"));
    /* lookups are by kind as well as name */
    assert_null(wb_registry_find(reg, WB_KIND_NET, "kl"));
    assert_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "mlp"));
    assert_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "no-such"));
    assert_string_equal(wb_kind_name(WB_KIND_DIVERGENCE), "divergence");
    assert_string_equal(wb_kind_name(WB_KIND_RATIO), "ratio");
    assert_string_equal(wb_kind_name(WB_KIND_NET), "net");

    /* The same folder twice (it is on the search path twice, say): the files
     * resolve to libraries already loaded, so nothing is added and nothing
     * is reported as a duplicate. */
    wb_registry_load_dir(reg, WB_TEST_PLUGIN_DIR "/../plugins");
    assert_int_equal(wb_registry_count(reg), N_SHIPPED);
    assert_int_equal(wb_registry_error_count(reg), 0);
    wb_registry_free(reg);
}

/* ---- the fixtures ------------------------------------------------------------ */
/* Loads one fixture into reg and checks the rejection message: "<path>: <why>"
 * in wb_last_error() and as the newest registry error. */
static void expect_rejected(wb_registry *reg, const char *fixture, const char *why) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/fixture_%s.so", FIXTURES, fixture);
    int before = wb_registry_error_count(reg), count = wb_registry_count(reg);
    wb_set_error("(stale)");
    assert_int_equal(wb_registry_load_file(reg, path), -1);
    char want[PATH_MAX + 256];
    snprintf(want, sizeof want, "%s: ", path);
    EXPECT_IN(wb_last_error(), want);
    EXPECT_IN(wb_last_error(), why);
    assert_int_equal(wb_registry_error_count(reg), before + 1);
    assert_string_equal(last_error(reg), wb_last_error());
    assert_int_equal(wb_registry_count(reg), count); /* all or nothing */
}

static void test_fixtures_rejected(void **state) {
    (void)state;
    wb_registry *reg = load_shipped();
    expect_rejected(reg, "bad_abi", "ABI version 999, host expects 1");
    expect_rejected(reg, "no_entry", "missing entry symbol 'wb_plugin_entry'");
    expect_rejected(reg, "null_fn", "divergence 'null-fn': required function 'weights' is NULL");
    expect_rejected(reg, "dup_name", "duplicate divergence name 'kl' (already loaded from ");
    /* ... naming the file that registered kl first */
    const wb_plugin_info *kl = wb_registry_find(reg, WB_KIND_DIVERGENCE, "kl");
    assert_non_null(kl);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "from %s)", kl->path);
    EXPECT_IN(wb_last_error(), want);
    EXPECT_IN(kl->path, "div_bregman.so");

    /* a path that does not exist is an error too, not a crash */
    assert_int_equal(wb_registry_load_file(reg, FIXTURES "/no_such_file.so"), -1);
    EXPECT_IN(wb_last_error(), FIXTURES "/no_such_file.so: cannot resolve path");

    /* The good plugins are all still there, none of the bad ones got in, and
     * they work: kl is the built-in one (w_s = 1), not the impostor (2). */
    assert_int_equal(wb_registry_count(reg), N_SHIPPED);
    assert_int_equal(wb_registry_error_count(reg), 5);
    assert_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "future-div"));
    assert_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "null-fn"));
    const float logit[3] = {-1.0f, 0.0f, 1.0f};
    float ws[3], wl[3];
    wb_config_owned *c = wb_config_new(kl->desc);
    assert_non_null(c);
    kl->desc->divergence->weights(&c->cfg, 3, logit, ws, wl);
    for (int i = 0; i < 3; i++) {
        assert_float_equal(ws[i], 1.0f, 0.0f);
        assert_float_equal(wl[i], 0.0f, 0.0f);
    }
    assert_float_equal(kl->desc->divergence->value(&c->cfg, 3, logit),
                       (expm1(-1.0) + 1.0 + expm1(1.0) - 1.0) / 3.0, 1e-12);
    wb_config_free(c);
    /* and one with a parameter, through a configuration: sba at λ = 2 */
    const wb_plugin_info *sba = wb_registry_find(reg, WB_KIND_DIVERGENCE, "sba");
    assert_non_null(sba);
    c = wb_config_new(sba->desc);
    assert_int_equal(wb_config_set_number(c, "lambda", 2.0), 0);
    sba->desc->divergence->weights(&c->cfg, 3, logit, ws, wl);
    for (int i = 0; i < 3; i++) assert_float_equal(ws[i], exp(-2.0 * logit[i]), 1e-5 * exp(2.0));
    wb_config_free(c);
    wb_registry_free(reg);
}

/* ---- a folder of good and bad libraries ----------------------------------------- */
static void run_sh(const char *cmd) {
    int rc = system(cmd);
    if (rc != 0) fail_msg("command failed (%d): %s", rc, cmd);
}

static void copy_file(const char *from, const char *to) {
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    run_sh(cmd);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Libraries that crash while loading — in a constructor, in the entry
 * point — are rejected naming the file and the signal, and this process
 * (the host) lives on with every good plugin (issue 10, defect 5). */
static void test_crashing_plugins(void **state) {
    (void)state;
    wb_registry *reg = load_shipped();
    int before = wb_registry_error_count(reg), count = wb_registry_count(reg);
    static const char *const crashers[] = {"crash_ctor", "crash_entry"};
    for (int i = 0; i < 2; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, WB_TEST_BUILD_DIR "/test_fixtures_crash/fixture_%s.so", crashers[i]);
        assert_int_equal(wb_registry_load_file(reg, p), -1);
        EXPECT_IN(wb_last_error(), p);
        EXPECT_IN(wb_last_error(), "crashed while loading (signal 11");
    }
    assert_int_equal(wb_registry_error_count(reg), before + 2);
    assert_int_equal(wb_registry_count(reg), count);
    assert_non_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "kl"));
    wb_registry_free(reg);
}

static void test_mixed_folder(void **state) {
    (void)state;
    char dir[] = "/tmp/wb_test_plugins_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[PATH_MAX + 64], q[2 * PATH_MAX + 64];
    /* good: two divergence libraries and a net at the top, a ratio estimator
     * one folder down (scanned), another two folders down (not scanned) */
    snprintf(p, sizeof p, "%s/sub/deeper", dir);
    snprintf(q, sizeof q, "mkdir -p '%s'", p);
    run_sh(q);
    static const struct {
        const char *from, *to;
    } files[] = {
        {WB_TEST_PLUGIN_DIR "/divergences/div_bregman.so", "div_bregman.so"},
        {WB_TEST_PLUGIN_DIR "/divergences/div_fdiv.so", "div_fdiv.so"},
        {WB_TEST_PLUGIN_DIR "/nets/net_mlp.so", "net_mlp.so"},
        {WB_TEST_PLUGIN_DIR "/ratio_estimators/ratio_classifier.so", "sub/ratio_classifier.so"},
        {WB_TEST_PLUGIN_DIR "/ratio_estimators/ratio_gan_head.so", "sub/deeper/ratio_gan_head.so"},
        /* bad; named to sort after div_bregman.so, so the built-in kl is first */
        {FIXTURES "/fixture_bad_abi.so", "x_bad_abi.so"},
        {FIXTURES "/fixture_dup_name.so", "x_dup_name.so"},
        {FIXTURES "/fixture_no_entry.so", "x_no_entry.so"},
        {FIXTURES "/fixture_null_fn.so", "x_null_fn.so"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i].to);
        copy_file(files[i].from, p);
    }
    snprintf(p, sizeof p, "%s/garbage.so", dir); /* not an ELF file at all */
    write_text(p, "this is not a shared object\n");
    snprintf(p, sizeof p, "%s/README.txt", dir); /* not *.so: never opened */
    write_text(p, "notes\n");

    wb_registry *reg = wb_registry_new();
    assert_int_equal(wb_registry_load_dir(reg, dir), 4); /* bregman, fdiv, mlp, classifier */
    assert_int_equal(wb_registry_count(reg), 5 + 6 + 1 + 1);
    assert_non_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "kl"));
    assert_non_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "jeffreys"));
    assert_non_null(wb_registry_find(reg, WB_KIND_NET, "mlp"));
    assert_non_null(wb_registry_find(reg, WB_KIND_RATIO, "classifier"));
    assert_null(wb_registry_find(reg, WB_KIND_RATIO, "gan-head")); /* two levels down */
    assert_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "dikl")); /* scorefree not copied */

    /* five rejections, in file-name order, each naming its file */
    assert_int_equal(wb_registry_error_count(reg), 5);
    static const struct {
        const char *file, *why;
    } bad[] = {
        {"garbage.so", "dlopen failed: "},
        {"x_bad_abi.so", "ABI version 999, host expects 1"},
        {"x_dup_name.so", "duplicate divergence name 'kl' (already loaded from "},
        {"x_no_entry.so", "missing entry symbol 'wb_plugin_entry'"},
        {"x_null_fn.so", "required function 'weights' is NULL"},
    };
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s: ", dir, bad[i].file);
        EXPECT_IN(wb_registry_error(reg, i), p);
        EXPECT_IN(wb_registry_error(reg, i), bad[i].why);
    }
    /* the duplicate names the copy in this folder that won, resolved */
    char real[PATH_MAX];
    assert_non_null(realpath(dir, real));
    snprintf(q, sizeof q, "from %s/div_bregman.so)", real);
    EXPECT_IN(wb_registry_error(reg, 2), q);
    wb_registry_free(reg);

    snprintf(q, sizeof q, "rm -rf '%s'", dir);
    run_sh(q);
}

/* ---- configurations ------------------------------------------------------------- */
static const wb_plugin_desc *find_desc(wb_registry *reg, wb_plugin_kind kind, const char *name) {
    const wb_plugin_info *info = wb_registry_find(reg, kind, name);
    if (!info) fail_msg("plugin '%s' not loaded", name);
    return info->desc;
}

/* The call must fail (-1) with both needles in wb_last_error() ("" matches
 * anything); the stale message first proves the call set a new one. */
#define EXPECT_FAIL(call, n1, n2)                                                                  \
    do {                                                                                           \
        wb_set_error("(stale)");                                                                   \
        assert_int_equal((call), -1);                                                              \
        EXPECT_IN(wb_last_error(), (n1));                                                          \
        EXPECT_IN(wb_last_error(), (n2));                                                          \
    } while (0)

static void expect_json(const wb_config *cfg, const char *want) {
    char *json = wb_config_to_json(cfg);
    assert_non_null(json);
    assert_string_equal(json, want);
    free(json);
}

static void test_config_number(void **state) {
    (void)state;
    wb_registry *reg = load_shipped();
    wb_config_owned *c = wb_config_new(find_desc(reg, WB_KIND_DIVERGENCE, "sba"));
    assert_non_null(c);
    assert_int_equal(c->cfg.n, 1);
    assert_float_equal(wb_config_number(&c->cfg, "lambda", -99.0), 5.0, 0.0); /* default */
    expect_json(&c->cfg, "{\"lambda\": 5}");

    EXPECT_FAIL(wb_config_set_number(c, "lambda", 50.0), "sba: parameter 'lambda' = 50 is above its maximum 20", "");
    EXPECT_FAIL(wb_config_set_number(c, "lambda", -11.0), "sba: parameter 'lambda' = -11 is below its minimum -10", "");
    EXPECT_FAIL(wb_config_set_number(c, "lambda", NAN), "sba: parameter 'lambda'", "");
    EXPECT_FAIL(wb_config_set_number(c, "lambda", INFINITY), "is above its maximum 20", "");
    assert_float_equal(wb_config_number(&c->cfg, "lambda", -99.0), 5.0, 0.0); /* untouched */
    /* the bounds are inclusive */
    assert_int_equal(wb_config_set_number(c, "lambda", 20.0), 0);
    assert_int_equal(wb_config_set_number(c, "lambda", -10.0), 0);
    assert_int_equal(wb_config_set_number(c, "lambda", 2.5), 0);
    assert_float_equal(wb_config_number(&c->cfg, "lambda", -99.0), 2.5, 0.0);
    expect_json(&c->cfg, "{\"lambda\": 2.5}");

    /* an unknown key lists the known ones; lookups fall back */
    EXPECT_FAIL(wb_config_set_number(c, "lamda", 1.0), "sba: unknown parameter 'lamda' (known: lambda)", "");
    assert_null(wb_config_spec(c, "lamda"));
    EXPECT_IN(wb_last_error(), "(known: lambda)");
    assert_non_null(wb_config_spec(c, "lambda"));
    EXPECT_FAIL(wb_config_set_string(c, "lambda", "3"), "sba: parameter 'lambda' expects a number, got a string", "");
    assert_float_equal(wb_config_number(&c->cfg, "nope", 7.0), 7.0, 0.0);
    assert_int_equal(wb_config_int(&c->cfg, "nope", 3), 3);
    assert_int_equal(wb_config_bool(&c->cfg, "nope", 1), 1);
    assert_string_equal(wb_config_string(&c->cfg, "nope", "fb"), "fb");
    int64_t ints[2];
    assert_int_equal(wb_config_ints(&c->cfg, "nope", ints, 2), -1);
    wb_config_free(c);

    /* a plugin without parameters says so */
    c = wb_config_new(find_desc(reg, WB_KIND_DIVERGENCE, "kl"));
    assert_int_equal(c->cfg.n, 0);
    EXPECT_FAIL(wb_config_set_number(c, "lambda", 1.0), "kl: unknown parameter 'lambda' (known: none)", "");
    expect_json(&c->cfg, "{}");
    wb_config_free(c);

    /* booleans: any number sets a boolean (non-zero is true); the JSON says so */
    c = wb_config_new(find_desc(reg, WB_KIND_RATIO, "classifier"));
    assert_int_equal(wb_config_bool(&c->cfg, "precondition", 0), 1);
    expect_json(&c->cfg, "{\"precondition\": true, \"logit_scale\": 1}");
    assert_int_equal(wb_config_set_number(c, "precondition", 0.0), 0);
    assert_int_equal(wb_config_bool(&c->cfg, "precondition", 1), 0);
    EXPECT_FAIL(wb_config_set_number(c, "logit_scale", 0.0), "classifier: parameter 'logit_scale' = 0 is below its minimum 0.001", "");
    assert_int_equal(wb_config_set_number(c, "logit_scale", 0.5), 0);
    expect_json(&c->cfg, "{\"precondition\": false, \"logit_scale\": 0.5}");
    EXPECT_FAIL(wb_config_set_number(c, "net", 1.0), "classifier: unknown parameter 'net' (known: precondition, logit_scale)", "");
    wb_config_free(c);
    wb_registry_free(reg);
}

static void test_config_strings_ints(void **state) {
    (void)state;
    wb_registry *reg = load_shipped();
    const wb_plugin_desc *mlp = find_desc(reg, WB_KIND_NET, "mlp");
    wb_config_owned *c = wb_config_new(mlp);
    assert_non_null(c);

    /* defaults of every type, from the specs */
    int64_t w[WB_MAX_INTS];
    assert_int_equal(wb_config_ints(&c->cfg, "widths", w, WB_MAX_INTS), 3);
    for (int i = 0; i < 3; i++) assert_int_equal(w[i], 128);
    assert_int_equal(wb_config_ints(&c->cfg, "widths", w, 2), 2); /* at most cap copied */
    assert_int_equal(wb_config_int(&c->cfg, "emb_dim", 0), 32);
    assert_string_equal(wb_config_string(&c->cfg, "embedding", ""), "positional");
    assert_string_equal(wb_config_string(&c->cfg, "activation", ""), "silu");
    assert_float_equal(wb_config_number(&c->cfg, "max_period", 0.0), 10000.0, 0.0);
    expect_json(&c->cfg, "{\"widths\": [128, 128, 128], \"emb_dim\": 32, \"embedding\": \"positional\", "
                         "\"max_period\": 10000, \"activation\": \"silu\"}");

    /* strings with choices */
    assert_int_equal(wb_config_set_string(c, "activation", "relu"), 0);
    assert_string_equal(wb_config_string(&c->cfg, "activation", ""), "relu");
    EXPECT_FAIL(wb_config_set_string(c, "activation", "gelu"),
                "mlp: parameter 'activation' = 'gelu' is not one of silu|relu|tanh", "");
    EXPECT_FAIL(wb_config_set_string(c, "activation", "sil"), "is not one of silu|relu|tanh", ""); /* no prefixes */
    EXPECT_FAIL(wb_config_set_string(c, "activation", ""), "is not one of", "");
    assert_string_equal(wb_config_string(&c->cfg, "activation", ""), "relu"); /* untouched */
    char longs[100];
    memset(longs, 'a', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    EXPECT_FAIL(wb_config_set_string(c, "embedding", longs), "mlp: parameter 'embedding': string too long", "");
    EXPECT_FAIL(wb_config_set_number(c, "embedding", 1.0), "mlp: parameter 'embedding' expects a string, got a number", "");

    /* integers */
    assert_int_equal(wb_config_set_number(c, "emb_dim", 64.0), 0);
    EXPECT_FAIL(wb_config_set_number(c, "emb_dim", 3.5), "mlp: parameter 'emb_dim' expects an integer, got 3.5", "");
    EXPECT_FAIL(wb_config_set_number(c, "emb_dim", 1.0), "mlp: parameter 'emb_dim' = 1 is below its minimum 2", "");
    EXPECT_FAIL(wb_config_set_number(c, "emb_dim", 5000.0), "mlp: parameter 'emb_dim' = 5000 is above its maximum 4096", "");
    const int64_t one[1] = {8};
    EXPECT_FAIL(wb_config_set_ints(c, "emb_dim", one, 1), "mlp: parameter 'emb_dim' expects a", "got a list");

    /* lists of integers: length 1..WB_MAX_INTS, each element in bounds */
    const int64_t good[2] = {64, 32};
    assert_int_equal(wb_config_set_ints(c, "widths", good, 2), 0);
    assert_int_equal(wb_config_ints(&c->cfg, "widths", w, WB_MAX_INTS), 2);
    assert_int_equal(w[0], 64);
    assert_int_equal(w[1], 32);
    const int64_t zero[3] = {64, 0, 64};
    EXPECT_FAIL(wb_config_set_ints(c, "widths", zero, 3), "mlp: parameter 'widths'[2] = 0 outside [1, 16384]", "");
    EXPECT_FAIL(wb_config_set_ints(c, "widths", good, 0), "mlp: parameter 'widths' takes 1..16 integers, got 0", "");
    int64_t many[WB_MAX_INTS + 1];
    for (int i = 0; i <= WB_MAX_INTS; i++) many[i] = 4;
    EXPECT_FAIL(wb_config_set_ints(c, "widths", many, WB_MAX_INTS + 1), "takes 1..16 integers, got 17", "");
    assert_int_equal(wb_config_set_ints(c, "widths", many, WB_MAX_INTS), 0);
    assert_int_equal(wb_config_set_ints(c, "widths", good, 2), 0);
    EXPECT_FAIL(wb_config_set_string(c, "widths", "64,64"), "mlp: parameter 'widths' expects a list of integers, got a string", "");

    /* an unknown key lists every known one, in spec order */
    EXPECT_FAIL(wb_config_set_ints(c, "width", good, 2),
                "mlp: unknown parameter 'width' (known: widths, emb_dim, embedding, max_period, activation)", "");
    expect_json(&c->cfg, "{\"widths\": [64, 32], \"emb_dim\": 64, \"embedding\": \"positional\", "
                         "\"max_period\": 10000, \"activation\": \"relu\"}");
    wb_config_free(c);

    /* a string without choices takes any value; another with choices */
    c = wb_config_new(find_desc(reg, WB_KIND_RATIO, "gan-head"));
    assert_int_equal(wb_config_set_string(c, "feature", "enc.16x16"), 0);
    assert_string_equal(wb_config_string(&c->cfg, "feature", ""), "enc.16x16");
    assert_int_equal(wb_config_set_string(c, "features", "fake"), 0);
    EXPECT_FAIL(wb_config_set_string(c, "features", "student"),
                "gan-head: parameter 'features' = 'student' is not one of teacher|fake", "");
    expect_json(&c->cfg, "{\"features\": \"fake\", \"feature\": \"enc.16x16\", \"hidden\": 128}");
    wb_config_free(c);
    wb_registry_free(reg);
}

/* ---- struct sizes ---------------------------------------------------------------- */
static void test_struct_sizes(void **state) {
    (void)state;
    wb_registry *reg = load_shipped();
    const size_t v1 = offsetof(wb_plugin_desc, ratio) + sizeof(void *); /* before `family` */

    /* first release: loads, and the field it does not know reads as NULL */
    assert_int_equal(wb_registry_load_file(reg, WB_TEST_BUILD_DIR "/test_fixtures_accepted/fixture_old_desc.so"), 0);
    const wb_plugin_info *old = wb_registry_find(reg, WB_KIND_DIVERGENCE, "old-size");
    assert_non_null(old);
    assert_int_equal(old->desc->struct_size, v1);
    assert_null(old->desc->family);
    const float logit[2] = {0.0f, 1.0f};
    float ws[2], wl[2];
    old->desc->divergence->weights(NULL, 2, logit, ws, wl);
    assert_float_equal(ws[1], 3.0f, 0.0f);

    char want[256];
    snprintf(want, sizeof want, "descriptor 0 struct_size %zu, host accepts %zu..%zu (smaller than the first release's",
             v1 - sizeof(void *), v1, sizeof(wb_plugin_desc));
    expect_rejected(reg, "small_desc", want);
    snprintf(want, sizeof want, "descriptor 0 struct_size %zu, host accepts %zu..%zu (larger than the host's",
             sizeof(wb_plugin_desc) + sizeof(void *), v1, sizeof(wb_plugin_desc));
    expect_rejected(reg, "big_desc", want);
    assert_int_equal(wb_registry_count(reg), N_SHIPPED + 1);
    assert_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "small-size"));
    assert_null(wb_registry_find(reg, WB_KIND_DIVERGENCE, "big-size"));

    /* the shipped divergences name their family; the nets declare none */
    static const struct {
        const char *name, *family;
    } families[] = {{"lr", "Bregman"}, {"sba", "Bregman"},     {"rkl", "f-div"},
                    {"jeffreys", "f-div"}, {"dikl", "score-free"}, {"dirm", "score-free"}};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        const wb_plugin_desc *d = find_desc(reg, WB_KIND_DIVERGENCE, families[i].name);
        assert_non_null(d->family);
        assert_string_equal(d->family, families[i].family);
    }
    assert_null(find_desc(reg, WB_KIND_NET, "mlp")->family);
    wb_registry_free(reg);
}

/* ---- gan-head's feature list ---------------------------------------------------------- */
/* gan-head's create() with feature = names on a real mlp teacher: the
 * instance (destroyed again) or NULL with err filled. */
static int gan_head_try(const wb_plugin_desc *gh, const wb_ratio_env *env, const char *names, char *err, size_t n) {
    wb_config_owned *c = wb_config_new(gh);
    assert_int_equal(wb_config_set_string(c, "feature", names), 0);
    wb_params *ps = wb_params_new(env->backend);
    err[0] = 0;
    void *self = gh->ratio->create(&c->cfg, env, ps, err, n);
    if (self) gh->ratio->destroy(self);
    wb_params_free(ps);
    wb_config_free(c);
    return self != NULL;
}

static void test_gan_head_feature_names(void **state) {
    (void)state;
    wb_registry *reg = load_shipped();
    const wb_plugin_desc *gh = find_desc(reg, WB_KIND_RATIO, "gan-head");
    const wb_plugin_desc *mlp = find_desc(reg, WB_KIND_NET, "mlp");
    wb_netspec spec = {mlp, wb_config_new(mlp)};
    wb_net_shape shape = {.channels = 2, .height = 1, .width = 1, .out_channels = 2, .label_dim = 0};
    wb_rng rng;
    wb_rng_init(&rng, 1, 0);
    wb_net *teacher = wb_net_new(&spec, &shape, wb_backend_cpu(), &rng);
    assert_non_null(teacher);
    wb_ratio_env env = {.data = shape, .teacher = teacher, .backend = wb_backend_cpu()};
    char err[512];

    assert_true(gan_head_try(gh, &env, "hidden", err, sizeof err));
    /* eight maps is the most it holds (the same one eight times is fine) */
    assert_true(gan_head_try(gh, &env, "hidden,hidden,hidden,hidden,hidden,hidden,hidden,hidden", err, sizeof err));
    /* a ninth is an error, not silently dropped */
    assert_false(gan_head_try(gh, &env, "hidden,b,c,d,e,f,g,h,i", err, sizeof err));
    EXPECT_IN(err, "feature 'hidden,b,c,d,e,f,g,h,i' names more than 8 feature maps");
    /* 32 characters do not fit; 31 do, and reach the probe, which names them */
    const char *name32 = "abcdefghijklmnopqrstuvwxyz012345", *name31 = "abcdefghijklmnopqrstuvwxyz01234";
    char names[64];
    snprintf(names, sizeof names, "hidden, %s", name32);
    assert_false(gan_head_try(gh, &env, names, err, sizeof err));
    EXPECT_IN(err, "map name 'abcdefghijklmnopqrstuvwxyz012345' is longer than 31 characters");
    assert_false(gan_head_try(gh, &env, name31, err, sizeof err));
    EXPECT_IN(err, "exposes no feature 'abcdefghijklmnopqrstuvwxyz01234' (it has: hidden)");
    /* separators only: no map at all */
    assert_false(gan_head_try(gh, &env, " , ,", err, sizeof err));
    EXPECT_IN(err, "names no feature map");

    wb_net_free(teacher);
    wb_config_free(spec.cfg);
    wb_registry_free(reg);
}


/* ---- descriptors a user could not reproduce (issue 10, defect 9) ------------------------ */
static void test_bad_descriptors(void **state) {
    (void)state;
    wb_registry *reg = load_shipped();
    expect_rejected(reg, "bad_int_frac", "plugin 'bad-int-frac': parameter 'width' is an integer but its default is 1.5");
    expect_rejected(reg, "bad_ints_junk",
                    "plugin 'bad-ints-junk': parameter 'widths' default '1,x,3': 'x' is not an integer");
    expect_rejected(reg, "bad_ints_long",
                    "plugin 'bad-ints-long': parameter 'widths' default has 20 integers, a value holds at most 16");
    expect_rejected(reg, "bad_ints_outside",
                    "plugin 'bad-ints-outside': parameter 'widths' default element 3 = 99 outside [1, 64]");
    expect_rejected(reg, "bad_string_choice",
                    "plugin 'bad-string-choice': parameter 'activation' default 'gelu' is not one of silu|relu");
    expect_rejected(reg, "bad_string_long", "plugin 'bad-string-long': parameter 'feature' default 'a-default-string");
    EXPECT_IN(wb_last_error(), "is 70 bytes, a value holds at most 63");
    expect_rejected(reg, "bad_bool_half",
                    "plugin 'bad-bool-half': parameter 'flag' is a boolean but its default is 0.5 (0 or 1)");
    expect_rejected(reg, "bad_two_tables",
                    "divergence 'bad-tables' also sets the net function table (a descriptor sets exactly the table "
                    "of its kind)");
    expect_rejected(reg, "bad_null_plugins", "library declares 3 plugins but its plugins pointer is NULL");
    assert_int_equal(wb_registry_count(reg), N_SHIPPED);
    wb_registry_free(reg);
}

/* ---- descriptors in memory: the checks after the entry, and configurations ------------- */
static void weights_stub(const wb_config *cfg, int64_t n, const float *l, float *ws, float *wl) {
    (void)cfg, (void)l;
    for (int64_t i = 0; i < n; i++) ws[i] = wl[i] = 0.0f;
}
static double value_stub(const wb_config *cfg, int64_t n, const float *l) { return (void)cfg, (void)n, (void)l, 0.0; }
static const wb_divergence_fns stub_fns = WB_DIVERGENCE_FNS(0, weights_stub, value_stub);

/* A one-member divergence library over specs (n of them), offered to a
 * fresh registry: 0 and the registry in *out, or -1 (message in
 * wb_last_error()). The descriptor lives in *d and the library in *lib. */
static int offer(const wb_param_spec *specs, int n, wb_plugin_desc *d, const wb_plugin_desc **list,
                 wb_plugin_library *lib, wb_registry **out) {
    *d = (wb_plugin_desc){.abi_version = WB_ABI_VERSION, .struct_size = (uint32_t)sizeof *d,
                          .kind = WB_KIND_DIVERGENCE, .name = "mem", .version = "1.0.0", .doc = "in memory",
                          .params = specs, .n_params = n, .divergence = &stub_fns};
    list[0] = d;
    *lib = (wb_plugin_library){.abi_version = WB_ABI_VERSION, .struct_size = (uint32_t)sizeof *lib, .n_plugins = 1,
                               .plugins = list};
    *out = wb_registry_new();
    assert_non_null(*out);
    return wb_registry_add_library(*out, "/mem/lib.so", lib);
}

static void expect_offer_refused(const wb_param_spec *spec, const char *why) {
    wb_plugin_desc d;
    const wb_plugin_desc *list[1];
    wb_plugin_library lib;
    wb_registry *reg;
    wb_set_error("(stale)");
    assert_int_equal(offer(spec, 1, &d, list, &lib, &reg), -1);
    EXPECT_IN(wb_last_error(), "/mem/lib.so: plugin 'mem': parameter ");
    EXPECT_IN(wb_last_error(), why);
    assert_int_equal(wb_registry_count(reg), 0);
    wb_registry_free(reg);
}

static void test_descriptors_in_memory(void **state) {
    (void)state;
    /* refused at load */
    const wb_param_spec int_huge = WB_PARAM_INT("n", 1e300, -1e300, 1e300, "beyond int64");
    expect_offer_refused(&int_huge, "'n' is an integer but its default is 1.0000000000000001e+300");
    const wb_param_spec num_inf = WB_PARAM_NUMBER("x", INFINITY, -INFINITY, INFINITY, "infinite default");
    expect_offer_refused(&num_inf, "'x' default inf is not a finite number");
    const wb_param_spec empty_choices = WB_PARAM_STRING("s", "a", "", "choices \"\"");
    expect_offer_refused(&empty_choices, "'s' has an empty choices list (NULL: any string)");
    const wb_param_spec bar_choices = WB_PARAM_STRING("s", "a", "a|", "a trailing empty choice");
    expect_offer_refused(&bar_choices, "'s' choices 'a|' hold an empty choice");
    const wb_param_spec spaced = WB_PARAM_INTS("w", "64 64", 1, 128, "blanks are not separators");
    expect_offer_refused(&spaced, "'w' default '64 64': '64 64' is not an integer");
    const wb_param_spec empty_list = WB_PARAM_INTS("w", "", 1, 128, "no integer");
    expect_offer_refused(&empty_list, "'w' default '': '' is not an integer");
    const wb_param_spec ctrl = WB_PARAM_STRING("s", "bad\x1b[31m\xff", "a|b", "control bytes");
    expect_offer_refused(&ctrl, "'s' default 'bad\\x1b[31m\\xff' is not one of a|b");

    /* accepted; the configuration's JSON stays JSON */
    const wb_param_spec specs[] = {
        WB_PARAM_INTS("a", "1", -1e300, 1e300, "wide bounds"), WB_PARAM_INTS("b", " 1 , -2 ", -1e300, 1e300, ""),
        WB_PARAM_INTS("c", "3", -1e300, 1e300, ""),            WB_PARAM_INTS("d", "4", -1e300, 1e300, ""),
        WB_PARAM_INTS("e", "5", -1e300, 1e300, ""),            WB_PARAM_STRING("s", "plain", NULL, "any string"),
        WB_PARAM_NUMBER("x", 0.0, -INFINITY, INFINITY, "unbounded"),
    };
    wb_plugin_desc d;
    const wb_plugin_desc *list[1];
    wb_plugin_library lib;
    wb_registry *reg;
    assert_int_equal(offer(specs, WB_COUNT_OF(specs), &d, list, &lib, &reg), 0);
    const wb_plugin_desc *mem = find_desc(reg, WB_KIND_DIVERGENCE, "mem");
    wb_config_owned *c = wb_config_new(mem);
    int64_t got[WB_MAX_INTS];
    assert_int_equal(wb_config_ints(&c->cfg, "b", got, WB_MAX_INTS), 2); /* blanks around integers are fine */
    assert_int_equal(got[1], -2);
    /* five lists of sixteen 20-character integers: more than the old fixed
     * buffer (256 + 256 bytes a parameter) held */
    int64_t big[WB_MAX_INTS];
    for (int i = 0; i < WB_MAX_INTS; i++) big[i] = INT64_MIN + 1;
    for (const char *k = "abcde"; *k; k++) {
        char key[2] = {*k, 0};
        assert_int_equal(wb_config_set_ints(c, key, big, WB_MAX_INTS), 0);
    }
    const char *tricky = "q\"uo\\te\n\x01";
    assert_int_equal(wb_config_set_string(c, "s", tricky), 0);
    EXPECT_FAIL(wb_config_set_number(c, "x", INFINITY), "mem: parameter 'x' = inf: want a finite number", "");
    assert_int_equal(wb_config_set_number(c, "x", 1e300), 0);
    assert_true(wb_config_int(&c->cfg, "x", 0) == INT64_MAX); /* saturated, not undefined */
    assert_int_equal(wb_config_set_number(c, "x", -1e300), 0);
    assert_true(wb_config_int(&c->cfg, "x", 0) == INT64_MIN);
    char *json = wb_config_to_json(&c->cfg);
    assert_non_null(json);
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) fail_msg("wb_config_to_json wrote no JSON object: %s", json);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "e");
    assert_int_equal(cJSON_GetArraySize(e), WB_MAX_INTS);
    EXPECT_IN(json, "\"e\": [-9223372036854775807, ");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "s")->valuestring, tricky);
    cJSON_Delete(root);
    free(json);
    wb_config_free(c);

    /* the same library again: its member is a duplicate */
    wb_set_error("(stale)");
    assert_int_equal(wb_registry_add_library(reg, "/mem/again.so", &lib), -1);
    EXPECT_IN(wb_last_error(), "/mem/again.so: duplicate divergence name 'mem' (already loaded from /mem/lib.so)");
    wb_registry_free(reg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_sizes),
        cmocka_unit_test(test_gan_head_feature_names),
        cmocka_unit_test(test_shipped_plugins),
        cmocka_unit_test(test_fixtures_rejected),
        cmocka_unit_test(test_crashing_plugins),
        cmocka_unit_test(test_mixed_folder),
        cmocka_unit_test(test_config_number),
        cmocka_unit_test(test_config_strings_ints),
        cmocka_unit_test(test_bad_descriptors),
        cmocka_unit_test(test_descriptors_in_memory),
    };
    return cmocka_run_group_tests_name("plugins", tests, NULL, NULL);
}
