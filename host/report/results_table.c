/* host/report/results_table.c — `workbench table`: reads finished run directories
 * (config.json written by wb.teacher / wb.distill, results.json written by
 * wb.evaluate / wb.image_metrics, see host/engine/run.c), groups the runs whose
 * configuration differs only in the seed, and writes one table row per
 * group with the mean ± sample std of each metric over its seeds, as
 * Markdown, LaTeX (booktabs) or CSV (rendered by report/table_render.c). Library code: errors go to
 * wb_set_error and the caller decides what to do.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "report/results_table.h"
#include "report/seed_stats.h"
#include "report/table_render.h"
#include "wb/tensor.h"

/* Keys that differ between seeds of the same configuration without making
 * it a different one: the seed itself and what describes the build. */
/* teacher_source is a path (each seed may train its own teacher); what the
 * teacher IS stays in the grouping through teacher_dataset/_single_sigma. */
/* script and args say how the run was started (out=, seed= differ between
 * seeds); the resolved configuration next to them is what is compared. */
static const char *const volatile_keys[] = {"seed", "commit", "workbench_version", "teacher_source", "script", "args"};

#define N_LABELS 5
static const char *const label_names[N_LABELS] = {"method", "ratio", "dataset", "teacher", "init"};

typedef struct run_in {
    const char *dir;
    cJSON *config, *results;
    cJSON *key; /* config without the volatile keys: what groups compare */
} run_in;

typedef struct group {
    int first;          /* run whose config labels the row */
    int n;
    int *members;       /* run indices, n of them */
    char *label[N_LABELS];
} group;

/* dir/name parsed as a JSON object, or NULL with the error naming the file. */
static cJSON *load_json(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        wb_set_error("%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len + 4096 + 1 > cap) {
            char *more = realloc(text, cap = 2 * cap + 8192);
            if (!more) {
                free(text);
                fclose(f);
                wb_set_error("%s: out of memory", path);
                return NULL;
            }
            text = more;
        }
        got = fread(text + len, 1, 4096, f);
        len += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        wb_set_error("%s: read error", path);
        return NULL;
    }
    text[len] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        wb_set_error("%s: malformed JSON (expected an object)", path);
        return NULL;
    }
    return root;
}

static const char *str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "name (k=v, k=v)" of a plugin object {name, version, params}. */
static void plugin_label(FILE *m, const cJSON *plugin) {
    const char *name = str_field(plugin, "name");
    fputs(name ? name : "?", m);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(plugin, "params");
    int count = 0;
    const cJSON *p;
    /* only an object's members have names (an array's would print NULL) */
    if (!cJSON_IsObject(params)) params = NULL;
    cJSON_ArrayForEach(p, params) {
        fprintf(m, "%s%s=", count++ ? ", " : " (", p->string);
        if (cJSON_IsNumber(p)) fprintf(m, "%g", p->valuedouble);
        else if (cJSON_IsBool(p)) fputs(cJSON_IsTrue(p) ? "true" : "false", m);
        else if (cJSON_IsString(p)) fputs(p->valuestring, m);
        else {
            char *t = cJSON_PrintUnformatted(p);
            fputs(t ? t : "?", m);
            free(t);
        }
    }
    if (count) fputc(')', m);
}

/* The row's descriptive cells: what a reader needs to tell rows apart. */
static int make_labels(group *g, const cJSON *cfg) {
    const char *kind = str_field(cfg, "kind");
    int distill = kind && strcmp(kind, "distill") == 0;
    for (int i = 0; i < N_LABELS; i++) {
        char *buf = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&buf, &size);
        if (!m) return -1;
        const char *s = NULL;
        switch (i) {
        case 0:
            if (distill) plugin_label(m, cJSON_GetObjectItemCaseSensitive(cfg, "divergence"));
            else if (kind && strcmp(kind, "teacher") == 0) {
                const char *net = str_field(cJSON_GetObjectItemCaseSensitive(cfg, "net"), "name");
                fprintf(m, "teacher (%s)", net ? net : "?");
            } else fputs(kind ? kind : "?", m);
            break;
        case 1: s = distill ? str_field(cJSON_GetObjectItemCaseSensitive(cfg, "ratio"), "name") : NULL; break;
        case 2: s = str_field(cfg, "dataset"); break;
        case 3: s = distill ? str_field(cfg, "teacher") : NULL; break;
        case 4: s = str_field(cfg, "init"); break;
        }
        if (i > 0) fputs(s ? s : "-", m);
        if (fclose(m) != 0 || !buf) {
            free(buf);
            return -1;
        }
        g->label[i] = buf;
    }
    return 0;
}

static double metric_of(const run_in *r, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(r->results, k)->valuedouble;
}

/* Mean, sample std (n - 1) and 95 % interval of metric k over the group's runs. */
static void stats(const group *g, const run_in *runs, const char *k, wb_summary *s) {
    double *x = malloc((size_t)g->n * sizeof *x);
    if (!x) { /* the caller's text_of fails next on a machine this short of memory */
        *s = (wb_summary){.n = 0, .mean = NAN, .std = NAN, .lo = NAN, .hi = NAN};
        return;
    }
    for (int i = 0; i < g->n; i++) x[i] = metric_of(&runs[g->members[i]], k);
    wb_summarize(x, g->n, 0.95, s);
    free(x);
}

static double seed_of(const run_in *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->config, "seed");
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* p of the paired t-test of group g against group b on metric k over the
 * seeds both ran (each seed once per group), NaN with fewer than 2. */
static double paired_p(const group *g, const group *b, const run_in *runs, const char *k) {
    double *x = malloc((size_t)(2 * g->n + 1) * sizeof *x), *y = x ? x + g->n : NULL;
    int n = 0;
    for (int i = 0; x && i < g->n; i++) {
        double seed = seed_of(&runs[g->members[i]]);
        for (int j = 0; j < b->n; j++)
            if (seed == seed_of(&runs[b->members[j]])) {
                x[n] = metric_of(&runs[g->members[i]], k);
                y[n++] = metric_of(&runs[b->members[j]], k);
                break;
            }
    }
    wb_paired r = {.p = NAN};
    if (n >= 2) wb_paired_t(x, y, n, &r);
    free(x);
    return r.p;
}

/* printf into a malloc'd string, or NULL. */
__attribute__((format(printf, 1, 2))) static char *text_of(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* The table as report/table_render.h renders it: the label cells, n, and per
 * metric "mean ± std" (one column, "†" when it differs from the baseline
 * group's; intervals = 1: "[lo, hi]" instead) or, in CSV, mean, std, lo, hi
 * (and p with a baseline) apart, in full precision, for further processing.
 * Cell texts are malloc'd into texts. */
static char *write_table(wb_table_format fmt, const group *groups, int n_groups, const run_in *runs,
                         const char *const *metrics, int n_metrics, int baseline, int intervals) {
    static const char *const csv_suffix[5] = {"mean", "std", "lo", "hi", "p"};
    const int per_metric = fmt == WB_TABLE_CSV ? (baseline >= 0 ? 5 : 4) : 1, nc = N_LABELS + 1 + per_metric * n_metrics;
    wb_table_column *cols = calloc((size_t)nc, sizeof *cols);
    wb_table_cell *cells = calloc((size_t)nc * (size_t)(n_groups > 0 ? n_groups : 1), sizeof *cells);
    char **texts = calloc((size_t)nc * (size_t)(n_groups + 1), sizeof *texts);
    char *out = NULL;
    int ok = cols && cells && texts;
    for (int i = 0; ok && i < N_LABELS; i++) cols[i].label = label_names[i];
    if (ok) cols[N_LABELS] = (wb_table_column){.label = "n", .latex = "$n$", .numeric = 1};
    for (int j = 0; ok && j < n_metrics; j++) {
        wb_table_column *c = &cols[N_LABELS + 1 + per_metric * j];
        if (fmt == WB_TABLE_CSV) {
            for (int q = 0; ok && q < per_metric; q++) {
                ok = (texts[per_metric * j + q] = text_of("%s_%s", metrics[j], csv_suffix[q])) != NULL;
                if (ok) c[q] = (wb_table_column){.label = texts[per_metric * j + q], .numeric = 1};
            }
        } else if (intervals) {
            ok = (texts[j] = text_of("%s (95 %%)", metrics[j])) != NULL;
            if (ok) c[0] = (wb_table_column){.label = texts[j], .numeric = 1};
        } else {
            c[0] = (wb_table_column){.label = metrics[j], .numeric = 1};
        }
    }
    char **row_texts = texts ? texts + nc : NULL;
    for (int gi = 0; ok && gi < n_groups; gi++) {
        const group *g = &groups[gi];
        wb_table_cell *row = cells + (size_t)gi * nc;
        char **rt = row_texts + (size_t)gi * nc;
        for (int i = 0; i < N_LABELS; i++) row[i].text = g->label[i];
        ok = (rt[N_LABELS] = text_of("%d", g->n)) != NULL;
        row[N_LABELS].text = rt[N_LABELS];
        for (int j = 0; ok && j < n_metrics; j++) {
            wb_summary st;
            stats(g, runs, metrics[j], &st);
            double p = baseline >= 0 && gi != baseline ? paired_p(g, &groups[baseline], runs, metrics[j]) : NAN;
            int marked = p < 0.05;
            int k = N_LABELS + 1 + per_metric * j;
            if (fmt == WB_TABLE_CSV) {
                const double v[5] = {st.mean, st.std, st.lo, st.hi, p};
                for (int q = 0; ok && q < per_metric; q++) {
                    ok = (rt[k + q] = q == 0 || isfinite(v[q]) ? text_of("%.10g", v[q]) : text_of("%s", "")) != NULL;
                    if (ok) row[k + q].text = rt[k + q];
                }
            } else if (intervals) {
                ok = (rt[k] = g->n > 1 ? text_of("[%.4g, %.4g]", st.lo, st.hi) : text_of("%.4g", st.mean)) != NULL;
            } else if (g->n > 1) {
                const int tex = fmt == WB_TABLE_TEX;
                ok = (rt[k] = text_of("%.4g %s %.4g%s", st.mean, tex ? "$\\pm$" : "±", st.std,
                                      marked ? (tex ? "$^\\dagger$" : " †") : "")) != NULL;
                row[k].flags = WB_CELL_RAW; /* numbers and $\pm$: nothing to escape */
            } else {
                ok = (rt[k] = text_of("%.4g", st.mean)) != NULL;
            }
            if (ok && fmt != WB_TABLE_CSV) row[k].text = rt[k];
        }
    }
    if (ok) {
        wb_table t = {.n_cols = nc, .n_rows = n_groups, .cols = cols, .cells = cells, .md_compact = 1};
        out = wb_table_render(&t, fmt);
    } else {
        wb_set_error("out of memory");
    }
    for (size_t k = 0; texts && k < (size_t)nc * (size_t)(n_groups + 1); k++) free(texts[k]);
    free(texts);
    free(cells);
    free(cols);
    return out;
}

/* Markdown: the table, then (some row has seeds) a note and the intervals. */
static char *write_report(wb_table_format fmt, const group *groups, int n_groups, const run_in *runs,
                          const char *const *metrics, int n_metrics, int baseline) {
    char *main_table = write_table(fmt, groups, n_groups, runs, metrics, n_metrics, baseline, 0);
    int seeded = 0;
    for (int gi = 0; gi < n_groups; gi++) seeded |= groups[gi].n > 1;
    if (!main_table || fmt != WB_TABLE_MD || !seeded) return main_table;
    char *iv = write_table(fmt, groups, n_groups, runs, metrics, n_metrics, baseline, 1);
    char *vs = NULL;
    if (baseline >= 0)
        vs = text_of(" † differs from %s at p < 0.05: two-sided paired t-test over the seeds both rows ran "
                     "(config.json \"seed\"), no correction for multiple comparisons.",
                     groups[baseline].label[0]);
    char *out = iv ? text_of("%s\nMean ± sample std over each row's n seeds; 95 %% intervals of the mean: mean ± "
                             "t(0.975, n−1)·std/√n.%s\n\n%s",
                             main_table, vs ? vs : "", iv)
                   : NULL;
    if (!out) wb_set_error("out of memory");
    free(main_table);
    free(iv);
    free(vs);
    return out;
}

char *wb_results_table(const char *const *dirs, int n_runs, const char *const *metrics_in, int n_metrics_in,
                       wb_table_format fmt) {
    return wb_results_table_vs(dirs, n_runs, metrics_in, n_metrics_in, fmt, NULL);
}

char *wb_results_table_vs(const char *const *dirs, int n_runs, const char *const *metrics_in, int n_metrics_in,
                          wb_table_format fmt, const char *baseline_method) {
    if (n_runs < 1) {
        wb_set_error("no run directories");
        return NULL;
    }
    char *out = NULL;
    run_in *runs = calloc((size_t)n_runs, sizeof *runs);
    group *groups = calloc((size_t)n_runs, sizeof *groups);
    const char **metrics = calloc((size_t)(n_metrics_in > 0 ? n_metrics_in : 1) + 256, sizeof *metrics);
    int n_groups = 0, n_metrics = 0;
    if (!runs || !groups || !metrics) {
        wb_set_error("out of memory");
        goto done;
    }
    for (int i = 0; i < n_runs; i++) {
        run_in *r = &runs[i];
        r->dir = dirs[i];
        if (!(r->config = load_json(r->dir, "config.json"))) goto done;
        if (!(r->results = load_json(r->dir, "results.json"))) goto done;
        if (!(r->key = cJSON_Duplicate(r->config, 1))) {
            wb_set_error("out of memory");
            goto done;
        }
        for (size_t k = 0; k < sizeof volatile_keys / sizeof volatile_keys[0]; k++)
            cJSON_DeleteItemFromObjectCaseSensitive(r->key, volatile_keys[k]);
    }
    /* groups in order of first appearance on the command line */
    for (int i = 0; i < n_runs; i++) {
        int gi = 0;
        while (gi < n_groups && !cJSON_Compare(runs[groups[gi].first].key, runs[i].key, 1)) gi++;
        group *g = &groups[gi];
        if (gi == n_groups) {
            n_groups++;
            g->first = i;
            if (!(g->members = calloc((size_t)n_runs, sizeof *g->members)) || make_labels(g, runs[i].config)) {
                wb_set_error("out of memory");
                goto done;
            }
        }
        g->members[g->n++] = i;
    }
    /* metrics: as asked, or every numeric key all results.json share */
    if (metrics_in && n_metrics_in > 0) {
        for (int j = 0; j < n_metrics_in; j++) metrics[n_metrics++] = metrics_in[j];
    } else {
        const cJSON *v;
        cJSON_ArrayForEach(v, runs[0].results) {
            int everywhere = cJSON_IsNumber(v);
            for (int i = 1; everywhere && i < n_runs; i++)
                everywhere = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(runs[i].results, v->string));
            if (everywhere && n_metrics < 256) metrics[n_metrics++] = v->string;
        }
        if (n_metrics == 0) {
            wb_set_error("no numeric metric is present in every results.json (first: %s/results.json)", dirs[0]);
            goto done;
        }
    }
    for (int j = 0; j < n_metrics; j++)
        for (int i = 0; i < n_runs; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(runs[i].results, metrics[j]);
            if (!cJSON_IsNumber(v)) {
                wb_set_error("%s/results.json: %s metric '%s'", runs[i].dir, v ? "non-numeric" : "no", metrics[j]);
                goto done;
            }
        }
    int baseline = -1;
    if (baseline_method) {
        for (int gi = 0; gi < n_groups && baseline < 0; gi++)
            if (strcmp(groups[gi].label[0], baseline_method) == 0) baseline = gi;
        if (baseline < 0) {
            char *names = NULL;
            size_t size = 0;
            FILE *m = open_memstream(&names, &size);
            for (int gi = 0; m && gi < n_groups; gi++) fprintf(m, "%s'%s'", gi ? ", " : "", groups[gi].label[0]);
            if (m) fclose(m);
            wb_set_error("--baseline '%s' is no row's method (the rows: %s)", baseline_method, names ? names : "?");
            free(names);
            goto done;
        }
    }
    out = write_report(fmt, groups, n_groups, runs, metrics, n_metrics, baseline);
done:
    for (int i = 0; runs && i < n_runs; i++) {
        cJSON_Delete(runs[i].config);
        cJSON_Delete(runs[i].results);
        cJSON_Delete(runs[i].key);
    }
    for (int gi = 0; groups && gi < n_groups; gi++) {
        free(groups[gi].members);
        for (int i = 0; i < N_LABELS; i++) free(groups[gi].label[i]);
    }
    free(runs);
    free(groups);
    free(metrics);
    return out;
}
