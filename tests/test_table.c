/* tests/test_table.c — `workbench table` and results.json. Fabricated run
 * directories (config.json + results.json, 2 configurations × 3 seeds) pin
 * the grouping, the mean ± sample std numbers and the three formats byte for
 * byte; missing or malformed files must be errors naming the file. An end to
 * end run checks that wb.evaluate on a Student with a run directory records
 * results.json (merged with what is there, never over a malformed one) and
 * that the table reads it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/table_render.h"
#include "wb/tensor.h"
#include "wb_test_util.h"

static char g_dir[256];

/* g_dir/name/{config,results}.json; results NULL: none written. */
static void make_run(const char *name, const char *config, const char *results) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/%s/config.json", g_dir, name);
    wb_test_write_text(path, config);
    if (results) {
        snprintf(path, sizeof path, "%s/%s/results.json", g_dir, name);
        wb_test_write_text(path, results);
    }
}

/* Two configurations × three seeds; seeds also differ in the commit, which
 * must not split a group. Dataset name with LaTeX specials; a second
 * divergence with two parameters (a comma for the CSV). */
static void make_sweep(void) {
    static const char *mmd_a[] = {"0.1", "0.2", "0.3"}, *fid_a[] = {"10", "12", "14"};
    static const char *mmd_b[] = {"1", "2", "4"};
    for (int s = 0; s < 3; s++) {
        char name[64], cfg[1024], res[256];
        for (int c = 0; c < 2; c++) {
            snprintf(name, sizeof name, "%s_%d", c ? "ls" : "sba", s);
            snprintf(cfg, sizeof cfg,
                     "{\"kind\": \"distill\", \"commit\": \"abc%d\", \"dataset\": \"ring_8 & 50%%\", "
                     "\"divergence\": {\"name\": \"%s\", \"version\": \"1.0.0\", \"params\": %s}, "
                     "\"ratio\": {\"name\": \"classifier\", \"params\": {}}, \"teacher\": \"exact\", "
                     "\"init\": \"none\", \"steps\": 2, \"seed\": %d}\n",
                     s, c ? "ls" : "sba", c ? "{\"a\": 1, \"b\": 2.5}" : "{\"lambda\": 5}", s);
            if (c) snprintf(res, sizeof res, "{\"mmd\": %s, \"fid\": 20, \"note\": \"x\", \"extra%d\": 1}", mmd_b[s], s);
            else snprintf(res, sizeof res, "{\"mmd\": %s, \"fid\": %s, \"note\": \"x\"}", mmd_a[s], fid_a[s]);
            make_run(name, cfg, res);
        }
    }
}

/* The file at path must contain needle; prints the file when not. */
static void expect_file_has(const char *path, const char *needle) {
    char *text = wb_test_slurp(path);
    if (!strstr(text, needle)) {
        print_error("expected \"%s\" in %s:\n%s\n", needle, path, text);
        free(text);
        fail();
    }
    free(text);
}

#define SWEEP "sba_0", "ls_0", "sba_1", "ls_1", "sba_2", "ls_2"

static int setup(void **state) {
    (void)state;
    return wb_test_mkdtemp(g_dir, sizeof g_dir, "/tmp/wb_test_table_XXXXXX");
}

static int teardown(void **state) {
    (void)state;
    return wb_test_rm_rf(g_dir);
}

/* Each test starts from an empty folder. */
static int fresh(void **state) {
    return teardown(state) || mkdir(g_dir, 0700) ? -1 : 0;
}

static void test_markdown(void **state) {
    (void)state;
    make_sweep();
    const char *args[] = {"table", SWEEP, NULL};
    wb_test_result r = wb_test_run_workbench(g_dir, args);
    WB_EXPECT_STATUS(r, 0);
    /* default metrics: numeric keys in every results.json (not note, extraN);
     * sba mmd 0.1 0.2 0.3 -> 0.2 ± 0.1, fid 10 12 14 -> 12 ± 2;
     * ls mmd 1 2 4 -> 7/3 ± sqrt(7/3) */
    assert_string_equal(r.out,
                        "| method | ratio | dataset | teacher | init | n | mmd | fid |\n"
                        "|---|---|---|---|---|--:|--:|--:|\n"
                        "| sba (lambda=5) | classifier | ring_8 & 50% | exact | none | 3 | 0.2 ± 0.1 | 12 ± 2 |\n"
                        "| ls (a=1, b=2.5) | classifier | ring_8 & 50% | exact | none | 3 | 2.333 ± 1.528 | 20 ± 0 |\n"
                        "\n"
                        "Mean ± sample std over each row's n seeds; 95 % intervals of the mean: mean ± "
                        "t(0.975, n−1)·std/√n.\n"
                        "\n"
                        "| method | ratio | dataset | teacher | init | n | mmd (95 %) | fid (95 %) |\n"
                        "|---|---|---|---|---|--:|--:|--:|\n"
                        /* scipy: mean ± stats.t.ppf(0.975, 2)·std/√3 */
                        "| sba (lambda=5) | classifier | ring_8 & 50% | exact | none | 3 | [-0.04841, 0.4484] | [7.032, 16.97] |\n"
                        "| ls (a=1, b=2.5) | classifier | ring_8 & 50% | exact | none | 3 | [-1.461, 6.128] | [20, 20] |\n");
    wb_test_result_free(&r);

    /* --baseline: paired over the seeds (config.json "seed"). scipy's
     * ttest_rel(ls, sba): fid [20,20,20] vs [10,12,14] p = 0.0202 (marked),
     * mmd [1,2,4] vs [0.1,0.2,0.3] p = 0.1227 (not); the baseline row is
     * never marked; an unknown baseline names the rows */
    const char *vs[] = {"table", SWEEP, "--baseline", "sba (lambda=5)", NULL};
    r = wb_test_run_workbench(g_dir, vs);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "| sba (lambda=5) | classifier | ring_8 & 50% | exact | none | 3 | 0.2 ± 0.1 | 12 ± 2 |\n", r);
    WB_EXPECT_IN(r.out, "| 3 | 2.333 ± 1.528 | 20 ± 0 † |\n", r);
    WB_EXPECT_IN(r.out, "† differs from sba (lambda=5) at p < 0.05", r);
    wb_test_result_free(&r);
    const char *vs_csv[] = {"table", SWEEP, "--baseline", "sba (lambda=5)", "--format", "csv", "--metrics", "fid,mmd", NULL};
    r = wb_test_run_workbench(g_dir, vs_csv);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "fid_mean,fid_std,fid_lo,fid_hi,fid_p,mmd_mean,mmd_std,mmd_lo,mmd_hi,mmd_p\n", r);
    WB_EXPECT_IN(r.out, ",3,20,0,20,20,0.02020410289,2.333333333,1.527525232,-1.4612497,6.127916367,0.122711293\n", r);
    wb_test_result_free(&r);
    const char *vs_bad[] = {"table", SWEEP, "--baseline", "kl", NULL};
    r = wb_test_run_workbench(g_dir, vs_bad);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "--baseline 'kl' is no row's method (the rows: 'sba (lambda=5)', 'ls (a=1, b=2.5)')", r);
    wb_test_result_free(&r);

    /* plugin params that are not an object (an array's members have no
     * names): the label is the plugin's name alone, never "(null)=1"
     * (fuzz finding, tests/fuzz/corpus/fuzz_run_json/regress-params-array) */
    make_run("arr", "{\"kind\": \"distill\", \"divergence\": {\"name\": \"kl\", \"params\": [1, 2]}}",
             "{\"fid\": 3}");
    const char *arr[] = {"table", "arr", NULL};
    r = wb_test_run_workbench(g_dir, arr);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "| kl | - | - | - | - | 1 | 3 |\n", r);
    wb_test_result_free(&r);

    /* one seed: just the mean; --metrics picks and orders */
    const char *one[] = {"table", "sba_1", "--metrics", "fid,mmd", NULL};
    r = wb_test_run_workbench(g_dir, one);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "| method | ratio | dataset | teacher | init | n | fid | mmd |\n", r);
    WB_EXPECT_IN(r.out, "| sba (lambda=5) | classifier | ring_8 & 50% | exact | none | 1 | 12 | 0.2 |\n", r);
    wb_test_result_free(&r);
}

static void test_latex_and_csv(void **state) {
    (void)state;
    make_sweep();
    const char *tex[] = {"table", SWEEP, "--format", "tex", "--metrics", "mmd", NULL};
    wb_test_result r = wb_test_run_workbench(g_dir, tex);
    WB_EXPECT_STATUS(r, 0);
    assert_string_equal(r.out,
                        "\\begin{tabular}{lllllrr}\n"
                        "\\toprule\n"
                        "method & ratio & dataset & teacher & init & $n$ & mmd \\\\\n"
                        "\\midrule\n"
                        "sba (lambda=5) & classifier & ring\\_8 \\& 50\\% & exact & none & 3 & 0.2 $\\pm$ 0.1 \\\\\n"
                        "ls (a=1, b=2.5) & classifier & ring\\_8 \\& 50\\% & exact & none & 3 & 2.333 $\\pm$ 1.528 \\\\\n"
                        "\\bottomrule\n"
                        "\\end{tabular}\n");
    wb_test_result_free(&r);

    const char *csv[] = {"table", SWEEP, "--format=csv", NULL};
    r = wb_test_run_workbench(g_dir, csv);
    WB_EXPECT_STATUS(r, 0);
    assert_string_equal(r.out, "method,ratio,dataset,teacher,init,n,mmd_mean,mmd_std,mmd_lo,mmd_hi,fid_mean,fid_std,fid_lo,fid_hi\n"
                               "sba (lambda=5),classifier,ring_8 & 50%,exact,none,3,0.2,0.1,-0.04841377118,0.4484137712,12,2,"
                               "7.031724576,16.96827542\n"
                               "\"ls (a=1, b=2.5)\",classifier,ring_8 & 50%,exact,none,3,2.333333333,1.527525232,-1.4612497,"
                               "6.127916367,20,0,20,20\n");
    wb_test_result_free(&r);

    /* --out: every format, or only the one asked for */
    const char *out[] = {"table", SWEEP, "--out", "paper", NULL};
    r = wb_test_run_workbench(g_dir, out);
    WB_EXPECT_STATUS(r, 0);
    wb_test_result_free(&r);
    char path[512];
    snprintf(path, sizeof path, "%s/paper.csv", g_dir);
    expect_file_has(path, "mmd_mean,mmd_std");
    snprintf(path, sizeof path, "%s/paper.tex", g_dir);
    expect_file_has(path, "\\toprule");
    snprintf(path, sizeof path, "%s/paper.md", g_dir);
    expect_file_has(path, "| 0.2 ± 0.1 |");
}

static void test_errors(void **state) {
    (void)state;
    make_sweep();
    make_run("unfinished", "{\"kind\": \"distill\"}", NULL);
    make_run("broken", "{\"kind\": \"distill\",", "{}");
    make_run("badres", "{\"kind\": \"distill\"}", "[1, 2");

    const char *missing[] = {"table", "sba_0", "unfinished", NULL};
    wb_test_result r = wb_test_run_workbench(g_dir, missing);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "unfinished/results.json", r);
    wb_test_result_free(&r);

    const char *broken[] = {"table", "broken", NULL};
    r = wb_test_run_workbench(g_dir, broken);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "broken/config.json: malformed JSON", r);
    wb_test_result_free(&r);

    const char *badres[] = {"table", "badres", NULL};
    r = wb_test_run_workbench(g_dir, badres);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "badres/results.json: malformed JSON", r);
    wb_test_result_free(&r);

    const char *nometric[] = {"table", SWEEP, "--metrics", "mmd,extra0", NULL};
    r = wb_test_run_workbench(g_dir, nometric);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "sba_0/results.json: no metric 'extra0'", r);
    wb_test_result_free(&r);

    /* command-line mistakes are usage errors (exit 2) */
    const char *const *usage_cases[] = {
        (const char *[]){"table", "sba_0", "--fromat", "md", NULL},
        (const char *[]){"table", "sba_0", "--format", "html", NULL},
        (const char *[]){"table", "sba_0", "--out", NULL},
        (const char *[]){"table", NULL},
        (const char *[]){"table", "sba_0", "--metrics", "mmd,,fid", NULL},
    };
    for (size_t i = 0; i < sizeof usage_cases / sizeof usage_cases[0]; i++) {
        r = wb_test_run_workbench(g_dir, usage_cases[i]);
        WB_EXPECT_STATUS(r, 2);
        WB_EXPECT_IN(r.err, "workbench: table:", r);
        wb_test_result_free(&r);
    }

    const char *help[] = {"help", NULL};
    r = wb_test_run_workbench(g_dir, help);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "table RUN_DIR...", r);
    wb_test_result_free(&r);
}

#define E2E_SCRIPT                                                                                                   \
    "local wb = require 'wb'\n"                                                                                      \
    "local data = wb.data.gmm2d{preset = 'ring8'}\n"                                                                 \
    "local t = wb.teacher{data = data, exact = true}\n"                                                              \
    "local s = wb.distill{teacher = t, data = data, divergence = 'kl', init = 'none', steps = 2, batch = 16,\n"      \
    "                     run = 'run1', quiet = true}\n"

static void test_end_to_end(void **state) {
    (void)state;
    char res[512];
    snprintf(res, sizeof res, "%s/run1/results.json", g_dir);
    /* evaluate records results.json, keeping keys already there */
    wb_test_result r = wb_test_run_script(g_dir,
                                          E2E_SCRIPT "local f = assert(io.open('run1/results.json', 'w'))\n"
                                                     "f:write('{\"custom\": 7}') f:close()\n"
                                                     "local m = wb.evaluate(s, data, {n = 256, reference_n = 256})\n"
                                                     "print(string.format('mmd=%.17g', m.mmd))\n",
                                          NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    wb_test_result_free(&r);
    expect_file_has(res, "\"custom\":\t7");
    expect_file_has(res, "\"mmd\":");
    expect_file_has(res, "\"n_modes\":\t8");
    expect_file_has(res, "\"mmd_bw005\":"); /* the MMD at each bandwidth too */
    expect_file_has(res, "\"mmd_bw1\":");

    const char *args[] = {"table", "run1", "--metrics", "mmd,custom", NULL};
    r = wb_test_run_workbench(g_dir, args);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "| method | ratio | dataset | teacher | init | n | mmd | custom |\n", r);
    WB_EXPECT_IN(r.out, "| kl | classifier | gmm2d-ring8 | exact | none | 1 | 0.", r);
    WB_EXPECT_IN(r.out, " | 7 |\n", r);
    wb_test_result_free(&r);

    /* a malformed results.json is an error naming it, and is left alone */
    r = wb_test_run_script(g_dir,
                           E2E_SCRIPT "local f = assert(io.open('run1/results.json', 'w'))\n"
                                      "f:write('{oops') f:close()\n"
                                      "wb.evaluate(s, data, {n = 256, reference_n = 256})\n",
                           NULL, NULL);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "run1/results.json: malformed JSON", r);
    wb_test_result_free(&r);
    char *text = wb_test_slurp(res);
    assert_string_equal(text, "{oops");
    free(text);

    /* a re-run into the directory starts without the old results */
    r = wb_test_run_script(g_dir, E2E_SCRIPT, NULL, NULL);
    WB_EXPECT_STATUS(r, 0);
    wb_test_result_free(&r);
    assert_int_not_equal(access(res, F_OK), 0);
}

/* ---- the renderer itself (report/table_render.h), as wb.table uses it ---------- */
static void test_renderer(void **state) {
    (void)state;
    const wb_table_column cols[3] = {{.label = "λ|x"}, {.label = "v", .latex = "$v_1$", .numeric = 1}, {.label = "a,b"}};
    const wb_table_cell cells[6] = {{"kl_1 & 5%", 0}, {"0.5", WB_CELL_BOLD}, {"say \"hi\"", 0},
                                    {"ŝ$", 0},          {"12.25", 0},          {NULL, 0}};
    wb_table t = {.n_cols = 3, .n_rows = 2, .cols = cols, .cells = cells};
    char *md = wb_table_render(&t, WB_TABLE_MD);
    assert_non_null(md);
    /* widths in characters (λ, ŝ are one each); the header's width is that
     * of its label as given, so an escaped '|' sticks out by one, as always */
    assert_string_equal(md, "| λ\\|x      |       v | a,b      |\n"
                            "| --------- | ------: | -------- |\n"
                            "| kl_1 & 5% | **0.5** | say \"hi\" |\n"
                            "| ŝ$        |   12.25 |          |\n");
    free(md);
    t.md_compact = 1;
    md = wb_table_render(&t, WB_TABLE_MD);
    assert_string_equal(md, "| λ\\|x | v | a,b |\n|---|--:|---|\n| kl_1 & 5% | **0.5** | say \"hi\" |\n| ŝ$ | 12.25 |  |\n");
    free(md);
    char *tex = wb_table_render(&t, WB_TABLE_TEX);
    assert_string_equal(tex, "\\begin{tabular}{lrl}\n\\toprule\nλ|x & $v_1$ & a,b \\\\\n\\midrule\n"
                             "kl\\_1 \\& 5\\% & \\textbf{0.5} & say \"hi\" \\\\\nŝ\\$ & 12.25 &  \\\\\n"
                             "\\bottomrule\n\\end{tabular}\n");
    free(tex);
    char *csv = wb_table_render(&t, WB_TABLE_CSV);
    assert_string_equal(csv, "λ|x,v,\"a,b\"\nkl_1 & 5%,0.5,\"say \"\"hi\"\"\"\nŝ$,12.25,\n");
    free(csv);
    /* raw cells are not escaped; invalid UTF-8 is measured in bytes */
    const wb_table_column one[1] = {{.label = "c"}};
    const wb_table_cell raw[2] = {{"1 $\\pm$ 2", WB_CELL_RAW}, {"\xff\xfe", 0}};
    wb_table r = {.n_cols = 1, .n_rows = 2, .cols = one, .cells = raw};
    tex = wb_table_render(&r, WB_TABLE_TEX);
    assert_non_null(strstr(tex, "\n1 $\\pm$ 2 \\\\\n"));
    free(tex);
    md = wb_table_render(&r, WB_TABLE_MD);
    assert_non_null(strstr(md, "| \xff\xfe        |\n"));
    free(md);
    /* no columns, a column without a label: errors, not crashes */
    wb_table bad = {.n_cols = 0, .cols = one};
    assert_null(wb_table_render(&bad, WB_TABLE_MD));
    const wb_table_column nolabel[1] = {{.label = NULL}};
    bad = (wb_table){.n_cols = 1, .cols = nolabel};
    assert_null(wb_table_render(&bad, WB_TABLE_CSV));
    assert_non_null(strstr(wb_last_error(), "label"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renderer),
        cmocka_unit_test_setup(test_markdown, fresh),
        cmocka_unit_test_setup(test_latex_and_csv, fresh),
        cmocka_unit_test_setup(test_errors, fresh),
        cmocka_unit_test_setup(test_end_to_end, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
