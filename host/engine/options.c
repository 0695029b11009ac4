/* host/engine/options.c — the option rows of wb_teacher_config and
 * wb_distill_config, and the generic code every row goes through: checked
 * setters, config.json's numbers, the docs' tables (options.h says how the
 * rows are used and how to add one).
 */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/options.h"

#define BACKEND_CHOICES "cpu|cuda|cuda-emu|auto"

/* ---- the rows ---------------------------------------------------------------------------- */
/* The rows teacher training and distillation share, the same keys for the
 * same meaning: checkpoints, resume and the numbers guard (docs/resume.md). */
#define RUN_SAFETY_ROWS(CFG) \
    {"checkpoint_every", WB_OPT_INT, WB_OPT_FIELD(CFG, checkpoint_every), 0, INT64_MAX, NULL, NULL, WB_OPT_NOT_RECORDED, \
     NULL, "`> 0`: a resumable checkpoint (weights, optimiser state, random streams, log position) every that many " \
           "steps; `0`: only at the end and when stopped by a signal", 0, 0, 0, 0}, \
    {"checkpoint_minutes", WB_OPT_NUMBER, WB_OPT_FIELD(CFG, checkpoint_minutes), 0, 0, NULL, NULL, WB_OPT_NOT_RECORDED, \
     NULL, "`> 0`: a resumable checkpoint at least this often (wall clock)", 0, 0, 0, WB_NUM_GE_MIN}, \
    {"explode", WB_OPT_NUMBER, WB_OPT_FIELD(CFG, explode), 0, 0, NULL, NULL, WB_OPT_NOT_RECORDED, NULL, \
     "`> 0`: stop when a logged loss exceeds this many times its best so far (teacher: the DSM loss; student: the " \
     "fake-score loss and the generator's gradient norm), naming the step; `0`: off (NaN and inf always stop)", \
     0, 0, 0, WB_NUM_GE_MIN}, \
    {"resume", WB_OPT_BOOL, WB_OPT_FIELD(CFG, resume), 0, 0, NULL, NULL, WB_OPT_NOT_RECORDED, \
     "`false` (`true` under `workbench run ... resume=DIR` for runs inside DIR)", \
     "continue the `run` directory's checkpoint: a stopped run goes on, bit-identical to one that never stopped; a " \
     "finished one is loaded, not trained; another configuration is refused (docs/resume.md)", 0, 0, 0, 0},

/* Data parallelism (engine/dp.h): how a batch split over ranks is reduced. */
static const int reduction_values[] = {0, 1};
#define DATA_PARALLEL_ROWS(CFG) \
    {"reduction", WB_OPT_ENUM, WB_OPT_FIELD(CFG, reduction), 0, 0, "fast|deterministic", reduction_values, 0, NULL, \
     "data parallel (`mpirun -np N`): `fast` sums the ranks' gradients with one all-reduce (the same within float " \
     "summation for any N); `deterministic` cuts the batch into `shards` fixed shards and sums them in shard " \
     "order: bit-identical for any N dividing `shards`", 0, 0, 0, 0}, \
    {"shards", WB_OPT_INT, WB_OPT_FIELD(CFG, shards), 1, 64, NULL, NULL, WB_OPT_NOT_RECORDED, NULL, \
     "`reduction = \"deterministic\"`: the batch's fixed shards (a multiple of the ranks)", 4, 0, 0, 0}, \
    {"hash_every", WB_OPT_INT, WB_OPT_FIELD(CFG, hash_every), 0, INT64_MAX, NULL, NULL, WB_OPT_NOT_RECORDED, NULL, \
     "data parallel: compare a hash of the parameters across ranks every this many steps (a mismatch stops the " \
     "run naming the step); `0`: never", 100, 0, 0, 0},

#define T wb_teacher_config
static const int precond_values[] = {WB_PRECOND_EDM, WB_PRECOND_VP, WB_PRECOND_VE};
static const wb_option teacher_rows[] = {
    {"steps", WB_OPT_INT, WB_OPT_FIELD(T, steps), 0, INT64_MAX, NULL, NULL, 0, NULL,
     "Adam steps of EDM denoising score matching (`0` with `init`: just load the checkpoint)", 4000, 0, 0, 0},
    {"batch", WB_OPT_INT, WB_OPT_FIELD(T, batch), 1, INT32_MAX, NULL, NULL, 0, NULL, "batch size", 256, 0, 0, 0},
    {"lr", WB_OPT_NUMBER, WB_OPT_FIELD(T, lr), 0, 0, NULL, NULL, 0, NULL, "Adam learning rate", 2e-3, 0, 0, WB_NUM_GE_MIN},
    {"ema", WB_OPT_NUMBER, WB_OPT_FIELD(T, ema_decay), 0, 0, NULL, NULL, 0, NULL,
     "decay of the EMA weights (with warm-up); the teacher is the EMA", 0.999, 0, 1, WB_NUM_GE_MIN | WB_NUM_LT_MAX},
    {"seed", WB_OPT_INT, WB_OPT_FIELD(T, seed), 0, INT64_MAX, NULL, NULL, WB_OPT_UNSIGNED, NULL,
     "seed of the initialisation, data, σ and noise streams", 0, 0, 0, 0},
    {"p_mean", WB_OPT_NUMBER, WB_OPT_FIELD(T, p_mean), 0, 0, NULL, NULL, 0, NULL, "ln σ ~ N(p_mean, p_std²)", -1.2, 0, 0, 0},
    {"p_std", WB_OPT_NUMBER, WB_OPT_FIELD(T, p_std), 0, 0, NULL, NULL, 0, NULL, "ln σ ~ N(p_mean, p_std²)", 1.2, 0, 0, WB_NUM_GT_MIN},
    {"single_sigma", WB_OPT_NUMBER, WB_OPT_FIELD(T, single_sigma), 0, 0, NULL, NULL, 0, NULL,
     "`> 0`: single-level DSM, trained at this σ only", 0, 0, 0, WB_NUM_GE_MIN},
    {"log_every", WB_OPT_INT, WB_OPT_FIELD(T, log_every), 0, INT32_MAX, NULL, NULL, WB_OPT_NOT_RECORDED, NULL,
     "steps between `metrics.jsonl` lines", 100, 0, 0, 0},
    {"init", WB_OPT_STRING, WB_OPT_FIELD(T, init), 0, 0, NULL, NULL, 0, "—",
     "checkpoint to start from: a teacher's `teacher.*` or a student's `gen_ema.*` weights", 0, 0, 0, 0},
    {"backend", WB_OPT_BACKEND, WB_OPT_FIELD(T, backend), 0, 0, BACKEND_CHOICES, NULL, 0, "`$WB_BACKEND`, else `cpu`",
     "where the teacher trains (and an exact teacher's students); `auto`: cuda when available", 0, 0, 0, 0},
    {"quiet", WB_OPT_BOOL, WB_OPT_FIELD(T, quiet), 0, 0, NULL, NULL, WB_OPT_NOT_RECORDED, NULL, "no progress line", 0, 0, 0, 0},
    {"grid", WB_OPT_INT, WB_OPT_FIELD(T, grid), 0, 1024, NULL, NULL, WB_OPT_NOT_RECORDED, NULL,
     "images in a `run`'s samples.png (image data: 18-step Heun from a fixed seed, 8 per row); `0`: no samples.png",
     64, 0, 0, 0},
    {"precond", WB_OPT_ENUM, WB_OPT_FIELD(T, precond), 0, 0, "edm|vp|ve", precond_values, 0, NULL,
     "the denoiser's preconditioning, EDM's EDMPrecond / VPPrecond / VEPrecond; the students' generator and fake "
     "score inherit it (training keeps EDM's σ distribution and loss weight)", 0, 0, 0, 0},
    {"label_dim", WB_OPT_INT, WB_OPT_FIELD(T, label_dim), 0, 1 << 20, NULL, NULL, 0, NULL,
     "classes of a class-conditional net (EDM's `label_dim`: 1000 for ImageNet-64, 10 for conditional CIFAR-10); "
     "loaded with `init` and `steps = 0` only (training reads no labels yet); `teacher:denoise(x, sigma, labels)` "
     "takes a class per row", 0, 0, 0, 0},
    DATA_PARALLEL_ROWS(T)
    RUN_SAFETY_ROWS(T)
};
#undef T

#define D wb_distill_config
static const int time_weight_values[] = {WB_TIME_AUTO, WB_TIME_DMD, WB_TIME_SIGMA2, WB_TIME_NONE};
static const int init_values[] = {1, 0};
static const int ratio_init_values[] = {0, 1};
/* Row order is config.json's order of the recorded numbers. */
static const wb_option distill_rows[] = {
    {"steps", WB_OPT_INT, WB_OPT_FIELD(D, steps), 0, INT64_MAX, NULL, NULL, 0, NULL, "generator updates", 1000, 0, 0, 0},
    {"batch", WB_OPT_INT, WB_OPT_FIELD(D, batch), 1, INT32_MAX, NULL, NULL, 0, NULL, "batch size", 256, 0, 0, 0},
    {"lr", WB_OPT_NUMBER, WB_OPT_FIELD(D, lr_gen), 0, 0, NULL, NULL, 0, NULL, "generator's Adam learning rate", 1e-4, 0, 0, WB_NUM_GE_MIN},
    {"lr_fake", WB_OPT_NUMBER, WB_OPT_FIELD(D, lr_fake), 0, 0, NULL, NULL, 0, NULL, "fake score's learning rate", 1e-3, 0, 0, WB_NUM_GE_MIN},
    {"lr_ratio", WB_OPT_NUMBER, WB_OPT_FIELD(D, lr_ratio), 0, 0, NULL, NULL, 0, NULL,
     "ratio estimator's learning rate", 1e-3, 0, 0, WB_NUM_GE_MIN},
    {"beta1", WB_OPT_NUMBER, WB_OPT_FIELD(D, beta1), 0, 0, NULL, NULL, 0, NULL,
     "Adam β1 of all three optimisers (β2 = 0.999)", 0.5, 0, 1, WB_NUM_GE_MIN | WB_NUM_LT_MAX},
    {"fake_updates", WB_OPT_INT, WB_OPT_FIELD(D, fake_updates), 0, 1000000, NULL, NULL, 0, NULL,
     "fake-score updates per generator update", 1, 0, 0, 0},
    {"ratio_updates", WB_OPT_INT, WB_OPT_FIELD(D, ratio_updates), 0, 1000000, NULL, NULL, 0, NULL,
     "ratio-estimator updates per generator update; ignored by a joint estimator (`fake-encoder`), which is "
     "trained inside every fake-score update and has no update of its own (config.json's `ratio_training` says so)",
     1, 0, 0, 0},
    {"sigma_init", WB_OPT_NUMBER, WB_OPT_FIELD(D, sigma_init), 0, 0, NULL, NULL, 0, NULL,
     "G(z) = D(σ_init·z, σ_init)", 2.5, 0, 0, WB_NUM_GT_MIN},
    {"time_weight", WB_OPT_ENUM, WB_OPT_FIELD(D, time_weight), 0, 0, "auto|dmd|sigma2|none", time_weight_values, 0,
     NULL, "`dmd` (σ²/mean\\|x₀ − D_teacher\\|), `sigma2`, `none`; `auto`: dmd for score-based, σ² at σ = 2.5 for "
           "score-free divergences", 0, 0, 0, 0},
    {"sigma_fixed", WB_OPT_NUMBER, WB_OPT_FIELD(D, sigma_fixed), 0, 0, NULL, NULL, 0, NULL,
     "`> 0`: the generator loss at this σ (score-free: 2.5 when 0)", 0, 0, 0, WB_NUM_GE_MIN},
    {"t_min", WB_OPT_NUMBER, WB_OPT_FIELD(D, t_min), 0, 0, NULL, NULL, 0, NULL,
     "Karras σ index range [t_min, t_max] when σ is not fixed", 0.02, 0, 1, WB_NUM_GE_MIN | WB_NUM_LE_MAX},
    {"t_max", WB_OPT_NUMBER, WB_OPT_FIELD(D, t_max), 0, 0, NULL, NULL, 0, NULL, "see `t_min`", 0.6, 0, 1, WB_NUM_GE_MIN | WB_NUM_LE_MAX},
    {"gan_weight", WB_OPT_NUMBER, WB_OPT_FIELD(D, gan_weight), 0, 0, NULL, NULL, 0, NULL,
     "w_GAN · softplus(−l(G(z)_t)); 0: off", 0, 0, 0, WB_NUM_GE_MIN},
    {"r1", WB_OPT_NUMBER, WB_OPT_FIELD(D, r1), 0, 0, NULL, NULL, WB_OPT_NOT_RECORDED, NULL,
     "f-distill's approximate R1: `r1`·mean((l(x_real,t + ε) − l(x_real,t))²) added to the discriminator's loss "
     "(the ratio update's BCE; a joint estimator's fake-score loss), ε ~ N(0, `r1_sigma`²·I) from its own seeded "
     "stream; `0`: off (config.json then carries neither key, as before the option existed)", 0, 0, 0, WB_NUM_GE_MIN},
    {"r1_sigma", WB_OPT_NUMBER, WB_OPT_FIELD(D, r1_sigma), 0, 0, NULL, NULL, WB_OPT_NOT_RECORDED, NULL,
     "the standard deviation of R1's input noise ε (0.01 as in APT, the approximation f-distill cites)", 0.01, 0, 0,
     WB_NUM_GT_MIN},
    {"normalize_bins", WB_OPT_BOOL, WB_OPT_FIELD(D, normalize_bins), 0, 0, NULL, NULL, 0, NULL,
     "f-distill: ρ / mean ρ inside 10 σ-bins", 0, 0, 0, 0},
    {"normalize_batch", WB_OPT_BOOL, WB_OPT_FIELD(D, normalize_batch), 0, 0, NULL, NULL, 0, NULL,
     "f-distill: weight / its batch mean", 0, 0, 0, 0},
    {"logit_clamp", WB_OPT_NUMBER, WB_OPT_FIELD(D, logit_clamp), 0, 0, NULL, NULL, 0, NULL,
     "`> 0`: clamp the logit l to ±logit_clamp before the weights", 0, 0, 0, WB_NUM_GE_MIN},
    {"ema", WB_OPT_NUMBER, WB_OPT_FIELD(D, ema_decay), 0, 0, NULL, NULL, 0, NULL,
     "generator EMA decay (with warm-up)", 0.99, 0, 1, WB_NUM_GE_MIN | WB_NUM_LT_MAX},
    {"init", WB_OPT_ENUM, WB_OPT_FIELD(D, init_from_teacher), 0, 0, "teacher|none", init_values, 0, NULL,
     "generator's start: the teacher's weights, or `none` (random)", 0, 0, 0, 0},
    {"ratio_init", WB_OPT_ENUM, WB_OPT_FIELD(D, ratio_init_from_teacher), 0, 0, "random|teacher", ratio_init_values, 0,
     NULL, "`teacher`: a backbone ratio estimator (`classifier`) starts from the teacher's weights wherever name and "
           "shape match (the encoder of an `encoder_only` UNet); config.json records how many tensors came over; "
           "none in common is an error", 0, 0, 0, 0},
    {"seed", WB_OPT_INT, WB_OPT_FIELD(D, seed), 0, INT64_MAX, NULL, NULL, WB_OPT_UNSIGNED, NULL,
     "seed of every random stream", 0, 0, 0, 0},
    {"log_every", WB_OPT_INT, WB_OPT_FIELD(D, log_every), 0, INT32_MAX, NULL, NULL, 0, NULL,
     "steps between `metrics.jsonl` lines", 100, 0, 0, 0},
    {"eval_samples", WB_OPT_INT, WB_OPT_FIELD(D, eval_samples), 0, INT64_MAX, NULL, NULL, 0, NULL,
     "`> 0`: samples of the MMD logged at every log step", 0, 0, 0, 0},
    {"eval_every", WB_OPT_INT, WB_OPT_FIELD(D, eval_every), 0, INT64_MAX, NULL, NULL, 0, NULL,
     "with `on_eval`: steps between mid-run evaluations (below)", 0, 0, 0, 0},
    {"backend", WB_OPT_BACKEND, WB_OPT_FIELD(D, backend), 0, 0, BACKEND_CHOICES, NULL, 0, "the teacher's",
     "where the student trains; it must be the teacher's", 0, 0, 0, 0},
    {"quiet", WB_OPT_BOOL, WB_OPT_FIELD(D, quiet), 0, 0, NULL, NULL, WB_OPT_NOT_RECORDED, NULL, "no progress line", 0, 0, 0, 0},
    {"grid", WB_OPT_INT, WB_OPT_FIELD(D, grid), 0, 1024, NULL, NULL, WB_OPT_NOT_RECORDED, NULL,
     "images in a `run`'s samples.png (image data; 2-D data: the scatter); `0`: no samples.png", 64, 0, 0, 0},
    DATA_PARALLEL_ROWS(D)
    RUN_SAFETY_ROWS(D)
};
#undef D

static void teacher_defaults(void *c) { wb_teacher_config_default(c); }
static void distill_defaults(void *c) { wb_distill_config_default(c); }

const wb_option_table wb_teacher_options = {"wb.teacher", teacher_rows, (int)(sizeof teacher_rows / sizeof *teacher_rows),
                                            sizeof(wb_teacher_config), teacher_defaults};
const wb_option_table wb_distill_options = {"wb.distill", distill_rows, (int)(sizeof distill_rows / sizeof *distill_rows),
                                            sizeof(wb_distill_config), distill_defaults};

/* ---- fields ------------------------------------------------------------------------------ */
static void *field(const wb_option *o, void *config) { return (char *)config + o->offset; }
static const void *cfield(const wb_option *o, const void *config) { return (const char *)config + o->offset; }

static int64_t get_int(const wb_option *o, const void *config) {
    if (o->size == sizeof(int64_t)) {
        int64_t v;
        memcpy(&v, cfield(o, config), sizeof v);
        return v;
    }
    int v;
    memcpy(&v, cfield(o, config), sizeof v);
    return v;
}

static void put_int(const wb_option *o, void *config, int64_t v) {
    if (o->size == sizeof(int64_t)) {
        memcpy(field(o, config), &v, sizeof v); /* uint64_t: same bits for v >= 0 */
    } else {
        int i = (int)v;
        memcpy(field(o, config), &i, sizeof i);
    }
}

/* The value config.json and the docs show for a number, integer or boolean. */
static double get_number(const wb_option *o, const void *config) {
    if (o->type == WB_OPT_NUMBER) {
        float f;
        memcpy(&f, cfield(o, config), sizeof f);
        return f;
    }
    if (o->flags & WB_OPT_UNSIGNED) {
        uint64_t u;
        memcpy(&u, cfield(o, config), sizeof u);
        return (double)u;
    }
    return (double)get_int(o, config);
}

void wb_options_defaults(const wb_option_table *t, void *config) {
    memset(config, 0, t->config_size);
    for (int i = 0; i < t->n; i++) {
        const wb_option *o = &t->rows[i];
        switch (o->type) {
        case WB_OPT_NUMBER: {
            float f = (float)o->def; /* the same float as the literal 1e-4f, etc. (test_options checks) */
            memcpy(field(o, config), &f, sizeof f);
            break;
        }
        case WB_OPT_INT:
        case WB_OPT_BOOL: put_int(o, config, (int64_t)o->def); break;
        case WB_OPT_ENUM: {
            int v = o->values[(int)o->def];
            memcpy(field(o, config), &v, sizeof v);
            break;
        }
        case WB_OPT_STRING:
        case WB_OPT_BACKEND: break; /* NULL: absent */
        }
    }
}

const wb_option *wb_option_find(const wb_option_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].name, name) == 0) return &t->rows[i];
    return NULL;
}

/* ---- setters ------------------------------------------------------------------------------ */
static int wrong_type(const wb_option *o, const char *given) {
    wb_set_error("key '%s' cannot take %s", o->name, given);
    return -1;
}

/* "[0, 1)", "> 0", "≥ 0", "any": a number row's accepted values. */
static void number_range(const wb_option *o, char *buf, size_t n) {
    unsigned b = o->bounds;
    int lo = (b & (WB_NUM_GE_MIN | WB_NUM_GT_MIN)) != 0, hi = (b & (WB_NUM_LE_MAX | WB_NUM_LT_MAX)) != 0;
    if (lo && hi)
        snprintf(buf, n, "%s%g, %g%s", b & WB_NUM_GT_MIN ? "(" : "[", o->min, o->max, b & WB_NUM_LT_MAX ? ")" : "]");
    else if (lo) snprintf(buf, n, "%s %g", b & WB_NUM_GT_MIN ? ">" : "≥", o->min);
    else if (hi) snprintf(buf, n, "%s %g", b & WB_NUM_LT_MAX ? "<" : "≤", o->max);
    else snprintf(buf, n, "finite");
}

int wb_option_set_number(const wb_option *o, void *config, double v) {
    if (o->type != WB_OPT_NUMBER) return wrong_type(o, "a number");
    unsigned b = o->bounds;
    if (!isfinite(v) || ((b & WB_NUM_GE_MIN) && v < o->min) || ((b & WB_NUM_GT_MIN) && v <= o->min) ||
        ((b & WB_NUM_LE_MAX) && v > o->max) || ((b & WB_NUM_LT_MAX) && v >= o->max) || !isfinite((float)v)) {
        char range[64], value[48];
        number_range(o, range, sizeof range);
        if (isnan(v)) snprintf(value, sizeof value, "nan");
        else snprintf(value, sizeof value, "%g", v);
        if (!o->bounds) wb_set_error("key '%s' = %s is not a finite number", o->name, value);
        else
            wb_set_error("key '%s' = %s is outside its range %s%s", o->name, value, range,
                         isfinite(v) && !isfinite((float)v) ? " (beyond a float)" : "");
        return -1;
    }
    float f = (float)v;
    memcpy(field(o, config), &f, sizeof f);
    return 0;
}

int wb_option_set_integer(const wb_option *o, void *config, int64_t v) {
    if (o->type == WB_OPT_NUMBER) return wb_option_set_number(o, config, (double)v);
    if (o->type != WB_OPT_INT) return wrong_type(o, "an integer");
    if (v < o->lo) {
        wb_set_error("key '%s' = %lld is below its minimum %lld", o->name, (long long)v, (long long)o->lo);
        return -1;
    }
    if (v > o->hi) {
        wb_set_error("key '%s' = %lld is above its maximum %lld", o->name, (long long)v, (long long)o->hi);
        return -1;
    }
    put_int(o, config, v);
    return 0;
}

int wb_option_set_bool(const wb_option *o, void *config, int v) {
    if (o->type != WB_OPT_BOOL) return wrong_type(o, "a boolean");
    put_int(o, config, v != 0);
    return 0;
}

/* The index of s in the row's "a|b|c", or -1 with the choices in the error. */
static int choice_index(const wb_option *o, const char *s) {
    const char *p = o->choices;
    for (int i = 0; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (strlen(s) == n && strncmp(s, p, n) == 0) return i;
        p += n + (bar ? 1 : 0);
    }
    wb_set_error("key '%s' = '%s' is not one of %s", o->name, s, o->choices);
    return -1;
}

static const wb_option backend_row = {"backend", WB_OPT_BACKEND, 0, 0, 0, 0, BACKEND_CHOICES, NULL, 0, NULL, NULL, 0, 0, 0, 0};

const wb_backend *wb_option_backend(const char *name) {
    if (name && name[0] && choice_index(&backend_row, name) < 0) return NULL;
    const wb_backend *be = wb_backend_select(name);
    if (!be) {
        char why[512];
        snprintf(why, sizeof why, "%s", wb_last_error());
        wb_set_error("key 'backend': %s", why);
    }
    return be;
}

int wb_option_set_string(const wb_option *o, void *config, const char *s) {
    switch (o->type) {
    case WB_OPT_STRING: memcpy(field(o, config), &s, sizeof s); return 0;
    case WB_OPT_ENUM: {
        int i = choice_index(o, s);
        if (i < 0) return -1;
        put_int(o, config, o->values[i]);
        return 0;
    }
    case WB_OPT_BACKEND: {
        const wb_backend *be = wb_option_backend(s);
        if (!be) return -1;
        memcpy(field(o, config), &be, sizeof be);
        return 0;
    }
    default: return wrong_type(o, "a string");
    }
}

/* ---- config.json ---------------------------------------------------------------------------- */
void wb_options_record(const wb_option_table *t, const void *config, cJSON *root) {
    for (int i = 0; i < t->n; i++) {
        const wb_option *o = &t->rows[i];
        if (o->flags & WB_OPT_NOT_RECORDED) continue;
        if (o->type == WB_OPT_NUMBER || o->type == WB_OPT_INT || o->type == WB_OPT_BOOL)
            cJSON_AddNumberToObject(root, o->name, get_number(o, config));
    }
}

/* ---- docs ------------------------------------------------------------------------------------ */
static const char *type_text(const wb_option *o) {
    switch (o->type) {
    case WB_OPT_NUMBER: return "number";
    case WB_OPT_INT: return "integer";
    case WB_OPT_BOOL: return "boolean";
    case WB_OPT_STRING: return "string";
    case WB_OPT_ENUM: return "string";
    case WB_OPT_BACKEND: return "string";
    }
    return "?";
}

/* "a|b|c" as "`a`, `b`, `c`" (a '|' would split a Markdown cell). */
static void put_choices(FILE *f, const char *choices) {
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        fprintf(f, "%s`%.*s`", p == choices ? "" : ", ", (int)n, p);
        p += n + (bar ? 1 : 0);
    }
}

static void put_default(FILE *f, const wb_option *o, const void *config) {
    if (o->def_text) {
        fputs(o->def_text, f);
        return;
    }
    switch (o->type) {
    case WB_OPT_NUMBER: fprintf(f, "%g", get_number(o, config)); break;
    case WB_OPT_INT: fprintf(f, "%.0f", get_number(o, config)); break;
    case WB_OPT_BOOL: fputs(get_int(o, config) ? "true" : "false", f); break;
    case WB_OPT_STRING: {
        const char *s;
        memcpy(&s, cfield(o, config), sizeof s);
        if (s) fprintf(f, "`\"%s\"`", s);
        else fputs("—", f);
        break;
    }
    case WB_OPT_ENUM: {
        int64_t v = get_int(o, config);
        const char *p = o->choices;
        for (int i = 0; *p; i++) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            if (o->values[i] == v) fprintf(f, "`\"%.*s\"`", (int)n, p);
            p += n + (bar ? 1 : 0);
        }
        break;
    }
    case WB_OPT_BACKEND: fputs("—", f); break;
    }
}

static void put_range(FILE *f, const wb_option *o) {
    if (o->type == WB_OPT_INT) {
        if (o->hi == INT64_MAX) fprintf(f, "≥ %lld", (long long)o->lo);
        else fprintf(f, "%lld … %lld", (long long)o->lo, (long long)o->hi);
    } else if (o->type == WB_OPT_NUMBER) {
        char range[64];
        number_range(o, range, sizeof range);
        fputs(range, f);
    } else if (o->choices) {
        put_choices(f, o->choices);
    } else {
        fputs("—", f);
    }
}

static void *default_config(const wb_option_table *t) {
    void *config = calloc(1, t->config_size);
    if (config) t->defaults(config);
    else wb_set_error("options: out of memory");
    return config;
}

int wb_options_markdown(FILE *f, const wb_option_table *t) {
    void *config = default_config(t);
    if (!config) return -1;
    fprintf(f, "<!-- options %s: generated by `workbench options --markdown` -->\n", t->fn);
    fputs("| key | type | default | range | meaning |\n|---|---|---|---|---|\n", f);
    for (int i = 0; i < t->n; i++) {
        const wb_option *o = &t->rows[i];
        fprintf(f, "| `%s` | %s | ", o->name, type_text(o));
        put_default(f, o, config);
        fputs(" | ", f);
        put_range(f, o);
        fprintf(f, " | %s |\n", o->doc);
    }
    fprintf(f, "<!-- end options %s -->\n", t->fn);
    free(config);
    return ferror(f) ? -1 : 0;
}

int wb_options_print(FILE *f, const wb_option_table *t) {
    void *config = default_config(t);
    if (!config) return -1;
    fprintf(f, "%s\n", t->fn);
    for (int i = 0; i < t->n; i++) {
        const wb_option *o = &t->rows[i];
        fprintf(f, "  %-16s %-8s default ", o->name, type_text(o));
        put_default(f, o, config);
        if (o->type == WB_OPT_INT || o->choices) {
            fputs("  [", f);
            put_range(f, o);
            fputs("]", f);
        }
        fprintf(f, "\n      %s\n", o->doc);
    }
    free(config);
    return ferror(f) ? -1 : 0;
}
