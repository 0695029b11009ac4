/* host/engine/distill.c — one-step distillation: the three updates of DESIGN §1.5
 * driven by any divergence plugin's w_s(l), w_l(l) and any ratio estimator.
 *
 * One iteration (B = batch, D = data dims):
 *  1. generator θ:   z (B,D) → x_0 = G_θ(z) = D_θ(σ_init·z, σ_init)
 *                    x_t = sg(x_0) + σ·n,  l = l_η(x_t)  (+ ∇_x l if w_l ≢ 0)
 *                    g = w_s(l)·(s_fake − s_teacher)(x_t) − w_l(l)·∇_x l
 *                    g̃ = time weighting of g (DMD: σ²/mean|x_0 − D_teacher|)
 *                    loss = Σ x_0·sg(g̃)/(B·D)  [≡ ½·mean‖x_0 − sg(x_0 − g̃)‖²]
 *                           + w_GAN·mean softplus(−l(x_0 + σ·n))
 *  2. fake score ψ:  k × EDM DSM on sg(x_0)                (score-based only)
 *  3. ratio η:       BCE(l(x_real,t), 1) + BCE(l(sg(x_0)_t), 0)
 *
 * Every quantity that could go non-finite is checked; the error names the
 * step and the quantity, and files written earlier are left untouched.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/options.h"
#include "engine/metrics.h"
#include "core/wb_internal.h"
#include "engine/distill_step.h"
#include "engine/run.h"
#include "engine/train_state.h"

/* The defaults are the option rows' (host/engine/options.c). */
void wb_distill_config_default(wb_distill_config *c) { wb_options_defaults(&wb_distill_options, c); }

/* EMA with warm-up (as for the teacher): decay ramps up as (1+t)/(10+t). */
static float ema_decay_warm(float decay, int64_t step) {
    float warm = (1.0f + (float)step) / (10.0f + (float)step);
    return warm < decay ? warm : decay;
}

/* ---- setup, loop, teardown --------------------------------------------------------- */
static void distiller_free(distiller *d) {
    wb_adam_free(d->opt_gen);
    wb_adam_free(d->opt_fake);
    wb_adam_free(d->opt_ratio);
    wb_adam_free(d->opt_backbone);
    if (d->ratio_self) d->ratio->destroy(d->ratio_self);
    wb_params_free(d->ratio_params);
    wb_net_free(d->fake);
    wb_net_free(d->backbone);
    wb_graph_free(d->g);
    wb_graph_free(d->keep);
    wb_dp_free(&d->dp);
    float *bufs[] = {d->x_real, d->sigma, d->logit, d->w_s, d->w_l, d->w_both, d->logit2, d->logit_mine};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

void wb_student_free(wb_student *s) {
    if (!s) return;
    wb_net_free(s->gen);
    wb_params_free(s->ema);
    free(s->log_step);
    free(s->log_mmd);
    free(s->log_value);
    free(s->log_ratio_loss);
    free(s->log_fake_loss);
    free(s->log_ratio_acc);
    free(s->eval_step);
    free(s->eval_value);
    free(s);
}

static const char *time_weight_name(wb_time_weight t) {
    return t == WB_TIME_DMD ? "dmd" : t == WB_TIME_SIGMA2 ? "sigma2" : t == WB_TIME_NONE ? "none" : "auto";
}

static int write_config(distiller *d, wb_run *run, wb_start_mode *mode, int64_t *step) {
    const wb_distill_config *c = d->cfg;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "kind", "distill");
    cJSON_AddStringToObject(root, "backend", wb_backend_name(d->be));
    cJSON_AddStringToObject(root, "dataset", d->ds->name);
    cJSON_AddItemToObject(root, "divergence", wb_plugin_json(c->divergence, c->divergence_cfg));
    cJSON *ratio = wb_plugin_json(c->ratio, c->ratio_cfg);
    if (d->backbone) cJSON_AddItemToObject(ratio, "net", wb_net_json(d->backbone, c->ratio_net.cfg));
    cJSON_AddItemToObject(root, "ratio", ratio);
    cJSON_AddItemToObject(root, "generator_net", wb_net_json(d->gen, d->teacher->net ? d->teacher->spec.cfg : c->gen_net.cfg));
    cJSON_AddStringToObject(root, "teacher", d->teacher->net ? "trained" : "exact");
    /* which teacher: students of different teachers must not share a row */
    cJSON_AddStringToObject(root, "teacher_source", d->teacher->source);
    cJSON_AddStringToObject(root, "teacher_dataset", d->teacher->dataset);
    cJSON_AddNumberToObject(root, "teacher_single_sigma", d->teacher->single_sigma);
    cJSON_AddStringToObject(root, "init", c->init_from_teacher ? "teacher" : "none");
    if (d->backbone) {
        cJSON_AddStringToObject(root, "ratio_init", c->ratio_init_from_teacher ? "teacher" : "random");
        if (c->ratio_init_from_teacher) {
            char from[48];
            snprintf(from, sizeof from, "%d of %d", d->ratio_init_copied, d->ratio_init_total);
            cJSON_AddStringToObject(root, "ratio_init_tensors", from);
        }
    }
    cJSON_AddStringToObject(root, "time_weight", time_weight_name(d->time_weight));
    /* a joint estimator has no update of its own: say what ratio_updates meant */
    if (d->ratio->trains_fake_jointly)
        cJSON_AddStringToObject(root, "ratio_training",
                                "joint with the fake score (L_fake = DSM + weight*BCE, in every fake update); "
                                "ratio_updates is ignored: the estimator has no parameters of its own");
    /* the option numbers, one per row of engine/options.c, as the run used
     * them: σ_fixed resolved, eval_every only with an on_eval */
    wb_distill_config used = *c;
    used.sigma_fixed = d->sigma_fixed;
    used.eval_every = c->on_eval ? c->eval_every : 0;
    wb_options_record(&wb_distill_options, &used, root);
    /* R1's rows are recorded only when it is on, so a run without it keeps
     * the config.json (and the `workbench table` group) it always had */
    if (c->r1 > 0) {
        cJSON_AddNumberToObject(root, "r1", c->r1);
        cJSON_AddNumberToObject(root, "r1_sigma", c->r1_sigma);
    }
    int rc = wb_dp_run_start(&d->dp, run, root, c->resume, c->steps, mode, step);
    cJSON_Delete(root);
    return rc;
}

/* wb_run_samples' sampler: one-step samples of the EMA generator. */
static int ema_samples(void *student, int64_t n, uint64_t seed, float *out) {
    return wb_student_sample(student, n, seed, 1, out);
}

static int log_point(wb_student *s, int64_t step, double mmd, const step_stats *st) {
    int i = s->n_log++;
    float **arrs[] = {&s->log_step, &s->log_mmd, &s->log_value, &s->log_ratio_loss, &s->log_fake_loss, &s->log_ratio_acc};
    for (size_t k = 0; k < sizeof arrs / sizeof arrs[0]; k++) {
        float *p = realloc(*arrs[k], (size_t)s->n_log * sizeof(float));
        if (!p) return -1;
        *arrs[k] = p;
    }
    s->log_step[i] = (float)step;
    s->log_mmd[i] = (float)mmd;
    s->log_value[i] = (float)st->div_value;
    s->log_ratio_loss[i] = (float)st->ratio_loss;
    s->log_fake_loss[i] = (float)st->fake_loss;
    s->log_ratio_acc[i] = (float)st->ratio_acc;
    return 0;
}

static int eval_point(wb_student *s, int64_t step, double value) {
    float *a = realloc(s->eval_step, (size_t)(s->n_eval + 1) * sizeof(float));
    if (!a) return -1;
    s->eval_step = a;
    float *b = realloc(s->eval_value, (size_t)(s->n_eval + 1) * sizeof(float));
    if (!b) return -1;
    s->eval_value = b;
    s->eval_step[s->n_eval] = (float)step;
    s->eval_value[s->n_eval] = (float)value;
    s->n_eval++;
    return 0;
}

wb_student *wb_distill(wb_teacher *teacher, wb_dataset *ds, const wb_distill_config *c, wb_run *run) {
    if (!c->divergence || c->divergence->kind != WB_KIND_DIVERGENCE) {
        wb_set_error("distill: no divergence plugin given");
        return NULL;
    }
    if (!c->ratio || c->ratio->kind != WB_KIND_RATIO) {
        wb_set_error("distill: no ratio-estimator plugin given");
        return NULL;
    }
    if (c->steps < 0 || c->batch < 1 || c->batch > 4096 || c->fake_updates < 1 || c->ratio_updates < 1) {
        wb_set_error("distill: need steps >= 0, 1 <= batch <= 4096, fake_updates >= 1, ratio_updates >= 1");
        return NULL;
    }
    if (!(c->sigma_init > 0) || !(c->t_min >= 0 && c->t_min <= c->t_max && c->t_max <= 1)) {
        wb_set_error("distill: need sigma_init > 0 and 0 <= t_min <= t_max <= 1");
        return NULL;
    }
    const wb_netspec *gen_spec = teacher->net ? &teacher->spec : &c->gen_net;
    if (!gen_spec->desc) {
        wb_set_error("distill: the teacher is exact (no net): give the generator's net");
        return NULL;
    }
    if (c->init_from_teacher && !teacher->net) {
        wb_set_error("distill: init = \"teacher\" needs a trained teacher net (this teacher is exact); use init = \"none\"");
        return NULL;
    }
    /* the teacher denoises the data's samples: the geometries must agree (an
     * exact 2-D teacher given images would denoise 2 of every 784 values) */
    const wb_net_shape *tsh = &teacher->shape, *dsh = &ds->shape;
    if (tsh->channels != dsh->channels || tsh->height != dsh->height || tsh->width != dsh->width) {
        wb_set_error("distill: the teacher (%s, samples %d×%d×%d) and the data (%s, samples %d×%d×%d) differ in shape",
                     teacher->dataset, tsh->channels, tsh->height, tsh->width, ds->name, dsh->channels, dsh->height,
                     dsh->width);
        return NULL;
    }
    const wb_backend *be = c->backend ? c->backend : teacher->be;
    if (!be) {
        wb_set_error("distill: the teacher has no backend");
        return NULL;
    }
    if (teacher->net && wb_params_backend(teacher->net->params) != be) {
        wb_set_error("distill: backend \"%s\" asked for, but the teacher lives on \"%s\" (give both the same backend)",
                     wb_backend_name(be), wb_backend_name(wb_params_backend(teacher->net->params)));
        return NULL;
    }
    wb_backend_clear(be); /* a run starts with no stale flags */
    distiller dd, *d = &dd;
    memset(d, 0, sizeof *d);
    d->cfg = c;
    d->be = be;
    d->teacher = teacher;
    d->ds = ds;
    d->div = c->divergence->divergence;
    d->div_cfg = &c->divergence_cfg->cfg;
    d->score_free = d->div->score_free;
    d->time_weight = c->time_weight;
    d->sigma_fixed = c->sigma_fixed;
    if (d->time_weight == WB_TIME_AUTO) {
        d->time_weight = d->score_free ? WB_TIME_SIGMA2 : WB_TIME_DMD;
        if (d->score_free && !(d->sigma_fixed > 0)) d->sigma_fixed = 2.5f;
    }
    d->b = d->batch = c->batch;
    d->dim = ds->dim;
    d->ndim = wb_batch_shape(&ds->shape, d->b, d->shape);
    wb_batch_shape(&ds->shape, 2 * d->b, d->shape2);
    wb_student *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->sigma_init = c->sigma_init;
    s->be = be;
    s->shape = ds->shape;
    int failed = 0;

    wb_rng rng;
    wb_rng_init(&rng, c->seed, STREAM_GEN_INIT);
    s->gen = wb_net_new(gen_spec, &ds->shape, be, &rng);
    if (!s->gen || (c->init_from_teacher && wb_params_copy(s->gen->params, teacher->net->params))) failed = 1;
    /* the generator and the fake score start as the teacher: its preconditioning too */
    if (s->gen && teacher->net) s->gen->precond = teacher->net->precond;
    d->gen = s->gen;
    if (!failed && !d->score_free) {
        wb_rng_init(&rng, c->seed, STREAM_FAKE_INIT);
        d->fake = wb_net_new(gen_spec, &ds->shape, be, &rng);
        if (!d->fake || (teacher->net && wb_params_copy(d->fake->params, teacher->net->params))) failed = 1;
        if (d->fake && teacher->net) d->fake->precond = teacher->net->precond;
    }
    /* The teacher is frozen: its weights never get gradients. Backward still
     * runs through it to the input (∇_x l for a head on its features), but
     * not into its weights — a third of its backward cost, and gradients
     * that would pile up unused. Made trainable again on the way out. */
    if (teacher->net) wb_params_set_trainable(teacher->net->params, 0);
    wb_ratio_env env = {.data = ds->shape, .teacher = teacher->net, .fake = d->fake, .backend = be};
    if (!failed && c->ratio->ratio->wants_backbone) {
        if (!c->ratio_net.desc) {
            wb_set_error("distill: ratio estimator '%s' needs a backbone net (ratio = {\"%s\", net = {\"mlp\"}})",
                         c->ratio->name, c->ratio->name);
            failed = 1;
        } else {
            wb_net_shape bs = ds->shape;
            bs.out_channels = 1;
            wb_rng_init(&rng, c->seed, STREAM_RATIO_INIT);
            d->backbone = wb_net_new(&c->ratio_net, &bs, be, &rng);
            env.backbone = d->backbone;
            if (!d->backbone) failed = 1;
            if (!failed && c->ratio_init_from_teacher) {
                int total = wb_params_count(d->backbone->params);
                d->ratio_init_copied = teacher->net ? wb_params_copy_matching(d->backbone->params, teacher->net->params) : 0;
                if (d->ratio_init_copied == 0) {
                    wb_set_error("distill: ratio_init = \"teacher\": the %s backbone shares no weight (same name and shape) "
                                 "with the teacher's net%s", c->ratio_net.desc->name, teacher->net ? "" : " (the teacher is exact)");
                    failed = 1;
                }
                d->ratio_init_total = total;
            }
        }
    }
    /* a joint estimator (fake-encoder) is the fake-score net's own: the
     * score-free path has none to train */
    if (!failed && c->ratio->ratio->trains_fake_jointly && d->score_free) {
        wb_set_error("distill: ratio estimator '%s' is the fake-score net's encoder, trained jointly with it, but "
                     "divergence '%s' is score-free (trains no fake-score net): use `classifier` or `gan-head` with "
                     "features = \"teacher\"", c->ratio->name, c->divergence->name);
        failed = 1;
    }
    if (!failed && !teacher->net && !c->ratio->ratio->wants_backbone) {
        wb_set_error("distill: ratio estimator '%s' reads teacher features, but the teacher is exact (no net)", c->ratio->name);
        failed = 1;
    }
    if (!failed) {
        d->ratio = c->ratio->ratio;
        d->ratio_params = wb_params_new(be);
        char err[512] = {0};
        d->ratio_self = d->ratio->create(&c->ratio_cfg->cfg, &env, d->ratio_params, err, sizeof err);
        if (!d->ratio_self) {
            wb_set_error("ratio estimator '%s': %s", c->ratio->name, err[0] ? err : wb_last_error());
            failed = 1;
        } else {
            wb_rng_init(&rng, c->seed, STREAM_RATIO_INIT + 100);
            if (wb_params_finalize(d->ratio_params, &rng)) failed = 1;
            if (!failed && d->ratio->trains_fake_jointly) {
                double w = d->ratio->fake_loss_weight(d->ratio_self);
                if (!isfinite(w) || w < 0 || wb_params_count(d->ratio_params) > 0) {
                    wb_set_error("ratio estimator '%s': a joint estimator needs a finite weight >= 0 (got %g) and no "
                                 "parameters of its own (has %d)", c->ratio->name, w, wb_params_count(d->ratio_params));
                    failed = 1;
                }
                d->joint_weight = (float)w;
            }
        }
    }
    if (!failed) {
        s->ema = wb_params_clone(s->gen->params);
        d->opt_gen = wb_adam_new(s->gen->params, c->lr_gen, c->beta1, 0.999f, 1e-8f, 0, 0);
        if (d->fake) d->opt_fake = wb_adam_new(d->fake->params, c->lr_fake, c->beta1, 0.999f, 1e-8f, 0, 0);
        d->opt_ratio = wb_adam_new(d->ratio_params, c->lr_ratio, c->beta1, 0.999f, 1e-8f, 0, 0);
        if (d->backbone) d->opt_backbone = wb_adam_new(d->backbone->params, c->lr_ratio, c->beta1, 0.999f, 1e-8f, 0, 0);
        d->g = wb_graph_new(be);
        d->keep = wb_graph_new(be);
        /* this rank's shards of the batch (engine/dp.h); sg(x_0) kept per shard */
        if (wb_dp_init(&d->dp, c->comm, "distill", c->batch, c->reduction, c->shards, c->hash_every)) failed = 1;
        for (int k = 0; !failed && d->keep && k < d->dp.mine; k++) {
            int64_t row0, rows, shape[4];
            wb_dp_rows(&d->dp, k, &row0, &rows);
            memcpy(shape, d->shape, sizeof shape);
            shape[0] = rows;
            if (!(d->x0_keeps[k] = wb_new(d->keep, d->ndim, shape))) failed = 1;
        }
        d->x0_keep = d->x0_keeps[0];
        d->logit_mine = calloc((size_t)d->b, sizeof(float));
        d->x_real = calloc((size_t)(d->b * d->dim), sizeof(float));
        float **small[] = {&d->sigma, &d->logit, &d->w_s, &d->w_l};
        for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) *small[i] = calloc((size_t)d->b, sizeof(float));
        d->w_both = calloc((size_t)(2 * d->b), sizeof(float));
        d->logit2 = calloc((size_t)(2 * d->b), sizeof(float));
        if (!failed && (!s->ema || !d->opt_gen || !d->opt_ratio || !d->g || !d->x0_keep || !d->x_real || !d->sigma ||
                        !d->logit || !d->w_s || !d->w_l || !d->w_both || !d->logit2 || !d->logit_mine)) {
            wb_set_error("distill: out of memory");
            failed = 1;
        }
    }
    wb_start_mode start_mode = WB_START_FRESH;
    int64_t start_step = 0;
    if (!failed && run && write_config(d, run, &start_mode, &start_step)) failed = 1;

    wb_rng_init(&d->rng_z, c->seed, STREAM_Z);
    wb_rng_init(&d->rng_sigma, c->seed, STREAM_SIGMA);
    wb_rng_init(&d->rng_noise, c->seed, STREAM_NOISE);
    wb_rng_init(&d->rng_fake, c->seed, STREAM_FAKE);
    wb_rng_init(&d->rng_ratio, c->seed, STREAM_RATIO);
    wb_rng_init(&d->rng_data, c->seed, STREAM_DATA);
    wb_rng_init(&d->rng_r1, c->seed, STREAM_R1);
    /* what a shard restores (engine/dp.h): every stream the three updates draw from */
    wb_rng *step_streams[] = {&d->rng_z, &d->rng_sigma, &d->rng_noise, &d->rng_fake, &d->rng_ratio, &d->rng_data};
    for (size_t i = 0; i < sizeof step_streams / sizeof step_streams[0]; i++)
        if (wb_dp_streams_add(&d->streams, step_streams[i])) failed = 1;
    /* R1's stream only when R1 is on: without it a run and its checkpoints are as before */
    if (c->r1 > 0 && wb_dp_streams_add(&d->streams, &d->rng_r1)) failed = 1;
    if (wb_dp_streams_add_net(&d->streams, d->gen) || wb_dp_streams_add_net(&d->streams, d->fake) ||
        wb_dp_streams_add_net(&d->streams, d->backbone) || wb_dp_streams_add_net(&d->streams, teacher->net))
        failed = 1;

    float *eval_ref = NULL, *eval_x = NULL;
    wb_mmd_means eval_ref_means = {0}; /* the reference's own kernel term: the same at every log point */
    if (!failed && c->eval_samples > 0) {
        eval_ref = malloc((size_t)(c->eval_samples * d->dim) * sizeof(float));
        eval_x = malloc((size_t)(c->eval_samples * d->dim) * sizeof(float));
        if (!eval_ref || !eval_x) {
            wb_set_error("distill: out of memory for %lld evaluation samples", (long long)c->eval_samples);
            failed = 1;
        }
    }
    if (!failed && eval_x) {
        wb_rng er;
        wb_rng_init(&er, c->seed, STREAM_EVAL);
        ds->sample(ds, &er, c->eval_samples, eval_ref);
        wb_mmd_kernel_means(eval_ref, c->eval_samples, eval_ref, c->eval_samples, (int)d->dim, &eval_ref_means);
    }
    /* The teacher's own streams (dropout, when backward runs through it for
     * ∇_x l) start from this run's seed, not from where an earlier student
     * of the same teacher left them: each run is the same whether or not
     * others ran before it (a resumed script skips finished ones). */
    wb_rng teacher_streams_before[8];
    int n_teacher_streams = 0;
    wb_rng *teacher_streams = NULL;
    if (teacher->net && teacher->net->desc->net->random_streams) {
        teacher_streams = teacher->net->desc->net->random_streams(teacher->net->self, &n_teacher_streams);
        if (n_teacher_streams > 8) n_teacher_streams = 8;
        for (int i = 0; i < n_teacher_streams; i++) {
            teacher_streams_before[i] = teacher_streams[i];
            wb_rng_init(&teacher_streams[i], c->seed, STREAM_TEACHER_NET + (uint64_t)i);
        }
    }
    step_stats st = {0};
    double seconds_done = 0, steps_done = 0;
    /* what a checkpoint holds (train_state.h): every net, optimiser and
     * random stream of the three updates, the curves, the last scalars */
    wb_train_state ts = {0}, done_ts = {0};
    if (!failed) {
        wb_named_params weights[] = {{"gen.", s->gen->params},
                                     {"gen_ema.", s->ema},
                                     {"ratio.", d->ratio_params},
                                     {"fake.", d->fake ? d->fake->params : NULL},
                                     {"ratio_net.", d->backbone ? d->backbone->params : NULL}};
        for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++)
            if (wb_state_store(&ts, weights[i].prefix, weights[i].params) ||
                wb_state_store(&done_ts, weights[i].prefix, weights[i].params))
                failed = 1;
        struct { const char *name; wb_adam *opt; } opts[] = {
            {"gen", d->opt_gen}, {"fake", d->opt_fake}, {"ratio", d->opt_ratio}, {"ratio_net", d->opt_backbone}};
        for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
            if (wb_state_opt(&ts, opts[i].name, opts[i].opt)) failed = 1;
        struct { const char *name; wb_rng *rng; } rngs[] = {{"z", &d->rng_z},         {"sigma", &d->rng_sigma},
                                                          {"noise", &d->rng_noise}, {"fake", &d->rng_fake},
                                                          {"ratio", &d->rng_ratio}, {"data", &d->rng_data}};
        for (size_t i = 0; i < sizeof rngs / sizeof rngs[0]; i++)
            if (wb_state_rng(&ts, rngs[i].name, rngs[i].rng)) failed = 1;
        if (c->r1 > 0 && wb_state_rng(&ts, "r1", &d->rng_r1)) failed = 1;
        if (wb_state_net_rngs(&ts, "gen_net", d->gen) || wb_state_net_rngs(&ts, "fake_net", d->fake) ||
            wb_state_net_rngs(&ts, "ratio_net", d->backbone) || wb_state_net_rngs(&ts, "teacher_net", teacher->net))
            failed = 1;
        struct { const char *name; double *value; } nums[] = {
            {"div_value", &st.div_value},   {"mean_ws", &st.mean_ws},       {"mean_wl", &st.mean_wl},
            {"gen_grad", &st.gen_grad},     {"fake_loss", &st.fake_loss},   {"ratio_loss", &st.ratio_loss},
            {"ratio_acc", &st.ratio_acc}};
        for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
            if (wb_state_num(&ts, nums[i].name, nums[i].value)) failed = 1;
        struct { const char *name; float **values; int *n; } logs[] = {
            {"step", &s->log_step, &s->n_log},           {"mmd", &s->log_mmd, &s->n_log},
            {"value", &s->log_value, &s->n_log},         {"ratio_loss", &s->log_ratio_loss, &s->n_log},
            {"fake_loss", &s->log_fake_loss, &s->n_log}, {"ratio_acc", &s->log_ratio_acc, &s->n_log},
            {"eval_step", &s->eval_step, &s->n_eval},    {"eval", &s->eval_value, &s->n_eval}};
        for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++)
            if (wb_state_log(&ts, logs[i].name, logs[i].values, logs[i].n) ||
                wb_state_log(&done_ts, logs[i].name, logs[i].values, logs[i].n))
                failed = 1;
        if (wb_state_num(&ts, "seconds", &seconds_done) || wb_state_num(&done_ts, "seconds", &seconds_done) ||
            wb_state_num(&done_ts, "steps_done", &steps_done))
            failed = 1;
    }
    /* the numbers guard: logged losses against their best (train_state.h) */
    wb_explode_guard guard_fake, guard_grad;
    wb_explode_init(&guard_fake);
    wb_explode_init(&guard_grad);
    if (!failed && (wb_state_num(&ts, "guard.fake.best", &guard_fake.best) ||
                    wb_state_num(&ts, "guard.fake.best_step", &guard_fake.best_step) ||
                    wb_state_num(&ts, "guard.grad.best", &guard_grad.best) ||
                    wb_state_num(&ts, "guard.grad.best_step", &guard_grad.best_step)))
        failed = 1;
    int64_t last_checkpoint = 0;
    int stopped = 0;
    int finished_before = 0;
    if (!failed && start_mode != WB_START_FRESH) {
        if (wb_state_load(run, start_mode == WB_START_DONE ? &done_ts : &ts, start_mode == WB_START_DONE)) {
            wb_set_error("distill resume: %s", wb_last_error());
            failed = 1;
        } else if (start_mode == WB_START_DONE) { /* finished before: loaded, not trained again */
            finished_before = 1;
            s->steps_done = (int64_t)steps_done;
            start_step = c->steps;
        } else {
            s->steps_done = start_step;
        }
    }
    /* every rank starts from rank 0's weights */
    wb_params *dp_stores[] = {s->gen->params, s->ema, d->fake ? d->fake->params : NULL, d->ratio_params,
                              d->backbone ? d->backbone->params : NULL};
    const int n_dp_stores = (int)(sizeof dp_stores / sizeof dp_stores[0]);
    if (!failed && wb_dp_broadcast(&d->dp, dp_stores, n_dp_stores)) failed = 1;
    char label[64];
    snprintf(label, sizeof label, "distill %s", c->divergence->name);
    wb_progress prog;
    wb_progress_start(&prog, label, c->steps - start_step,
                      !failed && !finished_before && !c->quiet && !(run && run->quiet) && d->dp.rank == 0);
    double t0 = wb_now_seconds() - seconds_done; /* a resumed run's clock goes on from its checkpoint's */
    double t_checkpoint = wb_now_seconds();
    const int64_t stop_test_step = wb_stop_test_step();
    for (int64_t step = start_step + 1; step <= c->steps && !failed; step++) {
        /* a log or evaluation point: the updates hand their scalars down */
        int eval_now = c->on_eval && c->eval_every > 0 && (step % c->eval_every == 0 || step == c->steps);
        d->log_now = (c->log_every > 0 && step % c->log_every == 0) || step == c->steps || eval_now;
        if (distill_generator_step(d, step, &st)) {
            if (strncmp(wb_last_error(), "distill step", 12) != 0)
                wb_set_error("distill step %lld (generator update): %s", (long long)step, wb_last_error());
            failed = 1;
            break;
        }
        wb_ema_update(s->ema, s->gen->params, ema_decay_warm(c->ema_decay, step));
        if (wb_params_check_finite(s->gen->params, 0, "the generator's weights (lower lr?)")) failed = 1;
        for (int k = 0; !d->score_free && k < c->fake_updates && !failed; k++)
            if (distill_fake_step(d, step, k > 0, &st)) failed = 1;
        for (int k = 0; k < c->ratio_updates && !d->ratio->trains_fake_jointly && !failed; k++)
            if (distill_ratio_step(d, step, k > 0 || (!d->score_free && c->fake_updates > 1), &st)) failed = 1;
        /* once a step: wait for the backend, then its sticky error or the
         * first NaN/inf the step's checks flagged, in the order they ran */
        if (!failed && wb_backend_sync(d->be)) failed = 1;
        if (failed) {
            if (strncmp(wb_last_error(), "distill step", 12) != 0)
                wb_set_error("distill step %lld: %s", (long long)step, wb_last_error());
            break;
        }
        s->steps_done = step;
        if (wb_dp_check_same(&d->dp, step, dp_stores, n_dp_stores)) {
            failed = 1;
            break;
        }
        double eval_value = NAN;
        int evaluated = 0;
        if (eval_now) {
            double te = wb_now_seconds();
            if (c->on_eval(c->eval_user, s, step, &eval_value)) {
                if (strncmp(wb_last_error(), "distill step", 12) != 0)
                    wb_set_error("distill step %lld (evaluation): %s", (long long)step, wb_last_error());
                failed = 1;
                break;
            }
            if (eval_point(s, step, eval_value)) {
                wb_set_error("distill: out of memory");
                failed = 1;
                break;
            }
            evaluated = 1;
            t0 += wb_now_seconds() - te; /* evaluation is not training time */
        }
        if ((c->log_every > 0 && step % c->log_every == 0) || step == c->steps || evaluated) {
            double mmd = NAN;
            if (eval_x) {
                wb_student_sample(s, c->eval_samples, c->seed + 7, 1, eval_x);
                mmd = wb_mmd_rbf_ex(eval_x, c->eval_samples, eval_ref, c->eval_samples, (int)d->dim, &eval_ref_means, NULL);
            }
            log_point(s, step, mmd, &st);
            if ((!d->score_free && wb_explode_check(&guard_fake, c->explode, st.fake_loss, step, "the fake score's DSM loss")) ||
                wb_explode_check(&guard_grad, c->explode, st.gen_grad, step, "the generator's gradient norm")) {
                wb_set_error("distill %s", wb_last_error());
                failed = 1;
                break;
            }
            /* mmd and eval: optional, only what was measured at this step */
            wb_log_value logged[] = {
                {"seconds", wb_now_seconds() - t0, WB_LOG_F3, 0}, {"divergence_value", st.div_value, WB_LOG_G6, 0},
                {"mean_w_s", st.mean_ws, WB_LOG_G6, 0},          {"mean_w_l", st.mean_wl, WB_LOG_G6, 0},
                {"gen_grad_norm", st.gen_grad, WB_LOG_G6, 0},    {"fake_loss", st.fake_loss, WB_LOG_G6, 0},
                {"ratio_loss", st.ratio_loss, WB_LOG_G6, 0},     {"ratio_acc", st.ratio_acc, WB_LOG_F4, 0},
                {"mmd", mmd, WB_LOG_G6, 1},                      {"eval", eval_value, WB_LOG_G6, 1},
                {"comm_seconds", d->dp.world > 1 ? wb_dp_comm_seconds(&d->dp) : NAN, WB_LOG_F3, 1},
            };
            if (wb_run_log(run, step, logged, (int)(sizeof logged / sizeof logged[0]))) {
                failed = 1;
                break;
            }
        }
        char extra[96];
        snprintf(extra, sizeof extra, "bce %.3f acc %.2f D %.3g", st.ratio_loss, st.ratio_acc, st.div_value);
        wb_progress_update(&prog, step - start_step, extra);
        /* a checkpoint on the clock, or on a stop request (then stop) */
        int stop = step < c->steps ? wb_stop_due(step, stop_test_step) : 0;
        if (step < c->steps && wb_dp_agree(&d->dp, &stop)) { /* every rank stops at the same step */
            failed = 1;
            break;
        }
        if (run && step < c->steps && (stop || wb_checkpoint_due(step, c->checkpoint_every, c->checkpoint_minutes, t_checkpoint))) {
            seconds_done = wb_now_seconds() - t0;
            if (wb_state_save(run, &ts, step, 0, NULL, 0)) {
                wb_set_error("distill step %lld: checkpoint: %s", (long long)step, wb_last_error());
                failed = 1;
                break;
            }
            t_checkpoint = wb_now_seconds();
            last_checkpoint = step;
        }
        if (stop) {
            wb_dp_barrier(&d->dp); /* rank 0's checkpoint is whole before any rank ends the job */
            wb_stop_error(run, "distillation", step, c->steps, stop);
            stopped = 1;
            failed = 1;
            break;
        }
    }
    if (!failed && !finished_before) wb_progress_end(&prog, NULL);
    else if (failed && prog.enabled) fprintf(stderr, "\n");
    if (failed) wb_backend_clear(be); /* what a failed step left flagged is explained by its error */
    if (failed && !stopped && start_step < c->steps && strncmp(wb_last_error(), "distill step", 12) == 0)
        wb_note_resume_point(run, last_checkpoint); /* a step failed (NaN, inf, explosion): where to go on from */
    s->train_seconds = finished_before ? seconds_done : wb_now_seconds() - t0;
    if (!failed && run && !finished_before) { /* the checkpoint, and samples.png: a grid for images, a scatter for 2-D data */
        seconds_done = s->train_seconds;
        steps_done = (double)s->steps_done;
        char steps[32], title[128];
        snprintf(steps, sizeof steps, "%lld", (long long)s->steps_done);
        char *resolved = wb_net_describe(s->gen);
        const char *meta[] = {"kind", "distill", "divergence", c->divergence->name, "steps", steps,
                              "net_resolved", resolved};
        snprintf(title, sizeof title, "%s (%lld steps)", c->divergence->name, (long long)s->steps_done);
        wb_rng data_rng;
        wb_rng_init(&data_rng, c->seed + 1, STREAM_EVAL);
        wb_run_samples fig = {.sample = ema_samples, .user = s, .data = ds, .title = title, .label = "student",
                              .sample_seed = c->seed + 3, .data_rng = &data_rng, .grid = c->grid};
        if (wb_state_save(run, &done_ts, s->steps_done, 1, meta, resolved ? 4 : 3) || wb_run_write_samples(run, &fig))
            failed = 1;
        free(resolved);
    }
    free(eval_ref);
    free(eval_x);
    distiller_free(d);
    if (teacher->net) wb_params_set_trainable(teacher->net->params, 1);
    for (int i = 0; i < n_teacher_streams; i++) teacher_streams[i] = teacher_streams_before[i];
    if (failed) {
        wb_student_free(s);
        return NULL;
    }
    return s;
}

int wb_student_sample(wb_student *s, int64_t n, uint64_t seed, int use_ema, float *out) {
    int64_t dim = (int64_t)s->shape.channels * s->shape.height * s->shape.width;
    const int64_t chunk = 4096;
    wb_graph *g = wb_graph_new(s->be);
    if (!g) return -1;
    wb_graph_set_grad(g, 0);
    wb_params *live = NULL;
    if (use_ema) { /* swap the EMA weights in for sampling */
        live = wb_params_clone(s->gen->params);
        wb_params_copy(s->gen->params, s->ema);
    }
    wb_rng rng;
    wb_rng_init(&rng, seed, STREAM_Z + 1000);
    float *z = malloc((size_t)(chunk * dim) * sizeof(float)), *sig = malloc((size_t)chunk * sizeof(float));
    int rc = 0;
    for (int64_t start = 0; start < n; start += chunk) {
        int64_t b = n - start < chunk ? n - start : chunk, shape[4];
        int ndim = wb_batch_shape(&s->shape, b, shape);
        wb_rng_normal(&rng, z, b * dim);
        for (int64_t k = 0; k < b * dim; k++) z[k] *= s->sigma_init;
        for (int64_t k = 0; k < b; k++) sig[k] = s->sigma_init;
        wb_graph_reset(g);
        wb_tensor *x = wb_net_denoise(s->gen, g, wb_from_host(g, ndim, shape, z), wb_from_host(g, 1, &b, sig), NULL, NULL);
        if (!x) {
            rc = -1;
            break;
        }
        wb_to_host(x, out + start * dim);
    }
    if (live) {
        wb_params_copy(s->gen->params, live);
        wb_params_free(live);
    }
    free(z);
    free(sig);
    wb_graph_free(g);
    return rc;
}
