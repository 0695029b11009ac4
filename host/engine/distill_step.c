/* host/engine/distill_step.c — the three updates of one distillation
 * iteration (see distill_step.h and the legend at the top of distill.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"
#include "engine/distill_step.h"

static float karras_sigma(float u) {
    double a = pow(SIGMA_MIN, 1.0 / KARRAS_RHO), z = pow(SIGMA_MAX, 1.0 / KARRAS_RHO);
    return (float)pow(a + u * (z - a), KARRAS_RHO);
}

/* σ for the generator loss and the ratio estimator: fixed, or Karras with a
 * uniform index in [t_min, t_max] (0 → σ_min, 1 → σ_max). */
static void draw_sigma(distiller *d, int64_t n, float *out) {
    if (d->sigma_fixed > 0) {
        for (int64_t i = 0; i < n; i++) out[i] = d->sigma_fixed;
        return;
    }
    wb_rng_uniform(&d->rng_sigma, out, n);
    for (int64_t i = 0; i < n; i++) out[i] = karras_sigma(d->cfg->t_min + (d->cfg->t_max - d->cfg->t_min) * out[i]);
}

static void trainable(distiller *d, wb_params *which) {
    wb_params *all[4] = {d->gen->params, d->fake ? d->fake->params : NULL, d->ratio_params,
                         d->backbone ? d->backbone->params : NULL};
    for (int i = 0; i < 4; i++)
        if (all[i]) wb_params_set_trainable(all[i], all[i] == which || (which == d->ratio_params && d->backbone && all[i] == d->backbone->params));
}

/* x_0 = G(z) for z (B, D) host; graph output. */
static wb_tensor *generate(distiller *d, wb_net *gen, const float *z) {
    float *xin = d->buf2; /* σ_init·z */
    for (int64_t k = 0; k < d->b * d->dim; k++) xin[k] = d->cfg->sigma_init * z[k];
    for (int64_t i = 0; i < d->b; i++) d->scale[i] = d->cfg->sigma_init;
    return wb_net_denoise(gen, d->g, wb_from_host(d->g, d->ndim, d->shape, xin),
                          wb_from_host(d->g, 1, &d->b, d->scale), NULL, NULL);
}

static wb_tensor *ratio_logit(distiller *d, wb_tensor *x, wb_tensor *sigma) {
    wb_ratio_input in = {x, sigma};
    wb_tensor *l = d->ratio->logit(d->ratio_self, d->g, &in);
    if (!l && strcmp(wb_last_error(), "no error") == 0) wb_set_error("ratio estimator returned no logit");
    return l;
}


static int check_finite(const float *x, int64_t n, int64_t step, const char *what) {
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
    double lo = log(SIGMA_MIN), hi = log(SIGMA_MAX);
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



/* ---- 1. generator update ------------------------------------------------------ */
int distill_generator_step(distiller *d, int64_t step, step_stats *st) {
    const wb_distill_config *c = d->cfg;
    int64_t b = d->b, dim = d->dim, n = b * dim;
    wb_graph *g = d->g;
    wb_rng_normal(&d->rng_z, d->z, n);
    draw_sigma(d, b, d->sigma);
    wb_rng_normal(&d->rng_noise, d->noise, n);

    /* (a) x_0 without a tape, then everything g̃ needs */
    wb_graph_reset(g);
    wb_graph_set_grad(g, 0);
    wb_tensor *x0 = generate(d, d->gen, d->z);
    if (!x0) return -1;
    wb_to_host(x0, d->x0);
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < dim; j++) d->xt[i * dim + j] = d->x0[i * dim + j] + d->sigma[i] * d->noise[i * dim + j];
    wb_tensor *xt = wb_from_host(g, d->ndim, d->shape, d->xt), *sig = wb_from_host(g, 1, &b, d->sigma);
    wb_tensor *dt;
    if (wb_teacher_denoise(d->teacher, g, xt, sig, &dt)) return -1;
    wb_to_host(dt, d->d_teacher);
    if (!d->score_free) {
        wb_tensor *df = wb_net_denoise(d->fake, g, xt, sig, NULL, NULL);
        if (!df) return -1;
        wb_to_host(df, d->d_fake);
    }
    /* logits, and ∇_x l through a tape whose only leaf needing grad is x_t */
    trainable(d, NULL);
    int need_grad_l = 0;
    wb_graph_set_grad(g, 1);
    wb_tensor *xt_leaf = wb_leaf(g, d->ndim, d->shape, d->xt, 1);
    wb_tensor *l = ratio_logit(d, xt_leaf, wb_from_host(g, 1, &b, d->sigma));
    if (!l) return -1;
    wb_to_host(l, d->logit);
    if (check_finite(d->logit, b, step, "ratio logit")) return -1;
    st->div_value = d->div->value(d->div_cfg, b, d->logit);

    /* (b) weights in logit space: optional bin normalisation and clamp */
    if (c->normalize_bins) normalize_ratio_bins(d->logit, d->sigma, b);
    if (c->logit_clamp > 0)
        for (int64_t i = 0; i < b; i++) d->logit[i] = fminf(fmaxf(d->logit[i], -c->logit_clamp), c->logit_clamp);
    d->div->weights(d->div_cfg, b, d->logit, d->w_s, d->w_l);
    if (check_finite(d->w_s, b, step, "w_s") || check_finite(d->w_l, b, step, "w_l")) return -1;
    if (c->normalize_batch) {
        divide_by_mean(d->w_s, b);
        divide_by_mean(d->w_l, b);
    }
    double ms = 0, ml = 0;
    for (int64_t i = 0; i < b; i++) {
        ms += d->w_s[i];
        ml += d->w_l[i];
        if (d->w_l[i] != 0.0f) need_grad_l = 1;
    }
    st->mean_ws = ms / (double)b;
    st->mean_wl = ml / (double)b;
    if (need_grad_l) {
        for (int64_t i = 0; i < b; i++) d->scale[i] = 1.0f; /* per-sample ∂l_i/∂x_i: samples are independent */
        if (wb_backward(g, l, wb_from_host(g, 1, &b, d->scale))) return -1;
        wb_grad_to_host(xt_leaf, d->grad_l);
    }

    /* (c) g = w_s·(s_fake − s_teacher) − w_l·∇_x l, then the time weighting */
    double gnorm = 0;
    for (int64_t i = 0; i < b; i++) {
        float s2 = d->sigma[i] * d->sigma[i];
        float tw = 1.0f;
        if (d->time_weight == WB_TIME_DMD) {
            double mad = 0;
            for (int64_t j = 0; j < dim; j++) mad += fabs(d->x0[i * dim + j] - d->d_teacher[i * dim + j]);
            mad /= (double)dim;
            tw = (float)(s2 / (mad > 1e-8 ? mad : 1e-8));
        } else if (d->time_weight == WB_TIME_SIGMA2) {
            tw = s2;
        }
        for (int64_t j = 0; j < dim; j++) {
            int64_t k = i * dim + j;
            float gs = d->score_free ? 0.0f : d->w_s[i] * (d->d_fake[k] - d->d_teacher[k]) / s2;
            float gl = need_grad_l ? d->w_l[i] * d->grad_l[k] : 0.0f;
            d->grad[k] = tw * (gs - gl) / (float)n; /* /n: the surrogate is a mean */
            gnorm += (double)d->grad[k] * d->grad[k];
        }
    }
    st->gen_grad = sqrt(gnorm) * (double)n;
    if (check_finite(d->grad, n, step, "generator gradient g~")) return -1;

    /* (d) the surrogate loss through G (and, with w_GAN, through the ratio estimator) */
    wb_graph_reset(g);
    wb_graph_set_grad(g, 1);
    trainable(d, d->gen->params);
    x0 = generate(d, d->gen, d->z);
    wb_tensor *loss = wb_sum(g, wb_mul(g, x0, wb_from_host(g, d->ndim, d->shape, d->grad)));
    if (c->gan_weight > 0) {
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < dim; j++) d->buf2[i * dim + j] = d->sigma[i] * d->noise[i * dim + j];
        wb_tensor *x_noisy = wb_add(g, x0, wb_from_host(g, d->ndim, d->shape, d->buf2));
        wb_tensor *lg = ratio_logit(d, x_noisy, wb_from_host(g, 1, &b, d->sigma));
        loss = wb_add(g, loss, wb_scale(g, wb_mean(g, wb_softplus(g, wb_scale(g, lg, -1.0f))), c->gan_weight));
    }
    wb_params_zero_grad(d->gen->params);
    if (!loss || wb_backward(g, loss, NULL)) return -1;
    if (!isfinite(wb_params_grad_norm(d->gen->params))) {
        wb_set_error("distill step %lld: generator parameter gradient is not finite", (long long)step);
        return -1;
    }
    wb_adam_step(d->opt_gen);
    return 0;
}

/* ---- 2. fake-score update: EDM DSM on sg(x_0) --------------------------------- */
int distill_fake_step(distiller *d, int64_t step, int fresh, step_stats *st) {
    int64_t b = d->b, dim = d->dim, n = b * dim;
    wb_graph *g = d->g;
    if (fresh) { /* later updates of k > 1 draw new student samples */
        wb_graph_reset(g);
        wb_graph_set_grad(g, 0);
        wb_rng_normal(&d->rng_z, d->z, n);
        wb_tensor *x0 = generate(d, d->gen, d->z);
        if (!x0) return -1;
        wb_to_host(x0, d->x0);
    }
    wb_rng_normal(&d->rng_fake, d->sigma, b);
    for (int64_t i = 0; i < b; i++) d->sigma[i] = expf(-1.2f + 1.2f * d->sigma[i]);
    wb_rng_normal(&d->rng_fake, d->noise, n);
    for (int64_t i = 0; i < b; i++) {
        float s2 = d->sigma[i] * d->sigma[i];
        d->scale[i] = (s2 + SIGMA_DATA * SIGMA_DATA) / (s2 * SIGMA_DATA * SIGMA_DATA);
        for (int64_t j = 0; j < dim; j++) d->xt[i * dim + j] = d->x0[i * dim + j] + d->sigma[i] * d->noise[i * dim + j];
    }
    wb_graph_reset(g);
    wb_graph_set_grad(g, 1);
    trainable(d, d->fake->params);
    int64_t lam_shape[4] = {b, 1, 1, 1};
    wb_tensor *den = wb_net_denoise(d->fake, g, wb_from_host(g, d->ndim, d->shape, d->xt), wb_from_host(g, 1, &b, d->sigma), NULL, NULL);
    wb_tensor *loss = wb_mean(g, wb_mul(g, wb_square(g, wb_sub(g, den, wb_from_host(g, d->ndim, d->shape, d->x0))),
                                        wb_from_host(g, d->ndim, lam_shape, d->scale)));
    wb_params_zero_grad(d->fake->params);
    if (!loss || wb_backward(g, loss, NULL)) return -1;
    float v;
    wb_to_host(loss, &v);
    if (!isfinite(v)) {
        wb_set_error("distill step %lld: fake-score DSM loss is %g", (long long)step, (double)v);
        return -1;
    }
    st->fake_loss = v;
    wb_adam_step(d->opt_fake);
    return 0;
}

/* ---- 3. ratio-estimator update: BCE, real = 1, student = 0 -------------------- */
int distill_ratio_step(distiller *d, int64_t step, int fresh, step_stats *st) {
    int64_t b = d->b, dim = d->dim, n = b * dim, b2 = 2 * b;
    wb_graph *g = d->g;
    if (fresh) {
        wb_graph_reset(g);
        wb_graph_set_grad(g, 0);
        wb_rng_normal(&d->rng_z, d->z, n);
        wb_tensor *x0 = generate(d, d->gen, d->z);
        if (!x0) return -1;
        wb_to_host(x0, d->x0);
    }
    d->ds->sample(d->ds, &d->rng_data, b, d->x_real);
    draw_sigma(d, b2, d->sigma2);
    float *noise2 = malloc((size_t)(2 * n) * sizeof(float)), *target = malloc((size_t)b2 * sizeof(float));
    if (!noise2 || !target) {
        free(noise2);
        free(target);
        return -1;
    }
    wb_rng_normal(&d->rng_ratio, noise2, 2 * n);
    for (int64_t i = 0; i < b2; i++) {
        const float *src = i < b ? d->x_real + i * dim : d->x0 + (i - b) * dim;
        for (int64_t j = 0; j < dim; j++) d->buf2[i * dim + j] = src[j] + d->sigma2[i] * noise2[i * dim + j];
        target[i] = i < b ? 1.0f : 0.0f;
    }
    wb_graph_reset(g);
    wb_graph_set_grad(g, 1);
    trainable(d, d->ratio_params);
    wb_tensor *l = ratio_logit(d, wb_from_host(g, d->ndim, d->shape2, d->buf2), wb_from_host(g, 1, &b2, d->sigma2));
    wb_tensor *loss = wb_bce_logits(g, l, wb_from_host(g, 1, &b2, target));
    wb_params_zero_grad(d->ratio_params);
    if (d->backbone) wb_params_zero_grad(d->backbone->params);
    int rc = 0;
    if (!loss || wb_backward(g, loss, NULL)) rc = -1;
    if (!rc) {
        float v, *lh = malloc((size_t)b2 * sizeof(float));
        wb_to_host(loss, &v);
        wb_to_host(l, lh);
        int correct = 0;
        for (int64_t i = 0; i < b2; i++) correct += (lh[i] > 0) == (target[i] > 0.5f);
        free(lh);
        if (!isfinite(v)) {
            wb_set_error("distill step %lld: ratio-estimator BCE loss is %g", (long long)step, (double)v);
            rc = -1;
        } else {
            st->ratio_loss = v;
            st->ratio_acc = (double)correct / (double)b2;
            if (wb_params_count(d->ratio_params) > 0) wb_adam_step(d->opt_ratio);
            if (d->opt_backbone) wb_adam_step(d->opt_backbone);
        }
    }
    free(noise2);
    free(target);
    return rc;
}
