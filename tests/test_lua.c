/* tests/test_lua.c — the Lua experience end to end: runs the built
 * `workbench` binary on small scripts written to a temporary folder and
 * checks exit status, stdout and stderr. What a researcher sees when a key
 * is misspelt, a type is wrong, a plugin is missing or a script fails must
 * name the key / plugin / line; key=value must reach the script; the plugin
 * listing must show every shipped plugin; the wb.table formats are pinned
 * byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fault_inject.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/tensor.h"
#include "wb_test_util.h"

static char g_dir[256]; /* the temporary folder every script runs in */

typedef wb_test_result result;

/* Runs `workbench argv...` inside g_dir with stdout and stderr captured. */
static result run_argv(const char *const *args) { return wb_test_run_workbench(g_dir, args); }

/* Writes `script` to g_dir/s.lua and runs it with up to 2 key=value args. */
static result run_script(const char *script, const char *a1, const char *a2) {
    return wb_test_run_script(g_dir, script, a1, a2);
}

/* A script that must fail with exit 1 and an error containing needles. */
static void expect_error(const char *script, const char *n1, const char *n2) {
    result r = run_script(script, NULL, NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "workbench: s.lua:", r);
    WB_EXPECT_IN(r.err, n1, r);
    if (n2) WB_EXPECT_IN(r.err, n2, r);
    WB_EXPECT_IN(r.err, "stack traceback", r);
    wb_test_result_free(&r);
}

/* ---- setup ------------------------------------------------------------------------ */
static int setup(void **state) {
    (void)state;
    return wb_test_mkdtemp(g_dir, sizeof g_dir, "/tmp/wb_test_lua_XXXXXX");
}

static int teardown(void **state) {
    (void)state;
    return wb_test_rm_rf(g_dir);
}

/* ---- unknown keys, wrong types, unknown plugins --------------------------------------- */
static void test_unknown_key_distill(void **state) {
    (void)state;
    expect_error("local wb = require 'wb'\nwb.distill{stpes = 1}\n", "s.lua:2: wb.distill: unknown key 'stpes'",
                 "known keys:");
}

static void test_unknown_key_dataset(void **state) {
    (void)state;
    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{presett = 'x'}\n",
                 "wb.data.gmm2d: unknown key 'presett'", NULL);
}

static void test_wrong_type(void **state) {
    (void)state;
    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{scale = 'big'}\n",
                 "wb.data.gmm2d: key 'scale' expects a number, got string", NULL);
    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                 "local t = wb.teacher{data = d, exact = true}\nwb.distill{teacher = t, data = d, steps = 1.5}\n",
                 "wb.distill: key 'steps' expects an integer", NULL);
    expect_error("local wb = require 'wb'\nwb.distill{teacher = 3}\n",
                 "wb.distill: key 'teacher' expects a Teacher, got number", NULL);
}

static void test_plugin_parameters_checked(void **state) {
    (void)state;
    expect_error("local wb = require 'wb'\nwb.divergence_weights({'sba', lamda = 3}, {0})\n",
                 "unknown parameter 'lamda'", "lambda");
    expect_error("local wb = require 'wb'\nwb.divergence_weights({'sba', lambda = 'big'}, {0})\n",
                 "parameter 'lambda' expects a number", NULL);
    expect_error("local wb = require 'wb'\nwb.divergence_weights({'sba', lambda = 50}, {0})\n",
                 "parameter 'lambda' = 50 is above its maximum", NULL);
    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                 "local t = wb.teacher{data = d, net = {'mlp', widths = {64, 0.5}}, steps = 1}\n",
                 "wb.teacher: mlp: parameter 'widths' expects a list of integers", NULL);
}

static void test_unknown_plugin(void **state) {
    (void)state;
    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                 "local t = wb.teacher{data = d, exact = true}\n"
                 "wb.distill{teacher = t, data = d, divergence = 'nope'}\n",
                 "wb.distill: unknown divergence 'nope'", "(loaded: lr, kl,");
    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                 "local t = wb.teacher{data = d, exact = true}\n"
                 "wb.distill{teacher = t, data = d, ratio = {'nope-ratio'}}\n",
                 "unknown ratio estimator 'nope-ratio'", NULL);
}

/* ---- script errors and the command line ----------------------------------------------- */
static void test_runtime_error_traceback(void **state) {
    (void)state;
    result r = run_script("local function f(t)\n  return t.x.y\nend\nf({})\n", NULL, NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "workbench: s.lua:2: attempt to index a nil value", r);
    WB_EXPECT_IN(r.err, "stack traceback:", r);
    WB_EXPECT_IN(r.err, "s.lua:4: in main chunk", r);
    wb_test_result_free(&r);

    r = run_script("this is not lua\n", NULL, NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "workbench: s.lua:1:", r);
    wb_test_result_free(&r);
}

static void test_cli_args(void **state) {
    (void)state;
    const char *script = "local wb = require 'wb'\n"
                         "local a = wb.args{steps = 10, lr = 0.5, name = 'x', flag = false}\n"
                         "print(a.steps, math.type(a.steps), a.lr, a.name, a.flag, arg[1])\n";
    result r = run_script(script, "steps=20", "flag=yes");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "20\tinteger\t0.5\tx\ttrue\tsteps=20\n", r);
    wb_test_result_free(&r);

    r = run_script(script, "lr=1e-3", "name=abc");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "10\tinteger\t0.001\tabc\tfalse\tlr=1e-3\n", r);
    wb_test_result_free(&r);

    r = run_script(script, "stpes=3", NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "s.lua:2: wb.args: unknown command-line key 'stpes'", r);
    WB_EXPECT_IN(r.err, "known keys: flag, lr, name, steps", r);
    wb_test_result_free(&r);

    r = run_script(script, "steps=many", NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "wb.args: key 'steps' expects a number, got 'many'", r);
    wb_test_result_free(&r);

    r = run_script(script, "steps=2.5", NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "wb.args: key 'steps' expects an integer", r);
    wb_test_result_free(&r);

    r = run_script(script, "flag=maybe", NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "wb.args: key 'flag' expects a boolean", r);
    wb_test_result_free(&r);

    r = run_script(script, "notapair", NULL);
    WB_EXPECT_STATUS(r, 2);
    WB_EXPECT_IN(r.err, "argument 'notapair' is not of the form key=value", r);
    wb_test_result_free(&r);
}

static void test_commands(void **state) {
    (void)state;
    const char *version[] = {"version", NULL};
    result r = run_argv(version);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "workbench ", r);
    WB_EXPECT_IN(r.out, "commit", r);
    WB_EXPECT_IN(r.out, "backends  cpu", r);
    wb_test_result_free(&r);

    const char *help[] = {"help", NULL};
    r = run_argv(help);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "run FILE.lua [key=value ...]", r);
    wb_test_result_free(&r);

    const char *bogus[] = {"bogus", NULL};
    r = run_argv(bogus);
    WB_EXPECT_STATUS(r, 2);
    WB_EXPECT_IN(r.err, "unknown command 'bogus'", r);
    wb_test_result_free(&r);

    const char *missing[] = {"run", "does-not-exist.lua", NULL};
    r = run_argv(missing);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "cannot open does-not-exist.lua", r);
    wb_test_result_free(&r);
}

/* ---- plugins ---------------------------------------------------------------------------- */
static void test_plugins_listing(void **state) {
    (void)state;
    const char *args[] = {"plugins", NULL};
    result r = run_argv(args);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "divergences (14)\n", r);
    static const char *const divs[] = {"lr", "kl", "be", "ls", "sba", "rkl", "srkl",
                                       "js", "sh", "fkl", "jeffreys", "dikl", "dijs", "dirm"};
    char line[64];
    for (size_t i = 0; i < sizeof divs / sizeof divs[0]; i++) {
        snprintf(line, sizeof line, "\n  %s 1.", divs[i]);
        WB_EXPECT_IN(r.out, line, r);
    }
    WB_EXPECT_IN(r.out, "\n  classifier ", r);
    WB_EXPECT_IN(r.out, "\n  gan-head ", r);
    WB_EXPECT_IN(r.out, "\n  mlp ", r);
    /* parameters with type, default and bounds or choices */
    WB_EXPECT_IN(r.out, "lambda         number   default 5        [-10, 20]", r);
    WB_EXPECT_IN(r.out, "widths         integers default {", r);
    WB_EXPECT_IN(r.out, "teacher|fake", r);
    wb_test_result_free(&r);

    /* rejected libraries: warnings naming the file and the reason, still exit 0 */
    setenv("WB_PLUGIN_PATH", WB_TEST_BUILD_DIR "/test_fixtures", 1);
    r = run_argv(args);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.err, "workbench: warning: rejected plugin library ", r);
    WB_EXPECT_IN(r.err, "fixture_bad_abi.so: ABI version", r);
    WB_EXPECT_IN(r.out, "divergences (14)\n", r);
    wb_test_result_free(&r);
    r = run_script("require 'wb'\n", NULL, NULL);
    unsetenv("WB_PLUGIN_PATH");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.err, "fixture_no_entry.so: missing entry symbol", r);
    wb_test_result_free(&r);

    /* the same registry from Lua, in load (family) order */
    r = run_script("local wb = require 'wb'\n"
                   "print(table.concat(wb.divergences(), ' '))\n"
                   "for _, p in ipairs(wb.plugins('net')) do print(p.kind, p.name, p.params[1].name, p.params[1].type) end\n"
                   "local sba = wb.plugins('divergence')[5]\n"
                   "print(sba.name, sba.params[1].name, sba.params[1].default, sba.params[1].min, sba.params[1].max)\n",
                   NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "lr kl be ls sba rkl srkl js sh fkl jeffreys dikl dijs dirm\n", r);
    WB_EXPECT_IN(r.out, "net\tmlp\twidths\tintegers\n", r);
    WB_EXPECT_IN(r.out, "sba\tlambda\t5.0\t-10.0\t20.0\n", r);
    wb_test_result_free(&r);
}

static void test_divergence_weights(void **state) {
    (void)state;
    /* sba: w_s = exp(-λ l), w_l = 0; kl: w_s = 1; dikl (score-free): w_s = 0, w_l = 1 */
    result r = run_script("local wb = require 'wb'\n"
                          "local function show(ws, wl) print(('%.6f %.6f %.6f %.6f'):format(ws[1], ws[2], wl[1], wl[2])) end\n"
                          "show(wb.divergence_weights({'sba', lambda = 3}, {0, 1}))\n"
                          "show(wb.divergence_weights('kl', {0, 1}))\n"
                          "show(wb.divergence_weights('dikl', {0, 1}))\n"
                          "print(('%.6f'):format(wb.divergence_value('kl', {0, 0})))\n",
                          NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    assert_string_equal(r.out, "1.000000 0.049787 0.000000 0.000000\n"
                               "1.000000 1.000000 0.000000 0.000000\n"
                               "0.000000 0.000000 1.000000 1.000000\n"
                               "0.000000\n");
    wb_test_result_free(&r);
}

/* ---- data, samples, evaluation, a tiny distillation ----------------------------------------- */
static void test_dataset_samples_evaluate(void **state) {
    (void)state;
    result r = run_script("local wb = require 'wb'\n"
                          "local d = wb.data.gmm2d{preset = 'ring8', scale = 2, std = 0.01}\n"
                          "local s = d:sample(1000, 7)\n"
                          "print(d.name, d.dim, d.n_modes, #s, s:n(), s:dim())\n"
                          "assert(s:get(3, 2) == s:row(3)[2] and s:totable()[3][2] == s:get(3, 2))\n"
                          "assert(d:sample(1000, 7):get(5, 1) == s:get(5, 1), 'same seed, same samples')\n"
                          "local r = math.sqrt(s:get(1, 1)^2 + s:get(1, 2)^2)\n"
                          "assert(math.abs(r - 2) < 0.1, 'on the ring of radius 2')\n"
                          "local m = wb.evaluate(s, d)\n"
                          "print(m.modes, m.n_modes, m.quality > 0.95, m.tv < 0.1)\n"
                          "print(wb.samples{{1, 2}, {3, 4}}:get(2, 1))\n"
                          "wb.scatter('figs/s.png', s, {reference = d:sample(100, 1), title = 't'})\n",
                          NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "gmm2d-ring8\t2\t8\t1000\t1000\t2\n8\t8\ttrue\ttrue\n3.0\n", r);
    wb_test_result_free(&r);
    char png[512];
    snprintf(png, sizeof png, "%s/figs/s.png", g_dir);
    struct stat st;
    assert_int_equal(stat(png, &st), 0);
}

static void test_tiny_distill(void **state) {
    (void)state;
    /* exact teacher, 3 steps: the binding end to end (configs, run dir, Student) */
    result r = run_script("local wb = require 'wb'\n"
                          "local d = wb.data.gmm2d{}\n"
                          "local t = wb.teacher{data = d, exact = true}\n"
                          "local s = wb.distill{teacher = t, data = d, divergence = {'sba', lambda = 3},\n"
                          "  ratio = {'classifier', net = {'mlp', widths = {16}}}, net = {'mlp', widths = {16}},\n"
                          "  init = 'none', steps = 3, batch = 16, log_every = 1, run = 'runs/x', quiet = true}\n"
                          "print(s.divergence, s.ratio, s.steps, s.run, #s.log.step)\n"
                          "local x = s:sample(10, {seed = 1})\n"
                          "print(#x, x:dim())\n"
                          "collectgarbage()\n",
                          NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "sba\tclassifier\t3\truns/x\t3\n10\t2\n", r);
    wb_test_result_free(&r);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/runs/x/config.json", g_dir);
    struct stat st;
    assert_int_equal(stat(cfg, &st), 0);
    /* what started the run: the script (with a CRC of its text) and its args */
    char *text = wb_test_slurp(cfg);
    assert_non_null(text);
    if (!strstr(text, "\"script\"") || !strstr(text, "s.lua\"") || !strstr(text, "\"crc32\"") ||
        !strstr(text, "\"args\""))
        fail_msg("config.json lacks the script / args record:\n%s", text);
    free(text);
}

/* backend = "cpu" | "cuda" | "auto" on wb.teacher / wb.distill: resolved
 * once, recorded in config.json; an unknown name names the key and the
 * choices; cuda without a device says why; WB_BACKEND is the default. */
static void test_backend_key(void **state) {
    (void)state;
    const char *script = "local wb = require 'wb'\n"
                         "local d = wb.data.gmm2d{}\n"
                         "local t = wb.teacher{data = d, net = {'mlp', widths = {8}}, steps = 2, batch = 8,\n"
                         "  backend = 'cpu', run = 'runs/bt', quiet = true}\n"
                         "local s = wb.distill{teacher = t, data = d, ratio = {'classifier', net = {'mlp', widths = {8}}},\n"
                         "  steps = 2, batch = 8, log_every = 0, backend = 'cpu', run = 'runs/bs', quiet = true}\n"
                         "print(s.steps)\n";
    result r = run_script(script, NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "2\n", r);
    wb_test_result_free(&r);
    static const char *const runs[] = {"bt", "bs"};
    for (int i = 0; i < 2; i++) {
        char cfg[512];
        snprintf(cfg, sizeof cfg, "%s/runs/%s/config.json", g_dir, runs[i]);
        char *text = wb_test_slurp(cfg);
        assert_non_null(text);
        if (!strstr(text, "\"backend\":\t\"cpu\"")) fail_msg("%s does not record the backend:\n%s", cfg, text);
        free(text);
    }

    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                 "wb.teacher{data = d, steps = 1, backend = 'tpu'}\n",
                 "s.lua:3: wb.teacher: key 'backend' = 'tpu' is not one of cpu|cuda|cuda-emu|auto", NULL);
    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                 "local t = wb.teacher{data = d, exact = true, backend = 'cpu'}\n"
                 "wb.distill{teacher = t, data = d, backend = 'gpu'}\n",
                 "s.lua:4: wb.distill: key 'backend' = 'gpu' is not one of cpu|cuda|cuda-emu|auto", NULL);
    expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                 "wb.teacher{data = d, backend = 1}\n",
                 "wb.teacher: key 'backend' expects a string, got number", NULL);
    if (!wb_backend_cuda()) {
        /* no GPU here: a clear error, naming the key and why */
        expect_error("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                     "wb.teacher{data = d, exact = true, backend = 'cuda'}\n",
                     "s.lua:3: wb.teacher: key 'backend': backend = \"cuda\": ", "CUDA backend unavailable");
    }

    /* the environment's default */
    setenv("WB_BACKEND", "cpu", 1);
    r = run_script("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                   "local t = wb.teacher{data = d, net = {'mlp', widths = {8}}, steps = 1, batch = 8, run = 'runs/env', quiet = true}\n"
                   "print('ok')\n",
                   NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "ok\n", r);
    wb_test_result_free(&r);
    setenv("WB_BACKEND", "tpu", 1);
    r = run_script("local wb = require 'wb'\nlocal d = wb.data.gmm2d{}\n"
                   "wb.teacher{data = d, exact = true}\n",
                   NULL, NULL);
    unsetenv("WB_BACKEND");
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "wb.teacher: WB_BACKEND = \"tpu\": unknown backend", r);
    wb_test_result_free(&r);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/runs/env/config.json", g_dir);
    char *text = wb_test_slurp(cfg);
    assert_non_null(text);
    if (!strstr(text, "\"backend\":\t\"cpu\"")) fail_msg("WB_BACKEND=cpu run does not record cpu:\n%s", text);
    free(text);
}

/* on_eval: called every eval_every steps and after the last with the Student
 * as it stands; its numbers land in the student's eval log; training is the
 * same with and without it (same samples afterwards); an error inside it
 * stops the run naming the step, with the traceback of the script. */
static void test_distill_on_eval(void **state) {
    (void)state;
    result r = run_script("local wb = require 'wb'\n"
                          "local d = wb.data.gmm2d{}\n"
                          "local t = wb.teacher{data = d, exact = true}\n"
                          "local function make(extra)\n"
                          "  local cfg = {teacher = t, data = d, divergence = 'js',\n"
                          "    ratio = {'classifier', net = {'mlp', widths = {16}}}, net = {'mlp', widths = {16}},\n"
                          "    init = 'none', steps = 7, batch = 16, log_every = 0, quiet = true}\n"
                          "  for k, v in pairs(extra) do cfg[k] = v end\n"
                          "  return wb.distill(cfg)\n"
                          "end\n"
                          "local seen = {}\n"
                          "local a = make{eval_every = 3, run = 'runs/ev', on_eval = function(s, step)\n"
                          "  seen[#seen + 1] = step\n"
                          "  assert(s.steps == step, 'student steps ' .. s.steps .. ' at step ' .. step)\n"
                          "  return wb.evaluate(s, d, {n = 200, sample_seed = 5}).mmd\n"
                          "end}\n"
                          "local b = make{}\n"
                          "print(table.concat(seen, ','), table.concat(a.log.eval_step, ','), #a.log.eval)\n"
                          "assert(a.log.eval[3] > 0 and a.log.eval[3] == a.log.eval[3])\n"
                          "local xa, xb = a:sample(50, {seed = 2}), b:sample(50, {seed = 2})\n"
                          "local same = true\n"
                          "for i = 1, #xa do for j = 1, 2 do\n"
                          "  if xa:get(i, j) ~= xb:get(i, j) then same = false end end end\n"
                          "assert(#xa == 50 and xa:get(50, 2) == xa:get(50, 2))\n"
                          "print('same', same)\n"
                          "make{eval_every = 2, on_eval = function(s, step)\n"
                          "  if step == 4 then error('boom at ' .. step) end\n"
                          "end}\n",
                          NULL, NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.out, "3,6,7\t3,6,7\t3\nsame\ttrue\n", r);
    /* mid-run scores are not the run's results: no results.json from on_eval */
    char res[512];
    snprintf(res, sizeof res, "%s/runs/ev/results.json", g_dir);
    struct stat rst;
    assert_int_not_equal(stat(res, &rst), 0);
    /* ... but they are in the run's log, one "eval" per evaluation, each line closed */
    snprintf(res, sizeof res, "%s/runs/ev/metrics.jsonl", g_dir);
    char *log = wb_test_slurp(res);
    int evals = 0;
    for (const char *q = log; (q = strstr(q, "\"eval\": ")) != NULL; q++) evals++;
    assert_int_equal(evals, 3);
    for (const char *line = log; *line; line = strchr(line, '\n') + 1) {
        const char *end = strchr(line, '\n');
        if (!end || end[-1] != '}') fail_msg("metrics.jsonl line not closed:\n%s", log);
    }
    free(log);
    WB_EXPECT_IN(r.err, "distill step 4 (evaluation): on_eval:", r);
    WB_EXPECT_IN(r.err, "boom at 4", r);
    WB_EXPECT_IN(r.err, "stack traceback", r);
    wb_test_result_free(&r);
    expect_error("local wb = require 'wb'\n"
                 "local d = wb.data.gmm2d{}\n"
                 "local t = wb.teacher{data = d, exact = true}\n"
                 "wb.distill{teacher = t, data = d, steps = 1, eval_every = 2}\n",
                 "'eval_every' (> 0) and 'on_eval' go together", NULL);
}

/* ---- wb.table --------------------------------------------------------------------------- */
#define TABLE_SCRIPT                                                                                   \
    "local wb = require 'wb'\n"                                                                        \
    "local t = wb.table({{name = 'kl_x', tv = 0.12345, modes = 8}, {name = 'sba, \"3\"', tv = 0.05, " \
    "modes = 7}},\n"                                                                                   \
    "  {'name', {key = 'modes'}, {key = 'tv', label = 'TV %'}}, {best = {tv = 'min'}})\n"

static void test_table_formats(void **state) {
    (void)state;
    result r = run_script(TABLE_SCRIPT "io.write(t:markdown(), '=\\n', t:latex(), '=\\n', t:csv())\n", NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    assert_string_equal(r.out,
                        "| name     | modes |     TV % |\n"
                        "| -------- | ----: | -------: |\n"
                        "| kl_x     |     8 |   0.1235 |\n"
                        "| sba, \"3\" |     7 | **0.05** |\n"
                        "=\n"
                        "\\begin{tabular}{lrr}\n"
                        "\\toprule\n"
                        "name & modes & TV \\% \\\\\n"
                        "\\midrule\n"
                        "kl\\_x & 8 & 0.1235 \\\\\n"
                        "sba, \"3\" & 7 & \\textbf{0.05} \\\\\n"
                        "\\bottomrule\n"
                        "\\end{tabular}\n"
                        "=\n"
                        "name,modes,TV %\n"
                        "kl_x,8,0.12345\n"
                        "\"sba, \"\"3\"\"\",7,0.05\n");
    wb_test_result_free(&r);

    /* :write creates parent folders and leaves no temporary files */
    r = run_script(TABLE_SCRIPT "t:write('out/sub/res')\n", NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    wb_test_result_free(&r);
    static const char *const exts[] = {"md", "tex", "csv"};
    for (int i = 0; i < 3; i++) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/out/sub/res.%s", g_dir, exts[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_false(wb_fault_tmp_left(path));
    }
    char path[512];
    snprintf(path, sizeof path, "%s/out/sub/res.csv", g_dir);
    char *csv = wb_test_slurp(path);
    assert_string_equal(csv, "name,modes,TV %\nkl_x,8,0.12345\n\"sba, \"\"3\"\"\",7,0.05\n");
    free(csv);

    expect_error(TABLE_SCRIPT "wb.table({}, {'a'}, {fmt = '%.2f'})\n", "wb.table: unknown key 'fmt'", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_key_distill),
        cmocka_unit_test(test_unknown_key_dataset),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_plugin_parameters_checked),
        cmocka_unit_test(test_unknown_plugin),
        cmocka_unit_test(test_runtime_error_traceback),
        cmocka_unit_test(test_cli_args),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_plugins_listing),
        cmocka_unit_test(test_divergence_weights),
        cmocka_unit_test(test_dataset_samples_evaluate),
        cmocka_unit_test(test_tiny_distill),
        cmocka_unit_test(test_distill_on_eval),
        cmocka_unit_test(test_backend_key),
        cmocka_unit_test(test_table_formats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
