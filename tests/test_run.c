/* tests/test_run.c — what host/engine/run.c writes into a run directory and the
 * atomic writer under it (core/atomic_file.h): config.json begins with kind,
 * build information, backend and the run's origin whatever order the caller
 * added them in; metrics.jsonl lines keep their number formats and leave out
 * optional values that were not measured; checkpoints carry "commit";
 * samples.png is a grid for images, a scatter (or nothing) for 2-D data; a
 * failed atomic write leaves the old file and no PATH.tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fault_inject.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "wb/cpu.h"
#include "wb/atomic_file.h"
#include "core/buildinfo.h"
#include "wb/safetensors.h"
#include "engine/engine.h"
#include "engine/run.h"
#include "wb_test_util.h"

static char g_dir[256];

static int fresh(void **state) {
    (void)state;
    return wb_test_mkdtemp(g_dir, sizeof g_dir, "/tmp/wb_test_run_XXXXXX");
}
static int cleanup(void **state) {
    (void)state;
    return wb_test_rm_rf(g_dir);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void test_config_order(void **state) {
    (void)state;
    wb_run run;
    assert_int_equal(wb_run_open(&run, g_dir), 0);
    assert_int_equal(wb_run_begin_log(&run, -1), 0);
    run.origin = cJSON_Parse("{\"script\": {\"path\": \"x.lua\"}, \"args\": {\"out\": \"o\"}}");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "steps", 5);
    cJSON_AddStringToObject(root, "backend", "cpu");
    cJSON_AddStringToObject(root, "kind", "teacher");
    cJSON_AddStringToObject(root, "dataset", "ring8");
    assert_int_equal(wb_run_write_config(&run, root), 0);
    cJSON_Delete(root);
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    char *text = wb_test_slurp(path);
    cJSON *back = cJSON_Parse(text);
    assert_non_null(back);
    const char *order[] = {"kind", "workbench_version", "commit", "blas", "backend", "script", "args", "steps",
                           "dataset"};
    const cJSON *it = back->child;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++, it = it->next) {
        assert_non_null(it);
        /* "environment" (after "blas") only when a numerics variable is set,
         * as CTest sets the thread counts */
        if (strcmp(it->string, "environment") == 0 && strcmp(order[i], "backend") == 0) it = it->next;
        assert_string_equal(it->string, order[i]);
    }
    const cJSON *blas = cJSON_GetObjectItemCaseSensitive(back, "blas");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(blas, "core")->valuestring, wb_cpu_blas_core());
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(blas, "threads")->valuedouble, wb_cpu_blas_threads());
    assert_null(it);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(back, "commit")->valuestring, wb_build_commit());
    assert_int_equal(text[strlen(text) - 1], '\n');
    cJSON_Delete(back);
    free(text);
    wb_run_close(&run);
}

static void test_metrics_line(void **state) {
    (void)state;
    wb_run run;
    assert_int_equal(wb_run_open(&run, g_dir), 0);
    assert_int_equal(wb_run_begin_log(&run, -1), 0);
    wb_log_value v[] = {{"seconds", 1.23456, WB_LOG_F3, 0},
                        {"loss", 0.000123456789, WB_LOG_G6, 0},
                        {"acc", 0.5, WB_LOG_F4, 0},
                        {"mmd", NAN, WB_LOG_G6, 1},
                        {"eval", 2.0, WB_LOG_G6, 1}};
    assert_int_equal(wb_run_log(&run, 100, v, 5), 0);
    assert_int_equal(wb_run_log(&run, 200, v, 2), 0);
    assert_int_equal(wb_run_log(NULL, 1, v, 5), 0); /* no run: nothing to do */
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", g_dir);
    char *text = wb_test_slurp(path);
    assert_string_equal(text, "{\"step\": 100, \"seconds\": 1.235, \"loss\": 0.000123457, \"acc\": 0.5000, "
                              "\"eval\": 2}\n{\"step\": 200, \"seconds\": 1.235, \"loss\": 0.000123457}\n");
    free(text);
    wb_run_close(&run);
}

static int fake_images(void *user, int64_t n, uint64_t seed, float *out) {
    (void)seed;
    const int64_t dim = *(const int64_t *)user;
    for (int64_t i = 0; i < n * dim; i++) out[i] = (float)(i % 7) / 7.0f;
    return 0;
}

static void test_checkpoint_and_samples(void **state) {
    (void)state;
    wb_run run;
    assert_int_equal(wb_run_open(&run, g_dir), 0);
    assert_int_equal(wb_run_begin_log(&run, -1), 0);
    wb_params *ps = wb_params_new(wb_backend_cpu());
    assert_non_null(wb_params_add(ps, "w", 1, (int64_t[]){3}, WB_INIT_ONES, 1.0f));
    wb_rng rng;
    wb_rng_init(&rng, 1, 0);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    wb_named_params st[1] = {{"net.", ps}};
    const char *meta[] = {"kind", "test"};
    assert_int_equal(wb_run_save_checkpoint(&run, st, 1, meta, 1), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", g_dir);
    wb_st_file *f = wb_safetensors_open(path);
    assert_non_null(f);
    assert_string_equal(wb_safetensors_meta(f, "kind"), "test");
    assert_string_equal(wb_safetensors_meta(f, "commit"), wb_build_commit());
    wb_safetensors_close(f);
    wb_params_free(ps);

    /* images: a grid of `grid` images; grid = 0: none, and an older one goes;
     * 2-D data without a title: no figure */
    wb_dataset images = {.name = "img", .shape = {.channels = 1, .height = 4, .width = 4}, .dim = 16};
    wb_run_samples s = {.sample = fake_images, .user = &images.dim, .data = &images, .grid = 64};
    assert_int_equal(wb_run_write_samples(&run, &s), 0);
    snprintf(path, sizeof path, "%s/samples.png", g_dir);
    assert_true(exists(path));
    s.grid = 0;
    assert_int_equal(wb_run_write_samples(&run, &s), 0);
    assert_false(exists(path));
    wb_dataset *ring = wb_gmm2d_new("ring8", 2.0, 0.05);
    assert_non_null(ring);
    s = (wb_run_samples){.sample = fake_images, .user = &ring->dim, .data = ring, .grid = 64};
    assert_int_equal(wb_run_write_samples(&run, &s), 0);
    assert_false(exists(path));
    wb_rng data_rng;
    wb_rng_init(&data_rng, 3, 4);
    s.title = "t";
    s.label = "student";
    s.data_rng = &data_rng;
    assert_int_equal(wb_run_write_samples(&run, &s), 0);
    assert_true(exists(path));
    wb_dataset_free(ring);
    wb_run_close(&run);
}

/* Two processes replacing one file at once (two runs sharing a cache
 * directory): every read sees one writer's whole file, never a mix or a
 * cut, and both writes succeed. A shared PATH.tmp would interleave them. */
static void test_atomic_concurrent_writers(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/shared.bin", g_dir);
    enum { A_LEN = 1 << 20, B_LEN = (1 << 20) + 4096 + 7, ROUNDS = 25 };
    char *a = malloc(A_LEN), *b = malloc(B_LEN);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 'a', A_LEN);
    memset(b, 'b', B_LEN);
    assert_int_equal(wb_write_file_atomic(path, a, A_LEN), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            int bad = 0;
            for (int r = 0; r < ROUNDS; r++) bad |= wb_write_file_atomic(path, k ? b : a, k ? B_LEN : A_LEN) != 0;
            _exit(bad);
        }
    }
    int reads = 0, torn = 0;
    for (int alive = 2; alive > 0;) {
        char *got = wb_test_slurp(path);
        size_t n = got ? strlen(got) : 0;
        reads++;
        if (!got || !((n == A_LEN && got[0] == 'a' && got[n - 1] == 'a' && !memchr(got, 'b', n)) ||
                      (n == B_LEN && got[0] == 'b' && got[n - 1] == 'b' && !memchr(got, 'a', n))))
            torn++;
        free(got);
        alive = 0;
        for (int k = 0; k < 2; k++) {
            if (kids[k] <= 0) continue;
            int status;
            pid_t w = waitpid(kids[k], &status, WNOHANG);
            if (w == kids[k]) {
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                kids[k] = 0;
            } else {
                alive++;
            }
        }
    }
    if (torn) fail_msg("%d of %d reads saw a mixed or cut file", torn, reads);
    assert_false(wb_fault_tmp_left(path));
    free(a);
    free(b);
}

static void test_atomic_writer(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/a.txt", g_dir);
    assert_int_equal(wb_write_file_atomic(path, "old\n", 4), 0);
    assert_false(wb_fault_tmp_left(path));
    /* the temporary file cannot be created: the error names the file, PATH stays */
    struct rlimit fds;
    assert_int_equal(wb_fault_fds_block(&fds), 0);
    int rc = wb_write_file_atomic(path, "new\n", 4);
    wb_fault_fds_restore(&fds);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(wb_last_error(), path));
    /* abort after writing: PATH stays, the temporary file goes */
    wb_atomic_file af;
    assert_int_equal(wb_atomic_open(&af, path), 0);
    fputs("half", af.f);
    wb_atomic_abort(&af);
    assert_false(wb_fault_tmp_left(path));
    /* the rename fails (PATH is a non-empty folder): PATH.tmp removed */
    char dir[512], inner[600];
    snprintf(dir, sizeof dir, "%s/d", g_dir);
    snprintf(inner, sizeof inner, "%s/x", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    wb_test_write_text(inner, "x");
    assert_int_not_equal(wb_write_file_atomic(dir, "y", 1), 0);
    assert_non_null(strstr(wb_last_error(), "rename"));
    assert_false(wb_fault_tmp_left(dir));
    char *text = wb_test_slurp(path);
    assert_string_equal(text, "old\n");
    free(text);
    /* a commit without an open is an error, not a crash */
    wb_atomic_file none = {0};
    assert_int_not_equal(wb_atomic_commit(&none), 0);
    wb_atomic_abort(&none);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_order, fresh, cleanup),
        cmocka_unit_test_setup_teardown(test_metrics_line, fresh, cleanup),
        cmocka_unit_test_setup_teardown(test_checkpoint_and_samples, fresh, cleanup),
        cmocka_unit_test_setup_teardown(test_atomic_concurrent_writers, fresh, cleanup),
        cmocka_unit_test_setup_teardown(test_atomic_writer, fresh, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
