/* wb/tensor.h — the public tensor, autograd, parameter, optimiser and RNG API
 * of libwb. This is what a net or ratio-estimator plugin writes its forward
 * code against; gradients come from the tape, never by hand.
 *
 * Model (llm.c-flat, ggml-like):
 *   - wb_tensor: float32, contiguous, row-major, up to 4 dims (vectors are
 *     (B, D); images will be NCHW), a data pointer owned by a backend.
 *   - wb_graph: a step-scoped arena plus a tape. Every op allocates its result
 *     in the graph's arena and, when grad mode is on and an input requires
 *     grad, records a node. wb_backward() walks the tape in reverse.
 *     wb_graph_reset() drops all activations and the tape in O(1).
 *   - wb_params: the parameters of one module in ONE contiguous buffer (and one
 *     contiguous grad buffer), so optimisers, EMA and checkpoints are flat.
 *   - Errors: functions that can fail return NULL or a non-zero int and leave
 *     a message in wb_last_error() (thread-local). Library code never exits.
 */
#ifndef WB_TENSOR_H
#define WB_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* libwb exports what is declared here */

#define WB_MAX_DIMS 4

/* ---- errors ------------------------------------------------------------ */
const char *wb_last_error(void);
void wb_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wb_clear_error(void);

/* ---- backends ------------------------------------------------------------ */
typedef enum { WB_DEVICE_CPU = 0, WB_DEVICE_CUDA = 1 } wb_device;
typedef struct wb_backend wb_backend; /* vtable, see wb/backend.h */

const wb_backend *wb_backend_cpu(void);
/* The CUDA backend when it was compiled in and a device is present, else NULL
 * with the reason in wb_last_error(). */
const wb_backend *wb_backend_cuda(void);
const char *wb_backend_name(const wb_backend *be);
/* The backend a run asked for, resolved once (host/core/backend.c):
 *   "cpu"   the reference backend, always there;
 *   "cuda"  the CUDA backend, or NULL with the reason (not built with nvcc,
 *           no device) in wb_last_error();
 *   "auto"  cuda when it is available, else cpu;
 *   NULL or ""  the environment's WB_BACKEND, else "cpu".
 * Any other name is NULL with an error naming it and the choices. */
const wb_backend *wb_backend_select(const char *name);

/* ---- tensors ------------------------------------------------------------ */
struct wb_node;
typedef struct wb_tensor {
    int ndim;
    int64_t shape[WB_MAX_DIMS];
    int64_t numel;
    float *data;               /* backend memory, numel floats              */
    float *grad;               /* same shape; NULL until backward needs it  */
    const wb_backend *backend;
    int requires_grad;         /* leaf flag or propagated from inputs       */
    struct wb_node *node;      /* producer on the tape; NULL for leaves     */
    const char *name;          /* parameters carry their checkpoint key     */
} wb_tensor;

/* ---- graph (arena + tape) ---------------------------------------------- */
typedef struct wb_graph wb_graph;

wb_graph *wb_graph_new(const wb_backend *be);
void wb_graph_free(wb_graph *g);
void wb_graph_reset(wb_graph *g);              /* frees activations and tape */
void wb_graph_set_grad(wb_graph *g, int enabled); /* off: ops record nothing */
int wb_graph_grad_enabled(const wb_graph *g);
const wb_backend *wb_graph_backend(const wb_graph *g);
size_t wb_graph_arena_bytes(const wb_graph *g); /* high-water mark, for tuning */
/* Off (default): wb_backward recycles the gradient buffer of every op output
 * once that op's backward has run, so after a backward only leaves (inputs
 * made with wb_leaf, parameters) have .grad — torch's rule for non-leaf
 * tensors. On: every intermediate keeps its .grad (debugging, tests). */
void wb_graph_retain_grads(wb_graph *g, int enabled);

/* Memory scopes, for forwards that record nothing (grad mode off, or no
 * input requiring grad): everything allocated in g's arena after
 * wb_scope_begin is released by wb_scope_end except `keep`, whose data is
 * moved down to where the scope began (its header — the same pointer —
 * is updated, so feature lists or skip arrays that hold it stay right).
 * Every OTHER tensor made inside the scope is dead afterwards: use scopes
 * around a block whose only result is `keep` (the unet plugin wraps each
 * residual block). When the tape grew inside the scope (a backward will
 * need those tensors) wb_scope_end releases nothing. A network's peak then
 * holds its long-lived tensors plus one block's temporaries, as an eager
 * framework that frees on the last reference does. Scopes nest. */
typedef struct wb_scope {
    void *chunk;      /* the arena chunk that was current at begin */
    size_t used;      /* its fill level then */
    size_t total;     /* the arena's total then */
    int tape_len;     /* the tape's length then */
    int backward_count; /* backwards run on the graph until then */
} wb_scope;
wb_scope wb_scope_begin(wb_graph *g);
wb_tensor *wb_scope_end(wb_graph *g, wb_scope scope, wb_tensor *keep);

/* New arena tensors. _new leaves data uninitialised, _zeros clears it,
 * _from copies numel floats from host memory. */
wb_tensor *wb_new(wb_graph *g, int ndim, const int64_t *shape);
wb_tensor *wb_zeros(wb_graph *g, int ndim, const int64_t *shape);
wb_tensor *wb_from_host(wb_graph *g, int ndim, const int64_t *shape, const float *host);
wb_tensor *wb_new_like(wb_graph *g, const wb_tensor *t);
wb_tensor *wb_new_2d(wb_graph *g, int64_t rows, int64_t cols);
wb_tensor *wb_new_1d(wb_graph *g, int64_t n);
/* A leaf whose gradient is wanted (an input x for ∇_x l). */
wb_tensor *wb_leaf(wb_graph *g, int ndim, const int64_t *shape, const float *host, int requires_grad);
int wb_to_host(const wb_tensor *t, float *host);       /* numel floats      */
int wb_grad_to_host(const wb_tensor *t, float *host);  /* zeros if no grad  */
int wb_same_shape(const wb_tensor *a, const wb_tensor *b);
/* "(4, 2)" into buf; returns buf. */
const char *wb_shape_str(const wb_tensor *t, char *buf, size_t n);

/* Reverse mode from a scalar `root` (seed 1) or from any tensor with an
 * explicit seed gradient of the same shape (seed may be NULL for scalars).
 * Gradients accumulate into .grad of every tensor that requires grad. */
int wb_backward(wb_graph *g, wb_tensor *root, const wb_tensor *seed);

/* ---- ops ---------------------------------------------------------------- *
 * Every op returns a new arena tensor, or NULL (message in wb_last_error())
 * on a shape or backend mismatch. NULL inputs propagate NULL, so a chain of
 * ops can be checked once at the end. */

/* y = x · Wᵀ + b;  x (B, in), W (out, in), b (out) or NULL -> y (B, out) */
wb_tensor *wb_linear(wb_graph *g, wb_tensor *x, wb_tensor *w, wb_tensor *b);
/* C = A · B;  A (M, K), B (K, N) -> (M, N) */
wb_tensor *wb_matmul(wb_graph *g, wb_tensor *a, wb_tensor *b);

/* Broadcasting (numpy rules, right-aligned) elementwise binaries. */
wb_tensor *wb_add(wb_graph *g, wb_tensor *a, wb_tensor *b);
wb_tensor *wb_sub(wb_graph *g, wb_tensor *a, wb_tensor *b);
wb_tensor *wb_mul(wb_graph *g, wb_tensor *a, wb_tensor *b);
wb_tensor *wb_div(wb_graph *g, wb_tensor *a, wb_tensor *b);

/* Unaries. scale: y = alpha·x; add_scalar: y = x + alpha. */
wb_tensor *wb_scale(wb_graph *g, wb_tensor *x, float alpha);
wb_tensor *wb_add_scalar(wb_graph *g, wb_tensor *x, float alpha);
wb_tensor *wb_exp(wb_graph *g, wb_tensor *x);
wb_tensor *wb_log(wb_graph *g, wb_tensor *x);
wb_tensor *wb_sigmoid(wb_graph *g, wb_tensor *x);
wb_tensor *wb_softplus(wb_graph *g, wb_tensor *x);
wb_tensor *wb_logsigmoid(wb_graph *g, wb_tensor *x);
wb_tensor *wb_silu(wb_graph *g, wb_tensor *x);
wb_tensor *wb_tanh(wb_graph *g, wb_tensor *x);
wb_tensor *wb_relu(wb_graph *g, wb_tensor *x);
wb_tensor *wb_square(wb_graph *g, wb_tensor *x);
wb_tensor *wb_sqrt(wb_graph *g, wb_tensor *x);

/* Concatenate along dim 1 (features of (B, D), channels of NCHW). */
wb_tensor *wb_concat(wb_graph *g, wb_tensor *a, wb_tensor *b);
/* Columns [start, start+count) of dim 1. */
wb_tensor *wb_slice1(wb_graph *g, wb_tensor *x, int64_t start, int64_t count);
/* Same data, new shape (numel must match). */
wb_tensor *wb_reshape(wb_graph *g, wb_tensor *x, int ndim, const int64_t *shape);
/* Same data, cut from the tape: stop-gradient. */
wb_tensor *wb_detach(wb_graph *g, wb_tensor *x);

/* Reductions. sum/mean -> shape (1). _rows: over every dim but the first ->
 * (B). */
wb_tensor *wb_sum(wb_graph *g, wb_tensor *x);
wb_tensor *wb_mean(wb_graph *g, wb_tensor *x);
wb_tensor *wb_sum_rows(wb_graph *g, wb_tensor *x);
wb_tensor *wb_mean_rows(wb_graph *g, wb_tensor *x);

/* EDM's positional embedding of a noise level: t (B) -> (B, dim),
 * [cos(t·f_0..f_{h-1}), sin(t·f_0..f_{h-1})], f_i = max_period^(-i/h), h = dim/2. */
wb_tensor *wb_sinusoidal(wb_graph *g, wb_tensor *t, int dim, float max_period);

/* Losses (scalars, shape (1)). */
wb_tensor *wb_mse(wb_graph *g, wb_tensor *a, wb_tensor *b);              /* mean((a-b)²) */
wb_tensor *wb_bce_logits(wb_graph *g, wb_tensor *logit, wb_tensor *target); /* mean(softplus(l) - t·l) */

/* ---- image ops (NCHW) ------------------------------------------------------ */
struct wb_rng;
/* 2-D convolution: x (B, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout) or
 * NULL -> (B, Cout, Ho, Wo), Ho = (H + 2·pad − kh)/stride + 1. */
wb_tensor *wb_conv2d(wb_graph *g, wb_tensor *x, wb_tensor *w, wb_tensor *b, int stride, int pad);
/* The same with per-axis strides and zero pads (Inception's 1×7 / 7×1
 * kernels pad (0, 3) / (3, 0)): Ho = (H + 2·pad_h − kh)/stride_h + 1,
 * Wo = (W + 2·pad_w − kw)/stride_w + 1. wb_conv2d(s, p) is conv2d_ex(s, s, p, p). */
wb_tensor *wb_conv2d_ex(wb_graph *g, wb_tensor *x, wb_tensor *w, wb_tensor *b, int stride_h, int stride_w, int pad_h,
                        int pad_w);
/* Group normalisation: x (B, C, H, W) normalised over (C/groups, H, W) per
 * sample and group, then y = γ·x̂ + β with γ, β (C) (NULL: 1 and 0). */
wb_tensor *wb_group_norm(wb_graph *g, wb_tensor *x, int groups, wb_tensor *gamma, wb_tensor *beta, float eps);
/* Nearest-neighbour 2× up-sampling (B, C, H, W) -> (B, C, 2H, 2W). */
wb_tensor *wb_upsample2x(wb_graph *g, wb_tensor *x);
/* 2×2 average pooling, stride 2: (B, C, H, W) -> (B, C, H/2, W/2), H, W even. */
wb_tensor *wb_avgpool2x(wb_graph *g, wb_tensor *x);
/* k×k max pooling (host/core/ops_pool.c): (B, C, H, W) -> (B, C, Ho, Wo),
 * Ho = (H + 2·pad − k)/stride + 1 rounded down (torch's ceil_mode=False);
 * padding is −inf, pad <= k/2. The gradient goes to each window's first
 * maximum (row-major), as torch's. */
wb_tensor *wb_maxpool2d(wb_graph *g, wb_tensor *x, int k, int stride, int pad);
/* k×k average pooling, same geometry; padding counts as zeros in the
 * divisor k² when count_include_pad, else the divisor is the number of
 * window cells inside the image (the FID Inception's choice). */
wb_tensor *wb_avgpool2d(wb_graph *g, wb_tensor *x, int k, int stride, int pad, int count_include_pad);
/* Bilinear resizing (B, C, H, W) -> (B, C, out_h, out_w), torch's
 * F.interpolate(mode='bilinear', align_corners=False, antialias=False). */
wb_tensor *wb_resize_bilinear(wb_graph *g, wb_tensor *x, int out_h, int out_w);
/* Batched matmul: a (N, M, K) (or (N, K, M) if trans_a), b (N, K, P) (or
 * (N, P, K) if trans_b) -> (N, M, P). */
wb_tensor *wb_bmm(wb_graph *g, wb_tensor *a, wb_tensor *b, int trans_a, int trans_b);
/* Softmax over the last dimension. */
wb_tensor *wb_softmax(wb_graph *g, wb_tensor *x);
/* Inverted dropout: zero each element with probability p, scale the rest
 * by 1/(1−p); the identity when p = 0 or grad mode is off (evaluation). */
wb_tensor *wb_dropout(wb_graph *g, wb_tensor *x, float p, struct wb_rng *rng);

/* ---- RNG: Philox4x32-10 counter-based ------------------------------------ */
/* One Philox block: out = Philox4x32-10(counter, key). Matches Salmon et al.
 * (Random123) known-answer vectors. */
void wb_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* A stream: key = seed, counter = (offset, stream id). Every draw advances
 * the counter, so (seed, stream, position) fixes every number. */
typedef struct wb_rng {
    uint64_t seed;
    uint64_t stream;
    uint64_t offset;   /* blocks consumed */
} wb_rng;
void wb_rng_init(wb_rng *rng, uint64_t seed, uint64_t stream);
void wb_rng_uniform(wb_rng *rng, float *out, int64_t n);  /* [0, 1)      */
void wb_rng_normal(wb_rng *rng, float *out, int64_t n);   /* N(0, 1), Box–Muller */
uint32_t wb_rng_u32(wb_rng *rng);
/* Host buffer -> new arena tensor filled with N(0,1). */
wb_tensor *wb_randn(wb_graph *g, wb_rng *rng, int ndim, const int64_t *shape);
/* Uniform [0, 1) into a new tensor (wb_rng_uniform's numbers). Both draw on
 * the backend when it has the kernel, else on the host and upload. */
wb_tensor *wb_rand_uniform(wb_graph *g, wb_rng *rng, int ndim, const int64_t *shape);
/* Advance rng as a draw of n numbers does (ceil(n/4) blocks). */
void wb_rng_skip(wb_rng *rng, int64_t n);
/* Numbers [first, first + n) of the draw of any size >= first + n that
 * wb_rng_normal (normal = 1) or wb_rng_uniform (0) would make at rng's
 * position, into out; rng does not move. */
void wb_rng_fill_at(const wb_rng *rng, int normal, int64_t first, int64_t n, float *out);
/* Rows [row0, row0 + rows) of the draw of shape global_shape (rows along
 * dim 0) that wb_randn / wb_rand_uniform would make at rng's position, as a
 * new tensor of g; rng does not move (wb_rng_skip it by the whole draw). */
wb_tensor *wb_rand_rows(wb_graph *g, const wb_rng *rng, int normal, int ndim, const int64_t *global_shape, int64_t row0,
                        int64_t rows);
/* Data-parallel shards (host/engine/dp.c). While set, a draw on g whose
 * leading dimension is `rows` (wb_randn, wb_rand_uniform, wb_dropout's mask)
 * gives rows [row0, row0 + rows) of the draw of global_rows rows that the
 * same stream would make, and advances the stream as that whole draw does:
 * a batch split over ranks or shards draws the numbers of the unsplit
 * batch. global_rows = 0 (or rows = global_rows, row0 = 0) turns it off. */
int wb_graph_set_rows(wb_graph *g, int64_t global_rows, int64_t row0, int64_t rows);

/* ---- diffusion ops: EDM and the distillation step (host/core/ops_diffusion.c) --
 * Shape legend: B samples, x (B, ...) with rank 2 (vectors) or 4 (NCHW);
 * per-sample scalars (σ, weights) are (B) and broadcast over x. Each op is
 * built so that it computes what the engine used to compute in host loops,
 * operation for operation, so moving the step onto the backend changed no
 * number. Composite ops are differentiable through their parts. */
wb_tensor *wb_full(wb_graph *g, int ndim, const int64_t *shape, float value);
/* a (Ba, ...) and b (Bb, ...) stacked along dim 0 -> (Ba + Bb, ...) */
wb_tensor *wb_cat0(wb_graph *g, wb_tensor *a, wb_tensor *b);
/* A copy of x that is a leaf (off the tape; requires_grad as given): the
 * x_t of ∇_x l without a trip through the host. */
wb_tensor *wb_leaf_copy(wb_graph *g, wb_tensor *x, int requires_grad);
/* dst's values := src's (same backend, same element count; no tape): a
 * tensor of a long-lived graph keeping a value across resets. */
int wb_assign(wb_tensor *dst, const wb_tensor *src);
/* x's gradient as a constant tensor (zeros when x has none). */
wb_tensor *wb_grad_tensor(wb_graph *g, wb_tensor *x);
/* Forget the recorded ops but keep every tensor: a second differentiable
 * pass over values computed earlier in the same arena. */
void wb_graph_clear_tape(wb_graph *g);
/* (B) -> (B, 1) or (B, 1, 1, 1) for broadcasting over a rank-`rank` x. */
wb_tensor *wb_per_sample(wb_graph *g, wb_tensor *s, int rank);
/* EDM preconditioning coefficients of σ (B), σ_d = sigma_data:
 *   c_skip = σd²/(σ²+σd²)  c_out = σ·σd/√(σ²+σd²)  c_in = 1/√(σ²+σd²)
 *   c_noise = ln(σ)/4;  c_skip, c_out, c_in shaped per sample for rank. */
typedef struct wb_edm_coefs {
    wb_tensor *c_skip, *c_out, *c_in, *c_noise;
} wb_edm_coefs;
int wb_edm_precond(wb_graph *g, wb_tensor *sigma, int rank, float sigma_data, wb_edm_coefs *out);
/* EDM's DSM loss weight λ(σ) = (σ² + σd²)/(σ·σd)², per sample for rank. */
wb_tensor *wb_edm_loss_weight(wb_graph *g, wb_tensor *sigma, int rank, float sigma_data);
/* x_t = x + σ·n, σ (B) per sample. */
wb_tensor *wb_add_noise(wb_graph *g, wb_tensor *x, wb_tensor *sigma, wb_tensor *noise);
/* Karras noise levels (B) from uniforms u (B) in [0, 1): the index
 * t = t_min + (t_max − t_min)·u, σ = (σmin^(1/ρ) + t·(σmax^(1/ρ) − σmin^(1/ρ)))^ρ
 * with EDM's σmin = 0.002, σmax = 80, ρ = 7. A draw: not differentiable. */
#define WB_EDM_SIGMA_MIN 0.002
#define WB_EDM_SIGMA_MAX 80.0
#define WB_EDM_RHO 7.0
wb_tensor *wb_karras_sigma(wb_graph *g, wb_tensor *u, float t_min, float t_max);
/* DMD's time weight (B): σ² / max(mean over a sample of |x0 − d|, 1e-8). */
wb_tensor *wb_dmd_weight(wb_graph *g, wb_tensor *x0, wb_tensor *d, wb_tensor *sigma);
/* The generator's per-element gradient of DESIGN §1.1 after time weighting,
 * divided by the element count n = B·D (the surrogate loss is a mean):
 *   g̃ = tw·( w_s·(d_fake − d_teacher)/σ²  −  w_l·∇_x l ) / n
 * d_fake/d_teacher are denoiser outputs (so d_fake − d_teacher = σ²·(s_fake −
 * s_teacher)). d_fake NULL: score-free (no first term); grad_l NULL: no
 * second term; time_weight NULL: tw = 1. w_s, w_l, σ, tw are (B). */
wb_tensor *wb_distill_grad(wb_graph *g, wb_tensor *w_s, wb_tensor *d_fake, wb_tensor *d_teacher, wb_tensor *sigma,
                           wb_tensor *w_l, wb_tensor *grad_l, wb_tensor *time_weight);
/* Check t for NaN/inf on the backend, without a transfer: the result comes
 * with the next wb_backend_sync (an error naming `what`, which must be a
 * string that outlives the step, e.g. a literal). At most
 * WB_MAX_FINITE_CHECKS checks between two syncs. */
int wb_check_finite(wb_graph *g, const wb_tensor *t, const char *what);
/* Σ t² in double, handed to the host (a logged norm): one counted download. */
double wb_sum_squares(const wb_tensor *t);

/* ---- parameters ---------------------------------------------------------- */
typedef enum {
    WB_INIT_ZEROS = 0,
    WB_INIT_ONES,
    WB_INIT_UNIFORM_FAN_IN, /* U(-a, a), a = scale/sqrt(fan_in) (torch Linear) */
    WB_INIT_NORMAL,         /* N(0, scale²)                                  */
} wb_init;

typedef struct wb_params wb_params;

wb_params *wb_params_new(const wb_backend *be);
void wb_params_free(wb_params *ps);
/* Declare a parameter; the tensor's data is valid after finalize.
 * fan_in is shape[1..] product unless given (> 0). */
wb_tensor *wb_params_add(wb_params *ps, const char *name, int ndim, const int64_t *shape,
                         wb_init init, float scale);
/* Allocate the flat buffers and run the initialisers in declaration order. */
int wb_params_finalize(wb_params *ps, wb_rng *rng);
int wb_params_count(const wb_params *ps);
const wb_backend *wb_params_backend(const wb_params *ps); /* where its tensors live */
wb_tensor *wb_params_at(wb_params *ps, int i);
wb_tensor *wb_params_find(wb_params *ps, const char *name);
int64_t wb_params_numel(const wb_params *ps);
float *wb_params_data(wb_params *ps);   /* flat values, backend memory */
float *wb_params_grad(wb_params *ps);   /* flat grads                   */
void wb_params_zero_grad(wb_params *ps);
/* Trainable stores are leaves that require grad; frozen ones do not (the
 * teacher), so backward never touches them. */
void wb_params_set_trainable(wb_params *ps, int trainable);
/* dst <- src: same names, same shapes, in any order; error names the key. */
int wb_params_copy(wb_params *dst, const wb_params *src);
/* dst <- src for each dst tensor that src has under the same name and shape
 * (the rest keep their values); returns how many were copied. */
int wb_params_copy_matching(wb_params *dst, const wb_params *src);
/* A finalized copy with the same layout and values (EMA, init-from-teacher). */
wb_params *wb_params_clone(const wb_params *src);
/* Global L2 norm of the gradient (diagnostics; NaN detection). */
double wb_params_grad_norm(wb_params *ps);
int wb_params_all_finite(wb_params *ps);
/* wb_check_finite for the whole store's values (grads = 0) or gradients
 * (grads = 1): reported by the next wb_backend_sync, no transfer. */
int wb_params_check_finite(wb_params *ps, int grads, const char *what);

/* ---- optimisers ---------------------------------------------------------- */
typedef struct wb_adam wb_adam;
/* Adam (decoupled = 0, L2 added to the grad) or AdamW (decoupled = 1). */
wb_adam *wb_adam_new(wb_params *ps, float lr, float beta1, float beta2, float eps,
                     float weight_decay, int decoupled);
void wb_adam_free(wb_adam *opt);
void wb_adam_set_lr(wb_adam *opt, float lr);
int wb_adam_step(wb_adam *opt);           /* uses and keeps ps's grads */
/* The optimiser's state, for checkpoints and resume: the steps taken and
 * host copies of the first and second moments, wb_params_numel(ps) floats
 * each in the store's flat layout. set restores what get returned; a
 * resumed run then takes the same steps as one that never stopped. */
int64_t wb_adam_steps(const wb_adam *opt);
int64_t wb_adam_numel(const wb_adam *opt);
int wb_adam_get_state(const wb_adam *opt, float *m, float *v);
int wb_adam_set_state(wb_adam *opt, int64_t steps, const float *m, const float *v);
/* ema <- decay·ema + (1-decay)·p, same layout. */
int wb_ema_update(wb_params *ema, const wb_params *ps, float decay);

/* ---- safetensors ---------------------------------------------------------- */
/* Write every tensor of the stores (name = prefix + param name) as F32, plus
 * string metadata pairs (may be NULL/0). Written to PATH.tmp, then renamed. */
typedef struct wb_named_params { const char *prefix; wb_params *params; } wb_named_params;
int wb_safetensors_save(const char *path, const wb_named_params *stores, int n_stores,
                        const char *const *meta_kv, int n_meta);
/* Load into existing stores: every parameter must be present with the same
 * shape and dtype F32; extra tensors in the file are an error unless
 * allow_extra. Errors name the file and the key. Nothing is modified unless
 * the whole file validates. */
int wb_safetensors_load(const char *path, const wb_named_params *stores, int n_stores,
                        int allow_extra);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
