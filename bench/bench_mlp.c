/* bench/bench_mlp.c — workbench side of the MLP benchmarks (bench/README.md):
 * the per-iteration cost of
 *   teacher_dsm : one EDM DSM teacher step (sample, noise, denoise with EDM
 *                 preconditioning, weighted MSE, backward, Adam, EMA), and
 *   distill_js  : one full distillation iteration (generator update, fake-score
 *                 DSM update, classifier BCE update on 2B samples, EMA) with
 *                 divergence `js` and ratio estimator `classifier` (mlp backbone),
 * both on the `mlp` net (widths 128,128,128, emb_dim 32), 2-D data
 * (gmm2d ring8-imbalanced, scale 1, std 0.05), batch 256 by default.
 *
 * It runs the engine's own loops (wb_teacher_train, wb_distill) for N1 and N2
 * steps and reports (t(N2) − t(N1)) / (N2 − N1), so setup, checkpoint and plot
 * costs cancel; each length is run `repeats` times and the fastest kept.
 * Thread count: whatever OPENBLAS_NUM_THREADS says (the engine itself is
 * single-threaded outside BLAS). Output: one JSON object per line on stdout.
 *
 * Backend: --backend cpu|cuda|cuda-emu (wb_backend_select; default cpu). The
 * teacher, the students, their params, graphs and optimisers all live there;
 * the clock is read only after wb_backend_sync, so queued device work is
 * inside the interval it belongs to.
 *
 *   bench_mlp [--bench teacher|distill|all] [--batch B] [--repeats R]
 *             [--teacher-steps N1,N2] [--distill-steps N1,N2] [--backend NAME]
 *
 * A separate executable, never a CTest test.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "core/registry.h"
#include "wb/backend.h"
#include "cli/process_tuning.h"

typedef struct bench_opts {
    int teacher, distill;
    int64_t batch;
    int repeats;
    int64_t t_n1, t_n2, d_n1, d_n2;
    const char *backend_name;
    const wb_backend *be;
} bench_opts;

static void usage(FILE *f) {
    fprintf(f, "usage: bench_mlp [--bench teacher|distill|all] [--batch B] [--repeats R]\n"
               "                 [--teacher-steps N1,N2] [--distill-steps N1,N2]\n"
               "                 [--backend cpu|cuda|cuda-emu]\n");
}

static int parse_pair(const char *s, int64_t *a, int64_t *b) {
    long long x, y;
    if (sscanf(s, "%lld,%lld", &x, &y) != 2 || x < 1 || y <= x) return -1;
    *a = x;
    *b = y;
    return 0;
}

/* Remove the files of a flat temporary run directory, then the directory. */
static void remove_run_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[2048];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* A quiet run in a fresh temporary directory (no progress line). */
static int open_quiet_run(wb_run *run, char *dir, size_t n) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/wb_bench_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("bench_mlp: mkdtemp");
        return -1;
    }
    if (wb_run_open(run, dir)) {
        fprintf(stderr, "bench_mlp: %s\n", wb_last_error());
        remove_run_dir(dir);
        return -1;
    }
    run->quiet = 1;
    return 0;
}

static void close_quiet_run(wb_run *run, const char *dir) {
    wb_run_close(run);
    remove_run_dir(dir);
}

/* Wait for everything queued on be (a no-op on the synchronous cpu backend);
 * -1 with wb_last_error() when the device reported a failure. */
static int sync_backend(const wb_backend *be) {
    if (wb_backend_sync(be)) {
        fprintf(stderr, "bench_mlp: %s\n", wb_last_error());
        return -1;
    }
    return 0;
}

static double time_teacher(wb_dataset *ds, const wb_netspec *spec, const wb_backend *be, int64_t batch,
                           int64_t steps) {
    wb_teacher_config tc;
    wb_teacher_config_default(&tc);
    tc.steps = steps;
    tc.batch = batch;
    tc.log_every = 0;
    tc.backend = be;
    char dir[1024];
    wb_run run;
    if (open_quiet_run(&run, dir, sizeof dir)) return -1;
    if (sync_backend(be)) {
        close_quiet_run(&run, dir);
        return -1;
    }
    double t0 = wb_now_seconds();
    wb_teacher *t = wb_teacher_train(ds, spec, &tc, &run);
    int sync_rc = t ? sync_backend(be) : 0;
    double dt = wb_now_seconds() - t0;
    close_quiet_run(&run, dir);
    if (!t) {
        fprintf(stderr, "bench_mlp: teacher: %s\n", wb_last_error());
        return -1;
    }
    wb_teacher_free(t);
    return sync_rc ? -1 : dt;
}

static double time_distill(wb_teacher *teacher, wb_dataset *ds, wb_distill_config *dc, int64_t steps) {
    dc->steps = steps;
    char dir[1024];
    wb_run run;
    if (open_quiet_run(&run, dir, sizeof dir)) return -1;
    if (sync_backend(teacher->be)) {
        close_quiet_run(&run, dir);
        return -1;
    }
    double t0 = wb_now_seconds();
    wb_student *s = wb_distill(teacher, ds, dc, &run);
    int sync_rc = s ? sync_backend(teacher->be) : 0;
    double dt = wb_now_seconds() - t0;
    close_quiet_run(&run, dir);
    if (!s) {
        fprintf(stderr, "bench_mlp: distill: %s\n", wb_last_error());
        return -1;
    }
    wb_student_free(s);
    return sync_rc ? -1 : dt;
}

/* Fastest of `repeats` runs of each length; per-iteration ms from the
 * difference. fn(ctx, steps) returns seconds or < 0 on failure. */
typedef double (*timed_fn)(void *ctx, int64_t steps);

static double per_iter_ms(timed_fn fn, void *ctx, int64_t n1, int64_t n2, int repeats, double *setup_ms) {
    double best1 = 1e30, best2 = 1e30;
    for (int r = 0; r < repeats; r++) {
        double a = fn(ctx, n1), b = fn(ctx, n2);
        if (a < 0 || b < 0) return -1;
        if (a < best1) best1 = a;
        if (b < best2) best2 = b;
    }
    double ms = 1e3 * (best2 - best1) / (double)(n2 - n1);
    *setup_ms = 1e3 * best1 - ms * (double)n1;
    return ms;
}

typedef struct teacher_ctx {
    wb_dataset *ds;
    const wb_netspec *spec;
    const wb_backend *be;
    int64_t batch;
} teacher_ctx;

static double teacher_fn(void *ctx, int64_t steps) {
    teacher_ctx *c = ctx;
    return time_teacher(c->ds, c->spec, c->be, c->batch, steps);
}

typedef struct distill_ctx {
    wb_teacher *teacher;
    wb_dataset *ds;
    wb_distill_config *dc;
} distill_ctx;

static double distill_fn(void *ctx, int64_t steps) {
    distill_ctx *c = ctx;
    return time_distill(c->teacher, c->ds, c->dc, steps);
}

static const char *threads_label(void) {
    const char *t = getenv("OPENBLAS_NUM_THREADS");
    return t && *t ? t : "default";
}

static void print_result(const char *bench, const bench_opts *o, double ms, double setup_ms, int64_t n1, int64_t n2) {
    printf("{\"impl\": \"workbench\", \"bench\": \"%s\", \"backend\": \"%s\", \"threads\": \"%s\", "
           "\"batch\": %lld, \"ms_per_iter\": %.4f, \"setup_ms\": %.1f, \"n1\": %lld, \"n2\": %lld, "
           "\"repeats\": %d}\n",
           bench, wb_backend_name(o->be), threads_label(), (long long)o->batch, ms, setup_ms, (long long)n1, (long long)n2, o->repeats);
    fflush(stdout);
}

static const wb_plugin_desc *find_plugin(wb_registry *reg, wb_plugin_kind kind, const char *name) {
    const wb_plugin_info *info = wb_registry_find(reg, kind, name);
    if (!info) {
        fprintf(stderr, "bench_mlp: plugin '%s' (%s) not found; was the build's plugins/ folder built?\n", name,
                wb_kind_name(kind));
        for (int i = 0; i < wb_registry_error_count(reg); i++) fprintf(stderr, "  %s\n", wb_registry_error(reg, i));
        return NULL;
    }
    return info->desc;
}

/* mlp with widths 128,128,128 and emb_dim 32, set explicitly (they are also
 * the plugin's defaults). */
static wb_config_owned *mlp_config(const wb_plugin_desc *mlp) {
    wb_config_owned *c = wb_config_new(mlp);
    const int64_t widths[3] = {128, 128, 128};
    if (!c || wb_config_set_ints(c, "widths", widths, 3) || wb_config_set_number(c, "emb_dim", 32)) {
        fprintf(stderr, "bench_mlp: mlp config: %s\n", wb_last_error());
        wb_config_free(c);
        return NULL;
    }
    return c;
}

int main(int argc, char **argv) {
    wb_process_tuning(argv); /* OMP_WAIT_POLICY, OPENBLAS_CORETYPE: as the workbench runs */
    bench_opts o = {.teacher = 1, .distill = 1, .batch = 256, .repeats = 3,
                    .t_n1 = 200, .t_n2 = 1200, .d_n1 = 50, .d_n2 = 350, .backend_name = "cpu"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--bench") == 0) {
            o.teacher = strcmp(v, "teacher") == 0 || strcmp(v, "all") == 0;
            o.distill = strcmp(v, "distill") == 0 || strcmp(v, "all") == 0;
            if (!o.teacher && !o.distill) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(a, "--batch") == 0) {
            o.batch = atoll(v);
        } else if (strcmp(a, "--backend") == 0) {
            o.backend_name = v;
        } else if (strcmp(a, "--repeats") == 0) {
            o.repeats = atoi(v);
        } else if (strcmp(a, "--teacher-steps") == 0) {
            if (parse_pair(v, &o.t_n1, &o.t_n2)) {
                fprintf(stderr, "bench_mlp: --teacher-steps wants N1,N2 with 1 <= N1 < N2\n");
                return 2;
            }
        } else if (strcmp(a, "--distill-steps") == 0) {
            if (parse_pair(v, &o.d_n1, &o.d_n2)) {
                fprintf(stderr, "bench_mlp: --distill-steps wants N1,N2 with 1 <= N1 < N2\n");
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.batch < 1 || o.batch > 4096 || o.repeats < 1) {
        fprintf(stderr, "bench_mlp: need 1 <= batch <= 4096 and repeats >= 1\n");
        return 2;
    }
    o.be = wb_backend_select(o.backend_name);
    if (!o.be) {
        fprintf(stderr, "bench_mlp: --backend %s: %s\n", o.backend_name, wb_last_error());
        return 1;
    }

    wb_registry *reg = wb_registry_new();
    if (!reg) return 1;
    wb_registry_discover(reg);
    const wb_plugin_desc *mlp = find_plugin(reg, WB_KIND_NET, "mlp");
    const wb_plugin_desc *js = find_plugin(reg, WB_KIND_DIVERGENCE, "js");
    const wb_plugin_desc *clf = find_plugin(reg, WB_KIND_RATIO, "classifier");
    wb_dataset *ds = wb_gmm2d_new("ring8-imbalanced", 1.0, 0.05);
    if (!mlp || !js || !clf || !ds) {
        if (!ds) fprintf(stderr, "bench_mlp: dataset: %s\n", wb_last_error());
        wb_dataset_free(ds);
        wb_registry_free(reg);
        return 1;
    }
    wb_netspec spec = {mlp, mlp_config(mlp)};
    int rc = spec.cfg ? 0 : 1;

    if (!rc && o.teacher) {
        teacher_ctx tc = {ds, &spec, o.be, o.batch};
        double setup, ms = per_iter_ms(teacher_fn, &tc, o.t_n1, o.t_n2, o.repeats, &setup);
        if (ms < 0) rc = 1;
        else print_result("teacher_dsm", &o, ms, setup, o.t_n1, o.t_n2);
    }

    if (!rc && o.distill) {
        /* A briefly trained teacher, so the distillation sees realistic values. */
        wb_teacher_config tcfg;
        wb_teacher_config_default(&tcfg);
        tcfg.steps = 300;
        tcfg.batch = o.batch;
        tcfg.log_every = 0;
        tcfg.backend = o.be;
        char dir[1024];
        wb_run run;
        wb_teacher *teacher = NULL;
        if (open_quiet_run(&run, dir, sizeof dir) == 0) {
            teacher = wb_teacher_train(ds, &spec, &tcfg, &run);
            close_quiet_run(&run, dir);
            if (!teacher) fprintf(stderr, "bench_mlp: teacher for distillation: %s\n", wb_last_error());
        }
        wb_distill_config dc;
        wb_distill_config_default(&dc);
        dc.divergence = js;
        dc.divergence_cfg = wb_config_new(js);
        dc.ratio = clf;
        dc.ratio_cfg = wb_config_new(clf);
        dc.ratio_net.desc = mlp;
        dc.ratio_net.cfg = mlp_config(mlp);
        dc.batch = o.batch;
        dc.backend = o.be;
        dc.fake_updates = 1;
        dc.ratio_updates = 1;
        dc.log_every = 0;
        dc.eval_samples = 0;
        if (!teacher || !dc.divergence_cfg || !dc.ratio_cfg || !dc.ratio_net.cfg) {
            rc = 1;
        } else {
            distill_ctx ctx = {teacher, ds, &dc};
            double setup, ms = per_iter_ms(distill_fn, &ctx, o.d_n1, o.d_n2, o.repeats, &setup);
            if (ms < 0) rc = 1;
            else print_result("distill_js", &o, ms, setup, o.d_n1, o.d_n2);
        }
        wb_config_free(dc.divergence_cfg);
        wb_config_free(dc.ratio_cfg);
        wb_config_free(dc.ratio_net.cfg);
        wb_teacher_free(teacher);
    }

    wb_config_free(spec.cfg);
    wb_dataset_free(ds);
    wb_registry_free(reg);
    return rc;
}
