/* tests/test_metrics.c — host/engine/metrics.c and host/report/image_grid.c:
 *   - feature statistics against a two-pass double computation, uneven
 *     batches, a large offset (cancellation), save/load round trip, errors;
 *   - Fréchet distance against tests/scipy_frechet.py (pytorch-fid's
 *     sqrtm formula) on random SPD pairs (dims 8, 64, 256, 1024; 2048 with
 *     WB_METRICS_BIG=1, ~30 s), on rank-deficient covariances (n < dim,
 *     through saved statistics files) and analytic cases; skipped with
 *     "SKIP: ..." when scipy is missing;
 *   - k-NN precision/recall on synthetic sets and against a brute force;
 *   - Inception-Score analogue and mode-collapse checks on known answers;
 *   - the PNG image grid, read back with libpng;
 *   - the 2-D RBF-kernel MMD (host/engine/gmm2d.c): each bandwidth's MMD
 *     against a straightforward double computation, the combined MMD as it
 *     was before the per-bandwidth ones (pinned values, computed by the
 *     commit before them) and its relation to them, a cached reference term.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fault_inject.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/metrics.h"
#include "report/plot.h"
#include "wb/cpu.h"
#include "wb/elementwise.h"
#include "wb/tensor.h"

#ifndef WB_TEST_PYTHON
#define WB_TEST_PYTHON ""
#endif
#ifndef WB_TEST_SOURCE_DIR
#define WB_TEST_SOURCE_DIR "."
#endif

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* xorshift64*, uniform in (0, 1) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return ((double)((g_rng * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;
}
static double nrand(void) { return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()); }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char g_dir[64];

static void make_dir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/wb_metrics_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
}

static void remove_dir(void) {
    if (!g_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    g_dir[0] = 0;
}

/* Random SPD d x d: A Aᵀ / d + 0.1 I (well conditioned, eigenvalues ~ 0.1..4). */
static double *rand_spd(int d) {
    double *a = malloc((size_t)d * d * sizeof *a), *c = calloc((size_t)d * d, sizeof *c);
    assert_non_null(a);
    assert_non_null(c);
    for (size_t i = 0; i < (size_t)d * d; i++) a[i] = nrand();
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0.0;
            for (int k = 0; k < d; k++) s += a[(size_t)i * d + k] * a[(size_t)j * d + k];
            c[(size_t)i * d + j] = c[(size_t)j * d + i] = s / d + (i == j ? 0.1 : 0.0);
        }
    free(a);
    return c;
}

static double *rand_vec(int d, double scale) {
    double *v = malloc((size_t)d * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < d; i++) v[i] = scale * nrand();
    return v;
}

/* ---- feature statistics ---------------------------------------------------------- */

static void test_stats_accumulate(void **state) {
    (void)state;
    enum { N = 1203, D = 17 };
    float *x = malloc((size_t)N * D * sizeof *x);
    assert_non_null(x);
    /* A large common offset: a naive Σx² − n·mean² in double would lose
     * ~7 of the 16 digits here. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) x[i * D + j] = (float)(1000.0 + (j + 1) * nrand() + (j ? 0.5 * x[i * D] - 500 : 0));
    double mean[D] = {0}, cov[D * D] = {0};
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) mean[j] += x[i * D + j];
    for (int j = 0; j < D; j++) mean[j] /= N;
    for (int i = 0; i < N; i++)
        for (int a = 0; a < D; a++)
            for (int b = 0; b < D; b++) cov[a * D + b] += (x[i * D + a] - mean[a]) * (x[i * D + b] - mean[b]);
    for (int a = 0; a < D * D; a++) cov[a] /= N - 1;

    wb_feature_stats *s = wb_feature_stats_new(D);
    assert_non_null(s);
    /* Uneven batches: 1 row, 7, 600 (crosses the 512-row chunk), the rest. */
    const int cuts[] = {0, 1, 8, 608, N};
    for (int b = 0; b < 4; b++) assert_int_equal(wb_feature_stats_add(s, x + cuts[b] * D, cuts[b + 1] - cuts[b]), 0);
    assert_int_equal(wb_feature_stats_add(s, x, 0), 0);
    assert_int_equal(wb_feature_stats_finalize(s), 0);
    assert_int_equal(s->n, N);
    for (int j = 0; j < D; j++) assert_true(fabs(s->mean[j] - mean[j]) <= 1e-12 * fabs(mean[j]) + 1e-12);
    for (int a = 0; a < D * D; a++) assert_true(fabs(s->cov[a] - cov[a]) <= 1e-9 * fabs(cov[a]) + 1e-10);

    /* Non-finite features are rejected and leave the statistics untouched. */
    float bad[D];
    for (int j = 0; j < D; j++) bad[j] = 1.0f;
    bad[3] = NAN;
    assert_int_not_equal(wb_feature_stats_add(s, bad, 1), 0);
    assert_non_null(strstr(wb_last_error(), "non-finite"));
    assert_int_equal(s->n, N);
    wb_feature_stats_free(s);

    s = wb_feature_stats_new(D);
    assert_int_equal(wb_feature_stats_add(s, x, 1), 0);
    assert_int_not_equal(wb_feature_stats_finalize(s), 0); /* one sample: no covariance */
    wb_feature_stats_free(s);
    assert_null(wb_feature_stats_new(0));
    free(x);
}

static void test_stats_save_load(void **state) {
    (void)state;
    enum { N = 300, D = 9 };
    float *x = malloc((size_t)N * D * sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < N * D; i++) x[i] = (float)nrand();
    make_dir();
    char path[128], bad[160];
    snprintf(path, sizeof path, "%s/ref_stats.safetensors", g_dir);
    wb_feature_stats *s = wb_feature_stats_new(D);
    assert_int_equal(wb_feature_stats_add(s, x, 100), 0);
    /* Not finalized: refused, and the message names the file. */
    assert_int_not_equal(wb_feature_stats_save(s, path), 0);
    assert_non_null(strstr(wb_last_error(), path));
    assert_int_equal(wb_feature_stats_finalize(s), 0);
    assert_int_equal(wb_feature_stats_save(s, path), 0);
    assert_false(wb_fault_tmp_left(path)); /* renamed, no leftover */

    wb_feature_stats *l = wb_feature_stats_load(path);
    assert_non_null(l);
    assert_int_equal(l->dim, D);
    assert_int_equal(l->n, 100);
    assert_memory_equal(l->mean, s->mean, D * sizeof(double));
    assert_memory_equal(l->cov, s->cov, D * D * sizeof(double));
    /* Cached statistics can be extended: same result as adding all at once. */
    assert_int_equal(wb_feature_stats_add(l, x + 100 * D, N - 100), 0);
    assert_int_equal(wb_feature_stats_add(s, x + 100 * D, N - 100), 0);
    assert_int_equal(wb_feature_stats_finalize(l), 0);
    assert_int_equal(wb_feature_stats_finalize(s), 0);
    for (int a = 0; a < D * D; a++) assert_true(fabs(l->cov[a] - s->cov[a]) <= 1e-12);
    wb_feature_stats_free(l);

    /* Missing file, truncated file, wrong content: errors name the file. */
    snprintf(bad, sizeof bad, "%s/missing.safetensors", g_dir);
    assert_null(wb_feature_stats_load(bad));
    assert_non_null(strstr(wb_last_error(), bad));
    snprintf(bad, sizeof bad, "%s/trunc.safetensors", g_dir);
    {
        FILE *in = fopen(path, "rb"), *out = fopen(bad, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buf[4096];
        size_t got = fread(buf, 1, sizeof buf, in);
        assert_true(got > 100);
        assert_int_equal(fwrite(buf, 1, got - 8, out), got - 8);
        fclose(in);
        fclose(out);
    }
    assert_null(wb_feature_stats_load(bad));
    assert_non_null(strstr(wb_last_error(), bad));
    snprintf(bad, sizeof bad, "%s/junk.safetensors", g_dir);
    {
        FILE *out = fopen(bad, "wb");
        assert_non_null(out);
        fputs("this is not a safetensors file at all", out);
        fclose(out);
    }
    assert_null(wb_feature_stats_load(bad));
    assert_non_null(strstr(wb_last_error(), bad));
    /* An unwritable destination fails cleanly. */
    assert_int_not_equal(wb_feature_stats_save(s, "/nonexistent_dir/x.safetensors"), 0);
    assert_non_null(strstr(wb_last_error(), "/nonexistent_dir/x.safetensors"));
    wb_feature_stats_free(s);
    remove_dir();
    free(x);
}

/* A cache file exactly as the workbench wrote them before the feature
 * statistics moved onto host/core/safetensors.c (its own header text: dtype
 * first, no spaces) still loads, bit for bit; a file with the wrong dtype
 * or a wrong sample count does not. */
static void write_legacy_stats(const char *path, const char *dtype, const char *n_text, int d, const double *mean,
                               const double *cov) {
    char hdr[512];
    unsigned long long mb = 8ull * (unsigned)d, cb = 8ull * (unsigned)d * (unsigned)d;
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"__metadata__\":{\"format\":\"wb_feature_stats\",\"n\":\"%s\"},"
                      "\"mean\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[0,%llu]},"
                      "\"cov\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%llu,%llu]}}",
                      n_text, dtype, d, mb, dtype, d, d, mb, mb + cb);
    while (hl % 8) hdr[hl++] = ' ';
    uint64_t hlen = (uint64_t)hl;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(&hlen, 8, 1, f), 1);
    assert_int_equal(fwrite(hdr, 1, (size_t)hl, f), (size_t)hl);
    assert_int_equal(fwrite(mean, 8, (size_t)d, f), (size_t)d);
    assert_int_equal(fwrite(cov, 8, (size_t)d * d, f), (size_t)d * d);
    assert_int_equal(fclose(f), 0);
}

static void test_stats_legacy_cache(void **state) {
    (void)state;
    enum { D = 5, N = 40 };
    float x[N * D];
    for (int i = 0; i < N * D; i++) x[i] = (float)nrand() * 3.0f + 1.0f;
    wb_feature_stats *s = wb_feature_stats_new(D);
    assert_int_equal(wb_feature_stats_add(s, x, N), 0);
    assert_int_equal(wb_feature_stats_finalize(s), 0);
    make_dir();
    char path[128];
    snprintf(path, sizeof path, "%s/legacy.safetensors", g_dir);
    write_legacy_stats(path, "F64", "40", D, s->mean, s->cov);
    wb_feature_stats *l = wb_feature_stats_load(path);
    if (!l) fail_msg("%s", wb_last_error());
    assert_int_equal(l->dim, D);
    assert_int_equal(l->n, N);
    assert_memory_equal(l->mean, s->mean, D * sizeof(double));
    assert_memory_equal(l->cov, s->cov, D * D * sizeof(double));
    wb_feature_stats_free(l);
    /* what the new writer produces loads back the same */
    snprintf(path, sizeof path, "%s/resaved.safetensors", g_dir);
    assert_int_equal(wb_feature_stats_save(s, path), 0);
    l = wb_feature_stats_load(path);
    assert_non_null(l);
    assert_memory_equal(l->cov, s->cov, D * D * sizeof(double));
    wb_feature_stats_free(l);

    snprintf(path, sizeof path, "%s/legacy_f32.safetensors", g_dir);
    write_legacy_stats(path, "F32", "40", D, s->mean, s->cov);
    assert_null(wb_feature_stats_load(path));
    assert_non_null(strstr(wb_last_error(), path));
    assert_non_null(strstr(wb_last_error(), "F32"));
    snprintf(path, sizeof path, "%s/legacy_n.safetensors", g_dir);
    write_legacy_stats(path, "F64", "4x", D, s->mean, s->cov);
    assert_null(wb_feature_stats_load(path));
    assert_non_null(strstr(wb_last_error(), path));
    wb_feature_stats_free(s);
    remove_dir();
}

/* ---- Fréchet distance ---------------------------------------------------------------- */

static void test_frechet_analytic(void **state) {
    (void)state;
    double fd = -1;
    /* 1-D: (μ1−μ2)² + (σ1−σ2)². */
    double m1 = 1.5, v1 = 4.0, m2 = -0.5, v2 = 9.0;
    assert_int_equal(wb_frechet_distance(1, &m1, &v1, &m2, &v2, &fd), 0);
    assert_float_equal(fd, 4.0 + 1.0, 1e-12);
    /* Identical statistics: 0 (up to round-off on a trace of ~d). */
    int d = 64;
    double *c = rand_spd(d), *mu = rand_vec(d, 1.0);
    assert_int_equal(wb_frechet_distance(d, mu, c, mu, c, &fd), 0);
    assert_true(fd >= 0.0 && fd < 1e-9 * d);
    /* Same covariance, shifted mean: exactly ‖Δμ‖². */
    double *mu2 = rand_vec(d, 1.0), dd = 0;
    for (int i = 0; i < d; i++) dd += (mu[i] - mu2[i]) * (mu[i] - mu2[i]);
    assert_int_equal(wb_frechet_distance(d, mu, c, mu2, c, &fd), 0);
    assert_true(fabs(fd - dd) <= 1e-9 * dd);
    /* Commuting (diagonal) covariances: Σ (√a − √b)². */
    double *a = calloc((size_t)d * d, sizeof *a), *b = calloc((size_t)d * d, sizeof *b), want = 0;
    for (int i = 0; i < d; i++) {
        a[i * d + i] = 0.5 + i;
        b[i * d + i] = i % 3 ? 2.0 : 0.0; /* singular too */
        want += pow(sqrt(a[i * d + i]) - sqrt(b[i * d + i]), 2);
    }
    assert_int_equal(wb_frechet_distance(d, mu, a, mu, b, &fd), 0);
    assert_true(fabs(fd - want) <= 1e-10 * want);
    /* Errors. */
    c[5] = NAN;
    assert_int_not_equal(wb_frechet_distance(d, mu, c, mu, c, &fd), 0);
    wb_feature_stats *s1 = wb_feature_stats_new(3), *s2 = wb_feature_stats_new(4);
    assert_int_not_equal(wb_frechet_distance_stats(s1, s2, &fd), 0);
    assert_non_null(strstr(wb_last_error(), "dims differ"));
    wb_feature_stats_free(s1);
    wb_feature_stats_free(s2);
    free(a);
    free(b);
    free(c);
    free(mu);
    free(mu2);
}

typedef struct fd_case {
    char name[32];
    double c_value;
    double ref;
    double scale; /* tr Σ1 + tr Σ2: tolerance floor for near-zero distances */
    double c_seconds;
} fd_case;

static void write_raw(const char *file, int d, const double *mu1, const double *c1, const double *mu2,
                      const double *c2) {
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    int32_t dd = d;
    assert_int_equal(fwrite(&dd, 4, 1, f), 1);
    assert_int_equal(fwrite(mu1, 8, (size_t)d, f), (size_t)d);
    assert_int_equal(fwrite(c1, 8, (size_t)d * d, f), (size_t)d * d);
    assert_int_equal(fwrite(mu2, 8, (size_t)d, f), (size_t)d);
    assert_int_equal(fwrite(c2, 8, (size_t)d * d, f), (size_t)d * d);
    assert_int_equal(fclose(f), 0);
}

static double trace(int d, const double *c) {
    double t = 0;
    for (int i = 0; i < d; i++) t += c[(size_t)i * d + i];
    return t;
}

/* Statistics of n Gaussian-ish features in dim d (n < d: rank-deficient). */
static wb_feature_stats *stats_from_features(int n, int d, double shift) {
    float *x = malloc((size_t)n * d * sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < n * d; i++) x[i] = (float)(nrand() + shift * (i % d) / d);
    wb_feature_stats *s = wb_feature_stats_new(d);
    assert_non_null(s);
    assert_int_equal(wb_feature_stats_add(s, x, n), 0);
    assert_int_equal(wb_feature_stats_finalize(s), 0);
    free(x);
    return s;
}

static void test_frechet_scipy(void **state) {
    (void)state;
    if (!WB_TEST_PYTHON[0]) {
        print_message("SKIP: scipy not available (no system python3)\n");
        skip();
    }
    const char *big = getenv("WB_METRICS_BIG");
    int dims[] = {8, 64, 256, 1024, 2048};
    int n_dims = big && big[0] == '1' ? 5 : 4;
    fd_case cases[16];
    int nc = 0;
    make_dir();
    char mpath[128], file[160];
    snprintf(mpath, sizeof mpath, "%s/manifest.txt", g_dir);
    FILE *mf = fopen(mpath, "w");
    assert_non_null(mf);
    for (int t = 0; t < n_dims; t++) {
        int d = dims[t];
        double *c1 = rand_spd(d), *c2 = rand_spd(d), *m1 = rand_vec(d, 0.3), *m2 = rand_vec(d, 0.3);
        fd_case *fc = &cases[nc++];
        snprintf(fc->name, sizeof fc->name, "spd%d", d);
        double t0 = now_s();
        assert_int_equal(wb_frechet_distance(d, m1, c1, m2, c2, &fc->c_value), 0);
        fc->c_seconds = now_s() - t0;
        fc->scale = trace(d, c1) + trace(d, c2);
        snprintf(file, sizeof file, "%s/%s.bin", g_dir, fc->name);
        write_raw(file, d, m1, c1, m2, c2);
        fprintf(mf, "raw %s %s.bin\n", fc->name, fc->name);
        if (d == 64) { /* identical statistics through the reference as well */
            fc = &cases[nc++];
            snprintf(fc->name, sizeof fc->name, "same%d", d);
            assert_int_equal(wb_frechet_distance(d, m1, c1, m1, c1, &fc->c_value), 0);
            fc->scale = 2 * trace(d, c1);
            fc->c_seconds = 0;
            snprintf(file, sizeof file, "%s/%s.bin", g_dir, fc->name);
            write_raw(file, d, m1, c1, m1, c1);
            fprintf(mf, "raw %s %s.bin\n", fc->name, fc->name);
        }
        free(c1);
        free(c2);
        free(m1);
        free(m2);
    }
    /* Rank-deficient: n < dim features on one or both sides, via the cache
     * files (so the script also checks the file format). */
    const int rd[][3] = {{40, 64, 200}, {30, 256, 25}};
    for (int t = 0; t < 2; t++) {
        wb_feature_stats *a = stats_from_features(rd[t][0], rd[t][1], 0.0);
        wb_feature_stats *b = stats_from_features(rd[t][2], rd[t][1], 2.0);
        fd_case *fc = &cases[nc++];
        snprintf(fc->name, sizeof fc->name, "rankdef%d_%d_%d", rd[t][0], rd[t][1], rd[t][2]);
        assert_int_equal(wb_frechet_distance_stats(a, b, &fc->c_value), 0);
        fc->scale = trace(a->dim, a->cov) + trace(b->dim, b->cov);
        fc->c_seconds = 0;
        char f1[160], f2[160];
        snprintf(f1, sizeof f1, "%s/%s_a.safetensors", g_dir, fc->name);
        snprintf(f2, sizeof f2, "%s/%s_b.safetensors", g_dir, fc->name);
        assert_int_equal(wb_feature_stats_save(a, f1), 0);
        assert_int_equal(wb_feature_stats_save(b, f2), 0);
        fprintf(mf, "st %s %s_a.safetensors %s_b.safetensors\n", fc->name, fc->name, fc->name);
        wb_feature_stats_free(a);
        wb_feature_stats_free(b);
    }
    assert_int_equal(fclose(mf), 0);
    for (int i = 0; i < nc; i++) cases[i].ref = NAN;

    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%sOMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 '%s' '%s/tests/scipy_frechet.py' '%s' 2>&1",
             access("/usr/bin/timeout", X_OK) == 0 ? "/usr/bin/timeout 300 env " : "env ", WB_TEST_PYTHON,
             WB_TEST_SOURCE_DIR, g_dir);
    double t0 = now_s();
    FILE *pp = popen(cmd, "r");
    assert_non_null(pp);
    char line[512], tail[4096] = "";
    int no_scipy = 0, done = 0;
    while (fgets(line, sizeof line, pp)) {
        if (strlen(tail) + strlen(line) >= sizeof tail) tail[0] = 0;
        strcat(tail, line);
        char name[64];
        double v;
        if (strncmp(line, "NO_SCIPY", 8) == 0) no_scipy = 1;
        else if (strncmp(line, "DONE", 4) == 0) done = 1;
        else if (sscanf(line, "RESULT %63s %lf", name, &v) == 2) {
            int i = 0;
            while (i < nc && strcmp(cases[i].name, name) != 0) i++;
            if (i == nc) fail_msg("scipy_frechet.py reported unknown case '%s'", name);
            cases[i].ref = v;
        }
    }
    int status = pclose(pp);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    double py_s = now_s() - t0;
    remove_dir();
    if (no_scipy || rc == 77) {
        print_message("SKIP: scipy not installed for %s (Debian package python3-scipy)\n", WB_TEST_PYTHON);
        skip();
    }
    if (rc != 0 || !done) fail_msg("scipy_frechet.py failed (exit %d):\n%s", rc, tail);
    for (int i = 0; i < nc; i++) {
        const fd_case *fc = &cases[i];
        if (isnan(fc->ref)) fail_msg("%s: not computed by scipy_frechet.py", fc->name);
        /* 1e-6 relative to the distance; distances near 0 (identical stats)
         * are compared against the size of the traces that cancel. */
        double tol = 1e-6 * fmax(fabs(fc->ref), 1e-6 * fc->scale);
        if (!(fabs(fc->c_value - fc->ref) <= tol))
            fail_msg("%s: C %.12g vs scipy %.12g (|diff| %.3g > %.3g)", fc->name, fc->c_value, fc->ref,
                     fabs(fc->c_value - fc->ref), tol);
        print_message("  frechet %-22s C %.10g  scipy %.10g  rel %.2g  (C %.3f s)\n", fc->name, fc->c_value, fc->ref,
                      fabs(fc->c_value - fc->ref) / fmax(fabs(fc->ref), 1e-300), fc->c_seconds);
    }
    print_message("  scipy reference: %.2f s\n", py_s);
}

/* ---- precision / recall ---------------------------------------------------------------- */

/* Brute force in double: d² of a to b. */
static double d2(const float *a, const float *b, int dim) {
    double s = 0;
    for (int j = 0; j < dim; j++) s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    return s;
}

static double brute_cov(const float *q, int nq, const float *r, int nr, int dim, int k) {
    double *rad = malloc((size_t)nr * sizeof *rad), *tmp = malloc((size_t)nr * sizeof *tmp);
    assert_non_null(rad);
    assert_non_null(tmp);
    for (int i = 0; i < nr; i++) {
        int m = 0;
        for (int j = 0; j < nr; j++)
            if (j != i) tmp[m++] = d2(r + (size_t)i * dim, r + (size_t)j * dim, dim);
        for (int a = 0; a < k; a++) /* partial selection sort: k-th smallest */
            for (int b = a + 1; b < m; b++)
                if (tmp[b] < tmp[a]) {
                    double t = tmp[a];
                    tmp[a] = tmp[b];
                    tmp[b] = t;
                }
        rad[i] = tmp[k - 1];
    }
    int in = 0;
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < nr; j++)
            if (d2(q + (size_t)i * dim, r + (size_t)j * dim, dim) <= rad[j]) {
                in++;
                break;
            }
    free(rad);
    free(tmp);
    return (double)in / nq;
}

/* n points around `modes` centres (mode i at 100·e_(i mod dim) + 100·i·e_0),
 * using modes first..first+modes-1. */
static float *mixture(int n, int dim, int first, int modes, double spread) {
    float *x = malloc((size_t)n * dim * sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < n; i++) {
        int m = first + i % modes;
        for (int j = 0; j < dim; j++) {
            double c = (j == m % dim ? 100.0 : 0.0) + (j == 0 ? 100.0 * m : 0.0);
            x[(size_t)i * dim + j] = (float)(c + spread * nrand());
        }
    }
    return x;
}

static void test_precision_recall(void **state) {
    (void)state;
    double p = -1, r = -1;
    enum { DIM = 8 };
    /* Identical sets. */
    float *a = mixture(500, DIM, 0, 4, 1.0);
    assert_int_equal(wb_precision_recall(a, 500, a, 500, DIM, 3, &p, &r), 0);
    assert_float_equal(p, 1.0, 0);
    assert_float_equal(r, 1.0, 0);
    /* Disjoint, far apart. */
    float *b = mixture(400, DIM, 50, 4, 1.0);
    assert_int_equal(wb_precision_recall(a, 500, b, 400, DIM, 0, &p, &r), 0);
    assert_float_equal(p, 0.0, 0);
    assert_float_equal(r, 0.0, 0);
    /* Generated set covers half of the real modes (0, 1 of 0..3), densely. */
    float *real = mixture(2000, DIM, 0, 4, 1.0), *half = malloc(1000 * DIM * sizeof *half);
    assert_non_null(half);
    /* Jittered copies of the real samples of modes 0 and 1 (rows i % 4 < 2). */
    for (int i = 0, m = 0; i < 2000 && m < 1000; i++)
        if (i % 4 < 2) {
            for (int j = 0; j < DIM; j++) half[m * DIM + j] = real[i * DIM + j] + (float)(0.01 * nrand());
            m++;
        }
    assert_int_equal(wb_precision_recall(real, 2000, half, 1000, DIM, 3, &p, &r), 0);
    print_message("  half modes: precision %.4f recall %.4f\n", p, r);
    assert_true(p > 0.95);
    assert_true(fabs(r - 0.5) < 0.03);
    /* Against brute force, across the 256/2048 block boundaries, overlapping
     * but different distributions so neither number is trivial. */
    int nr = 2100, nf = 700;
    float *x = malloc((size_t)nr * DIM * sizeof *x), *y = malloc((size_t)nf * DIM * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (int i = 0; i < nr * DIM; i++) x[i] = (float)nrand();
    for (int i = 0; i < nf * DIM; i++) y[i] = (float)(1.3 * nrand() + (i % DIM == 0 ? 0.7 : 0.0));
    double t0 = now_s();
    assert_int_equal(wb_precision_recall(x, nr, y, nf, DIM, 5, &p, &r), 0);
    double c_s = now_s() - t0;
    double bp = brute_cov(y, nf, x, nr, DIM, 5), br = brute_cov(x, nr, y, nf, DIM, 5);
    print_message("  random: precision %.4f (brute %.4f) recall %.4f (brute %.4f), %.3f s\n", p, bp, r, br, c_s);
    /* Float GEMM distances may flip a near-tie; allow one sample. */
    assert_true(fabs(p - bp) <= 1.0 / nf + 1e-12);
    assert_true(fabs(r - br) <= 1.0 / nr + 1e-12);
    assert_true(p > 0.2 && p < 0.999 && r > 0.2 && r < 0.999);
    /* Errors. */
    assert_int_not_equal(wb_precision_recall(a, 3, a, 500, DIM, 3, &p, &r), 0);
    a[7] = INFINITY;
    assert_int_not_equal(wb_precision_recall(a, 500, b, 400, DIM, 3, &p, &r), 0);
    free(a);
    free(b);
    free(real);
    free(half);
    free(x);
    free(y);
}

/* ---- Inception-Score analogue / mode collapse ------------------------------------------ */

static void test_inception_score(void **state) {
    (void)state;
    enum { K = 10, N = 1000 };
    float *pr = calloc((size_t)N * K, sizeof *pr);
    assert_non_null(pr);
    double m = 0, s = -1;
    /* Confident and uniform over classes (each split holds 10 of each): K. */
    for (int i = 0; i < N; i++) pr[i * K + i % K] = 1.0f;
    assert_int_equal(wb_inception_score(pr, N, K, 10, &m, &s), 0);
    assert_float_equal(m, (double)K, 1e-9);
    assert_float_equal(s, 0.0, 1e-9);
    /* All the same class: 1. */
    memset(pr, 0, (size_t)N * K * sizeof *pr);
    for (int i = 0; i < N; i++) pr[i * K + 3] = 1.0f;
    assert_int_equal(wb_inception_score(pr, N, K, 0, &m, &s), 0);
    assert_float_equal(m, 1.0, 1e-12);
    /* Uniform predictions (no confidence): 1. */
    for (int i = 0; i < N * K; i++) pr[i] = 0.1f;
    assert_int_equal(wb_inception_score(pr, N, K, 5, &m, &s), 0);
    assert_float_equal(m, 1.0, 1e-6);
    /* Half the classes, confident: K/2; unnormalised rows are rescaled. */
    memset(pr, 0, (size_t)N * K * sizeof *pr);
    for (int i = 0; i < N; i++) pr[i * K + i % 5] = 2.0f;
    assert_int_equal(wb_inception_score(pr, N, K, 10, &m, &s), 0);
    assert_float_equal(m, 5.0, 1e-9);
    /* Errors. */
    pr[17] = -0.5f;
    assert_int_not_equal(wb_inception_score(pr, N, K, 10, &m, &s), 0);
    assert_int_not_equal(wb_inception_score(pr, 5, K, 10, &m, &s), 0);
    free(pr);
}

static void test_mode_coverage(void **state) {
    (void)state;
    enum { K = 10, N = 1000 };
    int lab[N], counts[K];
    float pr[N * K];
    wb_mode_report rep;
    /* Balanced: all covered, entropy 1, not collapsed. */
    for (int i = 0; i < N; i++) lab[i] = i % K;
    assert_int_equal(wb_mode_coverage(lab, N, K, &rep, counts), 0);
    assert_int_equal(rep.covered, K);
    assert_float_equal(rep.entropy_norm, 1.0, 1e-12);
    assert_int_equal(rep.collapsed, 0);
    assert_int_equal(counts[3], 100);
    /* One class: collapsed, entropy 0. */
    for (int i = 0; i < N; i++) lab[i] = 7;
    assert_int_equal(wb_mode_coverage(lab, N, K, &rep, NULL), 0);
    assert_int_equal(rep.covered, 1);
    assert_float_equal(rep.entropy_norm, 0.0, 1e-12);
    assert_int_equal(rep.collapsed, 1);
    /* Five of ten classes, balanced: entropy log5/log10 = 0.70 but covered
     * = K/2 → collapsed. Six classes → not collapsed. */
    for (int i = 0; i < N; i++) lab[i] = i % 5;
    assert_int_equal(wb_mode_coverage(lab, N, K, &rep, NULL), 0);
    assert_int_equal(rep.covered, 5);
    assert_int_equal(rep.collapsed, 1);
    for (int i = 0; i < N; i++) lab[i] = i % 6;
    assert_int_equal(wb_mode_coverage(lab, N, K, &rep, NULL), 0);
    assert_int_equal(rep.collapsed, 0);
    /* Every class present but 19 stray samples in each of nine: only the
     * dominant class has >= 20 of the expected 100. */
    for (int i = 0; i < N; i++) lab[i] = i < 9 * 19 ? 1 + i / 19 : 0;
    assert_int_equal(wb_mode_coverage(lab, N, K, &rep, counts), 0);
    assert_int_equal(counts[4], 19);
    assert_int_equal(rep.covered, 1);
    assert_int_equal(rep.collapsed, 1);
    /* From probabilities through argmax. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < K; j++) pr[i * K + j] = (j == (i * 7) % K) ? 0.6f : 0.4f / (K - 1);
    assert_int_equal(wb_argmax_rows(pr, N, K, lab), 0);
    assert_int_equal(lab[3], 1);
    assert_int_equal(wb_mode_coverage(lab, N, K, &rep, NULL), 0);
    assert_int_equal(rep.covered, K);
    /* Errors. */
    lab[0] = K;
    assert_int_not_equal(wb_mode_coverage(lab, N, K, &rep, NULL), 0);
    assert_int_not_equal(wb_mode_coverage(lab, N, 1, &rep, NULL), 0);
}

/* ---- image grid ------------------------------------------------------------------------ */

static uint8_t *read_png(const char *path, int *w, int *h) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return NULL;
    im.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(im));
    if (!buf || !png_image_finish_read(&im, NULL, buf, 0, NULL)) {
        free(buf);
        png_image_free(&im);
        return NULL;
    }
    *w = (int)im.width;
    *h = (int)im.height;
    return buf;
}

static const uint8_t *px(const uint8_t *img, int w, int x, int y) { return img + ((size_t)y * w + x) * 3; }

static void test_image_grid(void **state) {
    (void)state;
    make_dir();
    char path[128];
    /* 5 RGB images 3x4 (h x w), 2 columns, scale 2 → 3 rows. */
    enum { N = 5, C = 3, H = 3, W = 4 };
    float img[N * C * H * W];
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    img[((i * C + c) * H + y) * W + x] = c == 0 ? -1.0f : c == 1 ? 1.0f : 0.0f;
    img[((1 * C + 0) * H + 2) * W + 3] = 5.0f;     /* image 1, R at (x3, y2): clamped to 255 */
    img[((2 * C + 2) * H + 1) * W + 1] = NAN;      /* image 2, (1, 1): magenta */
    img[((4 * C + 1) * H + 0) * W + 0] = -0.5f;    /* image 4, G at (0, 0): 64 */
    snprintf(path, sizeof path, "%s/grid.png", g_dir);
    assert_int_equal(wb_png_image_grid(path, img, N, C, H, W, 2, 2), 0);
    int w = 0, h = 0;
    uint8_t *p = read_png(path, &w, &h);
    assert_non_null(p);
    const int g = WB_GRID_GUTTER, cw = W * 2, ch = H * 2;
    assert_int_equal(w, 2 * (cw + g) + g);
    assert_int_equal(h, 3 * (ch + g) + g);
    /* Corner gutter white; image 0 top-left pixel (0, 255, 128). */
    assert_memory_equal(px(p, w, 0, 0), ((uint8_t[]){255, 255, 255}), 3);
    assert_memory_equal(px(p, w, g, g), ((uint8_t[]){0, 255, 128}), 3);
    assert_memory_equal(px(p, w, g + 1, g + 1), ((uint8_t[]){0, 255, 128}), 3); /* replicated */
    /* Gutter between columns. */
    assert_memory_equal(px(p, w, g + cw, g), ((uint8_t[]){255, 255, 255}), 3);
    assert_memory_equal(px(p, w, g + cw + 1, g), ((uint8_t[]){255, 255, 255}), 3);
    /* Image 1 (row 0, column 1), pixel (3, 2) → clamped red. */
    int x1 = g + (cw + g) + 3 * 2, y1 = g + 2 * 2;
    assert_memory_equal(px(p, w, x1 + 1, y1 + 1), ((uint8_t[]){255, 255, 128}), 3);
    /* Image 2 (row 1, column 0), NaN at (1, 1). */
    assert_memory_equal(px(p, w, g + 2, g + (ch + g) + 2), ((uint8_t[]){255, 0, 255}), 3);
    /* Image 4 (row 2, column 0), G = -0.5 → round(0.25·255) = 64. */
    assert_memory_equal(px(p, w, g, g + 2 * (ch + g)), ((uint8_t[]){0, 64, 128}), 3);
    /* Unused cell (row 2, column 1) stays white. */
    assert_memory_equal(px(p, w, g + cw + g + 1, g + 2 * (ch + g) + 1), ((uint8_t[]){255, 255, 255}), 3);
    free(p);

    /* Grey: 1 channel → equal RGB; automatic columns (4 images → 2x2), scale 1. */
    float grey[4 * 2 * 2];
    for (int i = 0; i < 16; i++) grey[i] = -1.0f + (float)i / 7.5f;
    assert_int_equal(wb_png_image_grid(path, grey, 4, 1, 2, 2, 0, 0), 0);
    p = read_png(path, &w, &h);
    assert_non_null(p);
    assert_int_equal(w, 2 * (2 + g) + g);
    assert_int_equal(h, w);
    const uint8_t *q = px(p, w, g + 1, g + 1); /* image 0, pixel (1, 1): index 3 */
    uint8_t v = (uint8_t)lrintf((grey[3] + 1.0f) * 127.5f);
    assert_memory_equal(q, ((uint8_t[]){v, v, v}), 3);
    q = px(p, w, g + 2 + g + 1, g + 2 + g); /* image 3, pixel (1, 0): index 13 */
    v = (uint8_t)lrintf((grey[13] + 1.0f) * 127.5f);
    assert_memory_equal(q, ((uint8_t[]){v, v, v}), 3);
    free(p);

    /* Errors: 2 channels; too large; bad directory names the path. */
    assert_int_not_equal(wb_png_image_grid(path, grey, 4, 2, 2, 2, 0, 1), 0);
    assert_int_not_equal(wb_png_image_grid(path, grey, 4, 1, 2, 2, 1, 100000), 0);
    assert_int_not_equal(wb_png_image_grid("/nonexistent_dir/g.png", grey, 4, 1, 2, 2, 0, 1), 0);
    assert_non_null(strstr(wb_last_error(), "/nonexistent_dir/g.png"));
    remove_dir();
}

/* ---- the 2-D MMD ------------------------------------------------------------------- */
/* n 2-D points from xorshift only (no libm: the pinned values below must
 * not depend on the machine's sin/log): a ring of 8 clusters of radius 2
 * with spread `spread`, the cluster of each point picked with weights
 * skewed by `skew` (0: uniform). Exactly representable coordinates. */
static float *mmd_points(int64_t n, uint64_t seed, double spread, int skew) {
    static const double ring[8][2] = {{2, 0},   {1.4142, 1.4142},   {0, 2},  {-1.4142, 1.4142},
                                      {-2, 0}, {-1.4142, -1.4142}, {0, -2}, {1.4142, -1.4142}};
    float *x = malloc((size_t)n * 2 * sizeof *x);
    assert_non_null(x);
    g_rng = seed;
    for (int64_t i = 0; i < n; i++) {
        int k = (int)(urand() * 8);
        if (skew && urand() < 0.5) k = k % 3;
        for (int c = 0; c < 2; c++) x[2 * i + c] = (float)(ring[k][c] + spread * (urand() + urand() - 1.0));
    }
    return x;
}

/* mean_ij exp(−‖a_i − b_j‖²/(2h²)) in double throughout */
static double ref_kernel_mean(const float *a, int64_t na, const float *b, int64_t nb, double h) {
    double s = 0;
    for (int64_t i = 0; i < na; i++)
        for (int64_t j = 0; j < nb; j++) {
            double dx = (double)a[2 * i] - b[2 * j], dy = (double)a[2 * i + 1] - b[2 * j + 1];
            s += exp(-(dx * dx + dy * dy) / (2 * h * h));
        }
    return s / ((double)na * (double)nb);
}

static void test_mmd_per_bandwidth(void **state) {
    (void)state;
    const double hs[WB_MMD_BANDWIDTHS] = {0.05, 0.1, 0.2, 0.5, 1.0};
    const char *keys[WB_MMD_BANDWIDTHS] = {"mmd_bw005", "mmd_bw01", "mmd_bw02", "mmd_bw05", "mmd_bw1"};
    for (int h = 0; h < WB_MMD_BANDWIDTHS; h++) {
        assert_true(wb_mmd_bandwidth(h) == hs[h]);
        assert_string_equal(wb_mmd_key(h), keys[h]);
    }
    assert_null(wb_mmd_key(WB_MMD_BANDWIDTHS));
    assert_true(isnan(wb_mmd_bandwidth(-1)));

    /* The combined MMD of three pairs as the code before the per-bandwidth
     * MMDs computed it (commit 2e4b7e5's wb_mmd_rbf, AVX2 build, printed
     * with %a): it is in every table, so it must not move by one bit. */
    struct {
        int64_t na, nb;
        double spread_a, spread_b;
        int skew_b;
        double combined_before;
    } cases[] = {
        {300, 257, 0.1, 0.1, 1, 0x1.be0a60aff9f52p-3}, /* mode weights differ */
        {200, 333, 0.05, 0.2, 0, 0x1.409edbb8f0297p-3}, /* mode shapes differ */
        {64, 64, 0.1, 0.1, 0, 0x1.0e73c388510edp-3}, /* two draws of one distribution */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *a = mmd_points(cases[c].na, 1000 + c, cases[c].spread_a, 0);
        float *b = mmd_points(cases[c].nb, 2000 + c, cases[c].spread_b, cases[c].skew_b);
        int64_t na = cases[c].na, nb = cases[c].nb;
        double bw[WB_MMD_BANDWIDTHS];
        double combined = wb_mmd_rbf_ex(a, na, b, nb, 2, NULL, bw);
        printf("case %zu: combined %a (%.17g)\n", c, combined, combined);
        assert_true(combined == cases[c].combined_before);
        assert_true(wb_mmd_rbf(a, na, b, nb, 2) == combined);

        /* each bandwidth against the double computation: float row sums of
         * ≤ 333 terms and the 2e-7 exponential leave ~1e-7 relative in each
         * kernel mean, MMD_h² a difference of three of them */
        double mean_sq = 0, combined_ref_sq = 0;
        for (int h = 0; h < WB_MMD_BANDWIDTHS; h++) {
            double kaa = ref_kernel_mean(a, na, a, na, hs[h]), kbb = ref_kernel_mean(b, nb, b, nb, hs[h]);
            double kab = ref_kernel_mean(a, na, b, nb, hs[h]), m2 = kaa + kbb - 2 * kab;
            double want = sqrt(m2 > 0 ? m2 : 0);
            printf("  %s %.9f (double: %.9f)\n", keys[h], bw[h], want);
            assert_true(fabs(bw[h] - want) <= 1e-6 + 1e-5 * want); /* measured ≤ 4e-8 */
            mean_sq += bw[h] * bw[h] / WB_MMD_BANDWIDTHS;
            combined_ref_sq += m2 / WB_MMD_BANDWIDTHS;
        }
        /* the combined kernel is the bandwidths' mean kernel: MMD² is the
         * mean of the MMD_h² (none of them is clipped here), up to rounding */
        assert_true(fabs(combined * combined - mean_sq) <= 1e-6 + 1e-4 * mean_sq);
        assert_true(fabs(combined - sqrt(combined_ref_sq)) <= 2e-5 + 1e-4 * combined);

        /* the kernel's per-bandwidth sums come from the same pass as the
         * combined one, which is the plain wb_cpu_rbf_sum's bit for bit */
        float inv[WB_MMD_BANDWIDTHS];
        double sums[WB_MMD_BANDWIDTHS];
        for (int h = 0; h < WB_MMD_BANDWIDTHS; h++) inv[h] = (float)(0.5 / (hs[h] * hs[h]));
        double total = wb_cpu_rbf_sums(a, na, b, nb, 2, inv, WB_MMD_BANDWIDTHS, sums);
        assert_true(total == wb_cpu_rbf_sum(a, na, b, nb, 2, inv, WB_MMD_BANDWIDTHS));
        double sum_of_sums = 0;
        for (int h = 0; h < WB_MMD_BANDWIDTHS; h++) sum_of_sums += sums[h];
        assert_true(fabs(total - sum_of_sums) <= 1e-6 * total);

        /* a cached reference term gives the same numbers, bit for bit */
        wb_mmd_means bb;
        wb_mmd_kernel_means(b, nb, b, nb, 2, &bb);
        double bw2[WB_MMD_BANDWIDTHS];
        assert_true(wb_mmd_rbf_ex(a, na, b, nb, 2, &bb, bw2) == combined);
        assert_memory_equal(bw, bw2, sizeof bw);
        /* against itself: every MMD exactly 0 */
        assert_true(wb_mmd_rbf_ex(a, na, a, na, 2, NULL, bw2) == 0.0);
        for (int h = 0; h < WB_MMD_BANDWIDTHS; h++) assert_true(bw2[h] == 0.0);
        free(a);
        free(b);
    }
    /* the kernel takes e^x = +0 below x = −104 without computing it: that
     * is what the exponential gives there */
    volatile float below = -104.0f;
    assert_true(wb_exp_nonpos(below) == 0.0f && !signbit(wb_exp_nonpos(below)));
    assert_true(wb_exp_nonpos(nextafterf(below, 0.0f)) == 0.0f); /* and just above: no step at the edge */
    /* an empty set: NaN everywhere */
    double bw[WB_MMD_BANDWIDTHS];
    float one[2] = {0, 0};
    assert_true(isnan(wb_mmd_rbf_ex(one, 0, one, 1, 2, NULL, bw)));
    for (int h = 0; h < WB_MMD_BANDWIDTHS; h++) assert_true(isnan(bw[h]));
}

/* wb_eval_gmm reports the same MMDs (and NaN for all of them when a sample is not finite). */
static void test_eval_gmm_mmd_keys(void **state) {
    (void)state;
    wb_dataset *ds = wb_gmm2d_new("ring8", 2.0, 0.1);
    assert_non_null(ds);
    float *a = mmd_points(400, 7, 0.1, 0), *b = mmd_points(300, 8, 0.1, 1);
    wb_gmm_metrics m;
    assert_int_equal(wb_eval_gmm(ds->gmm, a, 400, b, 300, &m), 0);
    double bw[WB_MMD_BANDWIDTHS];
    assert_true(m.mmd == wb_mmd_rbf_ex(a, 400, b, 300, 2, NULL, bw));
    assert_memory_equal(m.mmd_bw, bw, sizeof bw);
    a[5] = NAN;
    assert_int_equal(wb_eval_gmm(ds->gmm, a, 400, b, 300, &m), 0);
    assert_true(isnan(m.mmd));
    for (int h = 0; h < WB_MMD_BANDWIDTHS; h++) assert_true(isnan(m.mmd_bw[h]));
    free(a);
    free(b);
    wb_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_accumulate), cmocka_unit_test(test_stats_save_load),
        cmocka_unit_test(test_stats_legacy_cache),
        cmocka_unit_test(test_frechet_analytic), cmocka_unit_test(test_frechet_scipy),
        cmocka_unit_test(test_precision_recall), cmocka_unit_test(test_inception_score),
        cmocka_unit_test(test_mode_coverage),    cmocka_unit_test(test_image_grid),
        cmocka_unit_test(test_mmd_per_bandwidth), cmocka_unit_test(test_eval_gmm_mmd_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
