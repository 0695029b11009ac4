/* host/engine/distill_step.c — the three updates of one distillation
 * iteration (see distill_step.h and the legend at the top of distill.c),
 * written as ops on the run's backend.
 *
 * What crosses between host and backend in one iteration (the transfer
 * counter of wb/backend.h lets tests/test_engine_backend.c assert it):
 *   down  the ratio logits l (B floats): the divergence plugin's weights()
 *         works on host arrays, which keeps the plugin ABI plain C;
 *   up    the weights (w_s, w_l) interleaved (2B floats), once;
 *   up    the real data batch of each ratio update (datasets live in host
 *         memory);
 * and nothing else, except at log points (d->log_now), where the logging
 * scalars (gradient norm, losses, accuracy) come down. Random numbers are
 * drawn on the backend (wb_randn / wb_rand_uniform: the same Philox
 * numbers as on the host), and NaN/inf checks are backend flags reported by
 * the once-a-step wb_backend_sync in distill.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/distill_step.h"

static void trainable(distiller *d, wb_params *which) {
    wb_params *all[4] = {d->gen->params, d->fake ? d->fake->params : NULL, d->ratio_params,
                         d->backbone ? d->backbone->params : NULL};
    for (int i = 0; i < 4; i++)
        if (all[i]) wb_params_set_trainable(all[i], all[i] == which || (which == d->ratio_params && d->backbone && all[i] == d->backbone->params));
}

/* σ (n) for the generator loss and the ratio estimator: fixed, or Karras
 * with a uniform index in [t_min, t_max] (0 → σ_min, 1 → σ_max). */
static wb_tensor *draw_sigma(distiller *d, int64_t n) {
    if (d->sigma_fixed > 0) return wb_full(d->g, 1, &n, d->sigma_fixed);
    return wb_karras_sigma(d->g, wb_rand_uniform(d->g, &d->rng_sigma, 1, &n), d->cfg->t_min, d->cfg->t_max);
}

/* The σ the next draw_sigma(d, n) will give, computed on the host from the
 * same Philox counter (no transfer): bin normalisation needs σ next to the
 * logits. Same formula as the karras_sigma kernel. */
static void peek_sigma(distiller *d, int64_t n, float *out) {
    if (d->sigma_fixed > 0) {
        for (int64_t i = 0; i < n; i++) out[i] = d->sigma_fixed;
        return;
    }
    wb_rng copy = d->rng_sigma;
    wb_rng_uniform(&copy, out, n);
    double a = pow(WB_EDM_SIGMA_MIN, 1.0 / WB_EDM_RHO), z = pow(WB_EDM_SIGMA_MAX, 1.0 / WB_EDM_RHO);
    for (int64_t i = 0; i < n; i++) {
        float t = d->cfg->t_min + (d->cfg->t_max - d->cfg->t_min) * out[i];
        out[i] = (float)pow(a + t * (z - a), WB_EDM_RHO);
    }
}

/* x_0 = G(z) = D_θ(σ_init·z, σ_init). */
static wb_tensor *generate(distiller *d, wb_net *gen, wb_tensor *z) {
    wb_tensor *sig = wb_full(d->g, 1, &d->b, d->cfg->sigma_init);
    return wb_net_denoise(gen, d->g, wb_scale(d->g, z, d->cfg->sigma_init), sig, NULL, NULL);
}

/* New student samples into d->x0_keep (the fresh draws of k > 1 updates). */
static int fresh_samples(distiller *d) {
    wb_graph_set_grad(d->g, 0);
    wb_tensor *x0 = generate(d, d->gen, wb_randn(d->g, &d->rng_z, d->ndim, d->shape));
    return x0 ? wb_assign(d->x0_keep, x0) : -1;
}

static wb_tensor *ratio_logit(distiller *d, wb_tensor *x, wb_tensor *sigma) {
    if (!x || !sigma) return NULL;
    wb_ratio_input in = {x, sigma};
    wb_tensor *l = d->ratio->logit(d->ratio_self, d->g, &in);
    if (!l && strcmp(wb_last_error(), "no error") == 0) wb_set_error("ratio estimator returned no logit");
    return l;
}

static int check_finite_host(const float *x, int64_t n, int64_t step, const char *what) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            wb_set_error("distill step %lld: %s is %g at element %lld", (long long)step, what, (double)x[i], (long long)i);
            return -1;
        }
    return 0;
}

/* f-distill §4 (i): divide ρ = e^l by its mean inside σ-bins (E_q[ρ] = 1),
 * i.e. shift l by −log mean_bin(e^l), with log-sum-exp. */
static void normalize_ratio_bins(float *logit, const float *sigma, int64_t n) {
    double lo = log(WB_EDM_SIGMA_MIN), hi = log(WB_EDM_SIGMA_MAX);
    int bin_of[4096];
    double top[N_SIGMA_BINS], sum[N_SIGMA_BINS];
    int count[N_SIGMA_BINS] = {0};
    for (int k = 0; k < N_SIGMA_BINS; k++) top[k] = -INFINITY, sum[k] = 0;
    for (int64_t i = 0; i < n && i < 4096; i++) {
        int k = (int)((log(sigma[i]) - lo) / (hi - lo) * N_SIGMA_BINS);
        k = k < 0 ? 0 : k >= N_SIGMA_BINS ? N_SIGMA_BINS - 1 : k;
        bin_of[i] = k;
        if (logit[i] > top[k]) top[k] = logit[i];
        count[k]++;
    }
    for (int64_t i = 0; i < n && i < 4096; i++) sum[bin_of[i]] += exp(logit[i] - top[bin_of[i]]);
    for (int64_t i = 0; i < n && i < 4096; i++) {
        int k = bin_of[i];
        logit[i] -= (float)(top[k] + log(sum[k] / count[k]));
    }
}

static void divide_by_mean(float *w, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m += fabs(w[i]);
    m /= (double)n;
    if (m > 0)
        for (int64_t i = 0; i < n; i++) w[i] = (float)(w[i] / m);
}

/* ---- shards (engine/dp.h) ------------------------------------------------------ */
/* Make shard k of this rank current: its rows, its sg(x_0), the graph's row
 * window, and (restore) the update's streams where the update began. */
static void use_shard(distiller *d, int k, int restore) {
    wb_dp_rows(&d->dp, k, &d->row0, &d->b);
    d->shape[0] = d->b;
    d->shape2[0] = 2 * d->b;
    d->x0_keep = d->x0_keeps[k];
    if (restore) wb_dp_streams_restore(&d->streams);
}

static int sharded(const distiller *d) { return d->b != d->batch; }

/* A shard's mean over its rows, as its share of the batch's mean. */
static wb_tensor *batch_share(distiller *d, wb_tensor *mean) {
    return sharded(d) ? wb_scale(d->g, mean, (float)d->b / (float)d->batch) : mean;
}

/* After every shard's backward: the stores' gradients summed over all
 * shards of all ranks. */
static int reduce_grads(distiller *d, wb_params *a, wb_params *b) {
    wb_params *stores[2] = {a, b};
    return wb_dp_reduce(&d->dp, stores, b ? 2 : 1);
}

/* The shard's rows [row0, row0 + b) and [batch + row0, ...) of the ratio
 * update's draws of 2·batch rows ([real; student]); the stream moves past
 * the whole draw. Unsharded: the one draw, as always. */
static wb_tensor *draw_pair_rows(distiller *d, wb_rng *rng, int normal, int ndim, const int64_t *shape2) {
    wb_graph *g = d->g;
    if (!sharded(d)) return normal ? wb_randn(g, rng, ndim, shape2) : wb_rand_uniform(g, rng, ndim, shape2);
    int64_t global[4] = {0};
    memcpy(global, shape2, (size_t)ndim * sizeof *global);
    global[0] = 2 * d->batch;
    wb_tensor *a = wb_rand_rows(g, rng, normal, ndim, global, d->row0, d->b);
    wb_tensor *c = wb_rand_rows(g, rng, normal, ndim, global, d->batch + d->row0, d->b);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= global[i];
    wb_rng_skip(rng, numel);
    return a && c ? wb_cat0(g, a, c) : NULL;
}

/* ---- the discriminator's batch and loss (ratio update, or a joint fake update) ---- */
/* The first n rows of x (n, ...), through a flat view: (B, ...) -> (1, B·R)
 * -> columns [0, n·R) -> (n, ...). Differentiable. */
static wb_tensor *first_rows(wb_graph *g, wb_tensor *x, int64_t n) {
    if (!x) return NULL;
    int64_t per_row = x->numel / x->shape[0], flat[2] = {1, x->numel}, shape[4];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = n;
    return wb_reshape(g, wb_slice1(g, wb_reshape(g, x, 2, flat), 0, n * per_row), x->ndim, shape);
}

/* What the discriminator is trained on, without a tape: x2 = [x_real; sg(x_0)]
 * (2b, ...) noised at σ2 (2b) from the ratio estimator's σ distribution, and
 * the BCE targets [1; 0]. Draws the real batch (rng_data), σ (rng_sigma) and
 * the noise (rng_ratio). */
typedef struct disc_batch {
    wb_tensor *x2, *sigma2, *target;
} disc_batch;

static int draw_disc_batch(distiller *d, disc_batch *o) {
    wb_graph *g = d->g;
    int64_t b = d->b, b2 = 2 * b;
    /* the whole batch's real rows are drawn on every shard (the stream
     * moves as one draw of the batch); this shard's are uploaded */
    if (d->ds->sample(d->ds, &d->rng_data, d->batch, d->x_real)) return -1;
    wb_tensor *x_real = wb_from_host(g, d->ndim, d->shape, d->x_real + d->row0 * d->dim); /* the update's one upload */
    wb_tensor *noise2;
    if (sharded(d) && !(d->sigma_fixed > 0))
        o->sigma2 = wb_karras_sigma(g, draw_pair_rows(d, &d->rng_sigma, 0, 1, &b2), d->cfg->t_min, d->cfg->t_max);
    else
        o->sigma2 = draw_sigma(d, b2);
    noise2 = draw_pair_rows(d, &d->rng_ratio, 1, d->ndim, d->shape2);
    o->x2 = wb_add_noise(g, wb_cat0(g, x_real, d->x0_keep), o->sigma2, noise2);
    o->target = wb_cat0(g, wb_full(g, 1, &b, 1.0f), wb_full(g, 1, &b, 0.0f));
    return o->x2 && o->target ? 0 : -1;
}

/* f-distill's approximate R1 on the real rows (the first b of x2, whose
 * logits are the first b of l2): r1·mean((l(x_real,t + ε, σ) − l(x_real,t, σ))²),
 * ε ~ N(0, r1_sigma²·I) from rng_r1 (sharded: the shard's rows of the
 * batch's draw), as this shard's share of the batch's mean. */
static wb_tensor *r1_penalty(distiller *d, const disc_batch *o, wb_tensor *l2) {
    wb_graph *g = d->g;
    int64_t b = d->b;
    wb_tensor *x_real_t = first_rows(g, o->x2, b), *sigma_real = first_rows(g, o->sigma2, b);
    wb_tensor *eps = wb_scale(g, wb_randn(g, &d->rng_r1, d->ndim, d->shape), d->cfg->r1_sigma);
    wb_tensor *l_moved = ratio_logit(d, wb_add(g, x_real_t, eps), sigma_real);
    wb_tensor *change = wb_sub(g, l_moved, first_rows(g, l2, b));
    return wb_scale(g, batch_share(d, wb_mean(g, wb_square(g, change))), d->cfg->r1);
}

/* At a log point: this shard's correct count of the discriminator's 2b logits. */
static int count_correct(distiller *d, wb_tensor *l2) {
    int64_t b = d->b;
    if (wb_to_host(l2, d->logit2)) return -1;
    int correct = 0;
    for (int64_t i = 0; i < 2 * b; i++) correct += (d->logit2[i] > 0) == (i < b);
    return correct;
}

/* ---- 1. generator update ------------------------------------------------------ */
/* One shard's part (a): x_0 without a tape, then everything g̃ needs, all on
 * the backend; the logits l of its rows go to d->logit_mine. */
typedef struct gen_shard {
    wb_tensor *z, *sigma, *noise, *x0, *dt, *df, *xt_leaf, *l;
} gen_shard;

static int gen_forward(distiller *d, int64_t step, gen_shard *o) {
    wb_graph *g = d->g;
    wb_graph_reset(g);
    wb_graph_set_rows(g, d->batch, d->row0, d->b);
    wb_graph_set_grad(g, 0);
    o->z = wb_randn(g, &d->rng_z, d->ndim, d->shape);
    o->sigma = draw_sigma(d, d->b);
    o->noise = wb_randn(g, &d->rng_noise, d->ndim, d->shape);
    o->x0 = generate(d, d->gen, o->z);
    if (!o->x0 || wb_assign(d->x0_keep, o->x0)) return -1;
    wb_tensor *xt = wb_add_noise(g, o->x0, o->sigma, o->noise);
    o->df = NULL;
    if (!xt || wb_teacher_denoise(d->teacher, g, xt, o->sigma, &o->dt)) return -1;
    if (!d->score_free && !(o->df = wb_net_denoise(d->fake, g, xt, o->sigma, NULL, NULL))) return -1;
    /* logits, and ∇_x l through a tape whose only leaf needing grad is x_t */
    trainable(d, NULL);
    wb_graph_set_grad(g, 1);
    o->xt_leaf = wb_leaf_copy(g, xt, 1);
    o->l = ratio_logit(d, o->xt_leaf, o->sigma);
    int64_t rank_row0, rank_rows;
    wb_dp_rank_rows(&d->dp, &rank_row0, &rank_rows);
    int64_t at = d->row0 - rank_row0;
    if (!o->l || wb_to_host(o->l, d->logit_mine + at)) return -1; /* the one download of the step */
    (void)step;
    return 0;
}

/* Part (c)–(d) of one shard: its weights up, g̃, the surrogate loss's backward. */
static int gen_backward(distiller *d, int64_t step, int need_grad_l, gen_shard *o, double *grad_sq) {
    const wb_distill_config *c = d->cfg;
    wb_graph *g = d->g;
    int64_t b = d->b;
    for (int64_t i = 0; i < b; i++) {
        d->w_both[2 * i] = d->w_s[d->row0 + i];
        d->w_both[2 * i + 1] = d->w_l[d->row0 + i];
    }
    int64_t wshape[2] = {b, 2};
    wb_tensor *w_both = wb_from_host(g, 2, wshape, d->w_both); /* the one upload of the step's weights */
    wb_tensor *w_s = wb_slice1(g, w_both, 0, 1), *w_l = wb_slice1(g, w_both, 1, 1);
    wb_tensor *grad_l = NULL;
    if (need_grad_l) { /* per-sample ∂l_i/∂x_i: samples are independent, so seed ones */
        if (wb_backward(g, o->l, wb_full(g, 1, &b, 1.0f))) return -1;
        grad_l = wb_grad_tensor(g, o->xt_leaf);
    }

    /* (c) g = w_s·(s_fake − s_teacher) − w_l·∇_x l, time-weighted, / n
     * (n of the whole batch: a shard's g̃ is its share) */
    wb_graph_set_grad(g, 0);
    wb_tensor *tw = d->time_weight == WB_TIME_DMD      ? wb_dmd_weight(g, o->x0, o->dt, o->sigma)
                    : d->time_weight == WB_TIME_SIGMA2 ? wb_square(g, o->sigma)
                                                       : NULL;
    if (d->time_weight != WB_TIME_NONE && !tw) return -1;
    wb_tensor *gt = wb_distill_grad(g, d->score_free ? NULL : w_s, o->df, o->dt, o->sigma, grad_l ? w_l : NULL, grad_l, tw);
    if (gt && sharded(d)) gt = wb_scale(g, gt, (float)b / (float)d->batch);
    if (!gt || wb_check_finite(g, gt, "generator gradient g~")) return -1;
    if (d->log_now) *grad_sq = wb_sum_squares(gt);

    /* (d) the surrogate loss through G (and, with w_GAN, through the ratio
     * estimator), in the same arena: g̃ stays where it is */
    wb_graph_clear_tape(g);
    wb_graph_set_grad(g, 1);
    trainable(d, d->gen->params);
    wb_tensor *x0 = generate(d, d->gen, o->z);
    wb_tensor *loss = wb_sum(g, wb_mul(g, x0, gt));
    if (c->gan_weight > 0) {
        wb_tensor *lg = ratio_logit(d, wb_add_noise(g, x0, o->sigma, o->noise), o->sigma);
        loss = wb_add(g, loss, wb_scale(g, batch_share(d, wb_mean(g, wb_softplus(g, wb_scale(g, lg, -1.0f)))), c->gan_weight));
    }
    wb_params_zero_grad(d->gen->params);
    if (!loss || wb_backward(g, loss, NULL)) return -1;
    (void)step;
    return 0;
}

int distill_generator_step(distiller *d, int64_t step, step_stats *st) {
    const wb_distill_config *c = d->cfg;
    int64_t batch = d->batch;
    int mine = d->dp.mine;
    wb_dp_streams_save(&d->streams);
    /* σ of the whole batch next to its logits (bin normalisation): peeked
     * before any shard draws */
    if (c->normalize_bins) peek_sigma(d, batch, d->sigma);

    /* (a) with several shards here, every shard's logits first (the weights
     * below need the whole batch's); the second pass draws the same numbers */
    gen_shard o;
    if (mine > 1)
        for (int k = 0; k < mine; k++) {
            use_shard(d, k, k > 0);
            if (gen_forward(d, step, &o)) return -1;
        }
    use_shard(d, 0, mine > 1);
    if (mine == 1 && gen_forward(d, step, &o)) return -1;
    if (wb_dp_gather_rows(&d->dp, d->logit_mine, d->logit)) return -1;
    if (check_finite_host(d->logit, batch, step, "ratio logit")) return -1;
    st->div_value = d->div->value(d->div_cfg, batch, d->logit);

    /* (b) weights in logit space on the host, for the whole batch on every
     * rank: optional bin normalisation and clamp, the plugin's weights(),
     * optional batch normalisation */
    if (c->normalize_bins) normalize_ratio_bins(d->logit, d->sigma, batch);
    if (c->logit_clamp > 0)
        for (int64_t i = 0; i < batch; i++) d->logit[i] = fminf(fmaxf(d->logit[i], -c->logit_clamp), c->logit_clamp);
    d->div->weights(d->div_cfg, batch, d->logit, d->w_s, d->w_l);
    if (check_finite_host(d->w_s, batch, step, "w_s") || check_finite_host(d->w_l, batch, step, "w_l")) return -1;
    if (c->normalize_batch) {
        divide_by_mean(d->w_s, batch);
        divide_by_mean(d->w_l, batch);
    }
    double ms = 0, ml = 0;
    int need_grad_l = 0;
    for (int64_t i = 0; i < batch; i++) {
        ms += d->w_s[i];
        ml += d->w_l[i];
        if (d->w_l[i] != 0.0f) need_grad_l = 1;
    }
    st->mean_ws = ms / (double)batch;
    st->mean_wl = ml / (double)batch;

    /* (c)–(d) per shard; the gradients summed over every shard and rank */
    double grad_sq[64] = {0};
    for (int k = 0; k < mine; k++) {
        if (k > 0) {
            use_shard(d, k, 1);
            if (gen_forward(d, step, &o)) return -1;
        } else if (mine > 1) {
            if (gen_forward(d, step, &o)) return -1; /* pass 2 of shard 0: its tensors again */
        }
        wb_params *gen = d->gen->params;
        if (gen_backward(d, step, need_grad_l, &o, &grad_sq[k]) || wb_dp_collect(&d->dp, k, &gen, 1)) return -1;
    }
    double total_sq = grad_sq[0];
    if (reduce_grads(d, d->gen->params, NULL) || (d->log_now && wb_dp_sum(&d->dp, grad_sq, 1, &total_sq))) return -1;
    if (d->log_now) st->gen_grad = sqrt(total_sq) * (double)(batch * d->dim);
    if (wb_params_check_finite(d->gen->params, 1, "generator parameter gradient")) return -1;
    wb_adam_step(d->opt_gen);
    return 0;
}

/* ---- 2. fake-score update: EDM DSM on sg(x_0) --------------------------------- *
 * With a joint estimator (trains_fake_jointly: `fake-encoder`) the same loss
 * also trains the fake net as the discriminator, one loss, one optimiser:
 *   L_fake = DSM + w·BCE(l(x2), [1; 0]) [+ R1]
 * on the ratio update's batch (draw_disc_batch: its streams, its σ). The
 * logged fake_loss stays the DSM part; ratio_loss and ratio_acc are the BCE's. */
int distill_fake_step(distiller *d, int64_t step, int fresh, step_stats *st) {
    (void)step;
    wb_graph *g = d->g;
    const int joint = d->ratio->trains_fake_jointly;
    double shard_loss[64] = {0}, shard_disc[2 * 64] = {0}; /* per shard: its BCE share, its correct count */
    wb_dp_streams_save(&d->streams);
    for (int k = 0; k < d->dp.mine; k++) {
        use_shard(d, k, k > 0);
        wb_graph_reset(g);
        wb_graph_set_rows(g, d->batch, d->row0, d->b);
        if (fresh && fresh_samples(d)) return -1;
        wb_graph_set_grad(g, 0);
        /* ln σ ~ N(−1.2, 1.2²), EDM's training distribution */
        wb_tensor *sigma = wb_exp(g, wb_add_scalar(g, wb_scale(g, wb_randn(g, &d->rng_fake, 1, &d->b), 1.2f), -1.2f));
        wb_tensor *noise = wb_randn(g, &d->rng_fake, d->ndim, d->shape);
        wb_tensor *lambda = wb_edm_loss_weight(g, sigma, d->ndim, SIGMA_DATA);
        wb_tensor *xt = wb_add_noise(g, d->x0_keep, sigma, noise);
        wb_graph_set_grad(g, 1);
        trainable(d, d->fake->params);
        wb_tensor *den = wb_net_denoise(d->fake, g, xt, sigma, NULL, NULL);
        wb_tensor *loss = batch_share(d, wb_mean(g, wb_mul(g, wb_square(g, wb_sub(g, den, d->x0_keep)), lambda)));
        wb_tensor *dsm = loss, *bce = NULL, *l2 = NULL;
        if (joint) {
            disc_batch db;
            wb_graph_set_grad(g, 0);
            if (draw_disc_batch(d, &db)) return -1;
            wb_graph_set_grad(g, 1);
            l2 = ratio_logit(d, db.x2, db.sigma2);
            bce = batch_share(d, wb_bce_logits(g, l2, db.target));
            loss = wb_add(g, loss, wb_scale(g, bce, d->joint_weight));
            if (d->cfg->r1 > 0) loss = wb_add(g, loss, r1_penalty(d, &db, l2));
        }
        wb_params_zero_grad(d->fake->params);
        if (!loss || wb_backward(g, loss, NULL)) return -1;
        if (wb_check_finite(g, dsm, "fake-score DSM loss")) return -1;
        if (joint && wb_check_finite(g, loss, "fake-score loss (DSM + discriminator BCE)")) return -1;
        if (d->log_now) {
            float v;
            wb_to_host(dsm, &v);
            shard_loss[k] = v;
            if (joint) {
                wb_to_host(bce, &v);
                shard_disc[2 * k] = v;
                int correct = count_correct(d, l2);
                if (correct < 0) return -1;
                shard_disc[2 * k + 1] = correct;
            }
        }
        wb_params *fake = d->fake->params;
        if (wb_dp_collect(&d->dp, k, &fake, 1)) return -1;
    }
    if (reduce_grads(d, d->fake->params, NULL)) return -1;
    if (d->log_now && wb_dp_sum(&d->dp, shard_loss, 1, &st->fake_loss)) return -1;
    if (d->log_now && joint) {
        double sums[2];
        if (wb_dp_sum(&d->dp, shard_disc, 2, sums)) return -1;
        st->ratio_loss = sums[0];
        st->ratio_acc = sums[1] / (double)(2 * d->batch);
    }
    wb_adam_step(d->opt_fake);
    return 0;
}

/* ---- 3. ratio-estimator update: BCE, real = 1, student = 0 -------------------- */
int distill_ratio_step(distiller *d, int64_t step, int fresh, step_stats *st) {
    (void)step;
    wb_graph *g = d->g;
    double shard_stats[2 * 64] = {0}; /* per shard: its share of the BCE, its correct count */
    wb_params *backbone = d->backbone ? d->backbone->params : NULL;
    wb_params *stores[2] = {d->ratio_params, backbone};
    wb_dp_streams_save(&d->streams);
    for (int k = 0; k < d->dp.mine; k++) {
        use_shard(d, k, k > 0);
        wb_graph_reset(g);
        wb_graph_set_rows(g, d->batch, d->row0, d->b);
        if (fresh && fresh_samples(d)) return -1;
        wb_graph_set_grad(g, 0);
        disc_batch db;
        if (draw_disc_batch(d, &db)) return -1;
        wb_graph_set_grad(g, 1);
        trainable(d, d->ratio_params);
        wb_tensor *l = ratio_logit(d, db.x2, db.sigma2);
        wb_tensor *bce = batch_share(d, wb_bce_logits(g, l, db.target)), *loss = bce;
        if (d->cfg->r1 > 0) loss = wb_add(g, loss, r1_penalty(d, &db, l));
        wb_params_zero_grad(d->ratio_params);
        if (backbone) wb_params_zero_grad(backbone);
        if (!loss || wb_backward(g, loss, NULL)) return -1;
        if (wb_check_finite(g, loss, d->cfg->r1 > 0 ? "ratio-estimator BCE + R1 loss" : "ratio-estimator BCE loss"))
            return -1;
        if (d->log_now) { /* logging scalars: the BCE (without R1) and accuracy */
            float v;
            wb_to_host(bce, &v);
            int correct = count_correct(d, l);
            if (correct < 0) return -1;
            shard_stats[2 * k] = v;
            shard_stats[2 * k + 1] = correct;
        }
        if (wb_dp_collect(&d->dp, k, stores, 2)) return -1;
    }
    if (reduce_grads(d, d->ratio_params, backbone)) return -1;
    if (d->log_now) {
        double sums[2];
        if (wb_dp_sum(&d->dp, shard_stats, 2, sums)) return -1;
        st->ratio_loss = sums[0];
        st->ratio_acc = sums[1] / (double)(2 * d->batch);
    }
    if (wb_params_count(d->ratio_params) > 0) wb_adam_step(d->opt_ratio);
    if (d->opt_backbone) wb_adam_step(d->opt_backbone);
    return 0;
}
