/* host/engine/run.c — run directories (run.h, engine.h) and the progress line.
 * A run directory is self-contained: config.json (resolved config, plugin
 * versions, commit, the script that started it), metrics.jsonl,
 * checkpoint.safetensors, samples.png. This file is the only one that
 * writes them. Every file except the append-only metrics log is written
 * through core/atomic_file.h, so an interrupted run never leaves a damaged
 * result. results.json holds the final metrics (wb.evaluate /
 * wb.image_metrics on the run's Student or Teacher), merged key by key
 * across calls; it is what `workbench table` (host/report/results_table.c)
 * reads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <math.h>

#include "wb/cpu.h"
#include "wb/atomic_file.h"
#include "core/buildinfo.h"
#include "core/wb_internal.h"
#include "engine/engine.h"
#include "engine/run.h"
#include "wb/safetensors.h"
#include "report/plot.h"

double wb_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int wb_mkdir_p(const char *path) {
    size_t len = strlen(path);
    if (len == 0) return 0;
    char *buf = malloc(len + 1);
    if (!buf) return -1;
    memcpy(buf, path, len + 1);
    int rc = 0;
    for (char *p = buf + 1; rc == 0; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(buf, 0777) != 0) {
            /* EEXIST is fine only for a directory; ENOTDIR etc. are real */
            if (errno != EEXIST || stat(buf, &st) != 0) rc = -1;
            else if (!S_ISDIR(st.st_mode)) rc = -1, errno = ENOTDIR;
        }
        *p = c;
        if (c == '\0') break;
        while (p[1] == '/') p++; /* "a//b" */
    }
    int saved = errno; /* for the caller's message */
    free(buf);
    errno = saved;
    return rc;
}

int wb_run_open(wb_run *run, const char *dir) {
    memset(run, 0, sizeof *run);
    if (strlen(dir) >= sizeof run->dir - 64) {
        wb_set_error("run directory name too long: %s", dir);
        return -1;
    }
    if (wb_mkdir_p(dir)) {
        wb_set_error("run directory %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    return 0;
}

int wb_run_clear_outputs(wb_run *run) {
    if (run->rank != 0) return 0; /* rank 0 alone writes the run directory */
    /* A re-run into the same directory must not inherit the old run's
     * results, weights or figures: they would describe weights that no
     * longer exist (and a run killed before its own checkpoint would
     * leave them under its config.json). */
    static const char *const stale[] = {"results.json", "checkpoint.safetensors", "samples.png"};
    char path[1100];
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", run->dir, stale[i]);
        if (unlink(path) && errno != ENOENT) {
            wb_set_error("%s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int wb_run_begin_log(wb_run *run, int64_t keep_bytes) {
    if (run->rank != 0) return 0; /* rank 0 alone writes the run directory */
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->dir);
    if (run->metrics) fclose(run->metrics);
    run->metrics = NULL;
    if (keep_bytes < 0) { /* a fresh log per run: a re-run into the same directory replaces it */
        run->metrics = fopen(path, "w");
    } else {
        /* the lines after the checkpoint's step are written again, the same */
        struct stat st;
        if (stat(path, &st) != 0) {
            wb_set_error("%s: %s (the checkpoint expects %lld bytes of log)", path, strerror(errno), (long long)keep_bytes);
            return -1;
        }
        if ((int64_t)st.st_size < keep_bytes) {
            wb_set_error("%s has %lld bytes, the checkpoint logged %lld: the log was cut or replaced since; "
                         "cannot resume this run", path, (long long)st.st_size, (long long)keep_bytes);
            return -1;
        }
        if (truncate(path, (off_t)keep_bytes) != 0) {
            wb_set_error("%s: %s", path, strerror(errno));
            return -1;
        }
        run->metrics = fopen(path, "a");
        /* ftell must say where the next line goes (the next checkpoint records it) */
        if (run->metrics && fseek(run->metrics, 0, SEEK_END) != 0) {
            fclose(run->metrics);
            run->metrics = NULL;
        }
    }
    if (!run->metrics) {
        wb_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void wb_run_close(wb_run *run) {
    if (run && run->metrics) {
        fclose(run->metrics);
        run->metrics = NULL;
    }
    if (run) {
        cJSON_Delete(run->origin);
        run->origin = NULL;
        free(run->config_text);
        run->config_text = NULL;
    }
}

/* ---- config.json ---------------------------------------------------------------- */

cJSON *wb_plugin_json(const wb_plugin_desc *desc, const wb_config_owned *cfg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", desc->name);
    cJSON_AddStringToObject(o, "version", desc->version);
    char *params = cfg ? wb_config_to_json(&cfg->cfg) : NULL;
    cJSON *p = params ? cJSON_Parse(params) : NULL;
    cJSON_AddItemToObject(o, "params", p ? p : cJSON_CreateObject());
    free(params);
    return o;
}

char *wb_net_describe(const wb_net *net) {
    const wb_net_fns *fns = net && net->desc ? net->desc->net : NULL;
    if (!fns || !fns->describe) return NULL;
    char *text = malloc(4096);
    if (!text) return NULL;
    if (fns->describe(net->self, text, 4096) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* The keys of a net's description that change what its weights compute
 * without changing any tensor's shape: a checkpoint must agree on them
 * (the loader checks names and shapes). */
static const char *const function_keys[] = {"embedding_convention", "heads"};

int wb_net_check_checkpoint(const wb_net *net, const char *path) {
    char *mine = wb_net_describe(net);
    if (!mine) return 0; /* a net that does not describe itself: names and shapes only */
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) { /* the loader reports the file's own problem */
        free(mine);
        wb_clear_error();
        return 0;
    }
    cJSON *a = cJSON_Parse(mine);
    const char *theirs = wb_safetensors_meta(f, "net_resolved");
    cJSON *b = theirs ? cJSON_Parse(theirs) : NULL;
    int rc = 0;
    for (size_t i = 0; a && i < sizeof function_keys / sizeof function_keys[0] && rc == 0; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, function_keys[i]);
        const cJSON *y = b ? cJSON_GetObjectItemCaseSensitive(b, function_keys[i]) : NULL;
        if (!x) continue;
        char *xs = cJSON_PrintUnformatted(x), *ys = y ? cJSON_PrintUnformatted(y) : NULL;
        if (y && !cJSON_Compare(x, y, 1)) {
            wb_set_error("%s: its %s net has %s = %s, this one %s: the weights would compute another function "
                         "(set %s = %s on the net to load it)",
                         path, net->desc->name, function_keys[i], ys, xs, function_keys[i], ys);
            rc = -1;
        } else if (!b && strcmp(function_keys[i], "embedding_convention") == 0 && cJSON_IsString(x) &&
                   strcmp(x->valuestring, "workbench-1.0") != 0) {
            /* written before nets recorded what they resolved: unet < 1.1.0 */
            wb_set_error("%s records no net_resolved: written by unet 1.0, whose noise embedding is "
                         "embedding_convention = \"workbench-1.0\"; this net uses %s (the EDM presets' default): "
                         "set embedding_convention = \"workbench-1.0\" on the net to load it",
                         path, xs);
            rc = -1;
        }
        free(xs);
        free(ys);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    wb_safetensors_close(f);
    free(mine);
    return rc;
}

cJSON *wb_net_json(const wb_net *net, const wb_config_owned *cfg) {
    cJSON *o = wb_plugin_json(net->desc, cfg);
    char *text = wb_net_describe(net);
    if (!o || !text) {
        free(text);
        return o;
    }
    cJSON *resolved = cJSON_Parse(text);
    free(text);
    /* a plugin's describe that fails or writes no JSON object leaves just the params */
    if (resolved && cJSON_IsObject(resolved)) cJSON_AddItemToObject(o, "resolved", resolved);
    else cJSON_Delete(resolved);
    return o;
}

int wb_write_json_atomic(const char *dir, const char *name, cJSON *root) {
    char *text = cJSON_Print(root);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *more = text ? realloc(text, strlen(text) + 2) : NULL;
    if (!more) {
        free(text);
        wb_set_error("%s: out of memory", path);
        return -1;
    }
    text = more;
    size_t len = strlen(text);
    text[len] = '\n';
    int rc = wb_write_file_atomic(path, text, len + 1);
    free(text);
    return rc;
}

/* Moves the items of src (an object) to the end of dst, in order. */
static void move_items(cJSON *dst, cJSON *src) {
    while (src->child) {
        cJSON *it = cJSON_DetachItemViaPointer(src, src->child);
        cJSON_AddItemToObject(dst, it->string, it); /* copies the key, frees the old one */
    }
}

int wb_run_complete_config(wb_run *run, cJSON *root) {
    /* Rebuilt in place: kind, build info, backend, origin, then the rest as
     * the caller added it, so every config.json begins the same way. */
    cJSON *rest = cJSON_CreateObject(), *build = cJSON_CreateObject(), *origin = cJSON_CreateObject();
    int rc = -1;
    if (!rest || !build || !origin) goto oom;
    move_items(rest, root);
    cJSON_AddStringToObject(build, "workbench_version", wb_build_version());
    cJSON_AddStringToObject(build, "commit", wb_build_commit());
    /* the BLAS kernels as loaded (a kernel family changes GEMM's last digits) */
    cJSON *blas = cJSON_AddObjectToObject(build, "blas");
    if (!blas) goto oom;
    cJSON_AddStringToObject(blas, "library", "OpenBLAS");
    cJSON_AddStringToObject(blas, "core", wb_cpu_blas_core());
    cJSON_AddStringToObject(blas, "threading", wb_cpu_blas_threading());
    /* the GEMM split and oneDNN's reductions may depend on it (issue 10, defect 4) */
    cJSON_AddNumberToObject(blas, "threads", wb_cpu_blas_threads());
    /* WB_DETERMINISTIC: results that do not depend on that count (wb/cpu.h) */
    cJSON_AddBoolToObject(blas, "deterministic", wb_cpu_deterministic());
    /* the backend's own elementwise kernels (speed only: every build gives the same bits) */
    cJSON_AddStringToObject(blas, "elementwise", wb_cpu_isa());
    /* the environment variables that change a backend's numbers, as set */
    static const char *const numerics_env[] = {"WB_CONV",         "WB_CUDA_TF32",      "WB_CUDA_SYNC",
                                               "WB_EMU_SCHEDULE", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS",
                                               "OPENBLAS_NUM_THREADS"};
    cJSON *env = NULL;
    for (size_t i = 0; i < sizeof numerics_env / sizeof numerics_env[0]; i++) {
        const char *v = getenv(numerics_env[i]);
        if (!v || !v[0]) continue;
        if (!env && !(env = cJSON_AddObjectToObject(build, "environment"))) goto oom;
        cJSON_AddStringToObject(env, numerics_env[i], v);
    }
    for (const cJSON *it = run->origin ? run->origin->child : NULL; it; it = it->next) {
        cJSON *copy = cJSON_Duplicate(it, 1);
        if (!copy) goto oom;
        cJSON_AddItemToObject(origin, it->string, copy);
    }
    static const char *const leading[] = {"kind", "backend"};
    cJSON *after[] = {build, origin};
    for (int i = 0; i < 2; i++) {
        cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(rest, leading[i]);
        if (it) cJSON_AddItemToObject(root, leading[i], it);
        move_items(root, after[i]);
    }
    move_items(root, rest);
    rc = 0;
    goto done;
oom:
    wb_set_error("%s/config.json: out of memory", run->dir);
done:
    cJSON_Delete(rest);
    cJSON_Delete(build);
    cJSON_Delete(origin);
    return rc;
}

int wb_run_write_config(wb_run *run, cJSON *root) {
    if (wb_run_complete_config(run, root)) return -1;
    return wb_run_store_config(run, root);
}

int wb_run_store_config(wb_run *run, cJSON *root) {
    if (run->rank != 0) return 0;
    char *text = cJSON_PrintUnformatted(root);
    if (!text) {
        wb_set_error("%s/config.json: out of memory", run->dir);
        return -1;
    }
    free(run->config_text);
    run->config_text = text;
    return wb_write_json_atomic(run->dir, "config.json", root);
}

/* ---- metrics.jsonl ---------------------------------------------------------------- */

int wb_run_log(wb_run *run, int64_t step, const wb_log_value *values, int n) {
    if (!run || !run->metrics) return 0;
    FILE *f = run->metrics;
    fprintf(f, "{\"step\": %lld", (long long)step);
    for (int i = 0; i < n; i++) {
        const wb_log_value *v = &values[i];
        if (v->optional && isnan(v->value)) continue;
        fprintf(f, ", \"%s\": ", v->key);
        switch (v->format) {
        case WB_LOG_F3: fprintf(f, "%.3f", v->value); break;
        case WB_LOG_F4: fprintf(f, "%.4f", v->value); break;
        default: fprintf(f, "%.6g", v->value); break;
        }
    }
    fputs("}\n", f);
    if (fflush(f) != 0 || ferror(f)) {
        wb_set_error("%s/metrics.jsonl: %s", run->dir, strerror(errno ? errno : EIO));
        return -1;
    }
    /* A log whose file was removed (its directory deleted under a running
     * run) takes writes without complaint, into nothing: say so instead. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_nlink == 0) {
        wb_set_error("%s/metrics.jsonl was removed while the run wrote it (the run directory deleted or moved?)", run->dir);
        return -1;
    }
    return 0;
}

/* ---- checkpoint and figures ---------------------------------------------------------- */

int wb_run_save_checkpoint(wb_run *run, const wb_named_params *stores, int n_stores, const char *const *meta_kv,
                           int n_meta) {
    if (run->rank != 0) return 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run->dir);
    if (n_meta < 0 || (n_meta > 0 && !meta_kv)) {
        wb_set_error("%s: bad metadata list", path);
        return -1;
    }
    const char **meta = malloc((size_t)(2 * n_meta + 2) * sizeof *meta);
    if (!meta) {
        wb_set_error("%s: out of memory", path);
        return -1;
    }
    for (int i = 0; i < 2 * n_meta; i++) meta[i] = meta_kv[i];
    meta[2 * n_meta] = "commit";
    meta[2 * n_meta + 1] = wb_build_commit();
    int rc = wb_safetensors_save(path, stores, n_stores, meta, n_meta + 1);
    free(meta);
    return rc;
}

int wb_run_write_samples(wb_run *run, const wb_run_samples *s) {
    if (run->rank != 0) return 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/samples.png", run->dir);
    const wb_dataset *ds = s->data;
    int rc = -1;
    if (s->grid <= 0) { /* asked for none: an older run's figure must not pass for this one's */
        if (unlink(path) != 0 && errno != ENOENT) {
            wb_set_error("%s: %s", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (ds->dim != 2) { /* images */
        const int n = s->grid;
        float *xs = malloc((size_t)(n * ds->dim) * sizeof(float));
        if (!xs) wb_set_error("%s: out of memory", path);
        else if (!s->sample(s->user, n, WB_GRID_SEED, xs))
            rc = wb_png_image_grid(path, xs, n, ds->shape.channels, ds->shape.height, ds->shape.width, n < 8 ? n : 8, 2);
        free(xs);
        return rc;
    }
    if (!s->title) return 0;
    const int64_t n = WB_RUN_SCATTER_POINTS;
    float *xs = malloc((size_t)n * 2 * sizeof(float)), *xr = malloc((size_t)n * 2 * sizeof(float));
    if (!xs || !xr) wb_set_error("%s: out of memory", path);
    else if (!s->data->sample(s->data, s->data_rng, n, xr) && !s->sample(s->user, n, s->sample_seed, xs))
        rc = wb_plot_scatter(path, s->title, xr, (int)n, "data", xs, (int)n, s->label, NULL);
    free(xs);
    free(xr);
    return rc;
}

/* The whole file as a malloc'd string, or NULL with errno set. */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf; len += got) {
        if (len + 1 >= cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = more;
        }
        got = fread(buf + len, 1, cap - 1 - len, f);
        if (got == 0) break;
    }
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = errno ? errno : EIO;
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

int wb_run_merge_results(const char *dir, const char *const *keys, const double *values, int n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/results.json", dir);
    cJSON *root = NULL;
    errno = 0;
    char *text = read_text(path);
    if (text) {
        root = cJSON_Parse(text);
        free(text);
        /* never overwrite what we cannot read: it may be someone's results */
        if (!cJSON_IsObject(root)) {
            cJSON_Delete(root);
            wb_set_error("%s: malformed JSON (expected an object of metrics); not overwritten", path);
            return -1;
        }
    } else if (errno != ENOENT) {
        wb_set_error("%s: %s", path, strerror(errno));
        return -1;
    } else {
        root = cJSON_CreateObject();
    }
    int rc = root ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        cJSON *num = cJSON_CreateNumber(values[i]);
        if (!num) rc = -1;
        else if (cJSON_GetObjectItemCaseSensitive(root, keys[i]))
            cJSON_ReplaceItemInObjectCaseSensitive(root, keys[i], num);
        else cJSON_AddItemToObject(root, keys[i], num);
    }
    if (rc) wb_set_error("%s: out of memory", path);
    else rc = wb_write_json_atomic(dir, "results.json", root);
    cJSON_Delete(root);
    return rc;
}

void wb_progress_start(wb_progress *p, const char *label, int64_t total, int enabled) {
    /* On a terminal the line redraws in place; in a log (CI, nohup) only
     * the final summary line is written, so logs stay readable. */
    p->tty = isatty(fileno(stderr));
    p->label = label;
    p->total = total;
    p->t_start = p->t_last_print = wb_now_seconds();
    p->enabled = enabled;
}

static void format_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, n, "--:--");
        return;
    }
    int total = (int)(s + 0.5);
    if (total >= 3600) snprintf(buf, n, "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60);
    else snprintf(buf, n, "%d:%02d", total / 60, total % 60);
}

void wb_progress_update(wb_progress *p, int64_t done, const char *extra) {
    if (!p->enabled || !p->tty) return;
    double now = wb_now_seconds();
    if (now - p->t_last_print < 0.5 && done < p->total) return; /* at most two redraws a second */
    p->t_last_print = now;
    double elapsed = now - p->t_start, rate = elapsed > 0 ? (double)done / elapsed : 0;
    char eta[32];
    format_duration(rate > 0 ? (double)(p->total - done) / rate : -1, eta, sizeof eta);
    fprintf(stderr, "\r%-24s %7lld/%-7lld %8.1f it/s  ETA %s  %s\033[K", p->label, (long long)done,
            (long long)p->total, rate, eta, extra ? extra : "");
    fflush(stderr);
}

void wb_progress_end(wb_progress *p, const char *extra) {
    if (!p->enabled) return;
    double elapsed = wb_now_seconds() - p->t_start;
    char took[32];
    format_duration(elapsed, took, sizeof took);
    fprintf(stderr, p->tty ? "\r%-24s %7lld steps in %s (%.1f it/s)  %s\033[K\n" : "%-24s %7lld steps in %s (%.1f it/s)  %s\n", p->label, (long long)p->total, took,
            elapsed > 0 ? (double)p->total / elapsed : 0.0, extra ? extra : "");
    fflush(stderr);
}
