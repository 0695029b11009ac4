/* host/engine/memory.c — the memory guard (engine/memory.h): what this
 * process can still allocate, and the estimates of the calls that allocate
 * by the batch or by the sample count, checked before they allocate.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engine/memory.h"
#include "wb/backend.h"

/* ---- sizes ------------------------------------------------------------------------ */
int wb_parse_bytes(const char *text, double *bytes) {
    if (!text) return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || !(v >= 0) || !isfinite(v)) return -1;
    while (*end == ' ') end++;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024.0; break;
    case 'M': mul = 1024.0 * 1024; break;
    case 'G': mul = 1024.0 * 1024 * 1024; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
    default: break;
    }
    if (mul > 1) {
        end++;
        if (end[0] == 'i' && (end[1] == 'B' || end[1] == 'b')) end += 2;
        else if (end[0] == 'B' || end[0] == 'b') end++;
    } else if (*end == 'B' || *end == 'b') {
        end++;
    }
    if (*end) return -1;
    *bytes = v * mul;
    return 0;
}

void wb_format_bytes(double bytes, char *buf, size_t len) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 6) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(buf, len, "%.0f B", bytes);
    else snprintf(buf, len, bytes < 100 ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

/* 805962800 as "805,962,800". */
static const char *grouped(double v, char *buf, size_t len) {
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t n = strlen(digits), at = 0;
    for (size_t i = 0; i < n && at + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[at++] = ',';
        buf[at++] = digits[i];
    }
    buf[at] = 0;
    return buf;
}

/* ---- what is available ---------------------------------------------------------------- */
/* A "key:  value kB" line of a /proc file, in bytes; -1 when absent. */
static double proc_kb(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    double v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = strtod(line + n + 1, NULL) * 1024.0;
            break;
        }
    fclose(f);
    return v;
}

/* The first number in a file ("max": -1, as for a missing file). */
static double file_number(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[64] = "";
    double v = -1;
    if (fgets(buf, sizeof buf, f) && isdigit((unsigned char)buf[0])) v = strtod(buf, NULL);
    fclose(f);
    return v;
}

/* "key value" in a cgroup's memory.stat, in bytes; 0 when absent. */
static double stat_field(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    double v = 0;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
    fclose(f);
    return v;
}

static void tighter(double *best, char *source, size_t len, double v, const char *what) {
    if (v >= 0 && (*best < 0 || v < *best)) {
        *best = v;
        snprintf(source, len, "%s", what);
    }
}

/* The memory cgroup of this process and its ancestors (v2: memory.max −
 * memory.current; v1: memory.limit_in_bytes − memory.usage_in_bytes), file
 * cache that can be reclaimed counted as free; limits of 2^60 and more are
 * "none". */
static void cgroup_limits(double *best, char *source, size_t len) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        int v2 = strncmp(line, "0::", 3) == 0, v1 = !v2 && strstr(a, "memory") && strstr(a, "memory") < b;
        if (!v1 && !v2) continue;
        char dir[1100];
        snprintf(dir, sizeof dir, "%s%s", v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory", b + 1);
        for (;;) { /* this cgroup, then its parents up to the mount */
            char p1[1200], p2[1200], p3[1200];
            snprintf(p1, sizeof p1, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
            snprintf(p2, sizeof p2, "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
            snprintf(p3, sizeof p3, "%s/memory.stat", dir);
            double limit = file_number(p1), used = file_number(p2);
            if (limit >= 0 && limit < 1152921504606846976.0 && used >= 0) {
                double cache = stat_field(p3, v2 ? "inactive_file" : "total_inactive_file");
                double free_bytes = limit - used + cache;
                tighter(best, source, len, free_bytes < 0 ? 0 : free_bytes,
                        v2 ? "the cgroup's memory.max" : "the cgroup's memory.limit_in_bytes");
            }
            char *slash = strrchr(dir, '/');
            size_t root = strlen(v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory");
            if (!slash || (size_t)(slash - dir) < root) break;
            *slash = 0;
        }
    }
    fclose(f);
}

int wb_memory_available(double *bytes, char *source, size_t len) {
    const char *cap = getenv("WB_MEMORY_LIMIT");
    if (cap && *cap) {
        if (strcmp(cap, "off") == 0 || strcmp(cap, "0") == 0) return 0;
        if (wb_parse_bytes(cap, bytes)) {
            wb_set_error("WB_MEMORY_LIMIT=%s: want a size (bytes, or with K, M, G, T: 2G, 512M) or off", cap);
            return -1;
        }
        snprintf(source, len, "WB_MEMORY_LIMIT=%s", cap);
        return 1;
    }
    double best = -1;
    double avail = proc_kb("/proc/meminfo", "MemAvailable");
    if (avail >= 0) {
        tighter(&best, source, len, avail, "MemAvailable");
    } else {
        long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0) tighter(&best, source, len, (double)pages * (double)page, "free physical memory");
    }
    /* address-space and data limits, less what this process already maps */
    static const struct { int resource; const char *name, *status_key; } limits[] = {
        {RLIMIT_AS, "RLIMIT_AS (ulimit -v)", "VmSize"},
        {RLIMIT_DATA, "RLIMIT_DATA (ulimit -d)", "VmData"},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        struct rlimit rl;
        if (getrlimit(limits[i].resource, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
            double used = proc_kb("/proc/self/status", limits[i].status_key);
            double left = (double)rl.rlim_cur - (used > 0 ? used : 0);
            tighter(&best, source, len, left < 0 ? 0 : left, limits[i].name);
        }
    }
    cgroup_limits(&best, source, len);
    if (best < 0) return 0;
    *bytes = best;
    return 1;
}

/* ---- estimates ---------------------------------------------------------------------------- */
/* One part of an estimate, for the message. */
typedef struct mem_part {
    double bytes;
    char what[200];
} mem_part;

typedef struct mem_est {
    mem_part part[6];
    int n;
} mem_est;

static void add_part(mem_est *e, double bytes, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_part(mem_est *e, double bytes, const char *fmt, ...) {
    if (e->n >= (int)(sizeof e->part / sizeof e->part[0]) || !(bytes > 0)) return;
    mem_part *p = &e->part[e->n++];
    p->bytes = bytes;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->what, sizeof p->what, fmt, ap);
    va_end(ap);
}

static double total(const mem_est *e) {
    double t = 0;
    for (int i = 0; i < e->n; i++) t += e->part[i].bytes;
    return t;
}

/* 0 when e fits (or the guard is off), else -1 with the message:
 * "needs ~X (A for ..., B for ...), Y available (source; ...)". */
static int verdict(const mem_est *e) {
    double avail;
    char source[128] = "";
    int known = wb_memory_available(&avail, source, sizeof source);
    if (known < 0) return -1;
    double need = total(e);
    if (known == 0 || need <= avail) return 0;
    char msg[1400], num[32];
    wb_format_bytes(need, num, sizeof num);
    int at = snprintf(msg, sizeof msg, "needs ~%s", num);
    if (e->n == 1) {
        at += snprintf(msg + at, sizeof msg - (size_t)at, " for %s", e->part[0].what);
    } else {
        for (int i = 0; i < e->n && at < (int)sizeof msg; i++) {
            wb_format_bytes(e->part[i].bytes, num, sizeof num);
            at += snprintf(msg + at, sizeof msg - (size_t)at, "%s%s for %s", i ? "; " : " (", num, e->part[i].what);
        }
        if (at < (int)sizeof msg) at += snprintf(msg + at, sizeof msg - (size_t)at, ")");
    }
    wb_format_bytes(avail, num, sizeof num);
    int from_env = strncmp(source, "WB_MEMORY_LIMIT", 15) == 0;
    if (at < (int)sizeof msg)
        snprintf(msg + at, sizeof msg - (size_t)at, ", %s available (%s%s)", num, source,
                 from_env ? "" : "; WB_MEMORY_LIMIT=SIZE or off overrides this check");
    wb_set_error("%s", msg);
    return -1;
}

/* Parameters `spec` declares for data of geometry `shape`, without
 * allocating them (the plugin's create, no finalize); -1 when the plugin
 * refuses (the real call then reports why). */
static double declared_params(const wb_netspec *spec, const wb_net_shape *shape, const wb_backend *be) {
    if (!spec || !spec->desc || spec->desc->kind != WB_KIND_NET || !spec->cfg) return -1;
    wb_params *ps = wb_params_new(be);
    if (!ps) return -1;
    char err[256] = "";
    void *self = spec->desc->net->create(&spec->cfg->cfg, shape, ps, err, sizeof err);
    double n = self ? (double)wb_params_numel(ps) : -1;
    if (self) spec->desc->net->destroy(self);
    wb_params_free(ps);
    wb_clear_error();
    return n;
}

/* Activation bytes of a sequence of calls of `net` in one graph: n_fwd
 * no-grad forwards, then, when train, a forward + backward — the denoiser
 * D, or the raw network F for a backbone (raw: its output is not shaped
 * like the data). As a line in the batch, fixed + per·B, from dry runs at
 * batches 1 and 2: the graph arena's high-water mark (what a forward keeps
 * for later and what it frees inside, as the nets' arena scopes do, are
 * then both as in the real step). -1 when a dry run fails (the real call
 * then reports why). */
typedef struct act_line {
    double fixed, per;
} act_line;

static int measured_line(wb_net *net, int n_fwd, int train, int raw, act_line *out) {
    double at[2];
    for (int k = 0; k < 2; k++) {
        int64_t n = k + 1, shape[4];
        wb_graph *g = wb_graph_new(wb_params_backend(net->params));
        if (!g) return -1;
        int ndim = wb_batch_shape(&net->shape, n, shape);
        int64_t ls[2] = {n, net->shape.label_dim};
        int ok = 1;
        for (int i = 0; i < n_fwd + (train ? 1 : 0) && ok; i++) {
            int grad = i == n_fwd; /* the last one, with train */
            wb_graph_set_grad(g, grad);
            wb_tensor *x = wb_zeros(g, ndim, shape), *sigma = wb_full(g, 1, &n, 1.0f);
            wb_tensor *labels = net->shape.label_dim > 0 ? wb_zeros(g, 2, ls) : NULL;
            wb_tensor *d = !x || !sigma ? NULL
                           : raw        ? wb_net_forward(net, g, x, sigma, labels, NULL)
                                        : wb_net_denoise(net, g, x, sigma, labels, NULL);
            ok = d != NULL;
            if (ok && grad) {
                wb_tensor *loss = wb_mean(g, wb_square(g, d));
                ok = loss && wb_backward(g, loss, NULL) == 0;
            }
        }
        at[k] = (double)wb_graph_arena_bytes(g);
        wb_graph_free(g);
        if (!ok) {
            wb_clear_error();
            return -1;
        }
    }
    out->per = at[1] - at[0] > 0 ? at[1] - at[0] : 0;
    out->fixed = at[0] - out->per > 0 ? at[0] - out->per : 0;
    return 0;
}

static double at_batch(const act_line *l, int64_t b) { return l->fixed + l->per * (double)b; }

/* Bytes of one no-grad forward of an existing net at batch b; -1: unknown. */
static double measured_forward(wb_net *net, int64_t b) {
    act_line l;
    return measured_line(net, 1, 0, 0, &l) ? -1 : at_batch(&l, b);
}

/* The same for a net not built yet: built from spec on be (weights
 * allocated for the dry run, freed after) and measured (measured_line):
 * n_fwd forwards and a training pass into *out, and when also is given a
 * training pass alone into it. */
static int measured_spec(const wb_netspec *spec, const wb_net_shape *shape, const wb_backend *be, int n_fwd, int raw,
                         act_line *out, act_line *also) {
    wb_rng rng;
    wb_rng_init(&rng, 0, 0);
    wb_net *net = wb_net_new(spec, shape, be, &rng);
    if (!net) {
        wb_clear_error();
        return -1;
    }
    int rc = measured_line(net, n_fwd, 1, raw, out);
    if (rc == 0 && also) rc = measured_line(net, 0, 1, raw, also);
    wb_net_free(net);
    return rc;
}

static const char *plural(double n) { return n == 1 ? "" : "s"; }

int wb_memory_check_samples(int64_t n, int64_t dim) {
    mem_est e = {.n = 0};
    add_part(&e, (double)n * (double)dim * sizeof(float), "the output alone (%lld × %lld floats)", (long long)n,
             (long long)dim);
    return verdict(&e);
}

/* The samplers work in chunks of this many rows (teacher.c, distill.c). */
#define SAMPLE_CHUNK 4096

/* The output alone first: a call whose result cannot fit is refused
 * before any dry run. Leaves e holding that part, renamed "the output". */
static int output_fits(mem_est *e, int64_t n, int64_t dim) {
    add_part(e, (double)n * (double)dim * sizeof(float), "the output alone (%lld × %lld floats)", (long long)n,
             (long long)dim);
    if (verdict(e)) return 0;
    if (e->n) snprintf(e->part[0].what, sizeof e->part[0].what, "the output (%lld × %lld floats)", (long long)n, (long long)dim);
    return 1;
}

int wb_memory_check_teacher_sample(wb_teacher *t, int64_t n) {
    int64_t dim = (int64_t)t->shape.channels * t->shape.height * t->shape.width, b = n < SAMPLE_CHUNK ? n : SAMPLE_CHUNK;
    mem_est e = {.n = 0};
    if (!output_fits(&e, n, dim)) return -1;
    if (n == 0) return 0;
    /* x, D, the Heun step and its second D, a chunk each; GMM: host copies */
    add_part(&e, (4.0 + (t->net ? 0 : 3)) * SAMPLE_CHUNK * (double)dim * sizeof(float), "the sampler's buffers");
    if (t->net && wb_params_backend(t->net->params)->device == WB_DEVICE_CPU) {
        double a = measured_forward(t->net, b);
        if (a > 0) add_part(&e, a, "one chunk's denoiser activations (%lld sample%s)", (long long)b, plural((double)b));
    }
    return verdict(&e);
}

int wb_memory_check_student_sample(wb_student *s, int64_t n) {
    int64_t dim = (int64_t)s->shape.channels * s->shape.height * s->shape.width, b = n < SAMPLE_CHUNK ? n : SAMPLE_CHUNK;
    mem_est e = {.n = 0};
    if (!output_fits(&e, n, dim)) return -1;
    if (n == 0) return 0;
    add_part(&e, (double)SAMPLE_CHUNK * (double)dim * sizeof(float) + (double)wb_params_numel(s->gen->params) * sizeof(float),
             "the noise chunk and the live weights while the EMA ones sample");
    if (s->be->device == WB_DEVICE_CPU) {
        double a = measured_forward(s->gen, b);
        if (a > 0) add_part(&e, a, "one chunk's generator activations (%lld sample%s)", (long long)b, plural((double)b));
    }
    return verdict(&e);
}

int wb_memory_check_teacher_train(const wb_dataset *ds, const wb_netspec *spec, const wb_teacher_config *cfg) {
    const wb_backend *be = cfg->backend ? cfg->backend : wb_backend_select(NULL);
    if (!be) {
        wb_clear_error(); /* the real call reports it */
        return 0;
    }
    wb_net_shape shape = ds->shape;
    shape.label_dim = cfg->label_dim;
    int64_t b = cfg->batch > 0 ? cfg->batch : 1;
    mem_est e = {.n = 0};
    double p = declared_params(spec, &shape, be);
    int on_cpu = be->device == WB_DEVICE_CPU;
    char count[40];
    if (p > 0 && on_cpu && cfg->steps > 0)
        add_part(&e, 5.0 * p * sizeof(float), "the net's %s parameters: weights, gradients, EMA, Adam's two moments",
                 grouped(p, count, sizeof count));
    else if (p > 0 && on_cpu) /* steps = 0 loads: the weights and their EMA copy are what gets written */
        add_part(&e, 2.0 * p * sizeof(float), "the net's %s parameters: weights and their EMA copy",
                 grouped(p, count, sizeof count));
    if (cfg->steps > 0) /* x_0, x_t and the noise, σ and λ: host arrays of one batch */
        add_part(&e, (3.0 * (double)ds->dim + 2) * (double)b * sizeof(float), "the host batches at batch %lld", (long long)b);
    if (verdict(&e)) return -1; /* refused before anything is allocated */
    act_line step;
    if (cfg->steps > 0 && on_cpu && p > 0 && measured_spec(spec, &shape, be, 0, 0, &step, NULL) == 0)
        add_part(&e, at_batch(&step, b), "one step's activations at batch %lld", (long long)b);
    return verdict(&e);
}

int wb_memory_check_distill(const wb_teacher *t, const wb_dataset *ds, const wb_distill_config *cfg) {
    const wb_netspec *gen = t->net ? &t->spec : &cfg->gen_net;
    const wb_backend *be = cfg->backend ? cfg->backend : t->be;
    if (!be || !gen->desc || !cfg->divergence || !cfg->ratio) return 0; /* wb_distill says what is missing */
    int on_cpu = be->device == WB_DEVICE_CPU;
    int64_t b = cfg->batch > 0 ? cfg->batch : 1;
    int score_free = cfg->divergence->divergence && cfg->divergence->divergence->score_free;
    mem_est e = {.n = 0};
    char count[40];
    double pg = declared_params(gen, &ds->shape, be);
    if (pg > 0 && on_cpu)
        add_part(&e, (score_free ? 5.0 : 9.0) * pg * sizeof(float),
                 "the generator's %s parameters with Adam and EMA%s", grouped(pg, count, sizeof count),
                 score_free ? "" : ", and the fake score's with Adam");
    int backbone = cfg->ratio->ratio && cfg->ratio->ratio->wants_backbone && cfg->ratio_net.desc;
    if (on_cpu && backbone) {
        wb_net_shape bs = ds->shape;
        bs.out_channels = 1;
        double pr = declared_params(&cfg->ratio_net, &bs, be);
        if (pr > 0)
            add_part(&e, 4.0 * pr * sizeof(float), "the ratio backbone's %s parameters with Adam",
                     grouped(pr, count, sizeof count));
    }
    add_part(&e, ((double)ds->dim + 8) * (double)b * sizeof(float), "the host batches at batch %lld", (long long)b);
    if (verdict(&e)) return -1;
    act_line gen_step, gen_train;
    int n_fwd = 1 + (t->net ? 1 : 0) + (score_free ? 0 : 1);
    if (cfg->steps > 0 && on_cpu && pg > 0 && measured_spec(gen, &ds->shape, be, n_fwd, 0, &gen_step, &gen_train) == 0) {
        /* The generator update's graph: x_0's forward, the teacher's and
         * (score-based) the fake score's forwards — nets of the generator's
         * architecture — then the ratio logit's ∇x pass and the generator
         * loss's backward. The ratio update: a training pass of the
         * estimator on 2B samples — its backbone's, or through the
         * teacher's features for a head on them (about a training pass of
         * the teacher's net). */
        act_line ratio = {0, 0};
        int have_ratio = 0;
        if (backbone) {
            wb_net_shape bs = ds->shape;
            bs.out_channels = 1;
            have_ratio = measured_spec(&cfg->ratio_net, &bs, be, 0, 1, &ratio, NULL) == 0;
        } else if (t->net) {
            ratio = gen_train;
            have_ratio = 1;
        }
        double gen_bytes = at_batch(&gen_step, b) + (have_ratio ? at_batch(&ratio, b) : 0);
        double ratio_bytes = have_ratio ? at_batch(&ratio, 2 * b) : 0;
        add_part(&e, gen_bytes > ratio_bytes ? gen_bytes : ratio_bytes, "one iteration's activations at batch %lld",
                 (long long)b);
    }
    return verdict(&e);
}
