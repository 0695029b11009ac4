/* tests/test_inception.c — the FID Inception-v3 feature extractor
 * (host/engine/inception.c, wb/inception.h):
 *   - the architecture against torchvision's Inception3 with random weights
 *     and pytorch-fid's FID blocks (tests/torch_inception.py writes the
 *     weights as safetensors — with fc.*, AuxLogits.* and I64
 *     num_batches_tracked in the file, which the loader must skip — plus
 *     images and float64 pool3 features): RGB 32×32 images and a 1-channel
 *     28×20 image, both resized to 299 inside; skipped, "SKIP: ...",
 *     without torch or torchvision;
 *   - bad weight files (C only): missing key, wrong shape, wrong dtype,
 *     truncated data, no file — NULL, with an error naming the file and
 *     the key;
 *   - argument errors of wb_inception_features.
 *
 * Shape legend: N images, C channels, H×W plane; features (N, 2048).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/inception.h"
#include "wb/tensor.h"
#include "wb_test_util.h"
#include "engine/feature_net.h" /* WB_IMAGE_METRICS_REF_SEED */

/* Error against float64 torch, max |c − t| / max |t| (rel_err). 94 float32
 * convolutions (K up to 2048·1·1 and 448·3·3) give ~1e-5; a wrong pad, pool
 * or divisor gives ≥ 1e-2. */
#define TORCH_TOL 1e-3

static char g_dir[128];

static int teardown(void **state) {
    (void)state;
    if (g_dir[0] && !getenv("WB_TEST_KEEP")) wb_test_rm_rf(g_dir);
    g_dir[0] = 0;
    return 0;
}

/* max |c − t| / max |t|: the error on the features' own scale. Entrywise
 * relative error is the wrong measure here: after 94 ReLU layers some
 * features are near 0, and float32 torch itself is 7e-4 off float64 there. */
static double rel_err(const float *c, const float *t, int64_t n) {
    double scale = 0.0, worst = 0.0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(t[i]));
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)c[i] - t[i]);
        if (!(e <= worst)) worst = e; /* NaN sticks */
    }
    return worst / fmax(scale, 1e-30);
}

/* ---- torchvision ------------------------------------------------------------------- */
static void test_matches_torchvision(void **state) {
    (void)state;
    wb_torch_skip_without_python();
    assert_int_equal(wb_test_mkdtemp(g_dir, sizeof g_dir, "/tmp/wb_inception_XXXXXX"), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%sOMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 '%s' '%s/tests/torch_inception.py' '%s'",
             access("/usr/bin/timeout", X_OK) == 0 ? "/usr/bin/timeout 300 env " : "env ", WB_TEST_PYTHON,
             WB_TEST_SOURCE_DIR, g_dir);
    wb_test_result r = wb_test_run_sh(g_dir, cmd);
    if (r.status == 77) { /* the script says which of torch / torchvision is missing */
        const char *why = strstr(r.out, "SKIP: ") ? strstr(r.out, "SKIP: ") + 6 : "torch not installed\n";
        print_message("SKIP: %s", why);
        wb_test_result_free(&r);
        skip();
    }
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "DONE", r);
    wb_test_result_free(&r);

    /* images and reference features, through the project's own reader */
    char path[256];
    wb_params *io = wb_params_new(wb_backend_cpu());
    int64_t s_rgb[4] = {2, 3, 32, 32}, s_gray[4] = {1, 1, 28, 20}, s_rf[2] = {2, 2048}, s_gf[2] = {1, 2048};
    wb_tensor *rgb = wb_params_add(io, "rgb", 4, s_rgb, WB_INIT_ZEROS, 0.0f);
    wb_tensor *gray = wb_params_add(io, "gray", 4, s_gray, WB_INIT_ZEROS, 0.0f);
    wb_tensor *rgb_feat = wb_params_add(io, "rgb_feat", 2, s_rf, WB_INIT_ZEROS, 0.0f);
    wb_tensor *gray_feat = wb_params_add(io, "gray_feat", 2, s_gf, WB_INIT_ZEROS, 0.0f);
    assert_int_equal(wb_params_finalize(io, NULL), 0);
    snprintf(path, sizeof path, "%s/io.safetensors", g_dir);
    wb_named_params store = {"", io};
    if (wb_safetensors_load(path, &store, 1, 0)) fail_msg("%s", wb_last_error());

    snprintf(path, sizeof path, "%s/weights.safetensors", g_dir);
    wb_inception *m = wb_inception_load(path, wb_backend_cpu());
    if (!m) fail_msg("load: %s", wb_last_error());
    float feat[2 * 2048];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (wb_inception_features(m, rgb->data, 2, 3, 32, 32, feat)) fail_msg("features: %s", wb_last_error());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double e_rgb = rel_err(feat, rgb_feat->data, 2 * 2048);
    if (wb_inception_features(m, gray->data, 1, 1, 28, 20, feat)) fail_msg("features: %s", wb_last_error());
    double e_gray = rel_err(feat, gray_feat->data, 2048);
    assert_int_equal(wb_inception_features(m, gray->data, 1, 2, 28, 20, feat), -1); /* 2 channels */
    assert_non_null(strstr(wb_last_error(), "channels"));
    print_message("pool3 features vs torchvision (float64): rel. error %.3g (RGB 32x32), %.3g (gray 28x20); "
                  "%.2f s for 2 images\n",
                  e_rgb, e_gray, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    if (!(e_rgb <= TORCH_TOL)) fail_msg("RGB features differ from torch: %.3g > %.1g", e_rgb, TORCH_TOL);
    if (!(e_gray <= TORCH_TOL)) fail_msg("1-channel features differ from torch: %.3g > %.1g", e_gray, TORCH_TOL);
    wb_inception_free(m);
    wb_params_free(io);

    /* wb.image_metrics{inception = PATH}: the papers' FID next to the
     * classifier's, on the same two image sets (samples drawn with the
     * reference draw's seed are the reference itself: both FIDs ≈ 0; another
     * draw: > 0), reference statistics cached under an "inception" name and
     * reused (same number on the second call). */
    char script[2048];
    snprintf(script, sizeof script,
             "local wb = require 'wb'\n"
             "local ds = wb.data.images{kind = 'fashion-mnist', resize_to = 8}\n"
             "local o = {n = 6, classifier_steps = 5, cache = 'cache', quiet = true, inception = '%s'}\n"
             "local same = wb.image_metrics(ds:sample(6, %u), ds, o)\n"
             "local other = wb.image_metrics(ds:sample(6, 7), ds, o)\n"
             "local again = wb.image_metrics(ds:sample(6, 7), ds, o)\n"
             "print(('same %%.3g %%.3g'):format(same.fid, same.fid_inception))\n"
             "assert(math.abs(same.fid_inception) < 1e-2 * other.fid_inception, 'reference not reproduced')\n"
             "assert(other.fid_inception > 0 and other.fid_inception == again.fid_inception)\n"
             "assert(other.precision_inception >= 0 and other.recall_inception <= 1)\n"
             "print('inception fid', other.fid_inception)\n",
             path, (unsigned)WB_IMAGE_METRICS_REF_SEED);
    wb_test_result lr = wb_test_run_script(g_dir, script, NULL, NULL);
    WB_EXPECT_STATUS(lr, 0);
    WB_EXPECT_IN(lr.out, "inception fid", lr);
    wb_test_result_free(&lr);
    wb_test_result ls = wb_test_run_sh(g_dir, "ls cache | grep -c 'ref-6-inception-weights.safetensors-'");
    WB_EXPECT_IN(ls.out, "1", ls);
    wb_test_result_free(&ls);
}

/* ---- bad weight files ------------------------------------------------------------- */
/* A safetensors file by hand: header JSON (padded to 8) and `bytes` zero bytes. */
static void write_raw(const char *path, const char *json, size_t bytes) {
    size_t hlen = (strlen(json) + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    assert_int_equal(fwrite(len8, 1, 8, f), 8);
    fputs(json, f);
    for (size_t i = strlen(json); i < hlen; i++) fputc(' ', f);
    for (size_t i = 0; i < bytes; i++) fputc(0, f);
    assert_int_equal(fclose(f), 0);
}

/* Loading `path` fails, and the error names the file and every needle. */
static void expect_load_error(const char *path, const char *n1, const char *n2) {
    wb_inception *m = wb_inception_load(path, wb_backend_cpu());
    if (m) fail_msg("%s loaded", path);
    const char *e = wb_last_error();
    if (!strstr(e, path)) fail_msg("error '%s' does not name the file %s", e, path);
    if (n1 && !strstr(e, n1)) fail_msg("error '%s' does not say '%s'", e, n1);
    if (n2 && !strstr(e, n2)) fail_msg("error '%s' does not say '%s'", e, n2);
}

static void test_bad_files(void **state) {
    (void)state;
    assert_int_equal(wb_test_mkdtemp(g_dir, sizeof g_dir, "/tmp/wb_inception_XXXXXX"), 0);
    char path[256];
    const int64_t w1a[4] = {32, 3, 3, 3}, bad[4] = {32, 3, 3, 2};

    /* Only the first conv weight: the first BatchNorm tensor is missing. */
    wb_params *ps = wb_params_new(wb_backend_cpu());
    wb_params_add(ps, "Conv2d_1a_3x3.conv.weight", 4, w1a, WB_INIT_ONES, 0.0f);
    assert_int_equal(wb_params_finalize(ps, NULL), 0);
    wb_named_params store = {"", ps};
    snprintf(path, sizeof path, "%s/partial.safetensors", g_dir);
    assert_int_equal(wb_safetensors_save(path, &store, 1, NULL, 0), 0);
    expect_load_error(path, "Conv2d_1a_3x3.bn.weight", "missing");

    /* The same file cut short inside the first tensor's data. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "truncate -s -100 '%s'", path);
    assert_int_equal(system(cmd), 0);
    expect_load_error(path, "Conv2d_1a_3x3.conv.weight", "truncated");
    wb_params_free(ps);

    /* A 3×2 kernel where the stem's first conv is 3×3. */
    ps = wb_params_new(wb_backend_cpu());
    wb_params_add(ps, "Conv2d_1a_3x3.conv.weight", 4, bad, WB_INIT_ONES, 0.0f);
    assert_int_equal(wb_params_finalize(ps, NULL), 0);
    store.params = ps;
    snprintf(path, sizeof path, "%s/shape.safetensors", g_dir);
    assert_int_equal(wb_safetensors_save(path, &store, 1, NULL, 0), 0);
    expect_load_error(path, "Conv2d_1a_3x3.conv.weight", "shape");
    wb_params_free(ps);

    /* Half precision (a checkpoint saved with .half()): F32 only. */
    snprintf(path, sizeof path, "%s/f16.safetensors", g_dir);
    write_raw(path, "{\"Conv2d_1a_3x3.conv.weight\":{\"dtype\":\"F16\",\"shape\":[32,3,3,3],\"data_offsets\":[0,1728]}}",
              1728);
    expect_load_error(path, "Conv2d_1a_3x3.conv.weight", "F16");

    /* No file at all. */
    snprintf(path, sizeof path, "%s/absent.safetensors", g_dir);
    expect_load_error(path, "cannot open", NULL);
    print_message("bad weight files: errors name the file and the key\n");
}

/* ---- arguments -------------------------------------------------------------------- */
static void test_argument_errors(void **state) {
    (void)state;
    float img[3 * 4 * 4] = {0}, out[2048];
    assert_int_equal(wb_inception_features(NULL, img, 1, 3, 4, 4, out), -1);
    assert_non_null(strstr(wb_last_error(), "inception_features"));
    assert_null(wb_inception_load(NULL, wb_backend_cpu()));
    wb_inception_free(NULL); /* a no-op */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_matches_torchvision, teardown),
        cmocka_unit_test_teardown(test_bad_files, teardown),
        cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
