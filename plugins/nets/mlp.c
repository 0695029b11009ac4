/* plugins/nets/mlp.c — net plugin `mlp`: a noise-conditioned MLP backbone for
 * low-dimensional data (and, flattened, for tiny images).
 *
 *   x_in (B, D)   c_noise (B)   [labels (B, L)]
 *   emb = act(Linear(PosEmb(c_noise, E)))            (B, E)
 *   h_0 = concat(x_in, emb[, labels])                (B, D + E [+ L])
 *   h_i = act(Linear(h_{i-1}))     i = 1..len(widths) (B, widths[i])
 *   F   = Linear(h_last)                             (B, out_channels·H·W)
 *
 * Exposes h_last as the feature "hidden" for GAN heads. EDM
 * preconditioning is applied by the host (wb_net_denoise), not here. The
 * output layer starts at zero so an untrained denoiser is D = c_skip·x.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/plugin.h"

#define MLP_MAX_LAYERS WB_MAX_INTS

typedef enum { ACT_SILU, ACT_RELU, ACT_TANH } mlp_act;

typedef struct mlp {
    wb_net_shape shape;
    int64_t in_dim, out_dim, emb_dim;
    int n_hidden;
    int use_embedding;
    float max_period;
    mlp_act act;
    wb_tensor *emb_w, *emb_b;
    wb_tensor *w[MLP_MAX_LAYERS + 1], *b[MLP_MAX_LAYERS + 1]; /* hidden layers, then output */
} mlp;

static const wb_param_spec mlp_params[] = {
    WB_PARAM_INTS("widths", "128,128,128", 1, 16384, "hidden layer widths, e.g. {256, 256}"),
    WB_PARAM_INT("emb_dim", 32, 2, 4096, "noise-embedding width (even)"),
    WB_PARAM_STRING("embedding", "positional", "positional|none",
                    "noise embedding: EDM positional (sin/cos of c_noise) or none (c_noise as one input)"),
    WB_PARAM_NUMBER("max_period", 10000, 1, 1e6, "positional embedding max period"),
    WB_PARAM_STRING("activation", "silu", "silu|relu|tanh", "hidden activation"),
};

static wb_tensor *activate(const mlp *m, wb_graph *g, wb_tensor *x) {
    switch (m->act) {
    case ACT_RELU: return wb_relu(g, x);
    case ACT_TANH: return wb_tanh(g, x);
    default: return wb_silu(g, x);
    }
}

static void *mlp_create(const wb_config *cfg, const wb_net_shape *shape, wb_params *params, char *err,
                        size_t err_len) {
    mlp *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->shape = *shape;
    m->in_dim = (int64_t)shape->channels * shape->height * shape->width;
    m->out_dim = (int64_t)shape->out_channels * shape->height * shape->width;
    int64_t widths[MLP_MAX_LAYERS];
    m->n_hidden = wb_config_ints(cfg, "widths", widths, MLP_MAX_LAYERS);
    const char *emb = wb_config_string(cfg, "embedding", "positional");
    m->use_embedding = strcmp(emb, "none") != 0;
    m->emb_dim = m->use_embedding ? wb_config_int(cfg, "emb_dim", 32) : 1;
    m->max_period = (float)wb_config_number(cfg, "max_period", 10000);
    const char *act = wb_config_string(cfg, "activation", "silu");
    m->act = strcmp(act, "relu") == 0 ? ACT_RELU : strcmp(act, "tanh") == 0 ? ACT_TANH : ACT_SILU;
    if (m->n_hidden < 1 || m->in_dim < 1 || m->out_dim < 1 || (m->use_embedding && m->emb_dim % 2)) {
        snprintf(err, err_len, "need >= 1 hidden layer, positive in/out sizes and an even emb_dim (got %d layers, emb_dim %lld)",
                 m->n_hidden, (long long)m->emb_dim);
        free(m);
        return NULL;
    }
    if (m->use_embedding) {
        int64_t s[2] = {m->emb_dim, m->emb_dim};
        m->emb_w = wb_params_add(params, "emb.weight", 2, s, WB_INIT_UNIFORM_FAN_IN, 1.0f);
        m->emb_b = wb_params_add(params, "emb.bias", 1, s, WB_INIT_ZEROS, 0.0f);
    }
    int64_t prev = m->in_dim + m->emb_dim + shape->label_dim;
    char name[64];
    for (int i = 0; i <= m->n_hidden; i++) {
        int last = i == m->n_hidden;
        int64_t width = last ? m->out_dim : widths[i];
        int64_t ws[2] = {width, prev};
        snprintf(name, sizeof name, last ? "out.weight" : "fc%d.weight", i);
        m->w[i] = wb_params_add(params, name, 2, ws, last ? WB_INIT_ZEROS : WB_INIT_UNIFORM_FAN_IN, 1.0f);
        snprintf(name, sizeof name, last ? "out.bias" : "fc%d.bias", i);
        m->b[i] = wb_params_add(params, name, 1, &width, WB_INIT_ZEROS, 0.0f);
        if (!m->w[i] || !m->b[i]) {
            snprintf(err, err_len, "%s", wb_last_error());
            free(m);
            return NULL;
        }
        prev = width;
    }
    return m;
}

static void mlp_destroy(void *self) { free(self); }

static wb_tensor *mlp_forward(void *self, wb_graph *g, wb_tensor *x_in, wb_tensor *c_noise, wb_tensor *labels,
                              wb_features *feats) {
    mlp *m = self;
    int64_t batch = x_in->shape[0];
    int64_t flat[2] = {batch, m->in_dim};
    wb_tensor *x = x_in->ndim == 2 ? x_in : wb_reshape(g, x_in, 2, flat);
    wb_tensor *emb;
    if (m->use_embedding) {
        emb = wb_sinusoidal(g, c_noise, (int)m->emb_dim, m->max_period);
        emb = activate(m, g, wb_linear(g, emb, m->emb_w, m->emb_b));
    } else {
        int64_t s[2] = {batch, 1};
        emb = wb_reshape(g, c_noise, 2, s);
    }
    wb_tensor *h = wb_concat(g, x, emb);
    if (labels && m->shape.label_dim > 0) h = wb_concat(g, h, labels);
    for (int i = 0; i < m->n_hidden; i++) h = activate(m, g, wb_linear(g, h, m->w[i], m->b[i]));
    if (feats && h) {
        feats->names[0] = "hidden";
        feats->maps[0] = h;
        feats->n = 1;
    }
    wb_tensor *y = wb_linear(g, h, m->w[m->n_hidden], m->b[m->n_hidden]);
    if (y && x_in->ndim != 2) {
        int64_t s[4] = {batch, m->shape.out_channels, m->shape.height, m->shape.width};
        y = wb_reshape(g, y, x_in->ndim, s);
    }
    return y;
}

static const wb_net_fns mlp_fns = WB_NET_FNS(mlp_create, mlp_destroy, mlp_forward);

static const wb_plugin_desc mlp_desc = WB_NET_DESC(
    "mlp", "1.0.0", NULL,
    "noise-conditioned MLP (positional embedding of c_noise, configurable widths); feature 'hidden'",
    WB_PARAMS(mlp_params), &mlp_fns);

static const wb_plugin_desc *const mlp_list[] = {&mlp_desc};
static const wb_plugin_library mlp_library = WB_LIBRARY(mlp_list);

WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &mlp_library; }
