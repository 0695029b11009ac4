/* host/engine/engine.h — the workbench engine: datasets, net instances, teacher
 * training (EDM DSM), the Heun sampler, one-step distillation with any
 * divergence / ratio-estimator plugin, low-dimensional evaluation, and run
 * directories (what goes into them: engine/run.h). The Lua layer
 * (host/cli/lua_wb.c) is a thin binding over this.
 *
 * Every function returns 0 / non-NULL on success and otherwise leaves a
 * message in wb_last_error() naming the key, file or step at fault.
 */
#ifndef WB_ENGINE_H
#define WB_ENGINE_H

#include <stdio.h>

#include "wb/atomic_file.h" /* wb_write_file_atomic */
#include "core/registry.h"
#include "wb/plugin.h"

/* ---- datasets -------------------------------------------------------------- */
#define WB_GMM_MAX_MODES 64
typedef struct wb_gmm {
    int n_modes;
    double means[WB_GMM_MAX_MODES][2];
    double weights[WB_GMM_MAX_MODES]; /* sum to 1 */
    double std;                        /* isotropic std of every mode */
} wb_gmm;

typedef struct wb_dataset {
    char name[64];
    wb_net_shape shape; /* vectors: channels = D, height = width = 1 */
    int64_t dim;        /* floats per sample */
    /* n samples into out (n·dim floats), deterministic in rng */
    int (*sample)(struct wb_dataset *ds, wb_rng *rng, int64_t n, float *out);
    void (*destroy)(struct wb_dataset *ds);
    const wb_gmm *gmm;  /* set for analytic 2-D mixtures, else NULL */
} wb_dataset;

/* Presets: "ring8", "ring8-imbalanced", "grid25". scale multiplies the
 * layout (radius / spacing); std is each mode's std. */
wb_dataset *wb_gmm2d_new(const char *preset, double scale, double std);
void wb_dataset_free(wb_dataset *ds);
/* Exact EDM denoiser of a GMM: E[x0 | x_t = x, σ] (what a perfect teacher
 * computes). x and out are (n, 2); sigma (n). */
void wb_gmm_denoise(const wb_gmm *gmm, int64_t n, const float *x, const float *sigma, float *out);
/* log p_σ(x) of the noisy mixture, for tests and the exact ratio. */
double wb_gmm_log_density(const wb_gmm *gmm, const float *x, float sigma);

/* ---- nets ---------------------------------------------------------------------- */
typedef struct wb_netspec {
    const wb_plugin_desc *desc;
    wb_config_owned *cfg; /* owned by the spec */
} wb_netspec;

/* Instantiate a net plugin on backend be: create, finalize params from rng. */
wb_net *wb_net_new(const wb_netspec *spec, const wb_net_shape *shape, const wb_backend *be, wb_rng *rng);
void wb_net_free(wb_net *net);

/* Batch shape of data with geometry s: (B, D) for vectors, (B, C, H, W)
 * for images; returns the rank. */
int wb_batch_shape(const wb_net_shape *s, int64_t batch, int64_t shape[4]);
wb_config_owned *wb_config_copy(const wb_config_owned *src);

/* Seed of the sample grids written into run directories: the same for every
 * run, so grids of different divergences show the same z, image for image. */
#define WB_GRID_SEED 20260101u

/* ---- runs ------------------------------------------------------------------------ */
typedef struct wb_run {
    char dir[1024];
    FILE *metrics;      /* metrics.jsonl, one JSON object per logged step */
    int quiet;          /* no progress line */
    /* what started the run, added to config.json by wb_run_write_config: set by
     * the host that runs a script ({"script": {"path", "crc32"}, "args":
     * {key: value}}), owned by the run and freed by wb_run_close; NULL: none */
    struct cJSON *origin;
    char *config_text;  /* config.json as written (compact), kept in checkpoints; owned */
    int rank;           /* data parallel: only rank 0 writes (the others read a checkpoint to resume) */
} wb_run;

/* mkdir -p: every missing component of path (an existing non-directory is
 * ENOTDIR); 0, or -1 with errno set. */
int wb_mkdir_p(const char *path);
/* Create DIR (and parents); fails if it cannot be created or written. A
 * fresh run: metrics.jsonl is truncated, an old results.json removed. */
/* Makes dir (mkdir -p) and takes it as the run's directory; nothing in it
 * is touched yet: the engine decides, through wb_run_start
 * (engine/train_state.h), whether the run starts fresh or resumes. */
int wb_run_open(wb_run *run, const char *dir);
/* Opens metrics.jsonl: empty (keep_bytes < 0), or cut back to keep_bytes
 * and appended to (a resume). */
int wb_run_begin_log(wb_run *run, int64_t keep_bytes);
/* A fresh start: removes what a previous run into this directory left
 * (checkpoint.safetensors, samples.png, results.json), so no
 * file can describe weights that no longer exist. */
int wb_run_clear_outputs(wb_run *run);
void wb_run_close(wb_run *run);
/* Merge n numbers into DIR/results.json (created if absent; other keys
 * kept; written atomically). A results.json that is not a JSON object is
 * an error naming it, and is left as it is. */
int wb_run_merge_results(const char *dir, const char *const *keys, const double *values, int n);
/* Progress line on stderr: "label  1234/5000  56.7 it/s  ETA 0:42  loss=..." */
typedef struct wb_progress {
    const char *label;
    int64_t total;
    double t_start, t_last_print;
    int enabled;
    int tty;            /* stderr is a terminal: redraw in place */
} wb_progress;
void wb_progress_start(wb_progress *p, const char *label, int64_t total, int enabled);
void wb_progress_update(wb_progress *p, int64_t done, const char *extra);
void wb_progress_end(wb_progress *p, const char *extra);
double wb_now_seconds(void);

/* ---- stop requests ----------------------------------------------------------------- */
/* A host's SIGINT/SIGTERM handler calls wb_stop_request(signo) (it only
 * stores the number: async-signal-safe). Training finishes the step it is
 * in, writes a checkpoint and fails with an error that says how to resume;
 * wb_stop_requested() is then the signal (0: none), for the host's exit
 * status. Process-wide, as signals are. */
void wb_stop_request(int signo);
int wb_stop_requested(void);
void wb_stop_clear(void);

/* ---- teacher ------------------------------------------------------------------------- */
typedef struct wb_teacher_config {
    int64_t steps, batch;
    float lr, ema_decay;
    uint64_t seed;
    float p_mean, p_std;   /* ln σ ~ N(p_mean, p_std²)                          */
    float single_sigma;    /* > 0: single-level DSM, trained only at this σ     */
    const char *init;      /* checkpoint to start from (teacher. or gen_ema. keys), or NULL */
    int quiet;             /* no progress line                                   */
    int log_every;
    const wb_backend *backend; /* NULL: wb_backend_select(NULL) ($WB_BACKEND, else cpu) */
    int grid;              /* images in a run's samples.png (image data); 0: no samples.png */
    int precond;           /* wb_precond: EDM (default), VP or VE — how D wraps the net */
    int label_dim;         /* > 0: a class-conditional net (EDM's label_dim); loaded only (steps 0) */
    int64_t checkpoint_every;  /* > 0: a resumable checkpoint every that many steps */
    float checkpoint_minutes;  /* > 0: ... and at least this often (wall clock)     */
    int resume;                /* continue the run directory's checkpoint, if any   */
    float explode;             /* > 0: stop when a logged loss exceeds explode × its best */
    int reduction;             /* data parallel: 0 fast, 1 deterministic (engine/dp.h) */
    int shards;                /* deterministic: the batch's fixed shards */
    int64_t hash_every;        /* ranks' parameters compared every this many steps (0: never) */
    struct wb_comm *comm;      /* the process's communicator (core/comm.h); NULL: one rank */
} wb_teacher_config;
void wb_teacher_config_default(wb_teacher_config *c);

typedef struct wb_teacher {
    wb_net *net;           /* EMA weights (what the teacher IS); NULL for exact */
    wb_netspec spec;       /* its architecture (own copy of the config)         */
    char source[1100];     /* run directory, init checkpoint, "exact" or "memory" */
    char dataset[64];      /* the data it was trained on (names carry class filters) */
    float single_sigma;    /* > 0: trained at that σ only                       */
    const wb_gmm *exact;   /* analytic denoiser instead of a net                */
    wb_net_shape shape;
    const wb_backend *be;  /* where its weights live; its students train there */
    double train_seconds;
    float final_loss;
} wb_teacher;

/* Train a teacher net on ds with EDM DSM; returns NULL on failure. */
wb_teacher *wb_teacher_train(wb_dataset *ds, const wb_netspec *net, const wb_teacher_config *cfg, wb_run *run);
/* The analytic teacher of a GMM dataset (its students train on be; NULL:
 * wb_backend_select(NULL)). */
wb_teacher *wb_teacher_exact(wb_dataset *ds, const wb_backend *be);
void wb_teacher_free(wb_teacher *t);
/* D_teacher(x, σ) on host buffers (n samples). */
int wb_teacher_denoise(wb_teacher *t, wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor **out);
/* The same with class labels (n, label_dim) one-hot rows for a conditional
 * teacher (labels NULL: none, as wb_teacher_denoise). */
int wb_teacher_denoise_labels(wb_teacher *t, wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor *labels,
                              wb_tensor **out);
/* EDM's deterministic Heun sampler at its default: 18 steps, 35 denoiser
 * evaluations (EDM Algorithm 1). The teacher's reference row, its sample
 * grids and wb.evaluate's teacher samples all use it. */
#define WB_HEUN_STEPS 18
/* EDM Heun sampler (steps = WB_HEUN_STEPS -> 35 evaluations), n samples into out. */
int wb_teacher_sample(wb_teacher *t, int64_t n, int steps, uint64_t seed, float *out);

/* ---- distillation ------------------------------------------------------------------------ */
/* AUTO: DMD for score-based divergences, σ² at σ_fixed (2.5 unless set)
 * for score-free ones, as in their papers. */
typedef enum { WB_TIME_AUTO = -1, WB_TIME_DMD = 0, WB_TIME_SIGMA2 = 1, WB_TIME_NONE = 2 } wb_time_weight;

typedef struct wb_student wb_student; /* below */

typedef struct wb_distill_config {
    const wb_plugin_desc *divergence;
    wb_config_owned *divergence_cfg;
    const wb_plugin_desc *ratio;
    wb_config_owned *ratio_cfg;
    wb_netspec ratio_net;      /* backbone for ratio plugins that want one; desc may be NULL */
    wb_netspec gen_net;        /* generator/fake architecture when the teacher has no net */
    const wb_backend *backend; /* NULL: the teacher's; another one is an error */
    int64_t steps, batch;
    float lr_gen, lr_fake, lr_ratio;
    float beta1;               /* Adam β1 of all three optimisers (β2 = 0.999) */
    int fake_updates;          /* k fake-score updates per generator update  */
    int ratio_updates;         /* ratio-estimator updates per generator update */
    float sigma_init;          /* G(z) = D(σ_init·z, σ_init)                  */
    wb_time_weight time_weight;
    float sigma_fixed;         /* > 0: σ for the generator loss fixed (score-free: 2.5) */
    float t_min, t_max;        /* Karras index range in [0, 1] when not fixed  */
    float gan_weight;          /* w_GAN·softplus(−l(G(z)_t)); 0 = off         */
    float r1;                  /* approximate R1: r1·mean((l(x_real,t + ε) − l(x_real,t))²)
                                  added to the discriminator's loss; 0 = off   */
    float r1_sigma;            /* ε ~ N(0, r1_sigma²·I), from its own seeded stream */
    int normalize_bins;        /* f-distill: ρ / mean ρ inside 10 σ-bins       */
    int normalize_batch;       /* f-distill: weight / its batch mean           */
    float logit_clamp;         /* > 0: clamp l to ±logit_clamp before weights  */
    float ema_decay;
    int init_from_teacher;     /* 0: generator from random init                */
    int ratio_init_from_teacher; /* backbone ratio estimators: start from the teacher's
                                    weights wherever name and shape match (the
                                    encoder of an encoder_only UNet)             */
    uint64_t seed;
    int log_every;
    int64_t eval_samples;      /* samples for the per-log MMD (0 = none)      */
    int quiet;                 /* no progress line                             */
    int grid;                  /* images in a run's samples.png; 0: no samples.png */
    /* Mid-run evaluation (metric against images seen): every eval_every
     * steps and after the last, on_eval(eval_user, student, step, &value) is
     * called with the student as it stands (sample it with use_ema = 1).
     * value (NaN: nothing to record) goes to the student's eval log and to
     * metrics.jsonl as "eval". Training state and RNG streams are untouched
     * and the time spent is left out of train_seconds, so a run trains the
     * same with or without it. A nonzero return stops the run; the callback
     * sets the error (wb_set_error). */
    int64_t eval_every;
    int (*on_eval)(void *eval_user, wb_student *student, int64_t step, double *value);
    void *eval_user;
    int64_t checkpoint_every;  /* > 0: a resumable checkpoint every that many steps */
    float checkpoint_minutes;  /* > 0: ... and at least this often (wall clock)     */
    int resume;                /* continue the run directory's checkpoint, if any   */
    float explode;             /* > 0: stop when a logged loss exceeds explode × its best */
    int reduction;             /* data parallel: 0 fast, 1 deterministic (engine/dp.h) */
    int shards;                /* deterministic: the batch's fixed shards */
    int64_t hash_every;        /* ranks' parameters compared every this many steps (0: never) */
    struct wb_comm *comm;      /* the process's communicator (core/comm.h); NULL: one rank */
} wb_distill_config;
void wb_distill_config_default(wb_distill_config *c);

struct wb_student {
    wb_net *gen;          /* live generator weights   */
    wb_params *ema;       /* EMA of gen->params       */
    const wb_backend *be; /* where both live          */
    float sigma_init;
    wb_net_shape shape;
    double train_seconds;
    int64_t steps_done;
    /* training curves, one point per log step */
    int n_log;
    float *log_step, *log_mmd, *log_value, *log_ratio_loss, *log_fake_loss, *log_ratio_acc;
    /* mid-run evaluations (wb_distill_config.on_eval), one point each */
    int n_eval;
    float *eval_step, *eval_value;
};

/* Runs the three updates of DESIGN §1.5 for cfg->steps iterations.
 * Returns NULL on failure; a NaN/inf anywhere stops with an error naming the
 * step and the quantity, and checkpoints already written are untouched. */
wb_student *wb_distill(wb_teacher *teacher, wb_dataset *ds, const wb_distill_config *cfg, wb_run *run);
void wb_student_free(wb_student *s);
/* One-step samples from the EMA generator (use_ema) or the live weights. */
int wb_student_sample(wb_student *s, int64_t n, uint64_t seed, int use_ema, float *out);

/* ---- evaluation (low-dimensional data) ------------------------------------------------- */
/* The RBF-kernel MMD of the 2-D metrics (DESIGN §5, "Metrics"): kernels
 * k_h(x, y) = exp(−‖x − y‖² / (2h²)) at WB_MMD_BANDWIDTHS bandwidths h
 * (data units: 0.05, 0.1, 0.2, 0.5, 1.0), biased (V-statistic) estimates
 * with every pair, i = j included:
 *   MMD_h² = mean_ij k_h(a_i, a_j) + mean_ij k_h(b_i, b_j) − 2 mean_ij k_h(a_i, b_j)
 *   MMD²   = the same with the kernel (1/H) Σ_h k_h  (= mean_h MMD_h² up to
 *            float rounding), each clipped at 0 before the square root. */
#define WB_MMD_BANDWIDTHS 5
/* Bandwidth h (0 … WB_MMD_BANDWIDTHS−1) and its result key ("mmd_bw005",
 * "mmd_bw01", "mmd_bw02", "mmd_bw05", "mmd_bw1"); NaN / NULL out of range. */
double wb_mmd_bandwidth(int h);
const char *wb_mmd_key(int h);
/* The three kernel means of an MMD estimate, one pass over the pairs: all =
 * Σ_ij Σ_h k_h / (na·nb·H), bw[h] = Σ_ij k_h / (na·nb). NaN when the
 * kernel's scratch row cannot be allocated. */
typedef struct wb_mmd_means {
    double all, bw[WB_MMD_BANDWIDTHS];
} wb_mmd_means;
void wb_mmd_kernel_means(const float *a, int64_t na, const float *b, int64_t nb, int dim, wb_mmd_means *out);
/* The combined MMD of a against b, and with per_bandwidth (NULL: not
 * wanted) each MMD_h. bb: b's own means (wb_mmd_kernel_means(b, nb, b, nb)),
 * for many evaluations against one reference — the same numbers bit for
 * bit as computing them here (NULL). NaN for an empty set. */
double wb_mmd_rbf_ex(const float *a, int64_t na, const float *b, int64_t nb, int dim, const wb_mmd_means *bb,
                     double per_bandwidth[WB_MMD_BANDWIDTHS]);
double wb_mmd_rbf(const float *a, int64_t na, const float *b, int64_t nb, int dim);

typedef struct wb_gmm_metrics {
    int modes_covered, n_modes;
    double mode_tv;       /* ½ Σ |share_k − w_k| over nearest-mode assignment */
    double quality;       /* share of samples within 3 std of some mode       */
    double mmd;           /* RBF-kernel MMD, the five bandwidths' mean kernel (biased V-statistic, sqrt) */
    double mmd_bw[WB_MMD_BANDWIDTHS]; /* MMD_h at each bandwidth alone (keys: wb_mmd_key) */
} wb_gmm_metrics;
/* A mode counts as covered when it receives at least 20 % of its expected
 * share of the samples (and at least one sample). */
int wb_eval_gmm(const wb_gmm *gmm, const float *samples, int64_t n, const float *reference, int64_t n_ref,
                wb_gmm_metrics *out);

#endif
