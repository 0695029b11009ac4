/* host/core/wb_internal.h — libwb internals shared by the host sources: the graph (arena
 * + tape) layout and the tape node. Not installed; plugins never see it.
 */
#ifndef WB_INTERNAL_H
#define WB_INTERNAL_H

#include <stdio.h>

#include "wb/backend.h"
#include "wb/plugin.h"
#include "wb/tensor.h"

typedef struct wb_node wb_node;
typedef void (*wb_backward_fn)(wb_graph *g, wb_node *node);

/* One recorded op: enough to compute the input gradients from the output
 * gradient. Small scalars ride in f[]/i[] so no op needs its own struct. */
struct wb_node {
    const char *op;
    wb_backward_fn backward;
    wb_tensor *out;
    wb_tensor *in[3];
    int n_in;
    float f[4];
    int64_t i[4];
};

/* A bump arena made of chunks. Reset keeps one chunk big enough for the
 * previous step's high-water mark, so a training loop allocates nothing
 * after its first step. */
typedef struct wb_arena_chunk {
    struct wb_arena_chunk *next;
    char *base;
    size_t size, used;
} wb_arena_chunk;

typedef struct wb_arena {
    const wb_backend *be; /* NULL: host memory (headers, nodes) */
    wb_arena_chunk *chunks;
    size_t total_used, high_water;
} wb_arena;

struct wb_graph {
    const wb_backend *be;
    wb_arena data;   /* tensor data and gradients, backend memory */
    wb_arena meta;   /* tensor headers and tape nodes, host memory */
    wb_node **tape;
    int n_tape, cap_tape;
    int grad_enabled;
    void *conv_ctx;   /* be->conv_ctx_new's context: fused convolutions; NULL = im2col */
    int bwd_failed;   /* a backward rule failed (message in wb_last_error()) */
    /* Gradient buffers of intermediate tensors whose backward has run: dead
     * for the rest of the step, so wb_ensure_grad hands them out again (exact
     * byte size only) instead of growing the arena. Emptied by reset. */
    struct wb_grad_block { float *ptr; size_t bytes; } *free_grads;
    int n_free_grads, cap_free_grads;
    int retain_grads; /* wb_graph_retain_grads: keep every intermediate grad */
    int n_backward;   /* wb_backward calls so far (wb_scope_end checks it) */
    /* wb_graph_set_rows: a draw whose leading dimension is win_rows gives rows
     * [win_row0, win_row0 + win_rows) of a draw of win_global rows (0: off) */
    int64_t win_global, win_row0, win_rows;
};

void *wb_arena_alloc(wb_arena *a, size_t bytes);

/* Shared by the op files (host/ops*.c): backend check and missing-kernel
 * errors naming the op; record a tape node when grad mode is on and an input
 * requires grad; does t want a gradient written into it. */
int wb_op_check_backend(const wb_graph *g, const char *op, const wb_tensor *t);
int wb_op_need_kernel(const wb_graph *g, const char *op, const void *fn);
wb_node *wb_op_record(wb_graph *g, const char *op, wb_backward_fn bwd, wb_tensor *out, wb_tensor *a,
                      wb_tensor *b, wb_tensor *c);
int wb_op_want(const wb_tensor *t);

/* Ensure t->grad exists (zeroed) in g's arena; returns it or NULL. */
float *wb_ensure_grad(wb_graph *g, wb_tensor *t);

/* Params internals needed by the engine and checkpoints. */
const char *wb_params_name(wb_params *ps, int i);

#endif
