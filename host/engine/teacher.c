/* host/engine/teacher.c — the EDM teacher: denoising score matching on a dataset
 * (DESIGN §1.6), the analytic teacher of a Gaussian mixture, and the Heun
 * sampler (EDM Algorithm 1, deterministic, 18 steps = 35 evaluations).
 *
 *   x_0 ~ data (B, D)   ln σ ~ N(P_mean, P_std²) (B)   n ~ N(0, I)
 *   loss = mean( λ(σ) · (D(x_0 + σ·n, σ) − x_0)² ),  λ = (σ²+σd²)/(σ·σd)²
 *
 * The teacher is the EMA of the trained weights (EDM's practice).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dp.h"
#include "engine/engine.h"
#include "engine/options.h"
#include "engine/metrics.h"
#include "engine/run.h"
#include "engine/train_state.h"
#include "core/escape.h"
#include "core/wb_internal.h"
#include "wb/safetensors.h"

#define SIGMA_DATA 0.5f
#define STREAM_TEACHER_INIT 11
#define STREAM_TEACHER_DATA 12
#define STREAM_TEACHER_SIGMA 13
#define STREAM_TEACHER_NOISE 14
#define STREAM_SAMPLER 15

/* The defaults are the option rows' (host/engine/options.c). */
void wb_teacher_config_default(wb_teacher_config *c) { wb_options_defaults(&wb_teacher_options, c); }

/* Batch shape of data with geometry s: (B, D) for vectors, (B, C, H, W) for images. */
int wb_batch_shape(const wb_net_shape *s, int64_t batch, int64_t shape[4]) {
    shape[0] = batch;
    if (s->height == 1 && s->width == 1) {
        shape[1] = s->channels;
        return 2;
    }
    shape[1] = s->channels;
    shape[2] = s->height;
    shape[3] = s->width;
    return 4;
}

wb_config_owned *wb_config_copy(const wb_config_owned *src) {
    wb_config_owned *c = wb_config_new(src->desc);
    if (c) memcpy(c->values, src->values, (size_t)src->desc->n_params * sizeof *c->values);
    return c;
}

/* wb_run_samples' sampler: the teacher's Heun samples. */
static int heun_samples(void *teacher, int64_t n, uint64_t seed, float *out) {
    return wb_teacher_sample(teacher, n, WB_HEUN_STEPS, seed, out);
}

/* EMA with warm-up: early on the average would be dominated by the random
 * initialisation, so the decay ramps up as (1+t)/(10+t). */
static float ema_decay_at(float decay, int64_t step) {
    float warm = (1.0f + (float)step) / (10.0f + (float)step);
    return warm < decay ? warm : decay;
}

static const char *precond_name(wb_precond p) { return p == WB_PRECOND_VP ? "vp" : p == WB_PRECOND_VE ? "ve" : "edm"; }

/* A checkpoint's weights are trained for one preconditioning: its "precond"
 * metadata (absent: EDM's, as before VP/VE existed) must be the teacher's. */
static int check_precond(const char *path, wb_precond want) {
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) { /* the loader reports the file's own problem */
        wb_clear_error();
        return 0;
    }
    const char *have = wb_safetensors_meta(f, "precond");
    int rc = 0;
    if (strcmp(have ? have : "edm", precond_name(want)) != 0) {
        char safe[128]; /* the file's bytes, escaped for the message */
        wb_escape(have ? have : "edm", safe, sizeof safe);
        wb_set_error("%s was trained with precond = \"%s\"%s, this teacher has \"%s\": set precond = \"%s\"", path,
                     safe, have ? "" : " (no precond recorded: EDM's)", precond_name(want), safe);
        rc = -1;
    }
    wb_safetensors_close(f);
    return rc;
}

/* A class-conditional checkpoint (it has the label embedding) loaded into a
 * net built without labels would lose that layer without a word: refused,
 * saying which label_dim to give. -1 with the error set when it is one. */
static int conditional_checkpoint(const char *path, const wb_named_params *as_teacher) {
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) {
        wb_clear_error(); /* the load that follows reports what is wrong with the file */
        return 0;
    }
    char key[128];
    int ndim = 0, found = 0;
    int64_t shape[WB_MAX_DIMS] = {0};
    const char *prefixes[] = {as_teacher->prefix, "gen_ema."};
    for (int i = 0; i < 2 && !found; i++) {
        snprintf(key, sizeof key, "%smap_label.weight", prefixes[i]);
        found = wb_safetensors_shape(f, key, WB_ST_F32, &ndim, shape) == 0;
    }
    wb_safetensors_close(f);
    wb_clear_error();
    if (!found) return 0;
    wb_set_error("teacher init: %s is class-conditional (%s: %lld classes) but the teacher has no labels: give "
                 "label_dim = %lld",
                 path, key, (long long)(ndim == 2 ? shape[1] : 0), (long long)(ndim == 2 ? shape[1] : 0));
    return -1;
}

wb_teacher *wb_teacher_train(wb_dataset *ds, const wb_netspec *spec, const wb_teacher_config *cfg, wb_run *run) {
    if (cfg->steps < 0 || cfg->batch < 1) {
        wb_set_error("teacher: steps (%lld) must be >= 0 and batch (%lld) >= 1", (long long)cfg->steps,
                     (long long)cfg->batch);
        return NULL;
    }
    if (cfg->label_dim > 0 && cfg->steps > 0) {
        wb_set_error("teacher: label_dim = %d (a class-conditional net) is loaded, not trained: the data carry no "
                     "labels yet; give init = a converted checkpoint and steps = 0",
                     cfg->label_dim);
        return NULL;
    }
    const wb_backend *be = cfg->backend ? cfg->backend : wb_backend_select(NULL);
    if (!be) return NULL;
    wb_teacher *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->be = be;
    t->shape = ds->shape;
    t->shape.label_dim = cfg->label_dim;
    snprintf(t->source, sizeof t->source, "%s", run ? run->dir : cfg->init && cfg->init[0] ? cfg->init : "memory");
    snprintf(t->dataset, sizeof t->dataset, "%s", ds->name);
    t->single_sigma = cfg->single_sigma;
    t->spec.desc = spec->desc;
    t->spec.cfg = wb_config_copy(spec->cfg);
    wb_rng init_rng;
    wb_rng_init(&init_rng, cfg->seed, STREAM_TEACHER_INIT);
    t->net = wb_net_new(&t->spec, &t->shape, t->be, &init_rng);
    if (!t->net) {
        wb_teacher_free(t);
        return NULL;
    }
    t->net->precond = (wb_precond)cfg->precond;
    if (cfg->init && cfg->init[0]) {
        /* A teacher checkpoint ("teacher." keys) or a student's ("gen_ema."):
         * any trained denoiser of the same architecture can be a start. */
        wb_named_params as_teacher = {"teacher.", t->net->params}, as_student = {"gen_ema.", t->net->params};
        if (wb_net_check_checkpoint(t->net, cfg->init) || check_precond(cfg->init, t->net->precond)) {
            wb_set_error("teacher init: %s", wb_last_error());
            wb_teacher_free(t);
            return NULL;
        }
        if (!t->shape.label_dim && conditional_checkpoint(cfg->init, &as_teacher)) {
            wb_teacher_free(t);
            return NULL;
        }
        if (wb_safetensors_load(cfg->init, &as_teacher, 1, 1)) {
            char first[600];
            snprintf(first, sizeof first, "%s", wb_last_error());
            if (wb_safetensors_load(cfg->init, &as_student, 1, 1)) {
                wb_set_error("teacher init: %s (as a student checkpoint: %s)", first, wb_last_error());
                wb_teacher_free(t);
                return NULL;
            }
        }
    }
    wb_start_mode start_mode = WB_START_FRESH;
    int64_t start_step = 0;
    /* data parallel (engine/dp.h): this rank's shards of every batch */
    wb_dp dp;
    if (wb_dp_init(&dp, cfg->comm, "teacher", cfg->batch, cfg->reduction, cfg->shards, cfg->hash_every)) {
        wb_teacher_free(t);
        return NULL;
    }
    if (run) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "kind", "teacher");
        cJSON_AddStringToObject(root, "backend", wb_backend_name(t->be));
        cJSON_AddStringToObject(root, "dataset", ds->name);
        cJSON_AddItemToObject(root, "net", wb_net_json(t->net, spec->cfg));
        wb_options_record(&wb_teacher_options, cfg, root); /* one number per row of engine/options.c */
        cJSON_AddStringToObject(root, "init", cfg->init && cfg->init[0] ? cfg->init : "random");
        int64_t n_params = 0; /* the tensors' sizes: wb_params_numel counts the flat buffer's padding too */
        for (int i = 0; i < wb_params_count(t->net->params); i++) n_params += wb_params_at(t->net->params, i)->numel;
        cJSON_AddNumberToObject(root, "parameters", (double)n_params);
        int rc = wb_dp_run_start(&dp, run, root, cfg->resume, cfg->steps, &start_mode, &start_step);
        cJSON_Delete(root);
        if (rc) {
            wb_dp_free(&dp);
            wb_teacher_free(t);
            return NULL;
        }
    }
    wb_params *ema = wb_params_clone(t->net->params);
    wb_adam *opt = wb_adam_new(t->net->params, cfg->lr, 0.9f, 0.999f, 1e-8f, 0.0f, 0);
    wb_graph *g = wb_graph_new(t->be);
    int64_t b = cfg->batch, dim = ds->dim, shape[4];
    int ndim = wb_batch_shape(&ds->shape, b, shape);
    float *x0 = malloc((size_t)(b * dim) * sizeof(float)), *xt = malloc((size_t)(b * dim) * sizeof(float));
    float *noise = malloc((size_t)(b * dim) * sizeof(float)), *sigma = malloc((size_t)b * sizeof(float));
    float *lam = malloc((size_t)b * sizeof(float));
    wb_rng data_rng, sigma_rng, noise_rng;
    wb_rng_init(&data_rng, cfg->seed, STREAM_TEACHER_DATA);
    wb_rng_init(&sigma_rng, cfg->seed, STREAM_TEACHER_SIGMA);
    wb_rng_init(&noise_rng, cfg->seed, STREAM_TEACHER_NOISE);
    double t0 = wb_now_seconds(), loss_acc = 0, loss_n = 0, seconds_done = 0, final_loss = 0;
    int failed = !ema || !opt || !g || !x0 || !xt || !noise || !sigma || !lam;
    /* what a checkpoint holds: the live weights, the EMA (the teacher so far,
     * under "teacher." like a finished run's), Adam, every random stream,
     * the loss accumulated since the last log line */
    wb_train_state ts = {0}, done_ts = {0};
    wb_explode_guard loss_guard;
    wb_explode_init(&loss_guard);
    int64_t last_checkpoint = 0;
    if (!failed && (wb_state_num(&ts, "guard.best", &loss_guard.best) ||
                    wb_state_num(&ts, "guard.best_step", &loss_guard.best_step)))
        failed = 1;
    if (!failed && (wb_state_store(&ts, "train.", t->net->params) || wb_state_store(&ts, "teacher.", ema) ||
                    wb_state_opt(&ts, "adam", opt) || wb_state_rng(&ts, "data", &data_rng) ||
                    wb_state_rng(&ts, "sigma", &sigma_rng) || wb_state_rng(&ts, "noise", &noise_rng) ||
                    wb_state_net_rngs(&ts, "net", t->net) || wb_state_num(&ts, "loss_acc", &loss_acc) ||
                    wb_state_num(&ts, "loss_n", &loss_n) || wb_state_num(&ts, "final_loss", &final_loss) ||
                    wb_state_num(&ts, "seconds", &seconds_done) || wb_state_store(&done_ts, "teacher.", t->net->params) ||
                    wb_state_num(&done_ts, "final_loss", &final_loss) || wb_state_num(&done_ts, "seconds", &seconds_done)))
        failed = 1;
    int finished_before = 0; /* loaded from its finished checkpoint, not trained again */
    if (!failed && start_mode == WB_START_DONE) {
        if (wb_state_load(run, &done_ts, 1)) {
            wb_set_error("teacher resume: %s", wb_last_error());
            failed = 1;
        } else {
            finished_before = 1;
            t->final_loss = (float)final_loss;
            t->train_seconds = seconds_done;
        }
    }
    if (!failed && start_mode == WB_START_CONTINUE && wb_state_load(run, &ts, 0)) {
        wb_set_error("teacher resume: %s", wb_last_error());
        failed = 1;
    }
    if (!failed) t->final_loss = (float)final_loss;
    /* every rank starts from rank 0's weights (a fresh init is the same
     * anyway; a loaded one must be); the Adam state is fresh or the same file's */
    wb_params *dp_stores[2] = {t->net->params, ema};
    if (!failed && wb_dp_broadcast(&dp, dp_stores, 2)) failed = 1;
    wb_dp_streams shard_streams = {0};
    if (!failed && wb_dp_streams_add_net(&shard_streams, t->net)) failed = 1;
    t0 -= seconds_done; /* the clock goes on from the checkpoint's */
    double t_checkpoint = wb_now_seconds();
    const int64_t stop_test_step = wb_stop_test_step();
    wb_progress prog;
    wb_progress_start(&prog, "teacher (DSM)", cfg->steps - start_step,
                      !failed && !finished_before && !cfg->quiet && !(run && run->quiet) && dp.rank == 0);
    for (int64_t step = start_step + 1; step <= cfg->steps && !failed && !finished_before; step++) {
        ds->sample(ds, &data_rng, b, x0);
        if (cfg->single_sigma > 0) {
            for (int64_t i = 0; i < b; i++) sigma[i] = cfg->single_sigma;
        } else {
            wb_rng_normal(&sigma_rng, sigma, b);
            for (int64_t i = 0; i < b; i++) sigma[i] = expf(cfg->p_mean + cfg->p_std * sigma[i]);
        }
        wb_rng_normal(&noise_rng, noise, b * dim);
        for (int64_t i = 0; i < b; i++) {
            for (int64_t j = 0; j < dim; j++) xt[i * dim + j] = x0[i * dim + j] + sigma[i] * noise[i * dim + j];
            float s2 = sigma[i] * sigma[i];
            lam[i] = (s2 + SIGMA_DATA * SIGMA_DATA) / (s2 * SIGMA_DATA * SIGMA_DATA);
        }
        /* this rank's shards of the batch: rows [row0, row0 + rows), loss
         * scaled by rows/b so the shards' gradients sum to the batch's */
        double shard_loss[64];
        float loss_value = NAN;
        wb_dp_streams_save(&shard_streams);
        for (int k = 0; k < dp.mine && !failed; k++) {
            int64_t row0, rows;
            wb_dp_rows(&dp, k, &row0, &rows);
            if (k > 0) wb_dp_streams_restore(&shard_streams);
            wb_graph_reset(g);
            wb_graph_set_rows(g, b, row0, rows);
            int64_t lam_shape[4] = {rows, 1, 1, 1}, rows_shape[4];
            memcpy(rows_shape, shape, sizeof rows_shape);
            rows_shape[0] = rows;
            wb_tensor *d = wb_net_denoise(t->net, g, wb_from_host(g, ndim, rows_shape, xt + row0 * dim),
                                          wb_from_host(g, 1, &rows, sigma + row0), NULL, NULL);
            wb_tensor *loss =
                wb_mean(g, wb_mul(g, wb_square(g, wb_sub(g, d, wb_from_host(g, ndim, rows_shape, x0 + row0 * dim))),
                                  wb_from_host(g, ndim, lam_shape, lam + row0)));
            if (rows != b) loss = wb_scale(g, loss, (float)rows / (float)b);
            wb_params_zero_grad(t->net->params);
            if (!loss || wb_backward(g, loss, NULL) || wb_dp_collect(&dp, k, dp_stores, 1)) {
                wb_set_error("teacher step %lld: %s", (long long)step, wb_last_error());
                failed = 1;
                break;
            }
            float v = NAN;
            wb_to_host(loss, &v);
            shard_loss[k] = v;
        }
        if (failed) break;
        double loss_sum = shard_loss[0];
        if (wb_dp_reduce(&dp, dp_stores, 1) || wb_dp_sum(&dp, shard_loss, 1, &loss_sum)) {
            wb_set_error("teacher step %lld: %s", (long long)step, wb_last_error());
            failed = 1;
            break;
        }
        loss_value = (float)loss_sum;
        if (!isfinite(loss_value)) {
            wb_set_error("teacher step %lld: DSM loss is %g (lower lr?)", (long long)step, loss_value);
            wb_note_resume_point(run, last_checkpoint);
            failed = 1;
            break;
        }
        wb_adam_step(opt);
        wb_ema_update(ema, t->net->params, ema_decay_at(cfg->ema_decay, step));
        if (wb_dp_check_same(&dp, step, dp_stores, 2)) {
            failed = 1;
            break;
        }
        loss_acc += loss_value;
        loss_n++;
        if ((cfg->log_every > 0 && step % cfg->log_every == 0) || step == cfg->steps) {
            double mean_loss = loss_acc / (double)loss_n;
            /* comm_seconds: data parallel only (time inside the reductions so far) */
            wb_log_value logged[] = {{"loss", mean_loss, WB_LOG_G6, 0},
                                     {"seconds", wb_now_seconds() - t0, WB_LOG_F3, 0},
                                     {"comm_seconds", dp.world > 1 ? wb_dp_comm_seconds(&dp) : NAN, WB_LOG_F3, 1}};
            if (wb_run_log(run, step, logged, 3)) {
                failed = 1;
                break;
            }
            t->final_loss = (float)mean_loss;
            final_loss = mean_loss;
            if (wb_explode_check(&loss_guard, cfg->explode, mean_loss, step, "the DSM loss")) {
                wb_set_error("teacher %s", wb_last_error());
                wb_note_resume_point(run, last_checkpoint);
                failed = 1;
                break;
            }
            loss_acc = 0;
            loss_n = 0;
        }
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", (double)loss_value);
        wb_progress_update(&prog, step - start_step, extra);
        /* a checkpoint on the clock, or on a stop request (then stop) */
        int stop = step < cfg->steps ? wb_stop_due(step, stop_test_step) : 0;
        if (step < cfg->steps && wb_dp_agree(&dp, &stop)) { /* every rank stops at the same step */
            failed = 1;
            break;
        }
        if (run && step < cfg->steps &&
            (stop || wb_checkpoint_due(step, cfg->checkpoint_every, cfg->checkpoint_minutes, t_checkpoint))) {
            seconds_done = wb_now_seconds() - t0;
            if (wb_state_save(run, &ts, step, 0, NULL, 0)) {
                wb_set_error("teacher step %lld: checkpoint: %s", (long long)step, wb_last_error());
                failed = 1;
                break;
            }
            t_checkpoint = wb_now_seconds();
            last_checkpoint = step;
        }
        if (stop) {
            wb_dp_barrier(&dp); /* rank 0's checkpoint is whole before any rank ends the job */
            wb_stop_error(run, "teacher training", step, cfg->steps, stop);
            failed = 1;
            break;
        }
    }
    if (!failed && !finished_before) {
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", (double)t->final_loss);
        wb_progress_end(&prog, extra);
        wb_params_copy(t->net->params, ema); /* the teacher IS the EMA */
        t->train_seconds = seconds_done = wb_now_seconds() - t0;
        if (run) { /* the checkpoint, and for images a Heun sample grid (2-D: no figure) */
            char *resolved = wb_net_describe(t->net);
            const char *meta[] = {"kind", "teacher", "net", spec->desc->name, "precond", precond_name(t->net->precond),
                                  "net_resolved", resolved};
            wb_run_samples grid = {.sample = heun_samples, .user = t, .data = ds, .grid = cfg->grid};
            if (wb_state_save(run, &done_ts, cfg->steps, 1, meta, resolved ? 4 : 3) || wb_run_write_samples(run, &grid))
                failed = 1;
            free(resolved);
        }
    } else if (prog.enabled) {
        fprintf(stderr, "\n");
    }
    free(x0);
    free(xt);
    free(noise);
    free(sigma);
    free(lam);
    wb_dp_free(&dp);
    wb_graph_free(g);
    wb_adam_free(opt);
    wb_params_free(ema);
    if (failed) {
        wb_teacher_free(t);
        return NULL;
    }
    return t;
}

wb_teacher *wb_teacher_exact(wb_dataset *ds, const wb_backend *be) {
    if (!ds->gmm) {
        wb_set_error("exact teacher: dataset '%s' has no analytic density", ds->name);
        return NULL;
    }
    if (!be && !(be = wb_backend_select(NULL))) return NULL;
    wb_teacher *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->be = be;
    t->exact = ds->gmm;
    t->shape = ds->shape;
    snprintf(t->source, sizeof t->source, "exact");
    snprintf(t->dataset, sizeof t->dataset, "%s", ds->name);
    return t;
}

void wb_teacher_free(wb_teacher *t) {
    if (!t) return;
    wb_net_free(t->net);
    wb_config_free(t->spec.cfg);
    free(t);
}

int wb_teacher_denoise(wb_teacher *t, wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor **out) {
    return wb_teacher_denoise_labels(t, g, x, sigma, NULL, out);
}

int wb_teacher_denoise_labels(wb_teacher *t, wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor *labels,
                              wb_tensor **out) {
    if (labels && (!t->net || t->shape.label_dim <= 0)) {
        wb_set_error("teacher denoise: labels given, but the teacher is not class-conditional (label_dim 0)");
        return -1;
    }
    if (t->net) {
        *out = wb_net_denoise(t->net, g, x, sigma, labels, NULL);
        return *out ? 0 : -1;
    }
    int64_t n = x->shape[0];
    float *hx = malloc((size_t)x->numel * sizeof(float)), *hs = malloc((size_t)n * sizeof(float));
    float *hd = malloc((size_t)x->numel * sizeof(float));
    wb_to_host(x, hx);
    wb_to_host(sigma, hs);
    wb_gmm_denoise(t->exact, n, hx, hs, hd);
    *out = wb_from_host(g, x->ndim, x->shape, hd);
    free(hx);
    free(hs);
    free(hd);
    return *out ? 0 : -1;
}

int wb_teacher_sample(wb_teacher *t, int64_t n, int steps, uint64_t seed, float *out) {
    if (steps < 1) {
        wb_set_error("teacher sample: steps must be >= 1");
        return -1;
    }
    const double sigma_min = 0.002, sigma_max = 80.0, rho = 7.0;
    double *ts = malloc((size_t)(steps + 1) * sizeof(double));
    for (int i = 0; i < steps; i++) {
        double a = pow(sigma_max, 1.0 / rho), z = pow(sigma_min, 1.0 / rho);
        ts[i] = pow(a + (steps > 1 ? (double)i / (steps - 1) : 0.0) * (z - a), rho);
    }
    ts[steps] = 0.0;
    int64_t dim = (int64_t)t->shape.channels * t->shape.height * t->shape.width;
    const int64_t chunk = 4096;
    wb_rng rng;
    wb_rng_init(&rng, seed, STREAM_SAMPLER);
    wb_graph *g = wb_graph_new(t->be);
    wb_graph_set_grad(g, 0);
    float *x = malloc((size_t)(chunk * dim) * sizeof(float)), *d = malloc((size_t)(chunk * dim) * sizeof(float));
    float *xn = malloc((size_t)(chunk * dim) * sizeof(float)), *sig = malloc((size_t)chunk * sizeof(float));
    int rc = 0;
    for (int64_t start = 0; start < n && !rc; start += chunk) {
        int64_t b = n - start < chunk ? n - start : chunk, shape[4];
        int ndim = wb_batch_shape(&t->shape, b, shape);
        wb_rng_normal(&rng, x, b * dim);
        for (int64_t k = 0; k < b * dim; k++) x[k] *= (float)ts[0];
        for (int i = 0; i < steps && !rc; i++) {
            double tc = ts[i], tn = ts[i + 1];
            wb_graph_reset(g);
            for (int64_t k = 0; k < b; k++) sig[k] = (float)tc;
            wb_tensor *den;
            if (wb_teacher_denoise(t, g, wb_from_host(g, ndim, shape, x), wb_from_host(g, 1, &b, sig), &den)) {
                rc = -1;
                break;
            }
            wb_to_host(den, d);
            /* Euler step with slope d_i = (x − D)/t, then Heun's correction */
            for (int64_t k = 0; k < b * dim; k++) xn[k] = x[k] + (float)((tn - tc) * (x[k] - d[k]) / tc);
            if (tn > 0) {
                wb_graph_reset(g);
                for (int64_t k = 0; k < b; k++) sig[k] = (float)tn;
                wb_tensor *den2;
                if (wb_teacher_denoise(t, g, wb_from_host(g, ndim, shape, xn), wb_from_host(g, 1, &b, sig), &den2)) {
                    rc = -1;
                    break;
                }
                float *d2 = malloc((size_t)(b * dim) * sizeof(float));
                wb_to_host(den2, d2);
                for (int64_t k = 0; k < b * dim; k++) {
                    double s1 = (x[k] - d[k]) / tc, s2 = (xn[k] - d2[k]) / tn;
                    xn[k] = (float)(x[k] + (tn - tc) * 0.5 * (s1 + s2));
                }
                free(d2);
            }
            memcpy(x, xn, (size_t)(b * dim) * sizeof(float));
        }
        memcpy(out + start * dim, x, (size_t)(b * dim) * sizeof(float));
    }
    free(ts);
    free(x);
    free(d);
    free(xn);
    free(sig);
    wb_graph_free(g);
    return rc;
}
