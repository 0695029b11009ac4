/* wb/plugin.h — THE plugin ABI of distill-workbench. A plugin author needs
 * the installed public headers (this one, wb/tensor.h which it includes, and
 * wb/elementwise.h for the overflow-safe scalar math) and one example:
 * docs/plugins.md, docs/examples/.
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
 * The helper macros at the end (WB_PARAM_*, WB_*_FNS, WB_*_DESC,
 * WB_LIBRARY) write all of this by field name.
 *
 * The host validates everything before use (ABI version, struct sizes, kind,
 * names, required functions, duplicate names) and rejects a bad library with
 * a message naming its file; other libraries keep loading.
 *
 * How the ABI grows without breaking built plugins: fields are only ever
 * APPENDED to a struct. A plugin-filled struct (library, descriptor, function
 * tables) carries its struct_size; the host accepts any size from the first
 * release's (the prefix every plugin knows) up to its own, copies the
 * plugin's bytes into a zeroed struct of its own size and so reads an
 * appended field the plugin does not know as 0 / NULL. A host-filled struct
 * (wb_ratio_env, wb_net_shape, ...) only ever grows at the end too: a plugin
 * built before a field existed simply never reads it. wb_param_spec has no
 * size and is frozen. Removing or reordering a field is a new
 * WB_ABI_VERSION.
 *
 * Plugins link against libwb (wb::wb in CMake, `pkg-config wb`) for tensor
 * ops; libwb exports exactly the functions the public headers declare.
 * Plugin functions report failure by returning NULL / non-zero and writing a
 * message into the err buffer they are given (or wb_set_error).
 */
#ifndef WB_PLUGIN_H
#define WB_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "wb/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
/* libwb is built with -fvisibility=hidden: what is declared between push and
 * pop is its exported API (tests/check_exports.py compares the two). */
#pragma GCC visibility push(default)

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
    /* ---- appended after the first release (a smaller struct_size reads as NULL) */
    /* OPTIONAL. The architecture this instance resolved — presets applied,
     * defaults filled — as one JSON object of numbers, strings and arrays
     * (e.g. {"channels": 128, "multipliers": [2, 2, 2]}) written into out,
     * NUL-terminated: 0, or -1 when it does not fit. The host records it in
     * the run's config.json as "resolved" beside the given "params". */
    int (*describe)(void *self, char *out, size_t out_len);
    /* OPTIONAL. The random streams the instance draws from in forward
     * (dropout masks): *n of them at the returned array, which the instance
     * owns. A checkpoint records where each stands and a resumed run puts
     * them back, so it draws the masks an uninterrupted run would. NULL (or
     * *n = 0): the net draws no random numbers of its own. */
    wb_rng *(*random_streams)(void *self, int *n);
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
    /* ---- appended after the first release (a smaller struct_size reads as 0 / NULL) */
    /* 1: the estimator's logit is read off the fake-score net itself (SiDA's
     * discriminator: the fake net's encoder) and is trained jointly with it,
     * by one loss and one optimiser, inside the fake-score update:
     *   L_fake = DSM + w · BCE(l(x_real,t), 1; l(sg(x_0)_t), 0)   [+ R1]
     * where w = fake_loss_weight(self). The host then runs no separate ratio
     * update (the estimator declares no parameters of its own; the
     * `ratio_updates` option is ignored and config.json says so), and
     * refuses it on the score-free path, which trains no fake net. Requires
     * fake_loss_weight and wants_backbone = 0 (the registry checks). */
    int trains_fake_jointly;
    /* REQUIRED when trains_fake_jointly: w above, a finite number >= 0
     * (usually a plugin param). NULL otherwise. */
    double (*fake_loss_weight)(void *self);
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
    /* ---- appended after the first release (a smaller struct_size reads as NULL) */
    const char *family;   /* e.g. "Bregman", "f-div", "score-free"; shown in
                             listings and result tables; NULL: "plugin" */
} wb_plugin_desc;

typedef struct wb_plugin_library {
    uint32_t abi_version; /* WB_ABI_VERSION                 */
    uint32_t struct_size; /* sizeof(wb_plugin_library)     */
    int n_plugins;
    const wb_plugin_desc *const *plugins;
} wb_plugin_library;

typedef const wb_plugin_library *(*wb_plugin_entry_fn)(void);

/* ---- host services a plugin may call (from libwb) ------------------------- */
/* A net instance: descriptor + plugin state + its parameter store. Made
 * only by the host (fields may be appended). */
typedef enum {
    WB_PRECOND_EDM = 0, /* EDM's EDMPrecond (σ_data = 0.5): the default        */
    WB_PRECOND_VP,      /* EDM's VPPrecond (β_d 19.9, β_min 0.1, M 1000)        */
    WB_PRECOND_VE,      /* EDM's VEPrecond                                      */
} wb_precond;
struct wb_net {
    const wb_plugin_desc *desc;
    void *self;
    wb_params *params;
    wb_net_shape shape;
    wb_precond precond; /* how wb_net_denoise wraps F (set by the host)   */
};
/* F(x_in, c_noise[, labels]) with optional feature capture. */
wb_tensor *wb_net_forward(wb_net *net, wb_graph *g, wb_tensor *x_in, wb_tensor *c_noise,
                          wb_tensor *labels, wb_features *feats);
/* The net's preconditioning (net->precond; EDM's by default, σ_data = 0.5):
 *   D(x, σ) = c_skip·x + c_out·F(c_in·x, c_noise);  x (B, ...), sigma (B)
 *   EDM: c_skip = σd²/(σ²+σd²), c_out = σσd/√(σ²+σd²), c_in = 1/√(σ²+σd²), c_noise = ln(σ)/4
 *   VP:  c_skip = 1, c_out = −σ, c_in = 1/√(σ²+1), c_noise = (M−1)·σ⁻¹_VP(σ)
 *   VE:  c_skip = 1, c_out = σ,  c_in = 1,         c_noise = ln(σ/2) */
wb_tensor *wb_net_denoise(wb_net *net, wb_graph *g, wb_tensor *x, wb_tensor *sigma,
                          wb_tensor *labels, wb_features *feats);
/* c_in·x and c_noise for a plugin that calls wb_net_forward itself. */
wb_tensor *wb_edm_c_in_x(wb_graph *g, wb_tensor *x, wb_tensor *sigma);
wb_tensor *wb_edm_c_noise(wb_graph *g, wb_tensor *sigma);
/* The feature map called `name` in feats, or NULL. */
wb_tensor *wb_features_get(const wb_features *feats, const char *name);

#pragma GCC visibility pop

/* The one symbol a plugin library defines and exports (WB_PLUGIN_EXPORT:
 * build plugins with -fvisibility=hidden so it stays the only one); libwb
 * never defines it. Declared here so a plugin's definition has a prototype. */
WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void);

/* ---- helpers: tables and descriptors by field name ------------------------- *
 * Every field is named, so a reader sees at a glance which table of the
 * descriptor is set and that the sizes are filled, and a field appended to a
 * struct later cannot shift a plugin's values. A plugin library is then:
 *
 *   static const wb_param_spec my_params[] = {
 *       WB_PARAM_NUMBER("alpha", 2.0, -10.0, 10.0, "exponent of the ratio"),
 *   };
 *   static const wb_divergence_fns my_fns = WB_DIVERGENCE_FNS(0, my_weights, my_value);
 *   static const wb_plugin_desc my_desc =
 *       WB_DIVERGENCE_DESC("alpha", "1.0.0", "f-div", "one line", WB_PARAMS(my_params), &my_fns);
 *   static const wb_plugin_desc *const my_plugins[] = {&my_desc};
 *   static const wb_plugin_library my_library = WB_LIBRARY(my_plugins);
 *   WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &my_library; }
 */

/* Number of elements of a true array (not a pointer). */
#define WB_COUNT_OF(array_) ((int)(sizeof(array_) / sizeof((array_)[0])))

/* Parameter specs, one per type. (The type enum constants keep their names:
 * WB_PARAM_NUMBER alone is the type, WB_PARAM_NUMBER(...) a whole spec.)
 *   NUMBER, INT: default and inclusive bounds;  BOOL: default 0/1;
 *   STRING: default string, choices "a|b|c" or NULL (any string);
 *   INTS: default list "64,64", inclusive bounds of every element. */
#define WB_PARAM_NUMBER(name_, def_, min_, max_, doc_)                                             \
    {                                                                                              \
        .name = (name_), .type = WB_PARAM_NUMBER, .def = (def_), .min = (min_), .max = (max_),     \
        .def_str = NULL, .choices = NULL, .doc = (doc_),                                           \
    }
#define WB_PARAM_INT(name_, def_, min_, max_, doc_)                                                \
    {                                                                                              \
        .name = (name_), .type = WB_PARAM_INT, .def = (def_), .min = (min_), .max = (max_),        \
        .def_str = NULL, .choices = NULL, .doc = (doc_),                                           \
    }
#define WB_PARAM_BOOL(name_, def_, doc_)                                                           \
    {                                                                                              \
        .name = (name_), .type = WB_PARAM_BOOL, .def = (def_) ? 1.0 : 0.0, .min = 0.0, .max = 1.0, \
        .def_str = NULL, .choices = NULL, .doc = (doc_),                                           \
    }
#define WB_PARAM_STRING(name_, def_, choices_, doc_)                                               \
    {                                                                                              \
        .name = (name_), .type = WB_PARAM_STRING, .def = 0.0, .min = 0.0, .max = 0.0,              \
        .def_str = (def_), .choices = (choices_), .doc = (doc_),                                   \
    }
#define WB_PARAM_INTS(name_, def_, min_, max_, doc_)                                               \
    {                                                                                              \
        .name = (name_), .type = WB_PARAM_INTS, .def = 0.0, .min = (min_), .max = (max_),          \
        .def_str = (def_), .choices = NULL, .doc = (doc_),                                         \
    }

/* The params_ argument of the descriptor macros: a spec array, or none. */
#define WB_PARAMS(specs_) .params = (specs_), .n_params = WB_COUNT_OF(specs_)
#define WB_NO_PARAMS .params = NULL, .n_params = 0

/* Function tables, their struct_size filled. */
#define WB_DIVERGENCE_FNS(score_free_, weights_, value_)                                           \
    {                                                                                              \
        .struct_size = (uint32_t)sizeof(wb_divergence_fns), .score_free = (score_free_),           \
        .weights = (weights_), .value = (value_),                                                  \
    }
#define WB_NET_FNS(create_, destroy_, forward_)                                                    \
    {                                                                                              \
        .struct_size = (uint32_t)sizeof(wb_net_fns), .create = (create_), .destroy = (destroy_),   \
        .forward = (forward_),                                                                     \
    }
/* ... and the optional describe entry */
#define WB_NET_FNS_DESCRIBED(create_, destroy_, forward_, describe_)                               \
    {                                                                                              \
        .struct_size = (uint32_t)sizeof(wb_net_fns), .create = (create_), .destroy = (destroy_),   \
        .forward = (forward_), .describe = (describe_),                                            \
    }
#define WB_RATIO_FNS(wants_backbone_, create_, destroy_, logit_)                                   \
    {                                                                                              \
        .struct_size = (uint32_t)sizeof(wb_ratio_fns), .wants_backbone = (wants_backbone_),        \
        .create = (create_), .destroy = (destroy_), .logit = (logit_),                             \
    }

/* ... and an estimator trained jointly with the fake score (trains_fake_jointly) */
#define WB_RATIO_FNS_JOINT(create_, destroy_, logit_, fake_loss_weight_)                           \
    {                                                                                              \
        .struct_size = (uint32_t)sizeof(wb_ratio_fns), .wants_backbone = 0, .create = (create_),   \
        .destroy = (destroy_), .logit = (logit_), .trains_fake_jointly = 1,                        \
        .fake_loss_weight = (fake_loss_weight_),                                                   \
    }

/* Descriptors: kind, sizes and ABI version filled, exactly one table set.
 * version_: the plugin's own version, recorded in every run (bump it when a
 * formula changes); family_: a string or NULL; params_: WB_PARAMS(array) or
 * WB_NO_PARAMS (written out in each macro, not forwarded to a common one:
 * their commas would split it into two arguments); fns_: the address of the
 * kind's table. */
#define WB_DIVERGENCE_DESC(name_, version_, family_, doc_, params_, fns_)                          \
    {                                                                                              \
        .abi_version = WB_ABI_VERSION, .struct_size = (uint32_t)sizeof(wb_plugin_desc),            \
        .kind = WB_KIND_DIVERGENCE, .name = (name_), .version = (version_), .doc = (doc_),         \
        params_, .divergence = (fns_), .net = NULL, .ratio = NULL, .family = (family_),            \
    }
#define WB_NET_DESC(name_, version_, family_, doc_, params_, fns_)                                 \
    {                                                                                              \
        .abi_version = WB_ABI_VERSION, .struct_size = (uint32_t)sizeof(wb_plugin_desc),            \
        .kind = WB_KIND_NET, .name = (name_), .version = (version_), .doc = (doc_), params_,       \
        .divergence = NULL, .net = (fns_), .ratio = NULL, .family = (family_),                     \
    }
#define WB_RATIO_DESC(name_, version_, family_, doc_, params_, fns_)                               \
    {                                                                                              \
        .abi_version = WB_ABI_VERSION, .struct_size = (uint32_t)sizeof(wb_plugin_desc),            \
        .kind = WB_KIND_RATIO, .name = (name_), .version = (version_), .doc = (doc_), params_,     \
        .divergence = NULL, .net = NULL, .ratio = (fns_), .family = (family_),                     \
    }

/* The library: every descriptor of a true array of descriptor pointers. */
#define WB_LIBRARY(descs_)                                                                         \
    {                                                                                              \
        .abi_version = WB_ABI_VERSION, .struct_size = (uint32_t)sizeof(wb_plugin_library),         \
        .n_plugins = WB_COUNT_OF(descs_), .plugins = (descs_),                                     \
    }

#ifdef __cplusplus
}
#endif
#endif
