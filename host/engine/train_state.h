/* host/engine/train_state.h — a run's training state in its checkpoint, so
 * a stopped run continues exactly where it stopped (issue 10).
 *
 * While training, checkpoint.safetensors holds, beside the weights under
 * their usual prefixes (a checkpoint mid-run is a valid init for another
 * run), everything else a step reads:
 *   tensors   state.opt.<name>.m / .v   each optimiser's moments (flat layout)
 *             state.log.<name>          the in-memory training curves
 *   metadata  training = "in progress" | "complete", step, metrics_bytes
 *             (metrics.jsonl's length at the checkpoint: a resume cuts the
 *             log back to it), opt.<name>.steps, rng.<name> = "seed stream
 *             offset" (every Philox stream, the nets' own ones included),
 *             num.<name> (scalars, %.17g: exact), config (config.json's
 *             text, compared on resume).
 * The final checkpoint drops the optimiser moments (they double a net's
 * size) and keeps the curves and scalars: a finished run re-run with
 * resume is loaded, not trained again.
 *
 * Writes go through the atomic writer: the previous checkpoint stays whole
 * until the new one is complete and renamed over it.
 */
#ifndef WB_ENGINE_TRAIN_STATE_H
#define WB_ENGINE_TRAIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

struct cJSON;

#define WB_STATE_MAX 24

typedef struct wb_train_state {
    wb_named_params stores[WB_STATE_MAX]; /* weights, under their checkpoint prefixes */
    int n_stores;
    struct { const char *name; wb_adam *opt; } opts[WB_STATE_MAX];
    int n_opts;
    struct { char name[48]; wb_rng *rng; } rngs[WB_STATE_MAX];
    int n_rngs;
    struct { const char *name; double *value; } nums[WB_STATE_MAX];
    int n_nums;
    /* curves: *values holds *n floats (malloc'd; a restore replaces it) */
    struct { const char *name; float **values; int *n; } logs[WB_STATE_MAX];
    int n_logs;
} wb_train_state;

/* Builders; each returns -1 (with an error) only when WB_STATE_MAX is hit. */
int wb_state_store(wb_train_state *s, const char *prefix, wb_params *params);
int wb_state_opt(wb_train_state *s, const char *name, wb_adam *opt);
int wb_state_rng(wb_train_state *s, const char *name, wb_rng *rng);
/* The net's own streams (wb_net_fns.random_streams), as <name>.0, <name>.1, ... */
int wb_state_net_rngs(wb_train_state *s, const char *name, wb_net *net);
int wb_state_num(wb_train_state *s, const char *name, double *value);
int wb_state_log(wb_train_state *s, const char *name, float **values, int *n);

/* How a run starts: from nothing, from a checkpoint mid-run, or finished. */
typedef enum { WB_START_FRESH, WB_START_CONTINUE, WB_START_DONE } wb_start_mode;

/* Completes root as config.json records it (wb_run_write_config's order),
 * then decides how the run starts. Without resume, or with no checkpoint in
 * the run directory: fresh — the previous run's checkpoint, samples.png and
 * results.json are removed and metrics.jsonl starts empty. With resume and
 * a checkpoint: its config must be this one, except
 *   ignored   the origin (script, arguments), and steps when a run in
 *             progress is given more (a finished run is not extended);
 *   warned    the BLAS thread count and the numerics environment (the last
 *             digits may differ from an uninterrupted run);
 *   refused   everything else — a number, a plugin or its version, the
 *             commit or workbench version (WB_RESUME_ANY_COMMIT=1 accepts a
 *             different build) — with a message naming the key and both values.
 * config.json is (re)written, except for a finished run, which is only
 * loaded (its config.json keeps the origin of the run that trained it).
 * *step: the checkpoint's step. */
int wb_run_start(wb_run *run, struct cJSON *root, int resume, int64_t steps, wb_start_mode *mode, int64_t *step);

/* wb_run_start's comparison of a checkpoint's config (was) with this run's
 * (now), as described there: 0 when it may be continued (warning: what
 * differs that was only warned about, or ""), -1 with an error naming the
 * differences (up to four) otherwise. path names the checkpoint in messages. */
int wb_resume_check_config(const char *path, const struct cJSON *was, const struct cJSON *now, char *warning,
                           size_t warning_len);

/* Writes the checkpoint: weights, and the state (complete = 0) or the
 * curves and scalars only (complete = 1); meta_kv: the caller's n_meta pairs
 * (kind, ...). "commit" is added, as for every checkpoint. */
int wb_state_save(wb_run *run, const wb_train_state *s, int64_t step, int complete, const char *const *meta_kv,
                  int n_meta);
/* Restores everything s names from the run's checkpoint (complete: weights,
 * curves and scalars only). Nothing is changed unless the file has every
 * piece with the right size. */
int wb_state_load(wb_run *run, const wb_train_state *s, int complete);

/* ---- the numbers guard ------------------------------------------------------------------------ */
/* A loss that explodes: value (at a log point) above factor × the smallest
 * value the quantity had at earlier log points stops the run. factor <= 0:
 * off. best/best_step belong in the run's state (wb_state_num), so a
 * resumed run guards as the uninterrupted one did. */
typedef struct wb_explode_guard {
    double best, best_step; /* best NaN: nothing seen yet */
} wb_explode_guard;
void wb_explode_init(wb_explode_guard *g);
int wb_explode_check(wb_explode_guard *g, double factor, double value, int64_t step, const char *what);
/* Appends to a failed run's error where it can go on from: the last
 * checkpoint written in progress (last_step > 0), or that none was. */
void wb_note_resume_point(const wb_run *run, int64_t last_step);

/* ---- checkpoints on a clock, and stop requests ----------------------------------------- */
/* Whether a periodic checkpoint is due after step: every `every` steps, or
 * `minutes` after the last one (t_last: wb_now_seconds() of it). */
int wb_checkpoint_due(int64_t step, int64_t every, double minutes, double t_last);
/* WB_STOP_AT_STEP (tests: a stop request during that step of every run),
 * read once per run; 0: unset. */
int64_t wb_stop_test_step(void);
/* A stop request (a signal, or step == test_step) after this step: 0 none,
 * else the signal number. */
int wb_stop_due(int64_t step, int64_t test_step);
/* The error of a run stopped after step: how to resume it. */
void wb_stop_error(const wb_run *run, const char *what, int64_t step, int64_t steps, int signo);

#endif
