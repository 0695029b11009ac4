/* host/core/tensor.c — errors, the step arena, tensors and reverse-mode autograd.
 *
 * A wb_graph owns two arenas (backend memory for data and grads, host memory
 * for headers and tape nodes) and the tape. Ops (host/core/ops.c) allocate their
 * outputs here and push a node; wb_backward() walks the tape backwards and
 * calls each node's backward, which ACCUMULATES into its inputs' grads.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/wb_internal.h"

/* ---- errors ------------------------------------------------------------ */
static _Thread_local char wb_error_buffer[1024];

const char *wb_last_error(void) { return wb_error_buffer[0] ? wb_error_buffer : "no error"; }

void wb_set_error(const char *fmt, ...) {
    /* Format into a scratch buffer first: callers may pass wb_last_error()
     * as an argument to prepend context. */
    char scratch[sizeof wb_error_buffer];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(scratch, sizeof scratch, fmt, ap);
    va_end(ap);
    memcpy(wb_error_buffer, scratch, sizeof scratch);
}

void wb_clear_error(void) { wb_error_buffer[0] = 0; }

/* ---- arena ---------------------------------------------------------------- */
#define WB_ALIGN 64
#define WB_MIN_CHUNK ((size_t)1 << 20)

static void arena_free_chunks(wb_arena *a, wb_arena_chunk *c) {
    while (c) {
        wb_arena_chunk *next = c->next;
        if (a->be) a->be->free(c->base);
        else free(c->base);
        free(c);
        c = next;
    }
}

static wb_arena_chunk *arena_new_chunk(wb_arena *a, size_t size) {
    wb_arena_chunk *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->size = size;
    c->base = a->be ? a->be->alloc(size) : aligned_alloc(WB_ALIGN, size);
    if (!c->base) {
        free(c);
        return NULL;
    }
    return c;
}

void *wb_arena_alloc(wb_arena *a, size_t bytes) {
    size_t need = (bytes + WB_ALIGN - 1) & ~(size_t)(WB_ALIGN - 1);
    if (need == 0) need = WB_ALIGN;
    wb_arena_chunk *c = a->chunks;
    if (!c || c->used + need > c->size) {
        size_t size = need > WB_MIN_CHUNK ? need : WB_MIN_CHUNK;
        if (c && c->size * 2 > size) size = c->size * 2;
        wb_arena_chunk *fresh = arena_new_chunk(a, size);
        if (!fresh) {
            wb_set_error("out of memory: arena chunk of %zu bytes", size);
            return NULL;
        }
        fresh->next = c;
        a->chunks = fresh;
        c = fresh;
    }
    void *p = c->base + c->used;
    c->used += need;
    a->total_used += need;
    if (a->total_used > a->high_water) a->high_water = a->total_used;
    return p;
}

static void arena_reset(wb_arena *a) {
    if (!a->chunks) return;
    if (a->chunks->next) {
        /* Several chunks this step: replace them by one that holds the
         * high-water mark, so the next step fits in a single chunk. */
        arena_free_chunks(a, a->chunks);
        a->chunks = NULL;
        size_t size = a->high_water + WB_ALIGN;
        a->chunks = arena_new_chunk(a, size < WB_MIN_CHUNK ? WB_MIN_CHUNK : size);
    } else {
        a->chunks->used = 0;
    }
    a->total_used = 0;
}

/* ---- scopes ------------------------------------------------------------------ */
wb_scope wb_scope_begin(wb_graph *g) {
    wb_scope s = {0};
    if (!g) return s;
    s.chunk = g->data.chunks;
    s.used = g->data.chunks ? g->data.chunks->used : 0;
    s.total = g->data.total_used;
    s.tape_len = g->n_tape;
    s.backward_count = g->n_backward;
    return s;
}

/* Copy `bytes` from src down to dst < src in pieces no longer than the gap,
 * so no single copy overlaps (the backends' copy is memcpy-like). */
static void copy_down(const wb_backend *be, char *dst, const char *src, size_t bytes) {
    size_t gap = (size_t)(src - dst);
    for (size_t off = 0; off < bytes; off += gap) be->copy(dst + off, src + off, bytes - off < gap ? bytes - off : gap);
}

/* The chunk of a holding address p among its live bytes, or NULL. */
static wb_arena_chunk *chunk_of(const wb_arena *a, const char *p) {
    for (wb_arena_chunk *c = a->chunks; c; c = c->next)
        if (p >= c->base && p < c->base + c->used) return c;
    return NULL;
}

/* Frees the chunks above `stop` in a's list (newest first); stop stays. */
static void free_chunks_above(wb_arena *a, wb_arena_chunk *stop) {
    while (a->chunks && a->chunks != stop) {
        wb_arena_chunk *c = a->chunks;
        a->chunks = c->next;
        c->next = NULL;
        arena_free_chunks(a, c);
    }
}

wb_tensor *wb_scope_end(wb_graph *g, wb_scope scope, wb_tensor *keep) {
    wb_arena *a = g ? &g->data : NULL;
    wb_arena_chunk *mark = scope.chunk;
    /* nothing to release: recorded nodes reference the scope's tensors, a
     * backward ran inside it (its gradient buffers live there), or the scope
     * began before the arena had memory */
    if (!a || !mark || g->n_tape != scope.tape_len || g->n_backward != scope.backward_count) return keep;
    /* chunks made inside the scope: those above the mark in the list */
    wb_arena_chunk *first_new = NULL;
    for (wb_arena_chunk *c = a->chunks; c && c != mark; c = c->next) first_new = c;
    char *kd = keep ? (char *)keep->data : NULL;
    size_t kbytes = keep ? (((size_t)keep->numel * sizeof(float) + WB_ALIGN - 1) & ~(size_t)(WB_ALIGN - 1)) : 0;
    wb_arena_chunk *home = kd ? chunk_of(a, kd) : NULL;
    if (kd && !home) return keep; /* not arena memory we know: release nothing */
    int home_is_new = 0;
    for (wb_arena_chunk *c = a->chunks; c && c != mark; c = c->next)
        if (c == home) home_is_new = 1;
    /* made inside the scope: in a chunk made inside it, or above the mark */
    int inside = home && (home_is_new || (home == mark && kd >= mark->base + scope.used));
    if (!inside) kbytes = 0; /* none, or made before the scope: it stays where it is */
    /* where keep goes: down to the mark, or — when the mark's chunk has no
     * room for it — to the start of the first chunk made inside the scope */
    wb_arena_chunk *dst_chunk = mark;
    size_t dst_off = scope.used;
    if (kbytes && mark->size - scope.used < kbytes) {
        if (!first_new || first_new->size < kbytes) return keep; /* nowhere to put it: keep all */
        dst_chunk = first_new;
        dst_off = 0;
    }
    char *dst = dst_chunk->base + dst_off;
    if (kbytes && kd != dst) {
        if (home == dst_chunk) copy_down(g->be, dst, kd, kbytes);
        else g->be->copy(dst, kd, kbytes);
        keep->data = (float *)dst;
    }
    /* chunks made inside the scope go (first passes only: after a reset the
     * arena is one chunk of the high-water size), except the one keep moved to */
    free_chunks_above(a, dst_chunk);
    dst_chunk->used = dst_off + kbytes;
    if (dst_chunk != mark) mark->used = scope.used;
    a->total_used = scope.total + kbytes;
    return keep;
}

/* ---- graph ------------------------------------------------------------------ */
wb_graph *wb_graph_new(const wb_backend *be) {
    if (!be) {
        wb_set_error("wb_graph_new: no backend");
        return NULL;
    }
    wb_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->be = be;
    g->data.be = be;
    g->meta.be = NULL;
    g->grad_enabled = 1;
    if (be->conv_ctx_new && be->conv_ctx_new(&g->conv_ctx)) {
        free(g);
        return NULL;
    }
    return g;
}

void wb_graph_free(wb_graph *g) {
    if (!g) return;
    if (g->conv_ctx && g->be->conv_ctx_free) g->be->conv_ctx_free(g->conv_ctx);
    arena_free_chunks(&g->data, g->data.chunks);
    arena_free_chunks(&g->meta, g->meta.chunks);
    free(g->tape);
    free(g->free_grads);
    free(g);
}

void wb_graph_reset(wb_graph *g) {
    arena_reset(&g->data);
    arena_reset(&g->meta);
    g->n_tape = 0;
    g->n_free_grads = 0;
}

void wb_graph_retain_grads(wb_graph *g, int enabled) { g->retain_grads = enabled != 0; }

void wb_graph_set_grad(wb_graph *g, int enabled) { g->grad_enabled = enabled != 0; }
int wb_graph_grad_enabled(const wb_graph *g) { return g->grad_enabled; }
const wb_backend *wb_graph_backend(const wb_graph *g) { return g->be; }
size_t wb_graph_arena_bytes(const wb_graph *g) { return g->data.high_water; }

/* ---- tensors ----------------------------------------------------------------- */
wb_tensor *wb_new(wb_graph *g, int ndim, const int64_t *shape) {
    if (ndim < 1 || ndim > WB_MAX_DIMS) {
        wb_set_error("tensor: %d dims (1..%d supported)", ndim, WB_MAX_DIMS);
        return NULL;
    }
    wb_tensor *t = wb_arena_alloc(&g->meta, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) {
            wb_set_error("tensor: negative dimension %lld", (long long)shape[d]);
            return NULL;
        }
        t->shape[d] = shape[d];
        t->numel *= shape[d];
    }
    t->backend = g->be;
    t->data = wb_arena_alloc(&g->data, (size_t)t->numel * sizeof(float));
    if (!t->data) return NULL;
    return t;
}

wb_tensor *wb_zeros(wb_graph *g, int ndim, const int64_t *shape) {
    wb_tensor *t = wb_new(g, ndim, shape);
    if (t) g->be->fill(t->data, t->numel, 0.0f);
    return t;
}

wb_tensor *wb_from_host(wb_graph *g, int ndim, const int64_t *shape, const float *host) {
    wb_tensor *t = wb_new(g, ndim, shape);
    if (t) wb_backend_upload(g->be, t->data, host, (size_t)t->numel * sizeof(float));
    return t;
}

wb_tensor *wb_new_like(wb_graph *g, const wb_tensor *t) {
    return t ? wb_new(g, t->ndim, t->shape) : NULL;
}

wb_tensor *wb_new_2d(wb_graph *g, int64_t rows, int64_t cols) {
    int64_t s[2] = {rows, cols};
    return wb_new(g, 2, s);
}

wb_tensor *wb_new_1d(wb_graph *g, int64_t n) { return wb_new(g, 1, &n); }

wb_tensor *wb_leaf(wb_graph *g, int ndim, const int64_t *shape, const float *host, int requires_grad) {
    wb_tensor *t = host ? wb_from_host(g, ndim, shape, host) : wb_zeros(g, ndim, shape);
    if (!t) return NULL;
    t->requires_grad = requires_grad != 0;
    return t;
}

int wb_to_host(const wb_tensor *t, float *host) {
    if (!t) return -1;
    wb_backend_download(t->backend, host, t->data, (size_t)t->numel * sizeof(float));
    return 0;
}

int wb_grad_to_host(const wb_tensor *t, float *host) {
    if (!t) return -1;
    if (!t->grad) {
        memset(host, 0, (size_t)t->numel * sizeof(float));
        return 0;
    }
    wb_backend_download(t->backend, host, t->grad, (size_t)t->numel * sizeof(float));
    return 0;
}

int wb_same_shape(const wb_tensor *a, const wb_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

const char *wb_shape_str(const wb_tensor *t, char *buf, size_t n) {
    size_t used = 0;
    used += (size_t)snprintf(buf + used, n - used, "(");
    for (int d = 0; d < t->ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (used < n) snprintf(buf + used, n - used, ")");
    return buf;
}

static size_t grad_bytes(const wb_tensor *t) {
    size_t bytes = (size_t)t->numel * sizeof(float);
    return (bytes + WB_ALIGN - 1) & ~(size_t)(WB_ALIGN - 1);
}

float *wb_ensure_grad(wb_graph *g, wb_tensor *t) {
    if (t->grad) return t->grad;
    size_t bytes = grad_bytes(t);
    /* newest dead buffer of exactly this size first: it is the one most
     * likely still in cache */
    for (int i = g->n_free_grads - 1; i >= 0; i--) {
        if (g->free_grads[i].bytes != bytes) continue;
        t->grad = g->free_grads[i].ptr;
        g->free_grads[i] = g->free_grads[--g->n_free_grads];
        break;
    }
    if (!t->grad) t->grad = wb_arena_alloc(&g->data, (size_t)t->numel * sizeof(float));
    if (t->grad) g->be->fill(t->grad, t->numel, 0.0f);
    return t->grad;
}

/* After node n's backward nothing reads n->out's gradient again (the tape is
 * in topological order: every consumer of n->out came later and has run),
 * so its buffer joins the free list — the backward then holds the
 * gradients of one "front" of the graph at a time, not of every
 * intermediate, as torch does for non-leaf tensors. A full list just keeps
 * the buffer (the arena still owns it). */
static void release_grad(wb_graph *g, wb_tensor *out) {
    if (!out->grad || out->numel == 0) return;
    if (g->n_free_grads == g->cap_free_grads) {
        int cap = g->cap_free_grads ? 2 * g->cap_free_grads : 64;
        struct wb_grad_block *grown = realloc(g->free_grads, (size_t)cap * sizeof *grown);
        if (!grown) {
            out->grad = NULL;
            return;
        }
        g->free_grads = grown;
        g->cap_free_grads = cap;
    }
    g->free_grads[g->n_free_grads].ptr = out->grad;
    g->free_grads[g->n_free_grads].bytes = grad_bytes(out);
    g->n_free_grads++;
    out->grad = NULL;
}

/* ---- backward --------------------------------------------------------------- */
int wb_backward(wb_graph *g, wb_tensor *root, const wb_tensor *seed) {
    if (!root) {
        wb_set_error("backward: root is NULL (an op before it failed: %s)", wb_last_error());
        return -1;
    }
    if (!root->requires_grad) {
        wb_set_error("backward: root does not require grad (nothing trainable upstream)");
        return -1;
    }
    g->n_backward++;
    /* Intermediate grads from an earlier backward on this tape would leak
     * into this one; leaves (params, inputs) keep accumulating, as in torch. */
    for (int i = 0; i < g->n_tape; i++) g->tape[i]->out->grad = NULL;

    float *droot = wb_ensure_grad(g, root);
    if (!droot) return -1;
    if (seed) {
        if (seed->numel != root->numel) {
            wb_set_error("backward: seed has %lld elements, root %lld", (long long)seed->numel,
                         (long long)root->numel);
            return -1;
        }
        g->be->copy(droot, seed->data, (size_t)root->numel * sizeof(float));
    } else {
        if (root->numel != 1) {
            wb_set_error("backward: root has %lld elements; give a seed gradient",
                         (long long)root->numel);
            return -1;
        }
        g->be->fill(droot, 1, 1.0f);
    }
    for (int i = g->n_tape - 1; i >= 0; i--) {
        wb_node *n = g->tape[i];
        if (!n->out->grad) continue; /* nothing flowed into this op */
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] && n->in[k]->requires_grad && !wb_ensure_grad(g, n->in[k])) return -1;
        g->bwd_failed = 0;
        n->backward(g, n);
        if (g->bwd_failed) return -1;
        if (!g->retain_grads) release_grad(g, n->out);
    }
    return 0;
}
