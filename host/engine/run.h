/* host/engine/run.h — everything the engine writes into a run directory, in
 * one place (host/engine/run.c): config.json, metrics.jsonl, the checkpoint,
 * samples.png (results.json and the progress line are declared with wb_run
 * in engine.h). Teacher training and distillation describe what to write;
 * run.c decides how: build information and the run's origin in every
 * config.json, "commit" in every checkpoint, the same figures for every run.
 */
#ifndef WB_ENGINE_RUN_H
#define WB_ENGINE_RUN_H

#include <stdint.h>

#include "engine/engine.h"

struct cJSON;

/* ---- config.json -------------------------------------------------------------- */
/* {"name", "version", "params": {...}} of a plugin and its resolved parameters. */
struct cJSON *wb_plugin_json(const wb_plugin_desc *desc, const wb_config_owned *cfg);
/* A net's entry: wb_plugin_json, plus "resolved" — the architecture the
 * instance built (presets applied), when its plugin describes itself. */
struct cJSON *wb_net_json(const wb_net *net, const wb_config_owned *cfg);
/* The net's own description (wb_net_fns.describe, JSON), malloc'd, or NULL. */
char *wb_net_describe(const wb_net *net);
/* 0 when the checkpoint at path may initialise net: the keys of the net's
 * description that change its function without changing a shape
 * (embedding_convention, heads) agree with the checkpoint's "net_resolved"
 * metadata; a file without it was written before nets recorded it (unet
 * 1.0: workbench-1.0 embedding). -1 with wb_last_error() saying why. */
int wb_net_check_checkpoint(const wb_net *net, const char *path);
/* DIR/name as the JSON text of root plus a newline, written atomically. */
int wb_write_json_atomic(const char *dir, const char *name, struct cJSON *root);
/* Writes root as run->dir/config.json, after adding what every config
 * records: "workbench_version" and "commit" right after "kind", the run's
 * origin (script and arguments, wb_run.origin) right after "backend". root
 * stays the caller's (and holds those keys afterwards). */
int wb_run_write_config(wb_run *run, struct cJSON *root);
/* The same without writing: root completed as config.json would hold it. */
int wb_run_complete_config(wb_run *run, struct cJSON *root);
/* Writes an already completed root as config.json and keeps its compact
 * text in run->config_text (checkpoints record it). */
int wb_run_store_config(wb_run *run, struct cJSON *root);

/* ---- metrics.jsonl ------------------------------------------------------------ */
/* How a logged number is printed; the text is what tests and `workbench
 * table` read, so each key keeps its format. */
typedef enum { WB_LOG_G6 /* %.6g */, WB_LOG_F3 /* %.3f */, WB_LOG_F4 /* %.4f */ } wb_log_format;
typedef struct wb_log_value {
    const char *key;
    double value;
    wb_log_format format;
    int optional; /* a NaN value leaves the key out (not measured at this step) */
} wb_log_value;
/* Appends {"step": step, "key": value, ...} as one line of metrics.jsonl and
 * flushes it. A run without a log (run NULL or no metrics file) is a no-op. */
int wb_run_log(wb_run *run, int64_t step, const wb_log_value *values, int n);

/* ---- checkpoint ---------------------------------------------------------------- */
/* run->dir/checkpoint.safetensors: the stores, and the n_meta metadata pairs
 * followed by "commit" (this build's). */
int wb_run_save_checkpoint(wb_run *run, const wb_named_params *stores, int n_stores, const char *const *meta_kv,
                           int n_meta);

/* ---- samples.png ---------------------------------------------------------------- */
/* Image data: an 8 x 8 grid of 64 samples drawn at WB_GRID_SEED (the same z
 * in every run, so grids compare image for image). 2-D data: a scatter of
 * WB_RUN_SCATTER_POINTS samples over as many data points, or nothing when
 * title is NULL. */
#define WB_RUN_SCATTER_POINTS 2000
typedef struct wb_run_samples {
    /* n samples (n·dim floats) into out, drawn from seed */
    int (*sample)(void *user, int64_t n, uint64_t seed, float *out);
    void *user;
    wb_dataset *data;      /* its geometry picks the figure                     */
    const char *title;     /* 2-D: the scatter's title; NULL: no figure          */
    const char *label;     /* 2-D: legend of the samples ("student")             */
    uint64_t sample_seed;  /* 2-D: seed of the scattered samples                 */
    wb_rng *data_rng;      /* 2-D: draws the data points shown beside them       */
    int grid;              /* images: how many in the grid; 0: no samples.png (any data) */
} wb_run_samples;
int wb_run_write_samples(wb_run *run, const wb_run_samples *s);

#endif
