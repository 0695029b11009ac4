/* test_out_of_tree.c — the promise of docs/plugins.md, end to end: a plugin
 * author with nothing but an installed workbench builds a new divergence and
 * uses it from Lua, without touching the workbench's source tree.
 *
 *   1. `cmake --install <build> --prefix <tmp>/prefix` (group setup);
 *   2. docs/examples/example_divergence, copied out of the source tree, is
 *      configured with -DCMAKE_PREFIX_PATH=<tmp>/prefix (find_package(wb),
 *      wb::wb; -Werror) and built; wb_DIR must point into the prefix. The
 *      module's numbers are checked in process through the registry: weights
 *      e^{αl} for several α, α = 1 equal to the built-in fkl, value() equal
 *      to kl / be at α = 0 / 1, finite at extreme logits, NaN kept;
 *   3. the BUILT workbench, with WB_PLUGIN_PATH naming a folder holding just
 *      that .so, runs a Lua script that (a) finds "alpha" in wb.divergences()
 *      and wb.plugins() with the family it declares ("Amari alpha", also in
 *      wb.divergence_families()), (b) checks wb.divergence_weights / _value numbers
 *      and a bounds error, (c) runs a 3-step wb.distill with it;
 *   4. the same folder plus the bad_abi fixture: `workbench plugins` still
 *      lists the good plugins (alpha with its family) and warns naming
 *      bad_abi's file, and a script
 *      can still use alpha;
 *   5. the same source built with one compiler line from `pkg-config wb`
 *      (PKG_CONFIG_PATH=<prefix>/lib/pkgconfig): the flags must point into the
 *      prefix, every installed header (wb/elementwise.h among them) must
 *      compile on its own with just those flags, and the module must load
 *      and work.
 * Skipped, with a visible "SKIP:" line, only when cmake or the C compiler is
 * missing (step 5 alone also when pkg-config is). About 2 s, mostly the
 * example's CMake configure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/registry.h"
#include "wb/plugin.h"
#include "wb_test_util.h"

#ifndef WB_TEST_BUILD_DIR
#error "WB_TEST_BUILD_DIR must name the build directory"
#endif
/* The compiler, pkg-config and libdir come from tests/CMakeLists.txt; the
 * fallbacks keep the file buildable (and the test honest) without them. */
#ifndef WB_TEST_CC
#define WB_TEST_CC "cc"
#endif
#ifndef WB_TEST_PKG_CONFIG
#define WB_TEST_PKG_CONFIG "pkg-config"
#endif
#ifndef WB_TEST_INSTALL_LIBDIR
#define WB_TEST_INSTALL_LIBDIR "lib"
#endif

#define WORKBENCH WB_TEST_BUILD_DIR "/workbench"
#define EXAMPLE_DIR WB_TEST_SOURCE_DIR "/docs/examples/example_divergence"
#define PLUGIN_FILE "alpha_div.so"
#define CMD_MAX (4 * PATH_MAX)

static char g_tmp[256];        /* everything this test writes lives here */
static char g_skip[256];       /* non-empty: why every test skips */
static int g_have_pkg_config;  /* 0: step 5 skips */
static int g_built;            /* 1: step 2 produced <tmp>/plugdir/alpha_div.so */

/* ---- running commands ---------------------------------------------------------- */
typedef wb_test_result result;

/* Runs `sh -c cmd` in g_tmp with stdout and stderr captured separately. */
static result run(const char *cmd) { return wb_test_run_sh(g_tmp, cmd); }

#define SHOW(r, what)                                                                              \
    print_error("%s\n--- status %d\n--- stdout\n%s\n--- stderr\n%s\n", (what), (r).status, (r).out,  \
                (r).err)

/* Runs cmd and fails the test, showing its output, unless it exits 0. */
static void run_ok(const char *cmd) {
    result r = run(cmd);
    if (r.status != 0) {
        SHOW(r, cmd);
        wb_test_result_free(&r);
        fail();
    }
    wb_test_result_free(&r);
}

#define EXPECT_IN(hay, needle, r)                                                                  \
    do {                                                                                           \
        if (!strstr((hay), (needle))) {                                                            \
            char what_[CMD_MAX];                                                                   \
            snprintf(what_, sizeof what_, "expected \"%s\" in output", (needle));                 \
            SHOW((r), what_);                                                                      \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* A program on PATH, or an absolute path that is executable. */
static int have_program(const char *prog) {
    if (strchr(prog, '/')) return access(prog, X_OK) == 0;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

#define SKIP_IF_NEEDED()                                                                           \
    do {                                                                                           \
        if (g_skip[0]) {                                                                           \
            printf("SKIP: %s\n", g_skip);                                                          \
            fflush(stdout);                                                                        \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- setup: install the build into a temporary prefix --------------------------- */
static int setup(void **state) {
    (void)state;
    if (wb_test_mkdtemp(g_tmp, sizeof g_tmp, "/tmp/wb_test_oot_XXXXXX")) return -1;
    if (!have_program(WB_TEST_CMAKE)) {
        snprintf(g_skip, sizeof g_skip, "cmake not found at %s", WB_TEST_CMAKE);
    } else if (!have_program(WB_TEST_CC)) {
        snprintf(g_skip, sizeof g_skip, "C compiler not found (%s)", WB_TEST_CC);
    }
    g_have_pkg_config = have_program(WB_TEST_PKG_CONFIG);
    if (g_skip[0]) {
        printf("SKIP: %s\n", g_skip);
        return 0;
    }
    /* An install is the author's starting point; one that fails is a bug in
     * the top-level install rules, so it fails the group, never skips it. */
    char cmd[CMD_MAX];
    snprintf(cmd, sizeof cmd, "'%s' --install '%s' --prefix '%s/prefix'", WB_TEST_CMAKE, WB_TEST_BUILD_DIR, g_tmp);
    result r = run(cmd);
    if (r.status != 0) {
        fprintf(stderr, "cmake --install failed (%d):\n%s\n%s\n", r.status, r.out, r.err);
        wb_test_result_free(&r);
        return -1;
    }
    wb_test_result_free(&r);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return wb_test_rm_rf(g_tmp);
}

/* ---- 2. the CMake package: find_package(wb) + wb::wb ---------------------------- */
static const wb_plugin_desc *must_find(wb_registry *reg, const char *name) {
    const wb_plugin_info *info = wb_registry_find(reg, WB_KIND_DIVERGENCE, name);
    if (!info) fail_msg("divergence '%s' not loaded", name);
    return info->desc;
}

/* The module's numbers, in process: loaded through the registry like the
 * host loads it, next to the build's own divergences to compare against. */
static void check_module_numbers(const char *so_path) {
    wb_registry *reg = wb_registry_new();
    assert_true(wb_registry_load_dir(reg, WB_TEST_PLUGIN_DIR) > 0);
    if (wb_registry_load_file(reg, so_path) != 0) fail_msg("%s", wb_last_error());
    assert_int_equal(wb_registry_error_count(reg), 0);
    const wb_plugin_desc *alpha = must_find(reg, "alpha");
    assert_int_equal(alpha->n_params, 1);
    assert_string_equal(alpha->params[0].name, "alpha");
    assert_int_equal(alpha->params[0].type, WB_PARAM_NUMBER);
    assert_int_equal(alpha->divergence->score_free, 0);
    assert_non_null(alpha->family); /* its own family, not the host's guess */
    assert_string_equal(alpha->family, "Amari alpha");

    enum { N = 2001 };
    static float l[N], ws[N], wl[N], ref_s[N], ref_l[N];
    for (int i = 0; i < N; i++) l[i] = -50.0f + 0.05f * (float)i;
    wb_config_owned *c = wb_config_new(alpha);
    assert_float_equal(wb_config_number(&c->cfg, "alpha", 0.0), 2.0, 0.0); /* Pearson by default */
    static const double alphas[] = {2.0, 1.0, 0.5, 0.0, -1.0, -3.0, 10.0};
    for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
        assert_int_equal(wb_config_set_number(c, "alpha", alphas[a]), 0);
        alpha->divergence->weights(&c->cfg, N, l, ws, wl);
        for (int i = 0; i < N; i++) {
            /* f''(ρ)ρ² = e^{αl}, with |αl| clamped at 80 like the built-ins */
            double e = fmax(-80.0, fmin(80.0, alphas[a] * (double)l[i]));
            double want = exp(e);
            if (!(fabs(ws[i] - want) <= 2e-7 * want) || wl[i] != 0.0f)
                fail_msg("alpha=%g l=%g: w_s %.9g want %.9g, w_l %g", alphas[a], l[i], ws[i], want, wl[i]);
        }
        /* value() of D_α: 0 at p = q, non-negative per sample */
        float zero = 0.0f;
        assert_float_equal(alpha->divergence->value(&c->cfg, 1, &zero), 0.0, 0.0);
        for (int i = 0; i < N; i += 10) {
            double v = alpha->divergence->value(&c->cfg, 1, &l[i]);
            if (!(v >= 0.0 && isfinite(v))) fail_msg("alpha=%g l=%g: value %g", alphas[a], l[i], v);
        }
        /* finite at extreme logits; NaN stays NaN */
        const float extreme[] = {FLT_MAX, -FLT_MAX, 1e30f, -1e30f, INFINITY, -INFINITY, NAN};
        float es[7], el[7];
        alpha->divergence->weights(&c->cfg, 7, extreme, es, el);
        for (int i = 0; i < 6; i++) {
            if (!isfinite(es[i])) fail_msg("alpha=%g l=%g: w_s %g", alphas[a], extreme[i], es[i]);
            assert_true(isfinite(alpha->divergence->value(&c->cfg, 1, &extreme[i])));
        }
        assert_true(isnan(es[6]));
    }
    /* the members it reproduces: α = 1 is fkl's weight, and its value is
     * be's (l e^l − (e^l − 1)); α = 0 is kl's value (e^l − 1 − l) */
    const wb_plugin_desc *fkl = must_find(reg, "fkl"), *be = must_find(reg, "be"), *kl = must_find(reg, "kl");
    wb_config_owned *none = wb_config_new(fkl);
    assert_int_equal(wb_config_set_number(c, "alpha", 1.0), 0);
    alpha->divergence->weights(&c->cfg, N, l, ws, wl);
    fkl->divergence->weights(&none->cfg, N, l, ref_s, ref_l);
    for (int i = 0; i < N; i++) assert_float_equal(ws[i], ref_s[i], 1e-6 * ref_s[i]);
    assert_float_equal(alpha->divergence->value(&c->cfg, N, l), be->divergence->value(&none->cfg, N, l),
                       1e-9 * fabs(be->divergence->value(&none->cfg, N, l)));
    assert_int_equal(wb_config_set_number(c, "alpha", 0.0), 0);
    assert_float_equal(alpha->divergence->value(&c->cfg, N, l), kl->divergence->value(&none->cfg, N, l),
                       1e-9 * fabs(kl->divergence->value(&none->cfg, N, l)));
    /* Pearson: α = 2 gives (e^l − 1)²/2 */
    assert_int_equal(wb_config_set_number(c, "alpha", 2.0), 0);
    float one = 1.0f;
    assert_float_equal(alpha->divergence->value(&c->cfg, 1, &one), pow(expm1(1.0), 2) / 2.0, 1e-12);
    wb_config_free(none);
    wb_config_free(c);
    wb_registry_free(reg);
}

static void test_cmake_package(void **state) {
    (void)state;
    SKIP_IF_NEEDED();
    char cmd[CMD_MAX];
    /* copied out of the source tree: nothing may reach back into it */
    snprintf(cmd, sizeof cmd, "cp -R '%s' '%s/src' && mkdir -p '%s/plugdir'", EXAMPLE_DIR, g_tmp, g_tmp);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd,
             "'%s' -S '%s/src' -B '%s/src/build' -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER='%s' "
             "-DCMAKE_C_FLAGS=-Werror -DCMAKE_PREFIX_PATH='%s/prefix' && '%s' --build '%s/src/build'",
             WB_TEST_CMAKE, g_tmp, g_tmp, WB_TEST_CC, g_tmp, WB_TEST_CMAKE, g_tmp);
    run_ok(cmd);
    /* find_package(wb) found the installed package, not some other one */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/src/build/CMakeCache.txt", g_tmp);
    char *cache = wb_test_slurp(path);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "wb_DIR:PATH=%s/prefix/%s/cmake/wb", g_tmp, WB_TEST_INSTALL_LIBDIR);
    if (!strstr(cache, want)) fail_msg("expected \"%s\" in %s", want, path);
    free(cache);

    snprintf(cmd, sizeof cmd, "cp '%s/src/build/" PLUGIN_FILE "' '%s/plugdir/'", g_tmp, g_tmp);
    run_ok(cmd);
    g_built = 1;
    snprintf(path, sizeof path, "%s/plugdir/" PLUGIN_FILE, g_tmp);
    check_module_numbers(path);
}

/* ---- 3. the built workbench, from Lua ------------------------------------------- */
/* The Lua side of the check; so=<path> names the .so it must come from. */
static const char LUA_SCRIPT[] =
    "local wb = require 'wb'\n"
    "local expected_path = wb.args{so = ''}.so -- so=<path> on the command line\n"
    "-- (a) listed, from the folder WB_PLUGIN_PATH names, with its parameter\n"
    "local listed = false\n"
    "for _, name in ipairs(wb.divergences()) do listed = listed or name == 'alpha' end\n"
    "assert(listed, 'alpha missing from wb.divergences()')\n"
    "local info\n"
    "for _, p in ipairs(wb.plugins('divergence')) do if p.name == 'alpha' then info = p end end\n"
    "assert(info.path == expected_path, 'path ' .. info.path)\n"
    "assert(info.version == '1.0.0' and info.score_free == false and #info.params == 1)\n"
    "assert(info.family == 'Amari alpha', 'family ' .. tostring(info.family))\n"
    "assert(wb.divergence_families().alpha == 'Amari alpha' and wb.divergence_families().kl == 'Bregman')\n"
    "local p = info.params[1]\n"
    "assert(p.name == 'alpha' and p.type == 'number' and p.default == 2 and p.min == -10 and p.max == 10)\n"
    "-- (b) numbers: w_s = exp(alpha*l), w_l = 0\n"
    "local function close(a, b) return math.abs(a - b) <= 1e-6 * math.max(1, math.abs(b)) end\n"
    "local logits = {-1, 0, 1}\n"
    "for _, alpha in ipairs{2, 0.5, -1} do\n"
    "  local ws, wl = wb.divergence_weights({'alpha', alpha = alpha}, logits)\n"
    "  for i, l in ipairs(logits) do\n"
    "    assert(close(ws[i], math.exp(alpha * l)),\n"
    "      ('alpha=%g l=%g: w_s %.9g, want %.9g'):format(alpha, l, ws[i], math.exp(alpha * l)))\n"
    "    assert(wl[i] == 0)\n"
    "  end\n"
    "end\n"
    "local ws = wb.divergence_weights('alpha', {-1, 0, 1}) -- default alpha = 2: Pearson\n"
    "assert(close(ws[1], math.exp(-2)) and ws[2] == 1 and close(ws[3], math.exp(2)))\n"
    "local a = wb.divergence_weights({'alpha', alpha = 1}, {-3, 0.5, 4})\n"
    "local f = wb.divergence_weights('fkl', {-3, 0.5, 4})\n"
    "for i = 1, 3 do assert(close(a[i], f[i]), 'alpha = 1 is not fkl') end\n"
    "assert(close(wb.divergence_value('alpha', {1}), (math.exp(1) - 1)^2 / 2))\n"
    "assert(wb.divergence_value('alpha', {0, 0}) == 0)\n"
    "local ok, err = pcall(wb.divergence_weights, {'alpha', alpha = 11}, {0})\n"
    "assert(not ok and err:find(\"alpha: parameter 'alpha' = 11 is above its maximum 10\", 1, true), err)\n"
    "-- (c) a tiny distillation with it\n"
    "local d = wb.data.gmm2d{preset = 'ring8'}\n"
    "local t = wb.teacher{data = d, exact = true}\n"
    "local s = wb.distill{teacher = t, data = d, divergence = {'alpha', alpha = 2}, init = 'none',\n"
    "                     steps = 3, batch = 16, quiet = true}\n"
    "assert(s.divergence == 'alpha' and s.steps == 3, tostring(s))\n"
    "local x = s:sample(64, {seed = 1})\n"
    "assert(#x == 64 and x:dim() == 2)\n"
    "for i = 1, #x do for j = 1, 2 do\n"
    "  local v = x:get(i, j)\n"
    "  assert(v == v and math.abs(v) < 1e6, 'student sample not finite')\n"
    "end end\n"
    "print('out-of-tree alpha OK')\n";

/* Runs LUA_SCRIPT with the built workbench and WB_PLUGIN_PATH = <tmp>/<dir>. */
static result run_lua_in(const char *dir) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/check.lua", g_tmp);
    wb_test_write_text(path, LUA_SCRIPT);
    char cmd[CMD_MAX];
    snprintf(cmd, sizeof cmd, "env WB_PLUGIN_PATH='%s/%s' '%s' run check.lua 'so=%s/%s/" PLUGIN_FILE "'", g_tmp, dir,
             WORKBENCH, g_tmp, dir);
    return run(cmd);
}

static void test_workbench_lua(void **state) {
    (void)state;
    SKIP_IF_NEEDED();
    if (!g_built) fail_msg("the CMake build of the example failed (see test_cmake_package)");
    result r = run_lua_in("plugdir");
    if (r.status != 0) SHOW(r, "workbench run check.lua");
    assert_int_equal(r.status, 0);
    EXPECT_IN(r.out, "out-of-tree alpha OK", r);
    /* a clean folder: nothing rejected, so no warning */
    if (strstr(r.err, "warning")) {
        SHOW(r, "unexpected warning");
        fail();
    }
    wb_test_result_free(&r);
}

/* ---- 4. a bad library next to the good one ----------------------------------------- */
static void test_bad_abi_alongside(void **state) {
    (void)state;
    SKIP_IF_NEEDED();
    if (!g_built) fail_msg("the CMake build of the example failed (see test_cmake_package)");
    char cmd[CMD_MAX];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/mixed' && cp '%s/plugdir/" PLUGIN_FILE "' '%s/mixed/' && "
             "cp '%s/test_fixtures/fixture_bad_abi.so' '%s/mixed/'",
             g_tmp, g_tmp, g_tmp, WB_TEST_BUILD_DIR, g_tmp);
    run_ok(cmd);

    snprintf(cmd, sizeof cmd, "env WB_PLUGIN_PATH='%s/mixed' '%s' plugins", g_tmp, WORKBENCH);
    result r = run(cmd);
    if (r.status != 0) SHOW(r, cmd);
    assert_int_equal(r.status, 0);
    char want[PATH_MAX + 256];
    snprintf(want, sizeof want, "  alpha 1.0.0  [Amari alpha]  (%s/mixed/" PLUGIN_FILE ")", g_tmp);
    EXPECT_IN(r.out, want, r);
    EXPECT_IN(r.out, "  kl ", r);
    EXPECT_IN(r.out, "  classifier ", r);
    EXPECT_IN(r.out, "  mlp ", r);
    snprintf(want, sizeof want,
             "workbench: warning: rejected plugin library %s/mixed/fixture_bad_abi.so: ABI version 999, host "
             "expects 1",
             g_tmp);
    EXPECT_IN(r.err, want, r);
    if (strstr(r.out, "future-div")) {
        SHOW(r, "the bad library's plugin was listed");
        fail();
    }
    wb_test_result_free(&r);

    /* a script in the same situation still works, and is told why */
    r = run_lua_in("mixed");
    if (r.status != 0) SHOW(r, "workbench run check.lua (mixed folder)");
    assert_int_equal(r.status, 0);
    EXPECT_IN(r.out, "out-of-tree alpha OK", r);
    EXPECT_IN(r.err, "fixture_bad_abi.so: ABI version 999", r);
    wb_test_result_free(&r);
}

/* ---- 5. pkg-config ---------------------------------------------------------------------- */
/* Does a `<flag><dir>` word in flags name dir? Compared after realpath: a
 * relocatable .pc says "<prefix>/lib/pkgconfig/../../include". */
static int flag_names_dir(const char *flags, const char *flag, const char *dir) {
    char want[PATH_MAX], got[PATH_MAX], word[PATH_MAX];
    if (!realpath(dir, want)) return 0;
    size_t fl = strlen(flag);
    for (const char *p = flags; *p;) {
        while (*p == ' ' || *p == '\n') p++;
        size_t n = strcspn(p, " \n");
        if (n > fl && n < sizeof word && strncmp(p, flag, fl) == 0) {
            memcpy(word, p + fl, n - fl);
            word[n - fl] = '\0';
            if (realpath(word, got) && strcmp(got, want) == 0) return 1;
        }
        p += n;
    }
    return 0;
}

static void test_pkg_config(void **state) {
    (void)state;
    SKIP_IF_NEEDED();
    if (!g_have_pkg_config) {
        printf("SKIP: pkg-config not found (%s)\n", WB_TEST_PKG_CONFIG);
        skip();
    }
    char env[PATH_MAX + 128];
    snprintf(env, sizeof env, "env PKG_CONFIG_PATH='%s/prefix/%s/pkgconfig'", g_tmp, WB_TEST_INSTALL_LIBDIR);
    /* the flags must name the prefix the package was installed to */
    char cmd[CMD_MAX];
    snprintf(cmd, sizeof cmd, "%s '%s' --cflags --libs wb", env, WB_TEST_PKG_CONFIG);
    result r = run(cmd);
    if (r.status != 0) SHOW(r, cmd);
    assert_int_equal(r.status, 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/prefix/include", g_tmp);
    if (!flag_names_dir(r.out, "-I", want) || !strstr(r.out, "-lwb")) {
        SHOW(r, "pkg-config --cflags --libs wb does not point into the install prefix");
        fail();
    }
    wb_test_result_free(&r);

    /* A plugin needs the installed headers and nothing else: each one
     * compiles on its own with just the package's flags (wb/elementwise.h,
     * the scalar math, included). */
    snprintf(cmd, sizeof cmd,
             "export PKG_CONFIG_PATH='%s/prefix/%s/pkgconfig' && test -f '%s/prefix/include/wb/elementwise.h' && "
             "for h in '%s/prefix/include/wb/'*.h; do "
             "printf '#include \"wb/%%s\"\\n' \"$(basename \"$h\")\" | "
             "'%s' -std=c11 -Wall -Wextra -Werror -fsyntax-only -x c - $('%s' --cflags wb) || exit 1; done",
             g_tmp, WB_TEST_INSTALL_LIBDIR, g_tmp, g_tmp, WB_TEST_CC, WB_TEST_PKG_CONFIG);
    run_ok(cmd);

    /* the one line of the example's README */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/pcdir' && cd '%s/pcdir' && export PKG_CONFIG_PATH='%s/prefix/%s/pkgconfig' && "
             "'%s' -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden '%s/alpha_div.c' "
             "-o " PLUGIN_FILE " $('%s' --cflags --libs wb) -lm",
             g_tmp, g_tmp, g_tmp, WB_TEST_INSTALL_LIBDIR, WB_TEST_CC, EXAMPLE_DIR, WB_TEST_PKG_CONFIG);
    run_ok(cmd);

    r = run_lua_in("pcdir");
    if (r.status != 0) SHOW(r, "workbench run check.lua (pkg-config build)");
    assert_int_equal(r.status, 0);
    EXPECT_IN(r.out, "out-of-tree alpha OK", r);
    wb_test_result_free(&r);
}

/* ---- 6. an install is a snapshot ------------------------------------------------------
 * The INSTALLED workbench must read the wb Lua modules it installed, not
 * the source tree's: a long experiment run from an install keeps its code
 * while the sources are edited and rebuilt (its plugins already come from
 * the install, wb_registry_discover). */
static void test_installed_reads_its_own_lua(void **state) {
    (void)state;
    SKIP_IF_NEEDED();
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/where.lua", g_tmp);
    wb_test_write_text(path, "print('wb.lua: ' .. package.searchpath('wb', package.path))\n"
                             "print('wb/arms.lua: ' .. package.searchpath('wb.arms', package.path))\n");
    char cmd[CMD_MAX], want[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s/prefix/bin/workbench' run where.lua", g_tmp);
    result r = run(cmd);
    if (r.status != 0) SHOW(r, cmd);
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "wb.lua: %s/prefix/bin/../share/wb/lua/wb.lua", g_tmp);
    EXPECT_IN(r.out, want, r);
    snprintf(want, sizeof want, "wb/arms.lua: %s/prefix/bin/../share/wb/lua/wb/arms.lua", g_tmp);
    EXPECT_IN(r.out, want, r);
    wb_test_result_free(&r);
    /* the build tree's workbench still reads the sources (edits show at once) */
    snprintf(cmd, sizeof cmd, "'%s' run where.lua", WORKBENCH);
    r = run(cmd);
    assert_int_equal(r.status, 0);
    EXPECT_IN(r.out, "wb.lua: " WB_TEST_SOURCE_DIR "/scripts/lua/wb.lua", r);
    wb_test_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_installed_reads_its_own_lua),
        cmocka_unit_test(test_cmake_package),
        cmocka_unit_test(test_workbench_lua),
        cmocka_unit_test(test_bad_abi_alongside),
        cmocka_unit_test(test_pkg_config),
    };
    return cmocka_run_group_tests_name("out_of_tree", tests, setup, teardown);
}
