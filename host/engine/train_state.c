/* host/engine/train_state.c — training state in checkpoints and resume
 * (train_state.h says what the file holds), the config comparison that
 * decides whether a checkpoint may be continued, periodic checkpoints and
 * stop requests (signals).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/buildinfo.h"
#include "core/wb_internal.h"
#include "engine/run.h"
#include "engine/train_state.h"
#include "wb/safetensors.h"

/* ---- stop requests ---------------------------------------------------------------------- */
/* The one process-wide flag: written by a signal handler, read between steps. */
static volatile sig_atomic_t stop_signal;

void wb_stop_request(int signo) { stop_signal = signo ? signo : SIGTERM; }
int wb_stop_requested(void) { return (int)stop_signal; }
void wb_stop_clear(void) { stop_signal = 0; }

int64_t wb_stop_test_step(void) {
    const char *at = getenv("WB_STOP_AT_STEP");
    return at && at[0] ? strtoll(at, NULL, 10) : 0;
}

int wb_stop_due(int64_t step, int64_t test_step) {
    if (test_step > 0 && step == test_step) wb_stop_request(SIGTERM);
    return wb_stop_requested();
}

void wb_stop_error(const wb_run *run, const char *what, int64_t step, int64_t steps, int signo) {
    const char *name = signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : signo == SIGUSR1 ? "SIGUSR1" : "a signal";
    if (run)
        wb_set_error("%s stopped by %s after step %lld of %lld; checkpoint written to %s/checkpoint.safetensors — "
                     "continue with resume = true (workbench run SCRIPT.lua resume=%s)",
                     what, name, (long long)step, (long long)steps, run->dir, run->dir);
    else
        wb_set_error("%s stopped by %s after step %lld of %lld (no run directory: nothing to resume from)", what, name,
                     (long long)step, (long long)steps);
}

int wb_checkpoint_due(int64_t step, int64_t every, double minutes, double t_last) {
    if (every > 0 && step % every == 0) return 1;
    return minutes > 0 && wb_now_seconds() - t_last >= 60.0 * minutes;
}

/* ---- the numbers guard ------------------------------------------------------------------ */
void wb_explode_init(wb_explode_guard *g) {
    g->best = NAN;
    g->best_step = 0;
}

int wb_explode_check(wb_explode_guard *g, double factor, double value, int64_t step, const char *what) {
    if (!(factor > 0) || !isfinite(value)) return 0; /* off; non-finite values are the finite checks' */
    if (!isnan(g->best) && value > factor * g->best && g->best > 0) {
        wb_set_error("step %lld: %s = %g exploded: over explode = %g times its best, %g at step %.0f (lower lr?)",
                     (long long)step, what, value, factor, g->best, g->best_step);
        return -1;
    }
    if (isnan(g->best) || value < g->best) {
        g->best = value;
        g->best_step = (double)step;
    }
    return 0;
}

void wb_note_resume_point(const wb_run *run, int64_t last_step) {
    if (!run) return;
    char msg[1400];
    if (last_step > 0)
        snprintf(msg, sizeof msg, "%s — the checkpoint of step %lld in %s is the last good one: resume = true goes on "
                                  "from it (change what failed first; the config must match)",
                 wb_last_error(), (long long)last_step, run->dir);
    else
        snprintf(msg, sizeof msg, "%s — no checkpoint was written before (checkpoint_every = N keeps resume points)",
                 wb_last_error());
    wb_set_error("%s", msg);
}

/* ---- builders ----------------------------------------------------------------------------- */
static int full(const wb_train_state *s, int n) {
    (void)s;
    if (n < WB_STATE_MAX) return 0;
    wb_set_error("training state: more than %d pieces of one kind", WB_STATE_MAX);
    return -1;
}

int wb_state_store(wb_train_state *s, const char *prefix, wb_params *params) {
    if (!params) return 0;
    if (full(s, s->n_stores)) return -1;
    s->stores[s->n_stores++] = (wb_named_params){prefix, params};
    return 0;
}

int wb_state_opt(wb_train_state *s, const char *name, wb_adam *opt) {
    if (!opt) return 0;
    if (full(s, s->n_opts)) return -1;
    s->opts[s->n_opts].name = name;
    s->opts[s->n_opts++].opt = opt;
    return 0;
}

int wb_state_rng(wb_train_state *s, const char *name, wb_rng *rng) {
    if (full(s, s->n_rngs)) return -1;
    snprintf(s->rngs[s->n_rngs].name, sizeof s->rngs[0].name, "%s", name);
    s->rngs[s->n_rngs++].rng = rng;
    return 0;
}

int wb_state_net_rngs(wb_train_state *s, const char *name, wb_net *net) {
    if (!net || !net->desc || !net->desc->net || !net->desc->net->random_streams) return 0;
    int n = 0;
    wb_rng *streams = net->desc->net->random_streams(net->self, &n);
    for (int i = 0; i < n && streams; i++) {
        char full_name[48];
        snprintf(full_name, sizeof full_name, "%s.%d", name, i);
        if (wb_state_rng(s, full_name, &streams[i])) return -1;
    }
    return 0;
}

int wb_state_num(wb_train_state *s, const char *name, double *value) {
    if (full(s, s->n_nums)) return -1;
    s->nums[s->n_nums].name = name;
    s->nums[s->n_nums++].value = value;
    return 0;
}

int wb_state_log(wb_train_state *s, const char *name, float **values, int *n) {
    if (full(s, s->n_logs)) return -1;
    s->logs[s->n_logs].name = name;
    s->logs[s->n_logs].values = values;
    s->logs[s->n_logs++].n = n;
    return 0;
}

/* ---- config comparison ------------------------------------------------------------------- */
typedef struct diff_list {
    char text[1536];
    size_t len;
    int n;
} diff_list;

static void add_diff(diff_list *d, const char *path, const cJSON *was, const cJSON *now) {
    char *a = was ? cJSON_PrintUnformatted(was) : NULL, *b = now ? cJSON_PrintUnformatted(now) : NULL;
    if (d->n < 4 && d->len < sizeof d->text) {
        int k = snprintf(d->text + d->len, sizeof d->text - d->len, "%s%s: %s in the checkpoint, %s now",
                         d->n ? "; " : "", path, a ? a : "(absent)", b ? b : "(absent)");
        if (k > 0) d->len += (size_t)k < sizeof d->text - d->len ? (size_t)k : sizeof d->text - d->len - 1;
    }
    d->n++;
    free(a);
    free(b);
}

/* Where a key sits: ignored (origin, steps), warned (threads, environment). */
static int ignored(const char *path) { return strcmp(path, "script") == 0 || strcmp(path, "args") == 0 || strcmp(path, "steps") == 0; }
static int warned(const char *path) {
    return strcmp(path, "blas.threads") == 0 || strcmp(path, "environment") == 0 || strcmp(path, "data_parallel.ranks") == 0;
}
static int build_key(const char *path) { return strcmp(path, "commit") == 0 || strcmp(path, "workbench_version") == 0; }

static void compare(const char *path, const cJSON *was, const cJSON *now, diff_list *refused, diff_list *warn,
                    diff_list *build) {
    if (ignored(path)) return;
    diff_list *into = warned(path) ? warn : build_key(path) ? build : refused;
    if (cJSON_IsObject(was) && cJSON_IsObject(now) && !warned(path)) {
        for (const cJSON *w = was->child; w; w = w->next) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", w->string);
            compare(sub, w, cJSON_GetObjectItemCaseSensitive(now, w->string), refused, warn, build);
        }
        for (const cJSON *n = now->child; n; n = n->next)
            if (!cJSON_GetObjectItemCaseSensitive(was, n->string)) {
                char sub[256];
                snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", n->string);
                if (!ignored(sub)) add_diff(warned(sub) ? warn : refused, sub, NULL, n);
            }
        return;
    }
    if (!was || !now || !cJSON_Compare(was, now, 1)) add_diff(into, path, was, now);
}

/* blas.deterministic of a config: 1 when its run's numbers did not depend
 * on the thread count (WB_DETERMINISTIC, wb/cpu.h). */
static int deterministic(const cJSON *config) {
    const cJSON *blas = cJSON_GetObjectItemCaseSensitive(config, "blas");
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(blas, "deterministic"));
}

/* A copy of config without what only says how many threads ran: blas.threads
 * and the thread-count variables of "environment" (dropped when then empty). */
static cJSON *without_thread_counts(const cJSON *config) {
    cJSON *copy = cJSON_Duplicate(config, 1);
    if (!copy) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(copy, "blas"), "threads");
    cJSON *env = cJSON_GetObjectItemCaseSensitive(copy, "environment");
    if (env) {
        cJSON_DeleteItemFromObjectCaseSensitive(env, "OMP_NUM_THREADS");
        cJSON_DeleteItemFromObjectCaseSensitive(env, "OPENBLAS_NUM_THREADS");
        if (!env->child) cJSON_DeleteItemFromObjectCaseSensitive(copy, "environment");
    }
    return copy;
}

int wb_resume_check_config(const char *path, const cJSON *was, const cJSON *now, char *warning, size_t warning_len) {
    diff_list refused = {0}, warn = {0}, build = {0};
    warning[0] = '\0';
    /* Both in the deterministic mode: another thread count gives the same
     * numbers (a wb.arms worker loading the teacher its parent trained on
     * every core), so it is not worth a warning. */
    if (deterministic(was) && deterministic(now)) {
        cJSON *a = without_thread_counts(was), *b = without_thread_counts(now);
        if (a && b) compare("", a, b, &refused, &warn, &build);
        cJSON_Delete(a);
        cJSON_Delete(b);
        if (!a || !b) {
            wb_set_error("resume: %s: out of memory comparing configs", path);
            return -1;
        }
    } else {
        compare("", was, now, &refused, &warn, &build);
    }
    if (refused.n) {
        wb_set_error("resume: %s was written by another configuration (%d difference%s): %s%s — start a new run "
                     "directory, or set the same options", path, refused.n, refused.n > 1 ? "s" : "", refused.text,
                     refused.n > 4 ? "; ..." : "");
        return -1;
    }
    const char *any = getenv("WB_RESUME_ANY_COMMIT");
    if (build.n && !(any && strcmp(any, "1") == 0)) {
        wb_set_error("resume: %s was written by another build (%s): its numbers may differ from this one's; rebuild "
                     "that commit, or set WB_RESUME_ANY_COMMIT=1 to continue anyway", path, build.text);
        return -1;
    }
    if (warn.n || build.n)
        snprintf(warning, warning_len, "%s%s%s (the last digits may differ from a run that never stopped)", warn.text,
                 warn.n && build.n ? "; " : "", build.text);
    return 0;
}

/* ---- start: fresh, continue or done ----------------------------------------------------- */
static void checkpoint_path(const wb_run *run, char *out, size_t n) {
    snprintf(out, n, "%s/checkpoint.safetensors", run->dir);
}

int wb_run_start(wb_run *run, cJSON *root, int resume, int64_t steps, wb_start_mode *mode, int64_t *step) {
    *mode = WB_START_FRESH;
    *step = 0;
    if (wb_run_complete_config(run, root)) return -1;
    char path[1200];
    checkpoint_path(run, path, sizeof path);
    struct stat st;
    if (!resume || stat(path, &st) != 0) {
        if (wb_run_clear_outputs(run) || wb_run_begin_log(run, -1)) return -1;
        return wb_run_store_config(run, root);
    }
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) {
        wb_set_error("resume: %s", wb_last_error());
        return -1;
    }
    const char *training = wb_safetensors_meta(f, "training"), *config = wb_safetensors_meta(f, "config");
    const char *step_text = wb_safetensors_meta(f, "step"), *bytes_text = wb_safetensors_meta(f, "metrics_bytes");
    int rc = -1;
    cJSON *was = NULL;
    if (!training || !config || !step_text || !bytes_text) {
        wb_set_error("resume: %s has no training state (written before checkpoints kept one, or not by a run): "
                     "start a new run, or remove it to train this one from the beginning", path);
        goto done;
    }
    int complete = strcmp(training, "complete") == 0;
    char *end = NULL;
    long long done_steps = strtoll(step_text, &end, 10), keep = strtoll(bytes_text, NULL, 10);
    if (!end || *end || done_steps < 0 || keep < 0) {
        wb_set_error("resume: %s: metadata step = '%s' is not a step count", path, step_text);
        goto done;
    }
    was = cJSON_Parse(config);
    if (!cJSON_IsObject(was)) {
        wb_set_error("resume: %s: its metadata 'config' is not a JSON object", path);
        goto done;
    }
    if (complete && steps != done_steps) {
        wb_set_error("resume: %s finished at %lld steps and this run asks for %lld: a finished run is not extended "
                     "(its optimiser state is not kept); start a new run with init from it",
                     path, done_steps, (long long)steps);
        goto done;
    }
    if (!complete && steps < done_steps) {
        wb_set_error("resume: %s stopped at step %lld, past this run's steps = %lld", path, done_steps, (long long)steps);
        goto done;
    }
    char warning[1600];
    if (wb_resume_check_config(path, was, root, warning, sizeof warning)) goto done;
    if (warning[0]) fprintf(stderr, "workbench: resume %s: %s\n", run->dir, warning);
    if (wb_run_begin_log(run, keep)) goto done;
    /* a finished run is only loaded: its config.json stays the record of the
     * run that trained it (and N wb.arms workers loading one teacher write
     * nothing into its directory) */
    if (!complete && wb_run_store_config(run, root)) goto done;
    *mode = complete ? WB_START_DONE : WB_START_CONTINUE;
    *step = done_steps;
    fprintf(stderr, complete ? "workbench: %s finished before (%lld steps): loaded, not trained again\n"
                             : "workbench: resuming %s from step %lld of %lld\n",
            run->dir, done_steps, (long long)steps);
    rc = 0;
done:
    cJSON_Delete(was);
    wb_safetensors_close(f);
    return rc;
}

/* ---- save --------------------------------------------------------------------------------- */
typedef struct save_buf {
    wb_st_array *arrays;
    int n, cap;
    void **owned;
    int n_owned;
    char **names;
    int n_names;
} save_buf;

static wb_st_array *next_array(save_buf *b) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        wb_st_array *more = realloc(b->arrays, (size_t)cap * sizeof *more);
        if (!more) return NULL;
        b->arrays = more;
        b->cap = cap;
    }
    memset(&b->arrays[b->n], 0, sizeof b->arrays[0]);
    return &b->arrays[b->n++];
}

static void *own(save_buf *b, void *p) {
    void **more = realloc(b->owned, (size_t)(b->n_owned + 1) * sizeof *more);
    if (!more || !p) {
        free(p);
        if (more) b->owned = more;
        return NULL;
    }
    b->owned = more;
    b->owned[b->n_owned++] = p;
    return p;
}

static char *own_name(save_buf *b, const char *fmt, const char *a, const char *c) {
    size_t n = strlen(fmt) + strlen(a) + (c ? strlen(c) : 0) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    snprintf(s, n, fmt, a, c ? c : "");
    return own(b, s);
}

/* The store's weights as host arrays, one per tensor, named prefix + name. */
static int add_store(save_buf *b, const wb_named_params *np) {
    wb_params *ps = np->params;
    int64_t numel = wb_params_numel(ps);
    float *host = own(b, malloc((size_t)(numel ? numel : 1) * sizeof(float)));
    if (!host) return -1;
    float *flat = wb_params_data(ps);
    if (numel) wb_backend_download(wb_params_backend(ps), host, flat, (size_t)numel * sizeof(float));
    for (int i = 0; i < wb_params_count(ps); i++) {
        wb_tensor *t = wb_params_at(ps, i);
        wb_st_array *a = next_array(b);
        if (!a || !(a->name = own_name(b, "%s%s", np->prefix, t->name))) return -1;
        a->dtype = WB_ST_F32;
        a->ndim = t->ndim;
        memcpy(a->shape, t->shape, sizeof a->shape);
        a->data = host + ((float *)t->data - flat);
    }
    return 0;
}

int wb_state_save(wb_run *run, const wb_train_state *s, int64_t step, int complete, const char *const *meta_kv,
                  int n_meta) {
    if (run->rank != 0) return 0; /* rank 0 alone writes checkpoints */
    char path[1200];
    checkpoint_path(run, path, sizeof path);
    struct stat dir_st;
    if (stat(run->dir, &dir_st) != 0 || !S_ISDIR(dir_st.st_mode)) {
        wb_set_error("%s: the run directory %s is gone (%s): deleted or moved while the run was training", path,
                     run->dir, strerror(errno ? errno : ENOTDIR));
        return -1;
    }
    save_buf b = {0};
    int n_pairs_cap = n_meta + 8 + 2 * s->n_opts + s->n_rngs + s->n_nums, n_pairs = 0, rc = -1;
    const char **meta = calloc((size_t)(2 * n_pairs_cap), sizeof *meta);
    if (!meta) goto oom;
    for (int i = 0; i < n_meta; i++) {
        meta[2 * n_pairs] = meta_kv[2 * i];
        meta[2 * n_pairs++ + 1] = meta_kv[2 * i + 1];
    }
#define META(k, v)                                                                                                     \
    do {                                                                                                               \
        meta[2 * n_pairs] = (k);                                                                                       \
        meta[2 * n_pairs++ + 1] = (v);                                                                                 \
    } while (0)
    char step_text[32], bytes_text[32];
    snprintf(step_text, sizeof step_text, "%lld", (long long)step);
    long pos = run->metrics ? ftell(run->metrics) : 0;
    snprintf(bytes_text, sizeof bytes_text, "%ld", pos < 0 ? 0L : pos);
    META("training", complete ? "complete" : "in progress");
    META("step", step_text);
    META("metrics_bytes", bytes_text);
    META("config", run->config_text ? run->config_text : "{}");
    META("commit", wb_build_commit());
    for (int i = 0; i < s->n_stores; i++)
        if (add_store(&b, &s->stores[i])) goto oom;
    for (int i = 0; i < s->n_nums; i++) {
        char *k = own_name(&b, "num.%s%s", s->nums[i].name, NULL), *v = own(&b, malloc(32));
        if (!k || !v) goto oom;
        snprintf(v, 32, "%.17g", *s->nums[i].value);
        META(k, v);
    }
    for (int i = 0; i < s->n_logs; i++) {
        wb_st_array *a = next_array(&b);
        if (!a || !(a->name = own_name(&b, "state.log.%s%s", s->logs[i].name, NULL))) goto oom;
        a->dtype = WB_ST_F32;
        a->ndim = 1;
        a->shape[0] = *s->logs[i].n;
        a->data = *s->logs[i].values;
    }
    if (!complete) {
        for (int i = 0; i < s->n_rngs; i++) {
            char *k = own_name(&b, "rng.%s%s", s->rngs[i].name, NULL), *v = own(&b, malloc(80));
            if (!k || !v) goto oom;
            const wb_rng *r = s->rngs[i].rng;
            snprintf(v, 80, "%" PRIu64 " %" PRIu64 " %" PRIu64, r->seed, r->stream, r->offset);
            META(k, v);
        }
        for (int i = 0; i < s->n_opts; i++) {
            wb_adam *opt = s->opts[i].opt;
            int64_t numel = wb_adam_numel(opt);
            float *m = own(&b, malloc((size_t)(numel ? numel : 1) * sizeof(float)));
            float *v = own(&b, malloc((size_t)(numel ? numel : 1) * sizeof(float)));
            char *steps = own(&b, malloc(32)), *k = own_name(&b, "opt.%s.steps", s->opts[i].name, NULL);
            if (!m || !v || !steps || !k) goto oom;
            wb_adam_get_state(opt, m, v);
            snprintf(steps, 32, "%lld", (long long)wb_adam_steps(opt));
            META(k, steps);
            const char *which[2] = {"m", "v"};
            float *data[2] = {m, v};
            for (int j = 0; j < 2; j++) {
                wb_st_array *a = next_array(&b);
                if (!a || !(a->name = own_name(&b, "state.opt.%s.%s", s->opts[i].name, which[j]))) goto oom;
                a->dtype = WB_ST_F32;
                a->ndim = 1;
                a->shape[0] = numel;
                a->data = data[j];
            }
        }
    }
#undef META
    rc = wb_safetensors_save_arrays(path, b.arrays, b.n, meta, n_pairs);
    goto done;
oom:
    wb_set_error("%s: out of memory", path);
done:
    for (int i = 0; i < b.n_owned; i++) free(b.owned[i]);
    free(b.owned);
    free(b.arrays);
    free(meta);
    return rc;
}

/* ---- load --------------------------------------------------------------------------------- */
static int parse_u64s(const char *text, uint64_t out[3]) {
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || errno) return -1;
        out[i] = v;
        p = end;
    }
    return *p ? -1 : 0;
}

int wb_state_load(wb_run *run, const wb_train_state *s, int complete) {
    char path[1200];
    checkpoint_path(run, path, sizeof path);
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) return -1;
    int rc = -1;
    float **moments = calloc((size_t)(2 * s->n_opts + 1), sizeof *moments);
    float **curves = calloc((size_t)(s->n_logs + 1), sizeof *curves);
    int *curve_n = calloc((size_t)(s->n_logs + 1), sizeof *curve_n);
    uint64_t(*rngs)[3] = calloc((size_t)(s->n_rngs + 1), sizeof *rngs);
    double *nums = calloc((size_t)(s->n_nums + 1), sizeof *nums);
    int64_t *opt_steps = calloc((size_t)(s->n_opts + 1), sizeof *opt_steps);
    if (!moments || !curves || !curve_n || !rngs || !nums || !opt_steps) {
        wb_set_error("%s: out of memory", path);
        goto done;
    }
    /* read and check everything first: nothing changes unless all is there */
    for (int i = 0; i < s->n_nums; i++) {
        char key[96];
        snprintf(key, sizeof key, "num.%s", s->nums[i].name);
        const char *v = wb_safetensors_meta(f, key);
        char *end = NULL;
        if (v) nums[i] = strtod(v, &end);
        if (!v || end == v || *end) {
            wb_set_error("%s: metadata '%s' is missing or not a number", path, key);
            goto done;
        }
    }
    for (int i = 0; i < s->n_logs; i++) {
        char key[96];
        snprintf(key, sizeof key, "state.log.%s", s->logs[i].name);
        int ndim;
        int64_t shape[WB_MAX_DIMS];
        if (wb_safetensors_shape(f, key, WB_ST_F32, &ndim, shape)) goto done;
        if (ndim != 1 || shape[0] < 0 || shape[0] > INT32_MAX) {
            wb_set_error("%s: tensor '%s' is not a curve (rank 1)", path, key);
            goto done;
        }
        curve_n[i] = (int)shape[0];
        curves[i] = malloc((size_t)(shape[0] ? shape[0] : 1) * sizeof(float));
        if (!curves[i]) {
            wb_set_error("%s: out of memory", path);
            goto done;
        }
        if (shape[0] && wb_safetensors_read(f, key, WB_ST_F32, curves[i], shape[0])) goto done;
    }
    if (!complete) {
        for (int i = 0; i < s->n_rngs; i++) {
            char key[96];
            snprintf(key, sizeof key, "rng.%s", s->rngs[i].name);
            const char *v = wb_safetensors_meta(f, key);
            if (!v || parse_u64s(v, rngs[i])) {
                wb_set_error("%s: metadata '%s' is missing or not 'seed stream offset'", path, key);
                goto done;
            }
            const wb_rng *r = s->rngs[i].rng;
            if (rngs[i][0] != r->seed || rngs[i][1] != r->stream) {
                wb_set_error("%s: random stream '%s' was seed %llu stream %llu, this run's is seed %llu stream %llu",
                             path, s->rngs[i].name, (unsigned long long)rngs[i][0], (unsigned long long)rngs[i][1],
                             (unsigned long long)r->seed, (unsigned long long)r->stream);
                goto done;
            }
        }
        for (int i = 0; i < s->n_opts; i++) {
            char key[96];
            snprintf(key, sizeof key, "opt.%s.steps", s->opts[i].name);
            const char *v = wb_safetensors_meta(f, key);
            char *end = NULL;
            if (v) opt_steps[i] = strtoll(v, &end, 10);
            if (!v || end == v || *end || opt_steps[i] < 0) {
                wb_set_error("%s: metadata '%s' is missing or not a step count", path, key);
                goto done;
            }
            int64_t numel = wb_adam_numel(s->opts[i].opt);
            const char *which[2] = {"m", "v"};
            for (int j = 0; j < 2; j++) {
                snprintf(key, sizeof key, "state.opt.%s.%s", s->opts[i].name, which[j]);
                int ndim;
                int64_t shape[WB_MAX_DIMS];
                if (wb_safetensors_shape(f, key, WB_ST_F32, &ndim, shape)) goto done;
                if (ndim != 1 || shape[0] != numel) {
                    wb_set_error("%s: tensor '%s' has %lld values, the optimiser %lld", path, key,
                                 (long long)(ndim == 1 ? shape[0] : -1), (long long)numel);
                    goto done;
                }
                float *buf = malloc((size_t)(numel ? numel : 1) * sizeof(float));
                moments[2 * i + j] = buf;
                if (!buf) {
                    wb_set_error("%s: out of memory", path);
                    goto done;
                }
                if (numel && wb_safetensors_read(f, key, WB_ST_F32, buf, numel)) goto done;
            }
        }
    }
    /* the weights: validated whole before any store changes */
    if (wb_safetensors_load(path, s->stores, s->n_stores, 1)) goto done;
    for (int i = 0; i < s->n_nums; i++) *s->nums[i].value = nums[i];
    for (int i = 0; i < s->n_logs; i++) {
        free(*s->logs[i].values);
        *s->logs[i].values = curves[i];
        *s->logs[i].n = curve_n[i];
        curves[i] = NULL;
    }
    if (!complete) {
        for (int i = 0; i < s->n_rngs; i++) s->rngs[i].rng->offset = rngs[i][2];
        for (int i = 0; i < s->n_opts; i++)
            wb_adam_set_state(s->opts[i].opt, opt_steps[i], moments[2 * i], moments[2 * i + 1]);
    }
    rc = 0;
done:
    for (int i = 0; moments && i < 2 * s->n_opts; i++) free(moments[i]);
    for (int i = 0; curves && i < s->n_logs; i++) free(curves[i]);
    free(moments);
    free(curves);
    free(curve_n);
    free(rngs);
    free(nums);
    free(opt_steps);
    wb_safetensors_close(f);
    return rc;
}
