/* tests/test_engine_backend.c — the engine runs on whatever backend it is
 * given, and keeps a distillation step there:
 *   - a second backend object (the CPU table wrapped to count calls) trains
 *     a teacher and distils it; every op goes through the wrapper (its
 *     counters move, the plain CPU backend's transfer counters do not) and
 *     the numbers are the CPU backend's, bit for bit;
 *   - per distillation step, between log points, exactly the logits come
 *     down and the weights (plus the real data batch) go up;
 *   - the backend's draws are wb_rng's numbers; Karras σ is its closed form;
 *   - a kernel failure is sticky until reported, and names the op; a NaN
 *     found by a transfer-free check is reported by the next sync, naming
 *     what was checked; an unknown or unavailable backend is a clear error.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "wb/backend.h"

/* ---- the counting backend: the CPU table with counting shims ---------------- */
static const wb_backend *inner;
static uint64_t n_gemm, n_unary, n_binary, n_adam, n_rng, n_karras, n_dmd, n_flag, n_fill, n_copy, n_sum_rows;
static int counting_flags[WB_MAX_FINITE_CHECKS];
static wb_backend_status counting_status = {.finite_flags = counting_flags};
static wb_backend counting;

static void c_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                   float beta, float *c, int ldc) {
    n_gemm++;
    inner->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void c_unary(wb_unary_op op, int64_t n, const float *x, float *y, float alpha) {
    n_unary++;
    inner->unary(op, n, x, y, alpha);
}
static void c_binary(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b, float *y) {
    n_binary++;
    inner->binary(op, bc, a, b, y);
}
static void c_adam(int64_t n, float *p, const float *g, float *m, float *v, float lr, float b1, float b2, float eps,
                   float wd, int dec, float bc1, float bc2) {
    n_adam++;
    inner->adam(n, p, g, m, v, lr, b1, b2, eps, wd, dec, bc1, bc2);
}
static void c_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out) {
    n_rng++;
    inner->rng_normal(seed, stream, offset, n, out);
}
static void c_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out) {
    n_rng++;
    inner->rng_uniform(seed, stream, offset, n, out);
}
static void c_karras(int64_t n, const float *u, float t0, float t1, double smin, double smax, double rho, float *s) {
    n_karras++;
    inner->karras_sigma(n, u, t0, t1, smin, smax, rho, s);
}
static void c_dmd(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma, float *w) {
    n_dmd++;
    inner->dmd_weight(rows, cols, x0, d, sigma, w);
}
static void c_flag(int64_t n, const float *x, int *flag) {
    n_flag++;
    inner->flag_nonfinite(n, x, flag);
}
static void c_fill(float *dst, int64_t n, float value) {
    n_fill++;
    inner->fill(dst, n, value);
}
static void c_copy(void *dst, const void *src, size_t bytes) {
    n_copy++;
    inner->copy(dst, src, bytes);
}
static void c_sum_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    n_sum_rows++;
    inner->sum_rows(rows, cols, x, y);
}

static const wb_backend *counting_backend(void) {
    inner = wb_backend_cpu();
    counting = *inner; /* every kernel of the CPU table, under a new object */
    counting.name = "counting-cpu";
    counting.status = &counting_status;
    counting.gemm = c_gemm;
    counting.unary = c_unary;
    counting.binary = c_binary;
    counting.adam = c_adam;
    counting.rng_normal = c_rng_normal;
    counting.rng_uniform = c_rng_uniform;
    counting.karras_sigma = c_karras;
    counting.dmd_weight = c_dmd;
    counting.flag_nonfinite = c_flag;
    counting.fill = c_fill;
    counting.copy = c_copy;
    counting.sum_rows = c_sum_rows;
    return &counting;
}

/* ---- fixture ---------------------------------------------------------------- */
typedef struct fixture {
    wb_registry *reg;
    wb_dataset *ds;
    wb_netspec mlp;
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
    int64_t widths[2] = {32, 32};
    wb_config_set_ints(f->mlp.cfg, "widths", widths, 2);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    wb_config_free(f->mlp.cfg);
    wb_dataset_free(f->ds);
    wb_registry_free(f->reg);
    free(f);
    return 0;
}

static wb_teacher *teacher_on(fixture *f, const wb_backend *be) {
    wb_teacher_config c;
    wb_teacher_config_default(&c);
    c.steps = 20;
    c.batch = 64;
    c.seed = 4;
    c.quiet = 1;
    c.backend = be;
    return wb_teacher_train(f->ds, &f->mlp, &c, NULL);
}

static wb_distill_config distill_config(fixture *f, const char *divergence, int64_t steps, const wb_backend *be) {
    wb_distill_config c;
    wb_distill_config_default(&c);
    const wb_plugin_info *dv = wb_registry_find(f->reg, WB_KIND_DIVERGENCE, divergence);
    const wb_plugin_info *ra = wb_registry_find(f->reg, WB_KIND_RATIO, "classifier");
    assert_non_null(dv);
    assert_non_null(ra);
    c.divergence = dv->desc;
    c.divergence_cfg = wb_config_new(dv->desc);
    c.ratio = ra->desc;
    c.ratio_cfg = wb_config_new(ra->desc);
    c.ratio_net = f->mlp;
    c.steps = steps;
    c.batch = 16;
    c.log_every = 0; /* a log point only after the last step */
    c.quiet = 1;
    c.backend = be;
    return c;
}

static void free_distill_config(wb_distill_config *c) {
    wb_config_free(c->divergence_cfg);
    wb_config_free(c->ratio_cfg);
}

/* ---- a teacher and a distillation through a second backend object ----------- */
static void run_on(fixture *f, const wb_backend *be, const char *divergence, float *samples, int n) {
    wb_teacher *t = teacher_on(f, be);
    assert_non_null(t);
    wb_distill_config c = distill_config(f, divergence, 6, be);
    wb_student *s = wb_distill(t, f->ds, &c, NULL);
    if (!s) fail_msg("distill %s on %s: %s", divergence, wb_backend_name(be), wb_last_error());
    assert_int_equal(wb_student_sample(s, n, 11, 1, samples), 0);
    wb_student_free(s);
    free_distill_config(&c);
    wb_teacher_free(t);
}

static void test_every_op_through_the_given_backend(void **state) {
    fixture *f = *state;
    const wb_backend *cpu = wb_backend_cpu(), *cb = counting_backend();
    const char *divergences[] = {"kl", "dijs"}; /* score-based (DMD weight) and score-free (σ², ∇_x l) */
    for (int k = 0; k < 2; k++) {
        enum { N = 64 };
        float on_cpu[N * 2], on_counting[N * 2];
        run_on(f, cpu, divergences[k], on_cpu, N);
        wb_transfer_counts cpu_before = wb_backend_transfers(cpu);
        n_gemm = n_unary = n_binary = n_adam = n_rng = n_karras = n_dmd = n_flag = n_fill = n_copy = n_sum_rows = 0;
        run_on(f, cb, divergences[k], on_counting, N);
        wb_transfer_counts cpu_after = wb_backend_transfers(cpu);
        /* nothing of the run touched the plain CPU backend object ... */
        assert_int_equal(cpu_after.uploads, cpu_before.uploads);
        assert_int_equal(cpu_after.downloads, cpu_before.downloads);
        /* ... everything went through the wrapper ... */
        wb_transfer_counts moved = wb_backend_transfers(cb);
        assert_true(moved.uploads > 0 && moved.downloads > 0);
        assert_true(n_gemm > 0 && n_unary > 0 && n_binary > 0 && n_adam > 0 && n_fill > 0 && n_copy > 0 &&
                    n_sum_rows > 0);
        printf("%s: gemm %llu rng %llu flag %llu karras %llu dmd %llu\n", divergences[k], (unsigned long long)n_gemm,
               (unsigned long long)n_rng, (unsigned long long)n_flag, (unsigned long long)n_karras, (unsigned long long)n_dmd);
        assert_true(n_rng > 0 && n_flag > 0); /* draws and finite checks on the backend */
        if (k == 0) assert_true(n_karras > 0 && n_dmd > 0); /* kl: Karras σ, DMD time weight (dijs: σ fixed, σ²) */
        /* ... and it computed the CPU backend's numbers, bit for bit */
        assert_memory_equal(on_cpu, on_counting, sizeof on_cpu);
    }
}

/* Between log points one distillation step moves exactly: the logits down
 * (B floats), the weights up (2B floats, interleaved) and the real batch up
 * (B·D floats). Measured as the difference of a 4-step and an 8-step run
 * (both log after their last step only), so setup cancels out. */
static wb_transfer_counts distill_transfers(fixture *f, wb_teacher *t, const char *divergence, int64_t steps,
                                            int ratio_updates) {
    const wb_backend *cb = &counting;
    wb_distill_config c = distill_config(f, divergence, steps, cb);
    c.ratio_updates = ratio_updates;
    wb_transfer_counts before = wb_backend_transfers(cb);
    wb_student *s = wb_distill(t, f->ds, &c, NULL);
    if (!s) fail_msg("distill %s: %s", divergence, wb_last_error());
    wb_transfer_counts after = wb_backend_transfers(cb);
    wb_student_free(s);
    free_distill_config(&c);
    wb_transfer_counts d = {after.uploads - before.uploads, after.downloads - before.downloads,
                            after.upload_bytes - before.upload_bytes, after.download_bytes - before.download_bytes};
    return d;
}

static void test_transfers_per_step(void **state) {
    fixture *f = *state;
    const wb_backend *cb = counting_backend();
    wb_teacher *t = teacher_on(f, cb);
    assert_non_null(t);
    const int64_t b = 16, dim = 2;
    const char *divergences[] = {"kl", "dijs"};
    for (int k = 0; k < 2; k++)
        for (int ratio_updates = 1; ratio_updates <= 2; ratio_updates++) {
            wb_transfer_counts a = distill_transfers(f, t, divergences[k], 4, ratio_updates);
            wb_transfer_counts z = distill_transfers(f, t, divergences[k], 8, ratio_updates);
            uint64_t steps = 4;
            uint64_t downloads = (z.downloads - a.downloads) / steps, uploads = (z.uploads - a.uploads) / steps;
            uint64_t down_bytes = (z.download_bytes - a.download_bytes) / steps;
            uint64_t up_bytes = (z.upload_bytes - a.upload_bytes) / steps;
            printf("%s, %d ratio update(s): per step %llu down (%llu B), %llu up (%llu B)\n", divergences[k],
                   ratio_updates, (unsigned long long)downloads, (unsigned long long)down_bytes,
                   (unsigned long long)uploads, (unsigned long long)up_bytes);
            assert_int_equal((z.downloads - a.downloads) % steps, 0);
            assert_int_equal((z.uploads - a.uploads) % steps, 0);
            assert_int_equal(downloads, 1);                      /* the logits */
            assert_int_equal(down_bytes, b * sizeof(float));
            assert_int_equal(uploads, 1 + (uint64_t)ratio_updates); /* the weights, one batch per ratio update */
            assert_int_equal(up_bytes, (2 * b + (uint64_t)ratio_updates * b * dim) * sizeof(float));
        }
    wb_teacher_free(t);
}

/* ---- draws, Karras σ --------------------------------------------------------- */
static void test_backend_draws_are_wb_rng_numbers(void **state) {
    (void)state;
    const wb_backend *cpu = wb_backend_cpu();
    wb_graph *g = wb_graph_new(cpu);
    const int64_t sizes[] = {1, 3, 4, 7, 64, 1001};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        float *host = malloc((size_t)n * sizeof(float)), *dev = malloc((size_t)n * sizeof(float));
        for (int normal = 0; normal < 2; normal++) {
            wb_rng a, b;
            wb_rng_init(&a, 77, 5);
            wb_rng_init(&b, 77, 5);
            float before_draws[3]; /* not host: that holds only n floats, and n may be 1 */
            wb_rng_normal(&a, before_draws, 3); /* draws before, so the offset is not 0 */
            wb_rng_normal(&b, before_draws, 3);
            if (normal) wb_rng_normal(&a, host, n);
            else wb_rng_uniform(&a, host, n);
            wb_transfer_counts before = wb_backend_transfers(cpu);
            wb_tensor *t = normal ? wb_randn(g, &b, 1, &n) : wb_rand_uniform(g, &b, 1, &n);
            assert_non_null(t);
            assert_int_equal(wb_backend_transfers(cpu).uploads, before.uploads); /* drawn there, not uploaded */
            wb_to_host(t, dev);
            assert_memory_equal(host, dev, (size_t)n * sizeof(float));
            assert_true(a.offset == b.offset);
        }
        free(host);
        free(dev);
    }
    wb_graph_free(g);
}

static void test_karras_sigma_closed_form(void **state) {
    (void)state;
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    const float u[5] = {0.0f, 0.25f, 0.5f, 0.75f, 0.999f};
    int64_t n = 5;
    wb_tensor *s = wb_karras_sigma(g, wb_from_host(g, 1, &n, u), 0.02f, 0.6f);
    assert_non_null(s);
    float got[5];
    wb_to_host(s, got);
    for (int i = 0; i < 5; i++) {
        double t = 0.02 + (0.6 - 0.02) * u[i], a = pow(0.002, 1 / 7.0), b = pow(80.0, 1 / 7.0);
        double want = pow(a + t * (b - a), 7.0);
        assert_true(fabs(got[i] - want) <= 1e-6 * want);
    }
    /* a noise level is a draw: asking for its gradient is an error */
    wb_tensor *leaf = wb_leaf(g, 1, &n, u, 1);
    assert_null(wb_karras_sigma(g, leaf, 0.0f, 1.0f));
    assert_non_null(strstr(wb_last_error(), "not differentiable"));
    wb_graph_free(g);
}

/* ---- errors: sticky failures, finite checks, backend selection --------------- */
static void test_sticky_error_names_the_op(void **state) {
    (void)state;
    const wb_backend *be = counting_backend();
    wb_graph *g = wb_graph_new(be);
    int64_t n = 4;
    wb_tensor *x = wb_full(g, 1, &n, 2.0f);
    wb_backend_fail(be, "unary: launch failed (simulated)");
    wb_backend_fail(be, "a later failure is not the first");
    assert_null(wb_exp(g, x));
    assert_non_null(strstr(wb_last_error(), "exp"));
    assert_non_null(strstr(wb_last_error(), "launch failed (simulated)"));
    assert_non_null(strstr(wb_last_error(), "counting-cpu"));
    /* reported once, then cleared: the next op runs */
    assert_non_null(wb_exp(g, x));
    assert_int_equal(wb_backend_sync(be), 0);
    /* a failure reported by sync names it too */
    wb_backend_fail(be, "gemm: illegal address (simulated)");
    assert_int_equal(wb_backend_sync(be), -1);
    assert_non_null(strstr(wb_last_error(), "illegal address"));
    assert_int_equal(wb_backend_sync(be), 0);
    wb_graph_free(g);
}

static void test_finite_checks_report_at_sync(void **state) {
    (void)state;
    const wb_backend *be = counting_backend();
    wb_graph *g = wb_graph_new(be);
    const float good[3] = {1, 2, 3}, bad[3] = {1, NAN, 3}, worse[3] = {INFINITY, 0, 0};
    int64_t n = 3;
    wb_transfer_counts before = wb_backend_transfers(be);
    assert_int_equal(wb_check_finite(g, wb_from_host(g, 1, &n, good), "the good one"), 0);
    assert_int_equal(wb_check_finite(g, wb_from_host(g, 1, &n, bad), "the bad one"), 0);
    assert_int_equal(wb_check_finite(g, wb_from_host(g, 1, &n, worse), "the worse one"), 0);
    assert_int_equal(wb_backend_transfers(be).downloads, before.downloads); /* no copy back */
    assert_int_equal(wb_backend_sync(be), -1);
    assert_non_null(strstr(wb_last_error(), "the bad one")); /* the first flagged, in check order */
    assert_int_equal(wb_backend_sync(be), 0);                /* reported once */
    for (int i = 0; i < WB_MAX_FINITE_CHECKS; i++) assert_int_equal(wb_check_finite(g, wb_from_host(g, 1, &n, good), "x"), 0);
    assert_int_equal(wb_check_finite(g, wb_from_host(g, 1, &n, good), "one too many"), -1);
    assert_non_null(strstr(wb_last_error(), "before a sync"));
    assert_int_equal(wb_backend_sync(be), 0);
    wb_graph_free(g);
}

/* A NaN in a distillation on the backend stops it at that step, naming it. */
static void test_nan_in_distillation_names_the_step(void **state) {
    fixture *f = *state;
    wb_teacher *t = teacher_on(f, wb_backend_cpu());
    assert_non_null(t);
    wb_distill_config c = distill_config(f, "kl", 20, NULL);
    c.lr_gen = 1e30f;
    assert_null(wb_distill(t, f->ds, &c, NULL));
    assert_non_null(strstr(wb_last_error(), "distill step"));
    /* the backend is usable afterwards: nothing stale is left flagged */
    assert_int_equal(wb_backend_sync(wb_backend_cpu()), 0);
    c.lr_gen = 1e-4f;
    c.steps = 2;
    wb_student *s = wb_distill(t, f->ds, &c, NULL);
    assert_non_null(s);
    wb_student_free(s);
    free_distill_config(&c);
    wb_teacher_free(t);
}

static void test_backend_selection(void **state) {
    fixture *f = *state;
    assert_ptr_equal(wb_backend_select("cpu"), wb_backend_cpu());
    assert_null(wb_backend_select("tpu"));
    assert_non_null(strstr(wb_last_error(), "tpu"));
    assert_non_null(strstr(wb_last_error(), "cpu, cuda, cuda-emu, auto"));
    const wb_backend *cuda = wb_backend_cuda();
    if (!cuda) {
        assert_null(wb_backend_select("cuda"));
        assert_non_null(strstr(wb_last_error(), "cuda"));
        assert_ptr_equal(wb_backend_select("auto"), wb_backend_cpu());
    } else {
        assert_ptr_equal(wb_backend_select("auto"), cuda);
    }
    setenv("WB_BACKEND", "cpu", 1);
    assert_ptr_equal(wb_backend_select(NULL), wb_backend_cpu());
    setenv("WB_BACKEND", "nonsense", 1);
    assert_null(wb_backend_select(NULL));
    assert_non_null(strstr(wb_last_error(), "WB_BACKEND"));
    unsetenv("WB_BACKEND");
    assert_ptr_equal(wb_backend_select(""), wb_backend_cpu());
    /* a student must live where its teacher does */
    wb_teacher *t = teacher_on(f, wb_backend_cpu());
    assert_non_null(t);
    wb_distill_config c = distill_config(f, "kl", 2, counting_backend());
    assert_null(wb_distill(t, f->ds, &c, NULL));
    assert_non_null(strstr(wb_last_error(), "teacher lives on"));
    free_distill_config(&c);
    wb_teacher_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_through_the_given_backend),
        cmocka_unit_test(test_transfers_per_step),
        cmocka_unit_test(test_backend_draws_are_wb_rng_numbers),
        cmocka_unit_test(test_karras_sigma_closed_form),
        cmocka_unit_test(test_sticky_error_names_the_op),
        cmocka_unit_test(test_finite_checks_report_at_sync),
        cmocka_unit_test(test_nan_in_distillation_names_the_step),
        cmocka_unit_test(test_backend_selection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
