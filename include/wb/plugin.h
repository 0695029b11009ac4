/* wb/plugin.h — THE plugin ABI of distill-workbench. A plugin author needs
 * this header (and wb/tensor.h, which it includes, for nets and ratio
 * estimators) and one example: docs/plugins.md, docs/examples/.
 *
 * A plugin library is a shared object exporting exactly one symbol,
 *
 *     const wb_plugin_library *wb_plugin_entry(void);
 *
 * returning static data: an ABI version, the struct size, and a list of
 * descriptors. One .so may register several members (the Bregman family
 * registers lr, kl, be, ls and sba). Each descriptor starts with the ABI
 * version and its struct size, then kind, name, version, doc and the
 * parameter specs AS DATA, so the host can list them, bind them to Lua and
 * check user values against type and bounds without calling plugin code.
 *
 * The host validates everything before use (ABI version, struct sizes, kind,
 * names, required functions, duplicate names) and rejects a bad library with
 * a message naming its file; other libraries keep loading.
 *
 * Plugins link against libwb (wb::wb in CMake, `pkg-config wb`) for tensor
 * ops. Plugin functions report failure by returning NULL / non-zero and
 * writing a message into the err buffer they are given (or wb_set_error).
 */
#ifndef WB_PLUGIN_H
#define WB_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "wb/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WB_ABI_VERSION 1u
#define WB_PLUGIN_ENTRY_SYMBOL "wb_plugin_entry"

#if defined(__GNUC__)
#define WB_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define WB_PLUGIN_EXPORT
#endif

typedef enum {
    WB_KIND_DIVERGENCE = 1,
    WB_KIND_RATIO = 2, /* density-ratio estimator (discriminator) */
    WB_KIND_NET = 3,   /* network backbone                        */
} wb_plugin_kind;

/* ---- parameters as data --------------------------------------------------- */
typedef enum {
    WB_PARAM_NUMBER = 1, /* double, bounds [min, max]                  */
    WB_PARAM_INT = 2,    /* integer, bounds [min, max]                 */
    WB_PARAM_BOOL = 3,   /* true/false (default: def != 0)             */
    WB_PARAM_STRING = 4, /* default def_str; choices "a|b|c" or NULL   */
    WB_PARAM_INTS = 5,   /* list of integers, each in [min, max]; default def_str "64,64" */
} wb_param_type;

typedef struct wb_param_spec {
    const char *name;
    wb_param_type type;
    double def;          /* NUMBER, INT, BOOL default                        */
    double min, max;     /* inclusive bounds for NUMBER, INT, INTS           */
    const char *def_str; /* STRING default / INTS default, comma separated  */
    const char *choices; /* STRING: "teacher|fake"; NULL: any string         */
    const char *doc;     /* one line, shown by `workbench plugins`          */
} wb_param_spec;

#define WB_MAX_INTS 16
typedef struct wb_param_value {
    double num;                /* NUMBER, INT, BOOL */
    char str[64];              /* STRING            */
    int n_ints;                /* INTS              */
    int64_t ints[WB_MAX_INTS];
} wb_param_value;

/* Resolved values, one per spec, in spec order; the host fills defaults and
 * checks types and bounds before a plugin sees it. */
typedef struct wb_config {
    int n;
    const wb_param_spec *specs;
    const wb_param_value *values;
} wb_config;

/* Lookups by name (abort-free: an unknown name returns the fallback). */
double wb_config_number(const wb_config *cfg, const char *name, double fallback);
int64_t wb_config_int(const wb_config *cfg, const char *name, int64_t fallback);
int wb_config_bool(const wb_config *cfg, const char *name, int fallback);
const char *wb_config_string(const wb_config *cfg, const char *name, const char *fallback);
/* Number of ints copied into out (at most cap), -1 if the name is unknown. */
int wb_config_ints(const wb_config *cfg, const char *name, int64_t *out, int cap);

/* ---- divergences ------------------------------------------------------------ *
 * A divergence is two per-sample scalar functions of the ratio estimator's
 * logit l = log p/q (p: data/teacher, q: student):
 *   g(x_t) = w_s(l)·(s_fake − s_teacher) − w_l(l)·∇_x l
 * weights() must be overflow-safe for every finite l (compute in logit space).
 * value() is a Monte-Carlo estimate of the divergence from student samples'
 * logits, for logging only. */
typedef struct wb_divergence_fns {
    uint32_t struct_size;
    int score_free; /* 1: w_s ≡ 0; no fake-score network is trained */
    void (*weights)(const wb_config *cfg, int64_t n, const float *logit, float *w_s, float *w_l);
    double (*value)(const wb_config *cfg, int64_t n, const float *logit);
} wb_divergence_fns;

/* ---- nets ------------------------------------------------------------------ */
/* Data geometry: vectors are channels = D, height = width = 1 and travel as
 * (B, D) tensors; images are (B, C, H, W). */
typedef struct wb_net_shape {
    int channels, height, width;
    int out_channels;   /* output channels (== channels for a denoiser; 1 for a logit) */
    int label_dim;      /* 0: unconditional                                            */
} wb_net_shape;

/* Intermediate activations a net exposes for GAN heads ("hidden" for the
 * MLP; one per resolution for a UNet). Tensors live in the step's graph. */
#define WB_MAX_FEATURES 8
typedef struct wb_features {
    int n;
    const char *names[WB_MAX_FEATURES];
    wb_tensor *maps[WB_MAX_FEATURES];
} wb_features;

typedef struct wb_net_fns {
    uint32_t struct_size;
    /* Declare parameters in `params` (the host finalizes and initialises
     * them) and return the instance, or NULL with err filled. */
    void *(*create)(const wb_config *cfg, const wb_net_shape *shape, wb_params *params, char *err,
                    size_t err_len);
    void (*destroy)(void *self);
    /* The raw network F(x_in, c_noise[, labels]) -> same batch, out_channels.
     * EDM preconditioning is the host's job (wb_net_denoise). feats may be
     * NULL; when given, the net fills the activations it exposes. */
    wb_tensor *(*forward)(void *self, wb_graph *g, wb_tensor *x_in, wb_tensor *c_noise,
                          wb_tensor *labels, wb_features *feats);
} wb_net_fns;

/* ---- ratio estimators ------------------------------------------------------ */
typedef struct wb_net wb_net; /* a host-owned net instance (see below) */

typedef struct wb_ratio_env {
    wb_net_shape data;     /* shape of x                                         */
    wb_net *backbone;      /* a fresh trainable net from the `net` key, if wants_backbone */
    wb_net *teacher;       /* frozen teacher (always set)                        */
    wb_net *fake;          /* fake-score net (NULL on the score-free path)       */
    const wb_backend *backend; /* where every graph and tensor of the run lives: a
                                  plugin that makes a graph of its own uses this one */
} wb_ratio_env;

typedef struct wb_ratio_input {
    wb_tensor *x;          /* noisy sample x_t           (B, ...)               */
    wb_tensor *sigma;      /* its noise level            (B)                    */
} wb_ratio_input;

typedef struct wb_ratio_fns {
    uint32_t struct_size;
    int wants_backbone; /* 1: the host builds env->backbone from the `net` key */
    void *(*create)(const wb_config *cfg, const wb_ratio_env *env, wb_params *params, char *err,
                    size_t err_len);
    void (*destroy)(void *self);
    /* logit l(x_t, σ) ≈ log p_σ(x_t)/q_σ(x_t), shape (B), differentiable
     * with respect to in->x (for ∇_x l and the GAN term). */
    wb_tensor *(*logit)(void *self, wb_graph *g, const wb_ratio_input *in);
} wb_ratio_fns;

/* ---- the descriptor ---------------------------------------------------------- */
typedef struct wb_plugin_desc {
    uint32_t abi_version; /* WB_ABI_VERSION                 */
    uint32_t struct_size; /* sizeof(wb_plugin_desc)         */
    wb_plugin_kind kind;
    const char *name;     /* unique within its kind across all libraries; [a-z0-9_-]+ */
    const char *version;  /* the plugin's own version, recorded in every run */
    const char *doc;      /* one line                                  */
    const wb_param_spec *params;
    int n_params;
    /* exactly the table of `kind` is set */
    const wb_divergence_fns *divergence;
    const wb_net_fns *net;
    const wb_ratio_fns *ratio;
} wb_plugin_desc;

typedef struct wb_plugin_library {
    uint32_t abi_version; /* WB_ABI_VERSION                 */
    uint32_t struct_size; /* sizeof(wb_plugin_library)     */
    int n_plugins;
    const wb_plugin_desc *const *plugins;
} wb_plugin_library;

typedef const wb_plugin_library *(*wb_plugin_entry_fn)(void);

/* ---- host services a plugin may call (from libwb) ------------------------- */
/* A net instance: descriptor + plugin state + its parameter store. */
struct wb_net {
    const wb_plugin_desc *desc;
    void *self;
    wb_params *params;
    wb_net_shape shape;
};
/* F(x_in, c_noise[, labels]) with optional feature capture. */
wb_tensor *wb_net_forward(wb_net *net, wb_graph *g, wb_tensor *x_in, wb_tensor *c_noise,
                          wb_tensor *labels, wb_features *feats);
/* EDM preconditioning (σ_data = 0.5):
 *   D(x, σ) = c_skip·x + c_out·F(c_in·x, ln(σ)/4);  x (B, ...), sigma (B). */
wb_tensor *wb_net_denoise(wb_net *net, wb_graph *g, wb_tensor *x, wb_tensor *sigma,
                          wb_tensor *labels, wb_features *feats);
/* c_in·x and c_noise for a plugin that calls wb_net_forward itself. */
wb_tensor *wb_edm_c_in_x(wb_graph *g, wb_tensor *x, wb_tensor *sigma);
wb_tensor *wb_edm_c_noise(wb_graph *g, wb_tensor *sigma);
/* The feature map called `name` in feats, or NULL. */
wb_tensor *wb_features_get(const wb_features *feats, const char *name);

#ifdef __cplusplus
}
#endif
#endif
