/* tests/test_options.c — the engine's option rows (host/engine/options.c):
 * every row points inside its config and is documented; the setters check
 * bounds and choices with messages naming the key; config.json's numbers
 * are exactly the keys (and order) the runs have always recorded; and
 * docs/lua.md carries, byte for byte, the tables `workbench options
 * --markdown` generates from the rows (so the docs cannot drift from the code).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/options.h"
#include "wb_test_util.h"

static const wb_option_table *const tables[] = {&wb_teacher_options, &wb_distill_options};

static void test_rows_well_formed(void **state) {
    (void)state;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        const wb_option_table *tab = tables[t];
        assert_true(tab->n > 0);
        for (int i = 0; i < tab->n; i++) {
            const wb_option *o = &tab->rows[i];
            if (o->offset + o->size > tab->config_size) fail_msg("%s: row '%s' points outside its config", tab->fn, o->name);
            if (!o->doc || !o->doc[0]) fail_msg("%s: row '%s' has no doc", tab->fn, o->name);
            switch (o->type) {
            case WB_OPT_NUMBER: assert_int_equal(o->size, sizeof(float)); break;
            case WB_OPT_INT:
                if (o->size != sizeof(int) && o->size != sizeof(int64_t)) fail_msg("row '%s': integer size", o->name);
                assert_true(o->lo <= o->hi);
                break;
            case WB_OPT_BOOL: assert_int_equal(o->size, sizeof(int)); break;
            case WB_OPT_STRING: assert_int_equal(o->size, sizeof(const char *)); break;
            case WB_OPT_ENUM:
                assert_int_equal(o->size, sizeof(int));
                assert_non_null(o->choices);
                assert_non_null(o->values);
                break;
            case WB_OPT_BACKEND:
                assert_int_equal(o->size, sizeof(const wb_backend *));
                assert_non_null(o->choices);
                break;
            }
            for (int j = 0; j < i; j++)
                if (strcmp(tab->rows[j].name, o->name) == 0) fail_msg("%s: key '%s' twice", tab->fn, o->name);
            assert_ptr_equal(wb_option_find(tab, o->name), o);
        }
        assert_null(wb_option_find(tab, "stpes"));
    }
}

static void test_setters(void **state) {
    (void)state;
    wb_distill_config c;
    wb_distill_config_default(&c);
    const wb_option *steps = wb_option_find(&wb_distill_options, "steps");
    assert_int_equal(wb_option_set_integer(steps, &c, 12), 0);
    assert_int_equal(c.steps, 12);
    assert_int_equal(wb_option_set_integer(steps, &c, -1), -1);
    assert_string_equal(wb_last_error(), "key 'steps' = -1 is below its minimum 0");
    const wb_option *fu = wb_option_find(&wb_distill_options, "fake_updates");
    assert_int_equal(wb_option_set_integer(fu, &c, 1000001), -1);
    assert_string_equal(wb_last_error(), "key 'fake_updates' = 1000001 is above its maximum 1000000");
    assert_int_equal(wb_option_set_integer(fu, &c, 3), 0);
    assert_int_equal(c.fake_updates, 3);

    const wb_option *lr = wb_option_find(&wb_distill_options, "lr");
    assert_int_equal(wb_option_set_number(lr, &c, 0.25), 0);
    assert_true(c.lr_gen == 0.25f);
    assert_int_equal(wb_option_set_string(lr, &c, "x"), -1); /* a number row takes no string */

    const wb_option *tw = wb_option_find(&wb_distill_options, "time_weight");
    assert_int_equal(wb_option_set_string(tw, &c, "sigma2"), 0);
    assert_int_equal(c.time_weight, WB_TIME_SIGMA2);
    assert_int_equal(wb_option_set_string(tw, &c, "dm"), -1);
    assert_string_equal(wb_last_error(), "key 'time_weight' = 'dm' is not one of auto|dmd|sigma2|none");
    const wb_option *init = wb_option_find(&wb_distill_options, "init");
    assert_int_equal(wb_option_set_string(init, &c, "none"), 0);
    assert_int_equal(c.init_from_teacher, 0);
    const wb_option *nb = wb_option_find(&wb_distill_options, "normalize_bins");
    assert_int_equal(wb_option_set_bool(nb, &c, 7), 0);
    assert_int_equal(c.normalize_bins, 1);

    const wb_option *seed = wb_option_find(&wb_distill_options, "seed");
    assert_int_equal(wb_option_set_integer(seed, &c, INT64_MAX), 0);
    assert_true(c.seed == (uint64_t)INT64_MAX);

    /* backends: the row resolves the name once, or names the key and why */
    const wb_option *be = wb_option_find(&wb_distill_options, "backend");
    assert_int_equal(wb_option_set_string(be, &c, "cpu"), 0);
    assert_non_null(c.backend);
    assert_string_equal(wb_backend_name(c.backend), "cpu");
    assert_int_equal(wb_option_set_string(be, &c, "tpu"), -1);
    assert_string_equal(wb_last_error(), "key 'backend' = 'tpu' is not one of cpu|cuda|cuda-emu|auto");
    if (!wb_backend_cuda()) {
        assert_null(wb_option_backend("cuda"));
        if (!strstr(wb_last_error(), "key 'backend': backend = \"cuda\": "))
            fail_msg("unclear cuda error: %s", wb_last_error());
    }
    assert_non_null(wb_option_backend("auto"));

    wb_teacher_config t;
    wb_teacher_config_default(&t);
    const wb_option *tinit = wb_option_find(&wb_teacher_options, "init");
    assert_int_equal(wb_option_set_string(tinit, &t, "ckpt.safetensors"), 0);
    assert_string_equal(t.init, "ckpt.safetensors");
}

/* The numbers config.json has always carried, in its order: `workbench
 * table` groups runs by config and scripts read these keys. */
static void expect_record(const wb_option_table *tab, const void *config, const char *const *keys, int n) {
    cJSON *root = cJSON_CreateObject();
    wb_options_record(tab, config, root);
    int i = 0;
    for (cJSON *it = root->child; it; it = it->next, i++) {
        if (i >= n) fail_msg("%s: unexpected key '%s' in config.json", tab->fn, it->string);
        if (strcmp(it->string, keys[i]) != 0) fail_msg("%s: key %d is '%s', expected '%s'", tab->fn, i, it->string, keys[i]);
        assert_true(cJSON_IsNumber(it));
    }
    assert_int_equal(i, n);
    cJSON_Delete(root);
}

static void test_config_json_numbers(void **state) {
    (void)state;
    static const char *const teacher_keys[] = {"steps",  "batch", "lr",           "ema",
                                               "seed",   "p_mean", "p_std",       "single_sigma",
                                               "label_dim"};
    static const char *const distill_keys[] = {
        "steps",      "batch",          "lr",              "lr_fake",     "lr_ratio", "beta1",     "fake_updates",
        "ratio_updates", "sigma_init",  "sigma_fixed",     "t_min",       "t_max",    "gan_weight", "normalize_bins",
        "normalize_batch", "logit_clamp", "ema",           "seed",        "log_every", "eval_samples", "eval_every"};
    wb_teacher_config t;
    wb_teacher_config_default(&t);
    expect_record(&wb_teacher_options, &t, teacher_keys, (int)(sizeof teacher_keys / sizeof *teacher_keys));
    wb_distill_config d;
    wb_distill_config_default(&d);
    d.lr_gen = 3e-4f;
    d.seed = 7;
    d.normalize_batch = 1;
    expect_record(&wb_distill_options, &d, distill_keys, (int)(sizeof distill_keys / sizeof *distill_keys));
    /* values as the old hand list wrote them: float fields widened, ints as numbers */
    cJSON *root = cJSON_CreateObject();
    wb_options_record(&wb_distill_options, &d, root);
    assert_true(cJSON_GetObjectItem(root, "lr")->valuedouble == (double)3e-4f);
    assert_true(cJSON_GetObjectItem(root, "seed")->valuedouble == 7.0);
    assert_true(cJSON_GetObjectItem(root, "normalize_batch")->valuedouble == 1.0);
    assert_true(cJSON_GetObjectItem(root, "steps")->valuedouble == 1000.0);
    cJSON_Delete(root);
}

/* docs/lua.md must hold each generated table verbatim, markers included. */
static void test_docs_match_rows(void **state) {
    (void)state;
    char *docs = wb_test_slurp(WB_TEST_SOURCE_DIR "/docs/lua.md");
    assert_non_null(docs);
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        assert_non_null(f);
        assert_int_equal(wb_options_markdown(f, tables[t]), 0);
        fclose(f);
        if (!strstr(docs, text))
            fail_msg("docs/lua.md's %s table differs from the option rows; paste `workbench options --markdown`:\n%s",
                     tables[t]->fn, text);
        free(text);
    }
    free(docs);

    /* the command prints the same */
    char dir[64];
    assert_int_equal(wb_test_mkdtemp(dir, sizeof dir, "/tmp/wb_test_options_XXXXXX"), 0);
    const char *args[] = {"options", "--markdown", NULL};
    wb_test_result r = wb_test_run_workbench(dir, args);
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "<!-- options wb.distill: generated by `workbench options --markdown` -->", r);
    WB_EXPECT_IN(r.out, "| `time_weight` | string | `\"auto\"` | `auto`, `dmd`, `sigma2`, `none` |", r);
    wb_test_result_free(&r);
    const char *bad[] = {"options", "--html", NULL};
    r = wb_test_run_workbench(dir, bad);
    WB_EXPECT_STATUS(r, 2);
    WB_EXPECT_IN(r.err, "options: unexpected argument '--html'", r);
    wb_test_result_free(&r);
    wb_test_rm_rf(dir);
}

/* The defaults the rows declare land in the configs exactly as the literals
 * they replaced (float for float: 1e-4 narrowed from the row's double is
 * 1e-4f), and what has no row stays zero / NULL. */
static void test_defaults_from_rows(void **state) {
    (void)state;
    wb_distill_config d;
    memset(&d, 0x5a, sizeof d); /* garbage: the defaults must set everything */
    wb_distill_config_default(&d);
    assert_int_equal(d.steps, 1000);
    assert_int_equal(d.batch, 256);
    assert_true(d.lr_gen == 1e-4f && d.lr_fake == 1e-3f && d.lr_ratio == 1e-3f && d.beta1 == 0.5f);
    assert_int_equal(d.fake_updates, 1);
    assert_int_equal(d.ratio_updates, 1);
    assert_true(d.sigma_init == 2.5f && d.sigma_fixed == 0.0f && d.t_min == 0.02f && d.t_max == 0.6f);
    assert_true(d.gan_weight == 0.0f && d.logit_clamp == 0.0f && d.ema_decay == 0.99f);
    assert_int_equal(d.time_weight, WB_TIME_AUTO);
    assert_int_equal(d.init_from_teacher, 1);
    assert_int_equal(d.ratio_init_from_teacher, 0);
    assert_int_equal(d.normalize_bins, 0);
    assert_int_equal(d.normalize_batch, 0);
    assert_true(d.seed == 0 && d.log_every == 100 && d.eval_samples == 0 && d.eval_every == 0);
    assert_null(d.divergence);
    assert_null(d.ratio_net.desc);
    assert_null(d.on_eval);
    assert_null(d.backend);
    wb_teacher_config t;
    memset(&t, 0x5a, sizeof t);
    wb_teacher_config_default(&t);
    assert_int_equal(t.steps, 4000);
    assert_int_equal(t.batch, 256);
    assert_true(t.lr == 2e-3f && t.ema_decay == 0.999f && t.p_mean == -1.2f && t.p_std == 1.2f);
    assert_true(t.single_sigma == 0.0f && t.seed == 0 && t.log_every == 100 && t.quiet == 0);
    assert_null(t.init);
    assert_null(t.backend);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_well_formed),
        cmocka_unit_test(test_defaults_from_rows),
        cmocka_unit_test(test_setters),
        cmocka_unit_test(test_config_json_numbers),
        cmocka_unit_test(test_docs_match_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
