/* host/core/params.c — parameter stores (one flat value buffer and one flat grad
 * buffer per module), Adam/AdamW over the flat buffer, and EMA copies.
 *
 * Declaration and allocation are two phases: a net declares every tensor
 * with wb_params_add (shape, initialiser), then wb_params_finalize allocates
 * the buffers and runs the initialisers in declaration order from one RNG
 * stream, so the same seed always gives the same network.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

typedef struct param_entry {
    wb_tensor tensor; /* data/grad point into the flat buffers after finalize */
    char name[96];
    int64_t offset;
    wb_init init;
    float scale;
} param_entry;

struct wb_params {
    const wb_backend *be;
    param_entry **entries; /* stable addresses: tensors are handed out */
    int n, cap;
    int64_t numel;
    float *data, *grad;
    int finalized;
    int trainable;
};

wb_params *wb_params_new(const wb_backend *be) {
    if (!be) {
        wb_set_error("params: no backend given");
        return NULL;
    }
    wb_params *ps = calloc(1, sizeof *ps);
    if (!ps) return NULL;
    ps->be = be;
    ps->trainable = 1;
    return ps;
}

void wb_params_free(wb_params *ps) {
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) free(ps->entries[i]);
    free(ps->entries);
    if (ps->data) ps->be->free(ps->data);
    if (ps->grad) ps->be->free(ps->grad);
    free(ps);
}

wb_tensor *wb_params_add(wb_params *ps, const char *name, int ndim, const int64_t *shape, wb_init init,
                         float scale) {
    if (ps->finalized) {
        wb_set_error("params: '%s' declared after finalize", name);
        return NULL;
    }
    if (ndim < 1 || ndim > WB_MAX_DIMS) {
        wb_set_error("params: '%s' has %d dims", name, ndim);
        return NULL;
    }
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->entries[i]->name, name) == 0) {
            wb_set_error("params: duplicate parameter name '%s'", name);
            return NULL;
        }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 16;
        param_entry **e = realloc(ps->entries, (size_t)cap * sizeof *e);
        if (!e) return NULL;
        ps->entries = e;
        ps->cap = cap;
    }
    param_entry *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->tensor.ndim = ndim;
    p->tensor.numel = 1;
    for (int d = 0; d < ndim; d++) {
        p->tensor.shape[d] = shape[d];
        p->tensor.numel *= shape[d];
    }
    p->tensor.backend = ps->be;
    p->tensor.name = p->name;
    p->tensor.requires_grad = ps->trainable;
    p->offset = ps->numel;
    /* keep every tensor 16-float aligned inside the flat buffer (SIMD) */
    ps->numel += (p->tensor.numel + 15) & ~(int64_t)15;
    p->init = init;
    p->scale = scale;
    ps->entries[ps->n++] = p;
    return &p->tensor;
}

int wb_params_finalize(wb_params *ps, wb_rng *rng) {
    if (ps->finalized) return 0;
    size_t bytes = (size_t)(ps->numel ? ps->numel : 1) * sizeof(float);
    /* zeroed without touching where the backend can (wb/backend.h): the
     * gradient of a net that is never trained, and zero-initialised
     * weights, then cost no resident memory */
    ps->data = wb_backend_alloc_zeroed(ps->be, bytes);
    ps->grad = wb_backend_alloc_zeroed(ps->be, bytes);
    if (!ps->data || !ps->grad) {
        wb_set_error("params: out of memory (%zu bytes)", bytes);
        return -1;
    }
    /* initial values are drawn on the host: straight into the buffer on the
     * CPU backend, else into a staging copy uploaded once */
    int direct = ps->be->device == WB_DEVICE_CPU;
    float *host = direct ? ps->data : calloc(1, bytes);
    if (!host) {
        wb_set_error("params: out of memory (%zu bytes of staging)", bytes);
        return -1;
    }
    for (int i = 0; i < ps->n; i++) {
        param_entry *p = ps->entries[i];
        float *dst = host + p->offset;
        int64_t n = p->tensor.numel;
        int64_t fan_in = 1;
        for (int d = 1; d < p->tensor.ndim; d++) fan_in *= p->tensor.shape[d];
        switch (p->init) {
        case WB_INIT_ZEROS: break;
        case WB_INIT_ONES: for (int64_t k = 0; k < n; k++) dst[k] = 1.0f; break;
        case WB_INIT_UNIFORM_FAN_IN: {
            float bound = p->scale / sqrtf((float)(fan_in > 0 ? fan_in : 1));
            wb_rng_uniform(rng, dst, n);
            for (int64_t k = 0; k < n; k++) dst[k] = (2.0f * dst[k] - 1.0f) * bound;
            break;
        }
        case WB_INIT_NORMAL:
            wb_rng_normal(rng, dst, n);
            for (int64_t k = 0; k < n; k++) dst[k] *= p->scale;
            break;
        }
        p->tensor.data = ps->data + p->offset;
        p->tensor.grad = ps->grad + p->offset;
    }
    if (!direct) {
        wb_backend_upload(ps->be, ps->data, host, bytes);
        free(host);
    }
    ps->finalized = 1;
    return 0;
}

int wb_params_count(const wb_params *ps) { return ps->n; }
const wb_backend *wb_params_backend(const wb_params *ps) { return ps->be; }
wb_tensor *wb_params_at(wb_params *ps, int i) { return (i >= 0 && i < ps->n) ? &ps->entries[i]->tensor : NULL; }
const char *wb_params_name(wb_params *ps, int i) { return ps->entries[i]->name; }

wb_tensor *wb_params_find(wb_params *ps, const char *name) {
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->entries[i]->name, name) == 0) return &ps->entries[i]->tensor;
    return NULL;
}

int64_t wb_params_numel(const wb_params *ps) { return ps->numel; }
float *wb_params_data(wb_params *ps) { return ps->data; }
float *wb_params_grad(wb_params *ps) { return ps->grad; }

void wb_params_zero_grad(wb_params *ps) {
    if (ps->grad) ps->be->fill(ps->grad, ps->numel, 0.0f);
}

void wb_params_set_trainable(wb_params *ps, int trainable) {
    ps->trainable = trainable != 0;
    for (int i = 0; i < ps->n; i++) ps->entries[i]->tensor.requires_grad = ps->trainable;
}

int wb_params_copy(wb_params *dst, const wb_params *src) {
    for (int i = 0; i < dst->n; i++) {
        param_entry *d = dst->entries[i];
        const param_entry *s = NULL;
        for (int j = 0; j < src->n; j++)
            if (strcmp(src->entries[j]->name, d->name) == 0) s = src->entries[j];
        if (!s) {
            wb_set_error("params copy: key '%s' missing in the source", d->name);
            return -1;
        }
        if (!wb_same_shape(&s->tensor, &d->tensor)) {
            char s1[64], s2[64];
            wb_set_error("params copy: key '%s' has shape %s in the source, %s in the target", d->name,
                         wb_shape_str(&s->tensor, s1, sizeof s1), wb_shape_str(&d->tensor, s2, sizeof s2));
            return -1;
        }
    }
    for (int i = 0; i < dst->n; i++) {
        param_entry *d = dst->entries[i];
        for (int j = 0; j < src->n; j++)
            if (strcmp(src->entries[j]->name, d->name) == 0)
                dst->be->copy(d->tensor.data, src->entries[j]->tensor.data,
                              (size_t)d->tensor.numel * sizeof(float));
    }
    return 0;
}

int wb_params_copy_matching(wb_params *dst, const wb_params *src) {
    int copied = 0;
    for (int i = 0; i < dst->n; i++) {
        param_entry *d = dst->entries[i];
        for (int j = 0; j < src->n; j++) {
            const param_entry *sp = src->entries[j];
            if (strcmp(sp->name, d->name) != 0 || !wb_same_shape(&sp->tensor, &d->tensor)) continue;
            dst->be->copy(d->tensor.data, sp->tensor.data, (size_t)d->tensor.numel * sizeof(float));
            copied++;
            break;
        }
    }
    return copied;
}

wb_params *wb_params_clone(const wb_params *src) {
    wb_params *ps = wb_params_new(src->be);
    if (!ps) return NULL;
    for (int i = 0; i < src->n; i++) {
        const param_entry *s = src->entries[i];
        if (!wb_params_add(ps, s->name, s->tensor.ndim, s->tensor.shape, WB_INIT_ZEROS, 0.0f)) {
            wb_params_free(ps);
            return NULL;
        }
    }
    wb_rng rng;
    wb_rng_init(&rng, 0, 0);
    if (wb_params_finalize(ps, &rng)) {
        wb_params_free(ps);
        return NULL;
    }
    ps->be->copy(ps->data, src->data, (size_t)src->numel * sizeof(float));
    return ps;
}

/* Both hand a reduction back to the host: a download, counted as one. The
 * engine's per-step checks use wb_params_check_finite instead. */
double wb_params_grad_norm(wb_params *ps) {
    wb_backend_count_download(ps->be, sizeof(double));
    return sqrt(ps->be->sum_squares(ps->numel, ps->grad));
}

int wb_params_all_finite(wb_params *ps) {
    wb_backend_count_download(ps->be, sizeof(double));
    return isfinite(ps->be->sum_squares(ps->numel, ps->data));
}

/* ---- Adam / AdamW ---------------------------------------------------------------- */
struct wb_adam {
    wb_params *ps;
    const wb_backend *be; /* kept apart from ps: the optimiser may outlive a freed store */
    float lr, beta1, beta2, eps, weight_decay;
    int decoupled;
    int64_t t;
    float *m, *v;
};

wb_adam *wb_adam_new(wb_params *ps, float lr, float beta1, float beta2, float eps, float weight_decay,
                     int decoupled) {
    wb_adam *opt = calloc(1, sizeof *opt);
    if (!opt) return NULL;
    opt->ps = ps;
    opt->be = ps->be;
    opt->lr = lr;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
    opt->decoupled = decoupled;
    size_t bytes = (size_t)(ps->numel ? ps->numel : 1) * sizeof(float);
    opt->m = wb_backend_alloc_zeroed(ps->be, bytes);
    opt->v = wb_backend_alloc_zeroed(ps->be, bytes);
    if (!opt->m || !opt->v) {
        wb_adam_free(opt);
        wb_set_error("adam: out of memory");
        return NULL;
    }
    return opt;
}

void wb_adam_free(wb_adam *opt) {
    if (!opt) return;
    if (opt->m) opt->be->free(opt->m);
    if (opt->v) opt->be->free(opt->v);
    free(opt);
}

void wb_adam_set_lr(wb_adam *opt, float lr) { opt->lr = lr; }

int wb_adam_step(wb_adam *opt) {
    wb_params *ps = opt->ps;
    opt->t++;
    float bc1 = 1.0f - powf(opt->beta1, (float)opt->t);
    float bc2 = 1.0f - powf(opt->beta2, (float)opt->t);
    ps->be->adam(ps->numel, ps->data, ps->grad, opt->m, opt->v, opt->lr, opt->beta1, opt->beta2, opt->eps,
                 opt->weight_decay, opt->decoupled, bc1, bc2);
    return 0;
}

int64_t wb_adam_steps(const wb_adam *opt) { return opt->t; }
int64_t wb_adam_numel(const wb_adam *opt) { return opt->ps->numel; }

int wb_adam_get_state(const wb_adam *opt, float *m, float *v) {
    size_t bytes = (size_t)opt->ps->numel * sizeof(float);
    wb_backend_download(opt->be, m, opt->m, bytes);
    wb_backend_download(opt->be, v, opt->v, bytes);
    return 0;
}

int wb_adam_set_state(wb_adam *opt, int64_t steps, const float *m, const float *v) {
    if (steps < 0) {
        wb_set_error("adam: a state of %lld steps", (long long)steps);
        return -1;
    }
    size_t bytes = (size_t)opt->ps->numel * sizeof(float);
    wb_backend_upload(opt->be, opt->m, m, bytes);
    wb_backend_upload(opt->be, opt->v, v, bytes);
    opt->t = steps;
    return 0;
}

int wb_ema_update(wb_params *ema, const wb_params *ps, float decay) {
    if (ema->numel != ps->numel) {
        wb_set_error("ema: %lld vs %lld parameters", (long long)ema->numel, (long long)ps->numel);
        return -1;
    }
    ps->be->axpby(ps->numel, decay, ps->data, 1.0f - decay, ema->data);
    return 0;
}

int wb_params_check_finite(wb_params *ps, int grads, const char *what) {
    const wb_backend *be = ps->be;
    wb_backend_status *st = be->status;
    if (!be->flag_nonfinite || !st || !st->finite_flags) {
        wb_set_error("params check_finite: not implemented on backend '%s'", be->name);
        return -1;
    }
    if (st->n_finite_checks >= WB_MAX_FINITE_CHECKS) {
        wb_set_error("params check_finite(%s): more than %d checks before a sync", what, WB_MAX_FINITE_CHECKS);
        return -1;
    }
    const float *x = grads ? ps->grad : ps->data;
    if (!x) return 0; /* no gradients yet: nothing can be non-finite */
    int slot = st->n_finite_checks++;
    st->finite_what[slot] = what;
    be->flag_nonfinite(ps->numel, x, &st->finite_flags[slot]);
    return 0;
}
