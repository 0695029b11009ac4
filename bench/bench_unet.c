/* bench/bench_unet.c — workbench side of the UNet benchmarks (bench/README.md):
 * the per-iteration cost, on the `unet` net plugin as the experiments' cpu
 * profile builds it (experiments/lib/common.lua: channels 16, multipliers
 * 1,2,2, attention at 16×16, one block per level, positional embedding, no
 * dropout; or the plugin's `tiny` or `cifar10-ddpmpp` preset), of
 *
 *   unet_forward      : one denoiser evaluation D(x; σ) without gradients
 *                       (wb_net_denoise, EDM preconditioning), batch = the
 *                       teacher batch, σ log-spaced over [0.002, 80] — what
 *                       sampling with the teacher costs per step;
 *   unet_teacher_dsm  : one EDM DSM teacher step (wb_teacher_train), batch 32,
 *                       lr 2e-3, EMA 0.995;
 *   unet_distill_kl   : one distillation iteration (wb_distill), batch 16,
 *                       divergence kl, ratio estimator gan-head on the
 *                       teacher's "enc32,enc16,enc8", fake/ratio updates 1,
 *                       lr 1e-4 / 1e-3 / 1e-3, EMA 0.95 (the divergence
 *                       sweep's settings);
 *   unet_distill_dijs : the same with the score-free dijs and the classifier
 *                       ratio estimator (an encoder-only UNet of the same
 *                       configuration, out 1).
 *
 * Shapes: x (B, 1, 32, 32) — Fashion-MNIST padded to 32×32 (random images
 * when the Debian dataset is missing; the cost does not depend on pixels),
 * σ (B), c_noise (B), gan-head features (B, 16|32|32, 32|16|8, 32|16|8).
 * --preset cifar10-ddpmpp is EDM's DDPM++ CIFAR-10 network (55.7 M
 * parameters): x (B, 3, 32, 32), random images (no CIFAR-10 here; the cost
 * does not depend on pixels), dropout 0 like every preset here.
 *
 * Backend: --backend cpu|cuda|cuda-emu (wb_backend_select; default cpu):
 * nets, params, graphs and optimisers all live there. Before each clock
 * stamp the wrapper waits for the backend (its sync entry), so a stamp
 * never lands before the device finished the previous step. Parameter
 * counts are taken on the cpu backend (they do not depend on it).
 *
 * Timing: the engine's own loops run W + N + 1 steps on a dataset wrapper
 * whose sample() stamps the clock; both loops draw exactly one batch of data
 * per step (teacher: x_0; distill: the ratio step's real batch), so
 * consecutive stamps are one full iteration apart. The first W intervals are
 * warm-up; ms_per_iter is the median of the next N. No run directory is
 * opened, so no checkpoint or sample grid is written. The distillations use
 * the teacher the teacher benchmark trained (W + N + 1 steps, its EMA).
 *
 * Threads: --threads T calls openblas_set_num_threads(T) (the engine is
 * single-threaded outside OpenBLAS); without it OPENBLAS_NUM_THREADS rules.
 * Memory: every line carries peak_rss_mb, the process's peak resident set
 * so far (getrusage): run one --bench per process to compare peaks.
 * Output: one JSON object per line on stdout, `--params-only` just the
 * parameter counts (denoiser, encoder-only classifier, gan head) that
 * bench/torch_unet.py must reproduce.
 *
 *   bench_unet [--bench forward|teacher|kl|dijs|distill|all] [--preset cpu|tiny|cifar10-ddpmpp]
 *              [--backend cpu|cuda|cuda-emu] [--threads T] [--warmup W] [--iters N]
 *              [--teacher-batch B] [--distill-batch B] [--data DIR] [--params-only]
 *
 * A separate executable, never a CTest test.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine/engine.h"
#include "engine/images.h"
#include "core/registry.h"
#include "wb/backend.h"
#include "cli/process_tuning.h"

/* OpenBLAS's own thread control (cblas.h of the pthreads build). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct bench_opts {
    int forward, teacher, kl, dijs, params_only, threads;
    const char *preset, *data, *backend_name;
    int64_t warmup, iters, teacher_batch, distill_batch;
    int channels; /* image channels: 1 (Fashion-MNIST), 3 for cifar10-ddpmpp */
    const wb_backend *be;
} bench_opts;

static void usage(FILE *f) {
    fprintf(f, "usage: bench_unet [--bench forward|teacher|kl|dijs|distill|all] [--preset cpu|tiny|cifar10-ddpmpp]\n"
               "                  [--backend cpu|cuda|cuda-emu] [--threads T] [--warmup W] [--iters N]\n"
               "                  [--teacher-batch B] [--distill-batch B] [--data DIR] [--params-only]\n");
}

/* ---- a dataset that stamps the clock at every draw ------------------------------- */
typedef struct timed_ds {
    wb_dataset base; /* first: the engine sees a wb_dataset */
    wb_dataset *inner;
    const wb_backend *be; /* waited for before each stamp */
    double *stamps;
    int64_t n, cap;
} timed_ds;

/* Wait for the work queued on be without consuming its status: the raw sync
 * entry (NULL on the synchronous cpu backend). A failure it reports is left
 * sticky, as wb_backend_sync would record it, for the engine to report. */
static void wait_backend(const wb_backend *be) {
    if (be && be->sync && be->sync(be) && be->status && !be->status->failed)
        wb_backend_fail(be, "sync: the device reported an error");
}

static int timed_sample(wb_dataset *ds, wb_rng *rng, int64_t n, float *out) {
    timed_ds *t = (timed_ds *)ds;
    wait_backend(t->be);
    if (t->n < t->cap) t->stamps[t->n++] = wb_now_seconds();
    return t->inner->sample(t->inner, rng, n, out);
}

static void timed_init(timed_ds *t, wb_dataset *inner, const wb_backend *be, int64_t cap) {
    memset(t, 0, sizeof *t);
    t->be = be;
    t->base = *inner;
    t->base.sample = timed_sample;
    t->base.destroy = NULL;
    t->base.gmm = NULL;
    t->inner = inner;
    t->stamps = calloc((size_t)cap, sizeof(double));
    t->cap = t->stamps ? cap : 0;
}

/* Random images in [-1, 1]: the stand-in when Fashion-MNIST is missing. */
static int random_sample(wb_dataset *ds, wb_rng *rng, int64_t n, float *out) {
    wb_rng_uniform(rng, out, n * ds->dim);
    for (int64_t k = 0; k < n * ds->dim; k++) out[k] = 2.0f * out[k] - 1.0f;
    return 0;
}

static void random_destroy(wb_dataset *ds) { free(ds); }

static wb_dataset *random_images(int channels, int res) {
    wb_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    snprintf(ds->name, sizeof ds->name, "random-images");
    ds->shape = (wb_net_shape){.channels = channels, .height = res, .width = res, .out_channels = channels};
    ds->dim = (int64_t)channels * res * res;
    ds->sample = random_sample;
    ds->destroy = random_destroy;
    return ds;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct step_times {
    double median, mean, min, max;
} step_times;

/* Median, mean, min and max of n times (sorts them in place). */
static void summarize(double *ms, int64_t n, step_times *st) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += ms[i];
    qsort(ms, (size_t)n, sizeof(double), cmp_double);
    st->median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
    st->mean = sum / (double)n;
    st->min = ms[0];
    st->max = ms[n - 1];
}

/* ms statistics of intervals W+1..W+N between the stamps (stamp i opens step i+1). */
static int interval_stats(const timed_ds *t, int64_t warmup, int64_t iters, step_times *st) {
    if (t->n != warmup + iters + 1) { /* the loop ran warmup + iters + 1 steps */
        fprintf(stderr, "bench_unet: %lld clock stamps for %lld steps: the loop no longer draws exactly one "
                        "data batch per step, so the stamps do not delimit steps\n",
                (long long)t->n, (long long)(warmup + iters + 1));
        return -1;
    }
    double *ms = malloc((size_t)iters * sizeof(double));
    if (!ms) return -1;
    for (int64_t i = 0; i < iters; i++) ms[i] = 1e3 * (t->stamps[warmup + i + 1] - t->stamps[warmup + i]);
    summarize(ms, iters, st);
    free(ms);
    return 0;
}

/* ---- plugins and configurations ------------------------------------------------------ */
static const wb_plugin_desc *find_plugin(wb_registry *reg, wb_plugin_kind kind, const char *name) {
    const wb_plugin_info *info = wb_registry_find(reg, kind, name);
    if (!info) {
        fprintf(stderr, "bench_unet: plugin '%s' (%s) not found; was the build's plugins/ folder built?\n", name,
                wb_kind_name(kind));
        for (int i = 0; i < wb_registry_error_count(reg); i++) fprintf(stderr, "  %s\n", wb_registry_error(reg, i));
        return NULL;
    }
    return info->desc;
}

/* The cpu profile's net, {"unet", channels = 16, multipliers = {1, 2, 2},
 * attn_resolutions = {16}}, or {"unet", preset = "tiny" | "cifar10-ddpmpp"}
 * (dropout stays 0); encoder_only for the classifier backbone. */
static wb_config_owned *unet_config(const wb_plugin_desc *unet, const char *preset, int encoder_only) {
    wb_config_owned *c = wb_config_new(unet);
    int rc = !c;
    if (!rc && strcmp(preset, "cpu") == 0) {
        const int64_t mult[3] = {1, 2, 2}, attn[1] = {16};
        rc = wb_config_set_number(c, "channels", 16) || wb_config_set_ints(c, "multipliers", mult, 3) ||
             wb_config_set_ints(c, "attn_resolutions", attn, 1);
    } else if (!rc) {
        rc = wb_config_set_string(c, "preset", preset);
    }
    if (!rc && encoder_only) rc = wb_config_set_number(c, "encoder_only", 1);
    if (rc) {
        fprintf(stderr, "bench_unet: unet config: %s\n", wb_last_error());
        wb_config_free(c);
        return NULL;
    }
    return c;
}

/* Parameters, element by element (wb_params_numel is the flat buffer's
 * length, which pads every tensor to a multiple of 16 floats). */
static int64_t true_numel(wb_params *ps) {
    int64_t n = 0;
    for (int i = 0; i < wb_params_count(ps); i++) n += wb_params_at(ps, i)->numel;
    return n;
}

typedef struct param_counts {
    int64_t unet, classifier, gan_head;
} param_counts;

/* Instantiate the denoiser, the classifier backbone and the gan head (through
 * the plugin's own create, on the denoiser's features) and count. */
static int count_params(const wb_netspec *den, const wb_netspec *clf, const wb_plugin_desc *gan_head,
                        const wb_net_shape *shape, param_counts *pc) {
    wb_rng rng;
    wb_rng_init(&rng, 0, 0);
    wb_net_shape cs = *shape;
    cs.out_channels = 1;
    wb_net *a = wb_net_new(den, shape, wb_backend_cpu(), &rng), *b = wb_net_new(clf, &cs, wb_backend_cpu(), &rng);
    wb_config_owned *hc = wb_config_new(gan_head);
    wb_params *hp = wb_params_new(wb_backend_cpu());
    int rc = -1;
    if (a && b && hc && hp && wb_config_set_string(hc, "feature", "enc32,enc16,enc8") == 0) {
        wb_ratio_env env = {.data = *shape, .teacher = a, .backend = wb_backend_cpu()};
        char err[512] = {0};
        void *self = gan_head->ratio->create(&hc->cfg, &env, hp, err, sizeof err);
        if (self) {
            pc->unet = true_numel(a->params);
            pc->classifier = true_numel(b->params);
            pc->gan_head = true_numel(hp);
            gan_head->ratio->destroy(self);
            rc = 0;
        } else {
            fprintf(stderr, "bench_unet: gan-head: %s\n", err);
        }
    }
    if (rc && !a) fprintf(stderr, "bench_unet: unet: %s\n", wb_last_error());
    wb_params_free(hp);
    wb_config_free(hc);
    wb_net_free(a);
    wb_net_free(b);
    return rc;
}

static void print_result(const char *bench, const bench_opts *o, int64_t batch, const step_times *st,
                         const char *data, int64_t params, int64_t ratio_params) {
    printf("{\"impl\": \"workbench\", \"bench\": \"%s\", \"backend\": \"%s\", \"preset\": \"%s\", "
           "\"threads\": \"%d\", \"blas_threads\": %d, \"batch\": %lld, \"ms_per_iter\": %.3f, \"mean_ms\": %.3f, \"min_ms\": %.3f, "
           "\"max_ms\": %.3f, \"iters\": %lld, \"warmup\": %lld, \"data\": \"%s\", \"params\": %lld",
           bench, wb_backend_name(o->be), o->preset, o->threads > 0 ? o->threads : openblas_get_num_threads(), openblas_get_num_threads(),
           (long long)batch, st->median, st->mean, st->min, st->max, (long long)o->iters, (long long)o->warmup, data,
           (long long)params);
    if (ratio_params >= 0)
        printf(", \"ratio_params\": %lld", (long long)ratio_params);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) printf(", \"peak_rss_mb\": %.1f", (double)ru.ru_maxrss / 1024.0);
    printf("}\n");
    fflush(stdout);
}

/* ---- the benchmarks ---------------------------------------------------------------- */
static int run_distill(const bench_opts *o, wb_teacher *teacher, wb_dataset *ds, const wb_plugin_desc *div,
                       const wb_plugin_desc *ratio, wb_config_owned *ratio_cfg, const wb_netspec *backbone,
                       step_times *st) {
    wb_distill_config dc;
    wb_distill_config_default(&dc);
    dc.divergence = div;
    dc.divergence_cfg = wb_config_new(div);
    dc.ratio = ratio;
    dc.ratio_cfg = ratio_cfg;
    if (backbone) dc.ratio_net = *backbone;
    dc.steps = o->warmup + o->iters + 1;
    dc.batch = o->distill_batch;
    dc.backend = o->be;
    dc.lr_gen = 1e-4f;
    dc.lr_fake = 1e-3f;
    dc.lr_ratio = 1e-3f;
    dc.ema_decay = 0.95f;
    dc.fake_updates = 1;
    dc.ratio_updates = 1;
    dc.time_weight = WB_TIME_AUTO;
    dc.log_every = 0;
    dc.eval_samples = 0;
    dc.quiet = 1;
    timed_ds tds;
    timed_init(&tds, ds, o->be, dc.steps + 8);
    int rc = -1;
    if (dc.divergence_cfg && tds.stamps) {
        wb_student *s = wb_distill(teacher, &tds.base, &dc, NULL);
        if (!s) fprintf(stderr, "bench_unet: distill %s: %s\n", div->name, wb_last_error());
        else rc = interval_stats(&tds, o->warmup, o->iters, st);
        wb_student_free(s);
    }
    free(tds.stamps);
    wb_config_free(dc.divergence_cfg);
    return rc;
}

/* W + N evaluations of D(x; σ) with gradients off, each in a reset graph;
 * statistics of the last N (wall clock around the call, after a backend
 * wait). */
static int run_forward(const bench_opts *o, const wb_netspec *den, int channels, step_times *st) {
    const int64_t b = o->teacher_batch, dim = (int64_t)channels * 32 * 32;
    wb_net_shape shape = {.channels = channels, .height = 32, .width = 32, .out_channels = channels};
    wb_rng rng;
    wb_rng_init(&rng, 7, 0);
    wb_net *net = wb_net_new(den, &shape, o->be, &rng);
    wb_graph *g = wb_graph_new(o->be);
    float *x = malloc((size_t)(b * dim) * sizeof(float)), *sigma = malloc((size_t)b * sizeof(float));
    double *ms = malloc((size_t)(o->warmup + o->iters) * sizeof(double));
    int rc = -1;
    if (!net || !g || !x || !sigma || !ms) {
        fprintf(stderr, "bench_unet: forward: %s\n", wb_last_error());
        goto done;
    }
    wb_graph_set_grad(g, 0);
    wb_rng_normal(&rng, x, b * dim);
    for (int64_t i = 0; i < b; i++) /* log-spaced over EDM's [0.002, 80] */
        sigma[i] = (float)(0.002 * pow(80.0 / 0.002, b > 1 ? (double)i / (double)(b - 1) : 0.5));
    for (int64_t i = 0; i < b * dim; i++) x[i] *= 1.0f + sigma[i / dim];
    const int64_t xs[4] = {b, channels, 32, 32};
    for (int64_t it = 0; it < o->warmup + o->iters; it++) {
        wb_graph_reset(g);
        wait_backend(o->be);
        double t0 = wb_now_seconds();
        wb_tensor *d = wb_net_denoise(net, g, wb_from_host(g, 4, xs, x), wb_from_host(g, 1, &b, sigma), NULL, NULL);
        if (!d) {
            fprintf(stderr, "bench_unet: forward: %s\n", wb_last_error());
            goto done;
        }
        wait_backend(o->be);
        ms[it] = 1e3 * (wb_now_seconds() - t0);
    }
    summarize(ms + o->warmup, o->iters, st);
    fprintf(stderr, "bench_unet: forward arena high-water %.1f MB, parameters %.1f MB\n",
            (double)wb_graph_arena_bytes(g) / 1048576.0, (double)wb_params_numel(net->params) * 4.0 / 1048576.0);
    rc = 0;
done:
    free(ms);
    free(x);
    free(sigma);
    wb_graph_free(g);
    wb_net_free(net);
    return rc;
}

/* Teacher, then the distillations with it; 0 on success. */
static int run_benches(const bench_opts *o, const wb_netspec *den, const wb_netspec *backbone,
                       const param_counts *pc, const wb_plugin_desc *kl, const wb_plugin_desc *dijs,
                       const wb_plugin_desc *gan_head, const wb_plugin_desc *clf) {
    int rc = 0;
    /* Fashion-MNIST padded to 32×32, as the cpu profile (random images without
     * it); random 3-channel images for cifar10-ddpmpp. */
    wb_dataset *ds = NULL;
    const char *data = "fashion-mnist";
    if (o->channels == 1) {
        wb_image_options opt;
        wb_image_options_default(&opt);
        opt.pad_to = 32;
        ds = wb_images_open("fashion-mnist", o->data, &opt);
        if (!ds) fprintf(stderr, "bench_unet: %s: random images instead\n", wb_last_error());
    }
    if (!ds) {
        ds = random_images(o->channels, 32);
        data = "synthetic";
    }
    if (!ds) return 1;

    step_times st;
    if (o->forward) {
        if (run_forward(o, den, o->channels, &st)) rc = 1;
        else print_result("unet_forward", o, o->teacher_batch, &st, "synthetic", pc->unet, -1);
    }
    if (rc || !(o->teacher || o->kl || o->dijs)) {
        wb_dataset_free(ds);
        return rc;
    }

    /* The teacher: benchmarked, then the teacher of both distillations. */
    wb_teacher_config tc;
    wb_teacher_config_default(&tc);
    tc.steps = o->warmup + o->iters + 1;
    tc.batch = o->teacher_batch;
    tc.lr = 2e-3f;
    tc.ema_decay = 0.995f;
    tc.log_every = 0;
    tc.quiet = 1;
    tc.backend = o->be;
    timed_ds tds;
    timed_init(&tds, ds, o->be, tc.steps + 8);
    wb_teacher *teacher = tds.stamps ? wb_teacher_train(&tds.base, den, &tc, NULL) : NULL;
    if (!teacher) {
        fprintf(stderr, "bench_unet: teacher: %s\n", wb_last_error());
        rc = 1;
    } else if (o->teacher) {
        if (interval_stats(&tds, o->warmup, o->iters, &st)) rc = 1;
        else print_result("unet_teacher_dsm", o, o->teacher_batch, &st, data, pc->unet, -1);
    }
    free(tds.stamps);

    if (!rc && o->kl) {
        wb_config_owned *hc = wb_config_new(gan_head);
        if (!hc || wb_config_set_string(hc, "features", "teacher") ||
            wb_config_set_string(hc, "feature", "enc32,enc16,enc8")) {
            fprintf(stderr, "bench_unet: gan-head config: %s\n", wb_last_error());
            rc = 1;
        } else if (run_distill(o, teacher, ds, kl, gan_head, hc, NULL, &st)) {
            rc = 1;
        } else {
            print_result("unet_distill_kl", o, o->distill_batch, &st, data, pc->unet, pc->gan_head);
        }
        wb_config_free(hc);
    }
    if (!rc && o->dijs) {
        wb_config_owned *cc = wb_config_new(clf);
        if (!cc) {
            rc = 1;
        } else if (run_distill(o, teacher, ds, dijs, clf, cc, backbone, &st)) {
            rc = 1;
        } else {
            print_result("unet_distill_dijs", o, o->distill_batch, &st, data, pc->unet, pc->classifier);
        }
        wb_config_free(cc);
    }
    wb_teacher_free(teacher);
    wb_dataset_free(ds);
    return rc;
}

static int parse_bench(bench_opts *o, const char *v) {
    int all = strcmp(v, "all") == 0, distill = strcmp(v, "distill") == 0;
    o->forward = all || strcmp(v, "forward") == 0;
    o->teacher = all || strcmp(v, "teacher") == 0;
    o->kl = all || distill || strcmp(v, "kl") == 0;
    o->dijs = all || distill || strcmp(v, "dijs") == 0;
    return o->forward || o->teacher || o->kl || o->dijs ? 0 : -1;
}

int main(int argc, char **argv) {
    wb_process_tuning(argv); /* OMP_WAIT_POLICY, OPENBLAS_CORETYPE: as the workbench runs */
    bench_opts o = {.forward = 1, .teacher = 1, .kl = 1, .dijs = 1, .preset = "cpu", .data = FASHION_MNIST_DIR,
                    .warmup = 3, .iters = 10, .teacher_batch = 32, .distill_batch = 16,
                    .backend_name = "cpu", .channels = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--params-only") == 0) {
            o.params_only = 1;
            continue;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--bench") == 0) {
            if (parse_bench(&o, v)) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(a, "--preset") == 0) {
            o.preset = v;
        } else if (strcmp(a, "--backend") == 0) {
            o.backend_name = v;
        } else if (strcmp(a, "--threads") == 0) {
            o.threads = atoi(v);
        } else if (strcmp(a, "--warmup") == 0) {
            o.warmup = atoll(v);
        } else if (strcmp(a, "--iters") == 0) {
            o.iters = atoll(v);
        } else if (strcmp(a, "--teacher-batch") == 0) {
            o.teacher_batch = atoll(v);
        } else if (strcmp(a, "--distill-batch") == 0) {
            o.distill_batch = atoll(v);
        } else if (strcmp(a, "--data") == 0) {
            o.data = v;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(o.preset, "cifar10-ddpmpp") == 0) {
        o.channels = 3;
    } else if (strcmp(o.preset, "cpu") != 0 && strcmp(o.preset, "tiny") != 0) {
        fprintf(stderr, "bench_unet: --preset is cpu, tiny or cifar10-ddpmpp\n");
        return 2;
    }
    if (o.warmup < 0 || o.iters < 1 || o.teacher_batch < 1 || o.distill_batch < 1 || o.distill_batch > 2048 ||
        (o.threads != 0 && o.threads < 1)) {
        fprintf(stderr, "bench_unet: need warmup >= 0, iters >= 1, batches >= 1 (distill <= 2048), threads >= 1\n");
        return 2;
    }
    if (o.threads > 0) openblas_set_num_threads(o.threads);
    if (!o.params_only && !(o.be = wb_backend_select(o.backend_name))) {
        fprintf(stderr, "bench_unet: --backend %s: %s\n", o.backend_name, wb_last_error());
        return 1;
    }

    wb_registry *reg = wb_registry_new();
    if (!reg) return 1;
    wb_registry_discover(reg);
    const wb_plugin_desc *unet = find_plugin(reg, WB_KIND_NET, "unet");
    const wb_plugin_desc *kl = find_plugin(reg, WB_KIND_DIVERGENCE, "kl");
    const wb_plugin_desc *dijs = find_plugin(reg, WB_KIND_DIVERGENCE, "dijs");
    const wb_plugin_desc *gan_head = find_plugin(reg, WB_KIND_RATIO, "gan-head");
    const wb_plugin_desc *clf = find_plugin(reg, WB_KIND_RATIO, "classifier");
    if (!unet || !kl || !dijs || !gan_head || !clf) {
        wb_registry_free(reg);
        return 1;
    }
    wb_netspec den = {unet, unet_config(unet, o.preset, 0)}, backbone = {unet, unet_config(unet, o.preset, 1)};
    wb_net_shape shape = {.channels = o.channels, .height = 32, .width = 32, .out_channels = o.channels};
    param_counts pc;
    if (!den.cfg || !backbone.cfg || count_params(&den, &backbone, gan_head, &shape, &pc)) {
        wb_config_free(den.cfg);
        wb_config_free(backbone.cfg);
        wb_registry_free(reg);
        return 1;
    }
    printf("{\"impl\": \"workbench\", \"bench\": \"params\", \"preset\": \"%s\", \"channels\": %d, "
           "\"unet\": %lld, \"classifier\": %lld, \"gan_head\": %lld}\n",
           o.preset, o.channels, (long long)pc.unet, (long long)pc.classifier, (long long)pc.gan_head);
    fflush(stdout);
    int rc = o.params_only ? 0 : run_benches(&o, &den, &backbone, &pc, kl, dijs, gan_head, clf);
    wb_config_free(den.cfg);
    wb_config_free(backbone.cfg);
    wb_registry_free(reg);
    return rc;
}
