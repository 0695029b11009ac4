/* tests/test_engine.c — the engine end to end on small budgets: the
 * analytic GMM teacher against its own density, EDM preconditioning, the
 * Heun sampler, low-dimensional metrics, reproducibility (same seed, same
 * numbers), run directories (config with plugin versions and commit,
 * metrics, checkpoint, scatter plot) and NaN handling that names the step
 * and leaves earlier results intact.
 */
#include <math.h>
#include <setjmp.h>
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
    f->ds = wb_gmm2d_new("ring8-imbalanced", 1.0, 0.05);
    const wb_plugin_info *mlp = wb_registry_find(f->reg, WB_KIND_NET, "mlp");
    if (!mlp || !f->ds) return -1;
    f->mlp.desc = mlp->desc;
    f->mlp.cfg = wb_config_new(mlp->desc);
    int64_t widths[2] = {64, 64};
    wb_config_set_ints(f->mlp.cfg, "widths", widths, 2);
    snprintf(f->tmp, sizeof f->tmp, "/tmp/wb_engine_XXXXXX");
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

static wb_teacher_config small_teacher(int64_t steps, uint64_t seed) {
    wb_teacher_config c;
    wb_teacher_config_default(&c);
    c.steps = steps;
    c.batch = 64;
    c.seed = seed;
    c.log_every = 10;
    return c;
}

/* D*(x, σ) = x + σ²·∇ log p_σ(x) (Tweedie): the analytic denoiser against a
 * central difference of the analytic log density. */
static void test_gmm_denoiser_is_tweedie(void **state) {
    fixture *f = *state;
    const wb_gmm *g = f->ds->gmm;
    const float pts[][2] = {{0.1f, 0.2f}, {1.0f, 0.0f}, {-0.7f, 0.6f}, {2.0f, -1.5f}, {0.0f, 0.0f}};
    const float sigmas[] = {0.05f, 0.3f, 1.0f, 5.0f};
    for (size_t s = 0; s < sizeof sigmas / sizeof sigmas[0]; s++)
        for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++) {
            float x[2] = {pts[p][0], pts[p][1]}, d[2], sigma = sigmas[s];
            wb_gmm_denoise(g, 1, x, &sigma, d);
            for (int c = 0; c < 2; c++) {
                float h = 1e-3f * (sigma + 0.05f), xp[2] = {x[0], x[1]}, xm[2] = {x[0], x[1]};
                xp[c] += h;
                xm[c] -= h;
                double grad = (wb_gmm_log_density(g, xp, sigma) - wb_gmm_log_density(g, xm, sigma)) / (2.0 * h);
                double expect = x[c] + (double)sigma * sigma * grad;
                assert_true(fabs(d[c] - expect) < 2e-3 * (1.0 + fabs(expect)));
            }
        }
}

/* The untrained mlp's output layer is zero, so D(x, σ) = c_skip(σ)·x. */
static void test_edm_preconditioning(void **state) {
    fixture *f = *state;
    wb_rng rng;
    wb_rng_init(&rng, 3, 0);
    wb_net *net = wb_net_new(&f->mlp, &f->ds->shape, wb_backend_cpu(), &rng);
    assert_non_null(net);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float x[6] = {0.3f, -1.0f, 2.0f, 0.5f, -0.2f, 0.0f}, sigma[3] = {0.002f, 0.5f, 80.0f};
    int64_t xs[2] = {3, 2}, n = 3;
    wb_tensor *d = wb_net_denoise(net, g, wb_from_host(g, 2, xs, x), wb_from_host(g, 1, &n, sigma), NULL, NULL);
    assert_non_null(d);
    float out[6];
    wb_to_host(d, out);
    for (int i = 0; i < 3; i++) {
        double c_skip = 0.25 / ((double)sigma[i] * sigma[i] + 0.25);
        for (int c = 0; c < 2; c++) assert_float_equal(out[2 * i + c], c_skip * x[2 * i + c], 1e-6);
    }
    /* a batch/σ mismatch is an error, not a crash */
    int64_t two = 2;
    assert_null(wb_net_denoise(net, g, wb_from_host(g, 2, xs, x), wb_from_host(g, 1, &two, sigma), NULL, NULL));
    assert_non_null(strstr(wb_last_error(), "noise levels"));
    wb_graph_free(g);
    wb_net_free(net);
}

/* The exact teacher's 35-evaluation Heun samples are the data distribution. */
static void test_exact_teacher_sampler_and_metrics(void **state) {
    fixture *f = *state;
    wb_teacher *t = wb_teacher_exact(f->ds, wb_backend_cpu());
    assert_non_null(t);
    const int64_t n = 1500;
    float *xs = malloc((size_t)n * 2 * sizeof(float)), *ref = malloc((size_t)n * 2 * sizeof(float));
    wb_rng rng;
    wb_rng_init(&rng, 11, 0);
    f->ds->sample(f->ds, &rng, n, ref);
    assert_int_equal(wb_teacher_sample(t, n, 18, 5, xs), 0);
    wb_gmm_metrics m;
    assert_int_equal(wb_eval_gmm(f->ds->gmm, xs, n, ref, n, &m), 0);
    assert_int_equal(m.modes_covered, 8);
    assert_true(m.mode_tv < 0.05);
    assert_true(m.quality > 0.95);
    assert_true(m.mmd < 0.06);
    /* the same samples against themselves: MMD exactly 0 */
    assert_true(wb_mmd_rbf(xs, 200, xs, 200, 2) < 1e-4);
    /* everything on one mode: one mode covered, TV = 1 − w_0 */
    for (int64_t i = 0; i < n; i++) {
        xs[2 * i] = (float)f->ds->gmm->means[0][0];
        xs[2 * i + 1] = (float)f->ds->gmm->means[0][1];
    }
    wb_eval_gmm(f->ds->gmm, xs, n, ref, n, &m);
    assert_int_equal(m.modes_covered, 1);
    assert_float_equal(m.mode_tv, 1.0 - f->ds->gmm->weights[0], 1e-9);
    assert_true(m.mmd > 0.3);
    free(xs);
    free(ref);
    wb_teacher_free(t);
}

static void test_gmm_presets(void **state) {
    (void)state;
    wb_dataset *d = wb_gmm2d_new("grid25", 1.0, 0.05);
    assert_non_null(d);
    assert_int_equal(d->gmm->n_modes, 25);
    wb_dataset_free(d);
    assert_null(wb_gmm2d_new("ring9", 1.0, 0.05));
    assert_non_null(strstr(wb_last_error(), "ring9"));
    assert_null(wb_gmm2d_new("ring8", 1.0, -1.0));
}

static int params_equal(wb_params *a, wb_params *b) {
    return wb_params_numel(a) == wb_params_numel(b) &&
           memcmp(wb_params_data(a), wb_params_data(b), (size_t)wb_params_numel(a) * sizeof(float)) == 0;
}

/* Same seed and config: bit-identical teacher; another seed: different. */
static void test_teacher_reproducible(void **state) {
    fixture *f = *state;
    wb_teacher_config c = small_teacher(40, 7);
    wb_run run;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/t1", f->tmp);
    assert_int_equal(wb_run_open(&run, dir), 0);
    run.quiet = 1;
    wb_teacher *a = wb_teacher_train(f->ds, &f->mlp, &c, &run);
    wb_run_close(&run);
    wb_teacher *b = wb_teacher_train(f->ds, &f->mlp, &c, NULL);
    c.seed = 8;
    wb_teacher *other = wb_teacher_train(f->ds, &f->mlp, &c, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(other);
    assert_true(params_equal(a->net->params, b->net->params));
    assert_false(params_equal(a->net->params, other->net->params));
    /* the run directory: config with the plugin version and the commit,
     * metrics, and a checkpoint that loads back into the same net */
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char text[8192] = {0};
    size_t got = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    assert_true(got > 0);
    cJSON *cfg = cJSON_Parse(text);
    assert_non_null(cfg);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "net"), "name")->valuestring, "mlp");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "net"), "version"));
    assert_non_null(cJSON_GetObjectItem(cfg, "commit"));
    assert_int_equal((int)cJSON_GetObjectItem(cfg, "seed")->valuedouble, 7);
    cJSON_Delete(cfg);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 0);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    wb_named_params store = {"teacher.", other->net->params};
    assert_int_equal(wb_safetensors_load(path, &store, 1, 0), 0);
    assert_true(params_equal(a->net->params, other->net->params));
    /* a teacher started from that checkpoint with no steps is the same net */
    wb_teacher_config from = small_teacher(0, 99);
    from.init = path;
    wb_teacher *loaded = wb_teacher_train(f->ds, &f->mlp, &from, NULL);
    assert_non_null(loaded);
    assert_true(params_equal(a->net->params, loaded->net->params));
    wb_teacher_free(loaded);
    from.init = "/nonexistent/teacher.safetensors";
    assert_null(wb_teacher_train(f->ds, &f->mlp, &from, NULL));
    assert_non_null(strstr(wb_last_error(), "/nonexistent/teacher.safetensors"));
    wb_teacher_free(a);
    wb_teacher_free(b);
    wb_teacher_free(other);
}

static wb_distill_config distill_config(fixture *f, const char *divergence, int64_t steps) {
    wb_distill_config c;
    wb_distill_config_default(&c);
    const wb_plugin_info *dv = wb_registry_find(f->reg, WB_KIND_DIVERGENCE, divergence);
    const wb_plugin_info *ra = wb_registry_find(f->reg, WB_KIND_RATIO, "classifier");
    c.divergence = dv->desc;
    c.divergence_cfg = wb_config_new(dv->desc);
    c.ratio = ra->desc;
    c.ratio_cfg = wb_config_new(ra->desc);
    c.ratio_net = f->mlp;
    c.steps = steps;
    c.batch = 32;
    c.log_every = 5;
    return c;
}

static void free_distill_config(wb_distill_config *c) {
    wb_config_free(c->divergence_cfg);
    wb_config_free(c->ratio_cfg);
}

/* Every divergence family runs; the same seed reproduces the samples. */
static void test_distill_reproducible_every_family(void **state) {
    fixture *f = *state;
    wb_teacher_config tc = small_teacher(30, 1);
    wb_teacher *t = wb_teacher_train(f->ds, &f->mlp, &tc, NULL);
    assert_non_null(t);
    const char *names[] = {"kl", "sba", "js", "dijs"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        wb_distill_config c = distill_config(f, names[k], 6);
        c.gan_weight = k == 2 ? 0.01f : 0.0f; /* the optional GAN term */
        c.normalize_bins = c.normalize_batch = k == 2;
        c.logit_clamp = k == 1 ? 3.0f : 0.0f;
        c.eval_samples = 64;
        wb_student *a = wb_distill(t, f->ds, &c, NULL), *b = wb_distill(t, f->ds, &c, NULL);
        if (!a) fail_msg("%s: %s", names[k], wb_last_error());
        assert_non_null(b);
        float xa[64], xb[64];
        assert_int_equal(wb_student_sample(a, 32, 9, 1, xa), 0);
        assert_int_equal(wb_student_sample(b, 32, 9, 1, xb), 0);
        assert_memory_equal(xa, xb, sizeof xa);
        for (int i = 0; i < 64; i++) assert_true(isfinite(xa[i]));
        assert_int_equal(a->n_log, 2);
        wb_student_free(a);
        wb_student_free(b);
        free_distill_config(&c);
    }
    wb_teacher_free(t);
}

/* gan-head reads the teacher's or the fake-score net's last hidden layer;
 * its logits are differentiable in x, so the GAN term and ∇_x l work. */
static void test_gan_head(void **state) {
    fixture *f = *state;
    wb_teacher_config tc = small_teacher(20, 4);
    wb_teacher *t = wb_teacher_train(f->ds, &f->mlp, &tc, NULL);
    assert_non_null(t);
    const char *features[] = {"teacher", "fake"};
    const char *divs[] = {"dikl", "js"};
    for (int k = 0; k < 2; k++) {
        wb_distill_config c = distill_config(f, divs[k], 4);
        const wb_plugin_info *gh = wb_registry_find(f->reg, WB_KIND_RATIO, "gan-head");
        wb_config_free(c.ratio_cfg);
        c.ratio = gh->desc;
        c.ratio_cfg = wb_config_new(gh->desc);
        assert_int_equal(wb_config_set_string(c.ratio_cfg, "features", features[k]), 0);
        c.gan_weight = 0.1f;
        wb_student *s = wb_distill(t, f->ds, &c, NULL);
        if (!s) fail_msg("gan-head on %s: %s", features[k], wb_last_error());
        wb_student_free(s);
        free_distill_config(&c);
    }
    /* the score-free path trains no fake-score net: asking for its features is an error */
    wb_distill_config c = distill_config(f, "dijs", 2);
    const wb_plugin_info *gh = wb_registry_find(f->reg, WB_KIND_RATIO, "gan-head");
    wb_config_free(c.ratio_cfg);
    c.ratio = gh->desc;
    c.ratio_cfg = wb_config_new(gh->desc);
    wb_config_set_string(c.ratio_cfg, "features", "fake");
    assert_null(wb_distill(t, f->ds, &c, NULL));
    assert_non_null(strstr(wb_last_error(), "fake"));
    free_distill_config(&c);
    wb_teacher_free(t);
}

/* A NaN in training is an error naming the step and the quantity; the
 * last good checkpoint of the run (checkpoint_every) stays whole, finite,
 * and is named as the resume point. (A fresh run into an old run's
 * directory removes the old run's files: tests/test_resume.c.) */
static void test_nan_stops_and_keeps_results(void **state) {
    fixture *f = *state;
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/nan", f->tmp);
    wb_run run;
    wb_teacher_config tc = small_teacher(10, 2);
    wb_teacher *good = wb_teacher_train(f->ds, &f->mlp, &tc, NULL);
    assert_non_null(good);

    tc.lr = 1e30f; /* diverges within a few steps */
    tc.steps = 50;
    tc.checkpoint_every = 1;
    assert_int_equal(wb_run_open(&run, dir), 0);
    run.quiet = 1;
    wb_teacher *bad = wb_teacher_train(f->ds, &f->mlp, &tc, &run);
    wb_run_close(&run);
    assert_null(bad);
    const char *e = wb_last_error();
    assert_non_null(strstr(e, "teacher step"));
    assert_non_null(strstr(e, "DSM loss is"));
    long failed_at = strtol(strstr(e, "teacher step") + 12, NULL, 10);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    if (failed_at > 1) { /* the step before is the resume point, whole and finite */
        assert_non_null(strstr(e, "is the last good one"));
        wb_params *back = wb_params_clone(good->net->params);
        wb_named_params store = {"teacher.", back};
        assert_int_equal(wb_safetensors_load(path, &store, 1, 1), 0);
        assert_true(wb_params_all_finite(back));
        wb_params_free(back);
    }

    wb_distill_config c = distill_config(f, "kl", 40);
    c.lr_gen = 1e30f;
    wb_student *s = wb_distill(good, f->ds, &c, NULL);
    assert_null(s);
    assert_non_null(strstr(wb_last_error(), "distill step"));
    free_distill_config(&c);
    wb_teacher_free(good);
}

/* A distillation run directory has everything a paper needs to reproduce it. */
static void test_distill_run_directory(void **state) {
    fixture *f = *state;
    wb_teacher *t = wb_teacher_exact(f->ds, wb_backend_cpu());
    wb_distill_config c = distill_config(f, "sba", 4);
    c.init_from_teacher = 0;
    c.gen_net = f->mlp;
    wb_config_set_number(c.divergence_cfg, "lambda", 3.0);
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/distill", f->tmp);
    wb_run run;
    assert_int_equal(wb_run_open(&run, dir), 0);
    run.quiet = 1;
    wb_student *s = wb_distill(t, f->ds, &c, &run);
    wb_run_close(&run);
    if (!s) fail_msg("%s", wb_last_error());
    const char *files[] = {"config.json", "metrics.jsonl", "checkpoint.safetensors", "samples.png"};
    for (size_t i = 0; i < 4; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size > 0);
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *fp = fopen(path, "r");
    char text[8192] = {0};
    assert_true(fread(text, 1, sizeof text - 1, fp) > 0);
    fclose(fp);
    cJSON *cfg = cJSON_Parse(text);
    cJSON *div = cJSON_GetObjectItem(cfg, "divergence");
    assert_string_equal(cJSON_GetObjectItem(div, "name")->valuestring, "sba");
    assert_float_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(div, "params"), "lambda")->valuedouble, 3.0, 1e-12);
    assert_string_equal(cJSON_GetObjectItem(cfg, "teacher")->valuestring, "exact");
    assert_string_equal(cJSON_GetObjectItem(cfg, "init")->valuestring, "none");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "ratio"), "net"));
    cJSON_Delete(cfg);
    /* the exact teacher cannot initialise a generator: a clear error */
    c.init_from_teacher = 1;
    assert_null(wb_distill(t, f->ds, &c, NULL));
    assert_non_null(strstr(wb_last_error(), "init"));
    wb_student_free(s);
    free_distill_config(&c);
    wb_teacher_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gmm_denoiser_is_tweedie),
        cmocka_unit_test(test_edm_preconditioning),
        cmocka_unit_test(test_exact_teacher_sampler_and_metrics),
        cmocka_unit_test(test_gmm_presets),
        cmocka_unit_test(test_teacher_reproducible),
        cmocka_unit_test(test_distill_reproducible_every_family),
        cmocka_unit_test(test_gan_head),
        cmocka_unit_test(test_nan_stops_and_keeps_results),
        cmocka_unit_test(test_distill_run_directory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
