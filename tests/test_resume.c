/* tests/test_resume.c — resume decisions of the engine (train_state.c): a
 * stop request ends a teacher run after its step with a checkpoint and an
 * error saying how to resume; resuming gives the uninterrupted weights bit
 * for bit; a checkpoint of another configuration, one without training
 * state, or a metrics log cut short is refused naming why; the config
 * comparison's three classes (ignored, warned, refused, build keys); a
 * fresh run into an old run's directory removes the old run's outputs
 * (issue 10, defect 1). The end-to-end stops of every kind of run are
 * tests/resume/stop_and_resume.sh and signals.sh.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "engine/train_state.h"
#include "wb/safetensors.h"

typedef struct fixture {
    wb_registry *reg;
    wb_dataset *ds;
    wb_netspec mlp;
    char tmp[256];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->reg = wb_registry_new();
    wb_registry_load_dir(f->reg, WB_TEST_PLUGIN_DIR);
    f->ds = wb_gmm2d_new("ring8", 1.0, 0.05);
    const wb_plugin_info *mlp = wb_registry_find(f->reg, WB_KIND_NET, "mlp");
    if (!mlp || !f->ds) return -1;
    f->mlp.desc = mlp->desc;
    f->mlp.cfg = wb_config_new(mlp->desc);
    int64_t widths[2] = {32, 32};
    wb_config_set_ints(f->mlp.cfg, "widths", widths, 2);
    snprintf(f->tmp, sizeof f->tmp, "/tmp/wb_resume_XXXXXX");
    if (!mkdtemp(f->tmp)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", f->tmp);
    wb_config_free(f->mlp.cfg);
    wb_dataset_free(f->ds);
    wb_registry_free(f->reg);
    free(f);
    return 0;
}

static wb_teacher_config small_teacher(void) {
    wb_teacher_config c;
    wb_teacher_config_default(&c);
    c.steps = 30;
    c.batch = 32;
    c.seed = 5;
    c.log_every = 5;
    c.quiet = 1;
    return c;
}

static wb_teacher *train_in(fixture *f, const char *name, const wb_teacher_config *c) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%s", f->tmp, name);
    wb_run run;
    if (wb_run_open(&run, dir)) return NULL;
    run.quiet = 1;
    wb_teacher *t = wb_teacher_train(f->ds, &f->mlp, c, &run);
    wb_run_close(&run);
    return t;
}

static int params_equal(wb_params *a, wb_params *b) {
    return wb_params_numel(a) == wb_params_numel(b) &&
           memcmp(wb_params_data(a), wb_params_data(b), (size_t)wb_params_numel(a) * sizeof(float)) == 0;
}

/* Stop during step 12 → checkpoint at 12, error with the resume command;
 * resume → the uninterrupted weights, bit for bit; resume again → loaded. */
static void test_teacher_stop_and_resume(void **state) {
    fixture *f = *state;
    wb_teacher_config c = small_teacher();
    wb_teacher *ref = train_in(f, "ref", &c);
    assert_non_null(ref);

    setenv("WB_STOP_AT_STEP", "12", 1);
    wb_teacher *stopped = train_in(f, "run", &c);
    unsetenv("WB_STOP_AT_STEP");
    assert_null(stopped);
    assert_int_equal(wb_stop_requested(), SIGTERM);
    assert_non_null(strstr(wb_last_error(), "stopped by SIGTERM after step 12 of 30"));
    assert_non_null(strstr(wb_last_error(), "resume"));
    wb_stop_clear();
    char path[500];
    snprintf(path, sizeof path, "%s/run/checkpoint.safetensors", f->tmp);
    wb_st_file *st = wb_safetensors_open(path);
    assert_non_null(st);
    assert_string_equal(wb_safetensors_meta(st, "training"), "in progress");
    assert_string_equal(wb_safetensors_meta(st, "step"), "12");
    wb_safetensors_close(st);

    c.resume = 1;
    wb_teacher *resumed = train_in(f, "run", &c);
    assert_non_null(resumed);
    assert_true(params_equal(ref->net->params, resumed->net->params));
    assert_true(ref->final_loss == resumed->final_loss);
    /* finished: loaded, the same weights again */
    wb_teacher *again = train_in(f, "run", &c);
    assert_non_null(again);
    assert_true(params_equal(ref->net->params, again->net->params));
    wb_teacher_free(again);
    wb_teacher_free(resumed);
    wb_teacher_free(ref);
}

/* Another lr: refused, naming the key; more steps for a finished run:
 * refused; a log shorter than the checkpoint's position: refused. */
static void test_refusals(void **state) {
    fixture *f = *state;
    wb_teacher_config c = small_teacher();
    setenv("WB_STOP_AT_STEP", "10", 1);
    assert_null(train_in(f, "r", &c));
    unsetenv("WB_STOP_AT_STEP");
    wb_stop_clear();
    c.resume = 1;
    c.lr = 1e-3f;
    assert_null(train_in(f, "r", &c));
    assert_non_null(strstr(wb_last_error(), "another configuration"));
    assert_non_null(strstr(wb_last_error(), "lr: 0.0020"));
    c = small_teacher();
    c.resume = 1;
    char metrics[500];
    snprintf(metrics, sizeof metrics, "%s/r/metrics.jsonl", f->tmp);
    assert_int_equal(truncate(metrics, 10), 0);
    assert_null(train_in(f, "r", &c));
    assert_non_null(strstr(wb_last_error(), "metrics.jsonl has 10 bytes"));
    /* a finished run asked for more steps */
    wb_teacher *done = train_in(f, "done", &c);
    assert_non_null(done);
    wb_teacher_free(done);
    c.steps = 40;
    assert_null(train_in(f, "done", &c));
    assert_non_null(strstr(wb_last_error(), "finished at 30 steps"));
}

/* A checkpoint without training state (written by hand, or before
 * checkpoints kept one) cannot be continued. */
static void test_no_state(void **state) {
    fixture *f = *state;
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/old", f->tmp);
    wb_run run;
    assert_int_equal(wb_run_open(&run, dir), 0);
    wb_params *ps = wb_params_new(wb_backend_cpu());
    assert_non_null(wb_params_add(ps, "w", 1, (int64_t[]){3}, WB_INIT_ONES, 1.0f));
    wb_rng rng;
    wb_rng_init(&rng, 1, 0);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    wb_named_params np = {"teacher.", ps};
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    assert_int_equal(wb_safetensors_save(path, &np, 1, NULL, 0), 0);
    wb_run_close(&run);
    wb_params_free(ps);
    wb_teacher_config c = small_teacher();
    c.resume = 1;
    assert_null(train_in(f, "old", &c));
    assert_non_null(strstr(wb_last_error(), "has no training state"));
}

/* Defect 1: a fresh run (no resume) into an old run's directory removes
 * the old checkpoint, samples.png and results.json before anything else. */
static void test_fresh_run_clears_old_outputs(void **state) {
    fixture *f = *state;
    wb_teacher_config c = small_teacher();
    wb_teacher *d1 = train_in(f, "d1", &c);
    assert_non_null(d1);
    wb_teacher_free(d1);
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/d1", f->tmp);
    const char *stale[] = {"samples.png", "results.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, stale[i]);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("old\n", fp);
        fclose(fp);
    }
    setenv("WB_STOP_AT_STEP", "3", 1); /* the new run stops early: nothing of the old may stay */
    c.seed = 6;
    c.checkpoint_every = 0;
    assert_null(train_in(f, "d1", &c));
    unsetenv("WB_STOP_AT_STEP");
    wb_stop_clear();
    struct stat sb;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, stale[i]);
        assert_int_not_equal(stat(path, &sb), 0);
    }
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    wb_st_file *st = wb_safetensors_open(path);
    assert_non_null(st);
    assert_string_equal(wb_safetensors_meta(st, "step"), "3"); /* the new run's, not the old */
    wb_safetensors_close(st);
}

/* The numbers guard: a logged loss over explode × its best stops the run,
 * naming the step and the loss, and points at the last good checkpoint;
 * resuming from it goes on (the guard's memory is part of the state). */
static void test_explode_guard(void **state) {
    fixture *f = *state;
    wb_teacher_config c = small_teacher();
    c.explode = 1.0f; /* any rise over the best so far */
    c.checkpoint_every = 5;
    c.steps = 60;
    assert_null(train_in(f, "boom", &c));
    const char *e = wb_last_error();
    assert_non_null(strstr(e, "teacher step "));
    assert_non_null(strstr(e, "the DSM loss = "));
    assert_non_null(strstr(e, "exploded"));
    assert_non_null(strstr(e, "is the last good one"));
    long failed_at = strtol(strstr(e, "teacher step ") + 13, NULL, 10);
    assert_true(failed_at > 5 && failed_at <= 60);
    /* off: the same run trains through */
    c.explode = 0;
    wb_teacher *t = train_in(f, "calm", &c);
    assert_non_null(t);
    wb_teacher_free(t);
}

/* The comparison's classes, on configs made by hand. */
static void test_config_classes(void **state) {
    (void)state;
    const char *base = "{\"kind\": \"distill\", \"workbench_version\": \"0.9\", \"commit\": \"abc\", "
                       "\"blas\": {\"threads\": 2}, \"script\": {\"path\": \"a.lua\"}, \"args\": {\"out\": \"x\"}, "
                       "\"steps\": 100, \"divergence\": {\"name\": \"kl\", \"version\": \"1.0.0\"}, \"lr\": 0.1}";
    cJSON *was = cJSON_Parse(base);
    char warning[512];
    struct { const char *key, *json; int ok; const char *says; } cases[] = {
        {"args", "{\"out\": \"y\", \"resume\": \"x\"}", 0, NULL},       /* origin: ignored */
        {"steps", "200", 0, NULL},                                       /* more steps: wb_run_start's call */
        {"blas", "{\"threads\": 4}", 0, "blas.threads: {\"threads\""},  /* warned */
        {"lr", "0.2", -1, "lr: 0.1 in the checkpoint, 0.2 now"},
        {"divergence", "{\"name\": \"kl\", \"version\": \"1.1.0\"}", -1, "divergence.version: \"1.0.0\""},
        {"commit", "\"def\"", -1, "another build (commit: \"abc\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *now = cJSON_Parse(base);
        cJSON_ReplaceItemInObjectCaseSensitive(now, cases[i].key, cJSON_Parse(cases[i].json));
        int rc = wb_resume_check_config("ck", was, now, warning, sizeof warning);
        if (rc != cases[i].ok) fail_msg("%s: rc %d, error %s", cases[i].key, rc, wb_last_error());
        if (cases[i].says && rc) assert_non_null(strstr(wb_last_error(), cases[i].says));
        if (cases[i].says && !rc && !strstr(warning, "blas.threads")) fail_msg("%s: warning '%s'", cases[i].key, warning);
        cJSON_Delete(now);
    }
    /* both deterministic (WB_DETERMINISTIC): the thread count changes no
     * number, so neither it nor the thread variables are warned about; a
     * numerics variable still is */
    const char *det_was = "{\"commit\": \"abc\", \"blas\": {\"threads\": 2, \"deterministic\": true}, "
                          "\"environment\": {\"WB_CONV\": \"auto\"}, \"lr\": 0.1}";
    const char *det_now = "{\"commit\": \"abc\", \"blas\": {\"threads\": 1, \"deterministic\": true}, "
                          "\"environment\": {\"WB_CONV\": \"auto\", \"OMP_NUM_THREADS\": \"1\"}, \"lr\": 0.1}";
    cJSON *dw = cJSON_Parse(det_was), *dn = cJSON_Parse(det_now);
    assert_int_equal(wb_resume_check_config("ck", dw, dn, warning, sizeof warning), 0);
    assert_string_equal(warning, "");
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(dn, "environment"), "WB_CONV",
                                           cJSON_CreateString("im2col"));
    assert_int_equal(wb_resume_check_config("ck", dw, dn, warning, sizeof warning), 0);
    assert_non_null(strstr(warning, "environment"));
    /* one side in the default mode: refused, as before (the mode changes the numbers) */
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(dn, "blas"), "deterministic",
                                           cJSON_CreateFalse());
    assert_int_equal(wb_resume_check_config("ck", dw, dn, warning, sizeof warning), -1);
    cJSON_Delete(dw);
    cJSON_Delete(dn);
    /* a different build is accepted, with a warning, when asked for */
    setenv("WB_RESUME_ANY_COMMIT", "1", 1);
    cJSON *now = cJSON_Parse(base);
    cJSON_ReplaceItemInObjectCaseSensitive(now, "commit", cJSON_CreateString("def"));
    assert_int_equal(wb_resume_check_config("ck", was, now, warning, sizeof warning), 0);
    assert_non_null(strstr(warning, "commit"));
    unsetenv("WB_RESUME_ANY_COMMIT");
    cJSON_Delete(now);
    cJSON_Delete(was);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_teacher_stop_and_resume),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_no_state),
        cmocka_unit_test(test_fresh_run_clears_old_outputs),
        cmocka_unit_test(test_explode_guard),
        cmocka_unit_test(test_config_classes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
