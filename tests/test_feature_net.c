/* tests/test_feature_net.c — the FID feature classifier (host/engine/feature_net.h)
 * and its loss (include/wb/loss.h):
 *   - wb_cross_entropy against a double reference (also at logits of 1e3,
 *     where a naive softmax overflows) and a central finite-difference
 *     gradient;
 *   - on a tiny generated CIFAR-10 set (3 easily separated classes, resized
 *     to 8×8 so that 150 training steps take seconds): test accuracy > 0.9,
 *     the cache file is written and a second open loads it (no training)
 *     with bit-identical features, a corrupt cache is an error naming it,
 *     FID(real, real) ≪ FID(real, one class) and the one-class set is
 *     flagged collapsed covering 1 class;
 *   - wb.image_metrics through the built workbench, and its unknown-key error.
 *
 * Shape legend: B batch, K classes, F = WB_FEATURE_DIM features.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/feature_net.h"
#include "engine/images.h"
#include "wb/loss.h"
#include "wb_test_util.h"

#define PER_BATCH 40 /* 5 train batches -> 200 images; test_batch 60 */
#define STEPS 150

static char g_dir[256];

/* ---- cross entropy ---------------------------------------------------------------- */
static double ce_ref(const float *x, const int *lab, int b, int k) {
    double tot = 0;
    for (int i = 0; i < b; i++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < k; j++) mx = fmax(mx, x[i * k + j]);
        for (int j = 0; j < k; j++) s += exp(x[i * k + j] - mx);
        tot += mx + log(s) - x[i * k + lab[i]];
    }
    return tot / b;
}

static float ce_eval(wb_graph *g, const float *x, const int *lab, int b, int k) {
    int64_t shape[2] = {b, k};
    wb_graph_reset(g);
    wb_tensor *t = wb_from_host(g, 2, shape, x);
    wb_tensor *l = wb_cross_entropy(g, t, lab);
    assert_non_null(l);
    float v;
    wb_to_host(l, &v);
    return v;
}

static void test_cross_entropy(void **state) {
    (void)state;
    enum { B = 5, K = 4 };
    float x[B * K];
    int lab[B] = {0, 3, 1, 2, 3};
    wb_rng rng;
    wb_rng_init(&rng, 7, 0);
    wb_rng_normal(&rng, x, B * K);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    assert_non_null(g);
    float v = ce_eval(g, x, lab, B, K);
    assert_true(fabs(v - ce_ref(x, lab, B, K)) < 1e-6);

    /* huge logits: exp(1000) overflows float and double alike */
    float big[B * K];
    for (int i = 0; i < B * K; i++) big[i] = x[i] * 1000.0f + 500.0f;
    v = ce_eval(g, big, lab, B, K);
    assert_true(isfinite(v));
    assert_true(fabs(v - ce_ref(big, lab, B, K)) < 1e-3 * fmax(1.0, fabs(v)));

    /* gradient: backward with a seed of 2 vs central differences of 2·loss */
    int64_t shape[2] = {B, K}, one = 1;
    wb_graph_reset(g);
    wb_tensor *t = wb_leaf(g, 2, shape, x, 1);
    wb_tensor *l = wb_cross_entropy(g, t, lab);
    float two = 2.0f;
    wb_tensor *seed = wb_from_host(g, 1, &one, &two);
    assert_int_equal(wb_backward(g, l, seed), 0);
    float grad[B * K];
    wb_grad_to_host(t, grad);
    for (int i = 0; i < B * K; i++) {
        float xp[B * K], xm[B * K];
        memcpy(xp, x, sizeof x);
        memcpy(xm, x, sizeof x);
        const double h = 1e-3;
        xp[i] += (float)h;
        xm[i] -= (float)h;
        double fd = 2.0 * (ce_ref(xp, lab, B, K) - ce_ref(xm, lab, B, K)) / (2 * h);
        if (fabs(fd - grad[i]) > 1e-4) fail_msg("d/dx[%d]: backward %g, finite difference %g", i, grad[i], fd);
    }

    /* bad label and non-finite logit are errors, not NaN losses */
    int badlab[B] = {0, 4, 1, 2, 3};
    wb_graph_reset(g);
    assert_null(wb_cross_entropy(g, wb_from_host(g, 2, shape, x), badlab));
    assert_non_null(strstr(wb_last_error(), "label 4"));
    x[3] = NAN;
    wb_graph_reset(g);
    assert_null(wb_cross_entropy(g, wb_from_host(g, 2, shape, x), lab));
    wb_graph_free(g);
}

/* ---- the tiny CIFAR-10 set ------------------------------------------------------------ */
/* Label k % 3: 0 dark, 1 bright, 2 bright top half / dark bottom half, each
 * pixel ± uniform noise of 40 (an LCG, so the files are reproducible). */
static uint32_t g_lcg = 12345;
static int noise(void) {
    g_lcg = g_lcg * 1664525u + 1013904223u;
    return (int)(g_lcg >> 24) % 81 - 40;
}

static int write_batch(const char *path, int count, int k0) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char rec[1 + 3072];
    for (int r = 0; r < count; r++) {
        int label = (k0 + r) % 3;
        rec[0] = (unsigned char)label;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    int base = label == 0 ? 50 : label == 1 ? 205 : (y < 16 ? 205 : 50);
                    int v = base + noise();
                    rec[1 + c * 1024 + y * 32 + x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
        if (fwrite(rec, 1, sizeof rec, f) != sizeof rec) {
            fclose(f);
            return -1;
        }
    }
    return fclose(f);
}

static int setup(void **state) {
    (void)state;
    if (wb_test_mkdtemp(g_dir, sizeof g_dir, "/tmp/wb_test_feature_net_XXXXXX")) return -1;
    char path[512];
    snprintf(path, sizeof path, "%s/cifar", g_dir);
    if (mkdir(path, 0777)) return -1;
    for (int b = 1; b <= 5; b++) {
        snprintf(path, sizeof path, "%s/cifar/data_batch_%d.bin", g_dir, b);
        if (write_batch(path, PER_BATCH, b * PER_BATCH)) return -1;
    }
    snprintf(path, sizeof path, "%s/cifar/test_batch.bin", g_dir);
    return write_batch(path, 60, 1);
}

static int teardown(void **state) {
    (void)state;
    return wb_test_rm_rf(g_dir);
}

static wb_dataset *open_set(const char *split, int only_class) {
    wb_image_options o;
    wb_image_options_default(&o);
    o.split = split;
    o.resize_to = 8;
    int inc[1] = {only_class};
    if (only_class >= 0) {
        o.include = inc;
        o.n_include = 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/cifar", g_dir);
    wb_dataset *ds = wb_images_open("cifar10", path, &o);
    if (!ds) fail_msg("wb_images_open: %s", wb_last_error());
    return ds;
}

/* ---- classifier, cache, metrics --------------------------------------------------------- */
static void test_feature_net(void **state) {
    (void)state;
    char cache[512];
    snprintf(cache, sizeof cache, "%s/cache", g_dir);
    wb_dataset *train = open_set("train", -1), *test = open_set("test", -1), *one = open_set("train", 0);

    double t0 = wb_now_seconds();
    wb_feature_net *fn = wb_feature_net_open(train, cache, STEPS, 0, 1, wb_backend_cpu());
    if (!fn) fail_msg("open: %s", wb_last_error());
    double t_train = wb_now_seconds() - t0;
    assert_int_equal(wb_feature_net_trained(fn), 1);
    assert_int_equal(wb_feature_net_classes(fn), 3);
    assert_string_equal(wb_feature_net_id(fn), "cifar10-train-8x8-s0-n150");
    struct stat st;
    assert_int_equal(stat(wb_feature_net_path(fn), &st), 0);
    double acc = wb_feature_net_accuracy(fn, test, 0);
    print_message("feature net: %d steps in %.2f s, test accuracy %.3f\n", STEPS, t_train, acc);
    assert_true(acc > 0.9);

    /* second open: loaded, not trained, same features bit for bit */
    wb_feature_net *fn2 = wb_feature_net_open(train, cache, STEPS, 0, 1, wb_backend_cpu());
    if (!fn2) fail_msg("reopen: %s", wb_last_error());
    assert_int_equal(wb_feature_net_trained(fn2), 0);
    enum { N = 200 };
    float *x = malloc((size_t)N * train->dim * sizeof *x);
    float *f1 = malloc(N * WB_FEATURE_DIM * sizeof *f1), *f2 = malloc(N * WB_FEATURE_DIM * sizeof *f2);
    float p1[N * 3], p2[N * 3];
    wb_rng rng;
    wb_rng_init(&rng, 99, 0);
    assert_int_equal(train->sample(train, &rng, N, x), 0);
    assert_int_equal(wb_feature_net_features(fn, x, N, f1, p1), 0);
    assert_int_equal(wb_feature_net_features(fn2, x, N, f2, p2), 0);
    assert_memory_equal(f1, f2, N * WB_FEATURE_DIM * sizeof *f1);
    assert_memory_equal(p1, p2, sizeof p1);
    wb_feature_net_free(fn2);

    /* corrupt cache file (another seed's name): an error naming it */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/cifar10-train-8x8-s1-n%d.safetensors", cache, STEPS);
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    fputs("this is not a safetensors file", f);
    fclose(f);
    assert_null(wb_feature_net_open(train, cache, STEPS, 1, 1, wb_backend_cpu()));
    assert_non_null(strstr(wb_last_error(), bad));

    /* metrics: real vs real (another seed) and real vs one class */
    wb_image_metrics_out real, col;
    wb_rng_init(&rng, 4242, 0);
    assert_int_equal(train->sample(train, &rng, N, x), 0);
    t0 = wb_now_seconds();
    if (wb_image_metrics(fn, x, N, train, cache, NULL, NULL, &real)) fail_msg("metrics: %s", wb_last_error());
    double t_metrics = wb_now_seconds() - t0;
    assert_int_equal(one->sample(one, &rng, N, x), 0);
    if (wb_image_metrics(fn, x, N, train, cache, NULL, NULL, &col)) fail_msg("metrics: %s", wb_last_error());
    print_message("real: fid %.4f P %.3f R %.3f IS %.3f cov %d/%d H %.3f collapsed %d (%.2f s)\n", real.fid,
                  real.precision, real.recall, real.is_mean, real.classes_covered, real.n_classes, real.entropy,
                  real.collapsed, t_metrics);
    print_message("one class: fid %.4f P %.3f R %.3f IS %.3f cov %d/%d H %.3f collapsed %d\n", col.fid, col.precision,
                  col.recall, col.is_mean, col.classes_covered, col.n_classes, col.entropy, col.collapsed);
    assert_true(col.fid > 10.0 * real.fid);
    assert_int_equal(real.collapsed, 0);
    assert_int_equal(real.classes_covered, 3);
    assert_true(real.is_mean > 2.5);
    assert_true(real.precision > 0.8 && real.recall > 0.8);
    assert_int_equal(col.collapsed, 1);
    assert_int_equal(col.classes_covered, 1);
    assert_true(col.recall < 0.5);
    /* the reference statistics are cached, named after the classifier */
    char stats[700];
    snprintf(stats, sizeof stats, "%s/cifar10-train-8x8-ref-%d-cifar10-train-8x8-s0-n%d.stats.safetensors", cache, N,
             STEPS);
    assert_int_equal(stat(stats, &st), 0);
    /* a one-class set cannot train a classifier */
    assert_null(wb_feature_net_open(one, NULL, 5, 0, 1, wb_backend_cpu()));
    assert_non_null(strstr(wb_last_error(), "at least 2"));

    free(x);
    free(f1);
    free(f2);
    wb_feature_net_free(fn);
    wb_dataset_free(train);
    wb_dataset_free(test);
    wb_dataset_free(one);
}

/* ---- Lua --------------------------------------------------------------------------------- */
typedef wb_test_result result;

static result run_script(const char *script) { return wb_test_run_script(g_dir, script, NULL, NULL); }

static void test_lua_image_metrics(void **state) {
    (void)state;
    /* steps = 150, seed 0, cache "cache": the file test_feature_net wrote
     * (when run alone, it trains the same net in a second or two) */
    result r = run_script(
        "local wb = require 'wb'\n"
        "local ds = wb.data.images{kind = 'cifar10', path = 'cifar', resize_to = 8}\n"
        "local x = ds:sample(120, 5)\n"
        "local m = wb.image_metrics(x, ds, {cache = 'cache', classifier_steps = 150, quiet = true})\n"
        "print(string.format('ok %d %d %s %s', m.classes_covered, m.n_classes, tostring(m.collapsed),\n"
        "  tostring(m.fid >= 0 and m.precision >= 0 and m.recall >= 0 and m.is > 1 and m.is_std >= 0\n"
        "    and m.entropy > 0.9 and m.classifier_accuracy > 0.9)))\n"
        "local m2 = wb.image_metrics(x, ds, {n = 60, cache = 'cache', classifier_steps = 150, quiet = true})\n"
        "print('again', m2.n_classes)\n"
        "wb.image_metrics(x, ds, {cache = 'cache', classifier_step = 150})\n");
    WB_EXPECT_IN(r.out, "ok 3 3 false true\n", r);
    WB_EXPECT_IN(r.out, "again\t3\n", r);
    WB_EXPECT_IN(r.err, "wb.image_metrics: unknown key 'classifier_step'", r);
    if (r.status != 1) fail_msg("status %d", r.status);
    free(r.out);
    free(r.err);

    r = run_script("local wb = require 'wb'\n"
                   "local ds = wb.data.images{kind = 'cifar10', path = 'cifar', resize_to = 8}\n"
                   "wb.image_metrics(ds:sample(10, 1), ds, {cache = 'cache', classifier_steps = 150, quiet = 1})\n");
    WB_EXPECT_IN(r.err, "wb.image_metrics: key 'quiet' expects a boolean", r);
    free(r.out);
    free(r.err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_feature_net),
        cmocka_unit_test(test_lua_image_metrics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
