/* tests/wb_test_util.h — shared mechanics of the CMocka tests, header-only
 * (every function static inline, so a test that uses a few of them builds
 * without unused-function warnings). Only mechanics live here; every test
 * keeps its own cases, assertions and tolerances.
 *   - temporary folders and files: wb_test_mkdtemp, wb_test_rm_rf,
 *     wb_test_slurp, wb_test_write_text;
 *   - running the built `workbench` (fork/exec) or a shell command
 *     (system) in a folder with stdout and stderr captured: wb_test_result,
 *     wb_test_run_workbench, wb_test_run_script, wb_test_run_sh, and the
 *     WB_EXPECT_IN / WB_EXPECT_STATUS checks that print what was said;
 *   - the tensor exchange with the torch reference scripts
 *     (tests/torch_ops*.py, shared Python side in tests/torch_exchange.py):
 *     wb_test_write_tensor(_t) records in tensors.bin, wb_torch_open /
 *     wb_torch_close / wb_torch_remove_dir for the exchange folder, and
 *     wb_torch_run, which runs a script through WB_TEST_PYTHON, hands each
 *     "RESULT NAME WHAT ERR" line to the test and skips ("SKIP: ...") when
 *     there is no python or no torch;
 *   - wb_test_weighted_sum: Σ w·y in double, the loss finite differences
 *     difference.
 * Include after <cmocka.h>.
 */
#ifndef WB_TEST_UTIL_H
#define WB_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wb/tensor.h"

#ifndef WB_TEST_BUILD_DIR
#define WB_TEST_BUILD_DIR "."
#endif
#ifndef WB_TEST_SOURCE_DIR
#define WB_TEST_SOURCE_DIR "."
#endif
#ifndef WB_TEST_PYTHON
#define WB_TEST_PYTHON ""
#endif

#define WB_TEST_WORKBENCH WB_TEST_BUILD_DIR "/workbench"

/* ---- temporary folders and files ------------------------------------------------- */

/* Copies tmpl ("/tmp/name_XXXXXX") into buf and creates it; 0 or -1. */
static inline int wb_test_mkdtemp(char *buf, size_t size, const char *tmpl) {
    snprintf(buf, size, "%s", tmpl);
    return mkdtemp(buf) ? 0 : -1;
}

/* `rm -rf dir`; 0 or -1 (a teardown's return value). */
static inline int wb_test_rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The whole file as a malloc'd string; "" when it cannot be opened. */
static inline char *wb_test_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static inline void wb_test_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- running programs with output captured ----------------------------------------- */

typedef struct wb_test_result {
    int status; /* exit code; 128 + signal; -1 if the shell did not run */
    char *out, *err;
} wb_test_result;

static inline void wb_test_result_free(wb_test_result *r) {
    free(r->out);
    free(r->err);
}

static inline wb_test_result wb_test_collect(const char *dir, int status) {
    char path[512];
    wb_test_result r;
    r.status = status;
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    r.out = wb_test_slurp(path);
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    r.err = wb_test_slurp(path);
    return r;
}

/* Runs `workbench args...` (NULL-terminated) inside dir, stdout and stderr
 * captured in dir/stdout.txt and dir/stderr.txt. */
static inline wb_test_result wb_test_run_workbench(const char *dir, const char *const *args) {
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(120);
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0) _exit(121);
        dup2(fo, 1);
        dup2(fe, 2);
        char *argv[32];
        int n = 0;
        argv[n++] = (char *)WB_TEST_WORKBENCH;
        for (int i = 0; args[i] && n < 31; i++) argv[n++] = (char *)args[i];
        argv[n] = NULL;
        execv(WB_TEST_WORKBENCH, argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return wb_test_collect(dir, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* Writes script to dir/s.lua and runs `workbench run s.lua [a1 [a2]]` in dir. */
static inline wb_test_result wb_test_run_script(const char *dir, const char *script, const char *a1,
                                                const char *a2) {
    char path[512];
    snprintf(path, sizeof path, "%s/s.lua", dir);
    wb_test_write_text(path, script);
    const char *args[] = {"run", "s.lua", a1, a1 ? a2 : NULL, NULL};
    return wb_test_run_workbench(dir, args);
}

/* Runs `sh -c cmd` in dir with stdout and stderr captured separately. */
static inline wb_test_result wb_test_run_sh(const char *dir, const char *cmd) {
    size_t size = strlen(cmd) + 3 * strlen(dir) + 64;
    char *full = malloc(size);
    assert_non_null(full);
    snprintf(full, size, "cd '%s' && ( %s ) >'%s/stdout.txt' 2>'%s/stderr.txt'", dir, cmd, dir, dir);
    int st = system(full);
    free(full);
    return wb_test_collect(dir, st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* Prints what the binary said when a check fails, then fails the test. */
#define WB_EXPECT_IN(hay, needle, r)                                                                                 \
    do {                                                                                                             \
        if (!strstr((hay), (needle))) {                                                                              \
            print_error("expected \"%s\" in output\n--- status %d\n--- stdout\n%s--- stderr\n%s\n", (needle),       \
                        (r).status, (r).out, (r).err);                                                               \
            fail();                                                                                                  \
        }                                                                                                            \
    } while (0)

#define WB_EXPECT_STATUS(r, code)                                                                                    \
    do {                                                                                                             \
        if ((r).status != (code)) {                                                                                  \
            print_error("expected exit status %d, got %d\n--- stdout\n%s--- stderr\n%s\n", (code), (r).status,       \
                        (r).out, (r).err);                                                                           \
            fail();                                                                                                  \
        }                                                                                                            \
    } while (0)

/* ---- tensors ------------------------------------------------------------------------ */

/* Σ w·y in double: the loss the finite differences difference. */
static inline double wb_test_weighted_sum(const wb_tensor *y, const float *w) {
    float *host = malloc((size_t)y->numel * sizeof *host);
    assert_non_null(host);
    assert_int_equal(wb_to_host(y, host), 0);
    double acc = 0.0;
    for (int64_t i = 0; i < y->numel; i++) acc += (double)w[i] * host[i];
    free(host);
    return acc;
}

/* ---- the torch exchange: tensors.bin + manifest.txt, then a script ---------------- */

/* One tensors.bin record: u32 name length, name, u32 ndim, i64 shape[ndim],
 * float32 data (read by tests/torch_exchange.py). */
static inline void wb_test_write_tensor(FILE *f, const char *name, int ndim, const int64_t *shape,
                                        const float *data) {
    uint32_t len = (uint32_t)strlen(name), nd = (uint32_t)ndim;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    assert_int_equal(fwrite(&len, 4, 1, f), 1);
    assert_int_equal(fwrite(name, 1, len, f), len);
    assert_int_equal(fwrite(&nd, 4, 1, f), 1);
    assert_int_equal(fwrite(shape, 8, (size_t)ndim, f), (size_t)ndim);
    if (numel) assert_int_equal(fwrite(data, 4, (size_t)numel, f), (size_t)numel);
}

/* A tensor's values (grad 0) or its gradient (grad 1) as one record. */
static inline void wb_test_write_tensor_t(FILE *f, const char *name, const wb_tensor *t, int grad) {
    float *host = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *host);
    assert_non_null(host);
    assert_int_equal(grad ? wb_grad_to_host(t, host) : wb_to_host(t, host), 0);
    wb_test_write_tensor(f, name, t->ndim, t->shape, host);
    free(host);
}

/* Skips the calling test when there is no python to run a torch script. */
static inline void wb_torch_skip_without_python(void) {
    if (!WB_TEST_PYTHON[0]) {
        print_message("SKIP: torch not installed (no system python3)\n");
        skip();
    }
}

/* Creates the exchange folder from tmpl and opens dir/tensors.bin, dir/manifest.txt. */
static inline void wb_torch_open(char *dir, size_t size, const char *tmpl, FILE **tf, FILE **mf) {
    assert_int_equal(wb_test_mkdtemp(dir, size, tmpl), 0);
    char tpath[128], mpath[128];
    snprintf(tpath, sizeof tpath, "%s/tensors.bin", dir);
    snprintf(mpath, sizeof mpath, "%s/manifest.txt", dir);
    *tf = fopen(tpath, "wb");
    *mf = fopen(mpath, "w");
    assert_non_null(*tf);
    assert_non_null(*mf);
}

static inline void wb_torch_close(FILE *tf, FILE *mf) {
    assert_int_equal(fclose(tf), 0);
    assert_int_equal(fclose(mf), 0);
}

/* Removes the exchange folder (none: nothing) and clears dir; with
 * WB_TEST_KEEP set it is kept for running the script by hand. */
static inline void wb_torch_remove_dir(char *dir) {
    if (!dir[0]) return;
    if (getenv("WB_TEST_KEEP")) { /* debugging: leave the files for the torch script */
        print_message("kept %s\n", dir);
        dir[0] = 0;
        return;
    }
    char p[128];
    snprintf(p, sizeof p, "%s/tensors.bin", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/manifest.txt", dir);
    unlink(p);
    rmdir(dir);
    dir[0] = 0;
}

/* Where "RESULT NAME WHAT ERR" goes; NULL: an unknown item (the test fails). */
typedef double *(*wb_torch_slot_fn)(const char *name, const char *what);

/* Runs tests/<script> on dir through WB_TEST_PYTHON (single-threaded torch
 * and BLAS; coreutils timeout 120 s when present, so a hung interpreter
 * cannot hang the suite) and stores each reported error in its slot. No
 * torch (NO_TORCH or exit 77): removes dir, prints "SKIP: torch not
 * installed" and skips; any other failure, or no DONE line, fails the test
 * with the script's last output. */
static inline void wb_torch_run(const char *script, char *dir, wb_torch_slot_fn slot_of) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%sOMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 '%s' '%s/tests/%s' '%s' 2>&1",
             access("/usr/bin/timeout", X_OK) == 0 ? "/usr/bin/timeout 120 env " : "env ", WB_TEST_PYTHON,
             WB_TEST_SOURCE_DIR, script, dir);
    FILE *pp = popen(cmd, "r");
    assert_non_null(pp);
    char line[512], tail[4096] = "";
    int no_torch = 0, done = 0;
    while (fgets(line, sizeof line, pp)) {
        /* keep the script's last output for the failure message */
        if (strlen(tail) + strlen(line) >= sizeof tail) tail[0] = 0;
        strcat(tail, line);
        char name[128], what[32];
        double err;
        if (strncmp(line, "NO_TORCH", 8) == 0) no_torch = 1;
        else if (strncmp(line, "DONE", 4) == 0) done = 1;
        else if (sscanf(line, "RESULT %127s %31s %lf", name, what, &err) == 3) {
            double *slot = slot_of(name, what);
            if (!slot) fail_msg("%s reported unknown item '%s %s'", script, name, what);
            *slot = err;
        }
    }
    int status = pclose(pp);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (no_torch || rc == 77) {
        wb_torch_remove_dir(dir);
        print_message("SKIP: torch not installed\n");
        skip();
    }
    if (rc != 0 || !done) fail_msg("%s failed (exit %d):\n%s", script, rc, tail);
}

#endif /* WB_TEST_UTIL_H */
