/* host/engine/distill_step.h — the distiller's state and the three updates
 * of one distillation iteration (DESIGN §1.5), shared by distill.c (setup,
 * loop, logging, teardown) and distill_step.c (the updates). Engine-private.
 */
#ifndef WB_DISTILL_STEP_H
#define WB_DISTILL_STEP_H

#include "engine/dp.h"
#include "engine/engine.h"

#define SIGMA_DATA 0.5f
#define N_SIGMA_BINS 10

enum {
    STREAM_GEN_INIT = 21, STREAM_FAKE_INIT, STREAM_RATIO_INIT, STREAM_Z, STREAM_SIGMA, STREAM_NOISE,
    STREAM_FAKE, STREAM_RATIO, STREAM_DATA, STREAM_EVAL, STREAM_TEACHER_NET,
    /* after the teacher net's streams (STREAM_TEACHER_NET + i, i < 8) */
    STREAM_R1 = STREAM_TEACHER_NET + 8
};

typedef struct distiller {
    const wb_distill_config *cfg;
    const wb_backend *be; /* every graph and parameter store of the run */
    wb_teacher *teacher;
    wb_dataset *ds;
    const wb_divergence_fns *div;
    const wb_config *div_cfg;
    int score_free;
    wb_time_weight time_weight;
    float sigma_fixed;
    wb_net *gen, *fake, *backbone;
    int ratio_init_copied, ratio_init_total; /* ratio_init = teacher: tensors taken from it */
    wb_params *gen_ema, *ratio_params;
    void *ratio_self;
    const wb_ratio_fns *ratio;
    wb_adam *opt_gen, *opt_fake, *opt_ratio, *opt_backbone;
    wb_graph *g;          /* one step's tensors; reset by every update */
    wb_graph *keep;       /* tensors that outlive an update (never reset) */
    wb_tensor *x0_keep;   /* (b, ...) the current shard's latest student samples, sg(x_0) */
    wb_tensor *x0_keeps[64]; /* one per shard of this rank */
    wb_rng rng_z, rng_sigma, rng_noise, rng_fake, rng_ratio, rng_data;
    wb_rng rng_r1;        /* R1's input noise ε; drawn from only when cfg->r1 > 0 */
    float joint_weight;   /* a joint estimator's BCE weight in the fake-score loss */
    /* data parallel (engine/dp.h): the batch is `batch` rows; an update runs
     * this rank's shards one after the other, and b, shape, shape2, x0_keep
     * describe the current one (rows [row0, row0 + b)); unsharded, b = batch */
    wb_dp dp;
    wb_dp_streams streams; /* every stream the updates draw from */
    int64_t batch, row0;
    int64_t b, dim, shape[4], shape2[4];
    int ndim;
    int log_now;          /* this step's logging scalars are wanted (a log or eval point) */
    /* host memory: only what crosses (logits down, weights up) and the data batch */
    float *x_real;                 /* B·D: the real batch, sampled on the host */
    float *sigma;                  /* B: host copy of σ, for bin normalisation only */
    float *logit, *w_s, *w_l;      /* B: the whole batch's (gathered from every shard) */
    float *logit_mine;             /* this rank's rows of the logits */
    float *w_both;                 /* 2B: (w_s, w_l) interleaved, one upload */
    float *logit2;                 /* 2B: the ratio update's logits, at log points */
} distiller;

typedef struct step_stats {
    double gen_grad, fake_loss, ratio_loss, ratio_acc, div_value, mean_ws, mean_wl;
} step_stats;

/* 1. generator θ, 2. fake score ψ (score-based only), 3. ratio estimator η.
 * fresh: draw new student samples first (the k > 1 updates). 0, or -1 with
 * wb_last_error() naming the step and the quantity. */
int distill_generator_step(distiller *d, int64_t step, step_stats *st);
int distill_fake_step(distiller *d, int64_t step, int fresh, step_stats *st);
int distill_ratio_step(distiller *d, int64_t step, int fresh, step_stats *st);

#endif
