/* kernels/cpu/cpu_conv_dnnl.c — the CPU backend's fused convolution path:
 * conv2d forward (with bias), backward-data and backward-weights (+ bias
 * gradient) as oneDNN primitives (Debian's libdnnl, the library PyTorch's
 * CPU convolutions use), instead of im2col + one OpenBLAS GEMM per image
 * (host/core/ops_conv.c's reference path). Also the per-graph context that
 * decides between the two (WB_CONV), so this file exists in builds without
 * oneDNN too: there WB_CONV=dnnl is an error and every graph uses im2col.
 *
 * Shape legend (wb_conv_geom, wb/backend.h): x (B, Cin, H, W) NCHW,
 * W (Cout, Cin, kh, kw) OIHW, b (Cout), y (B, Cout, Ho, Wo); strides sh, sw,
 * zero pads ph, pw on both sides of each axis.
 *
 * Layouts: the engine's tensors are plain NCHW / OIHW. The primitives are
 * created with format "any", so oneDNN picks the layouts its fast kernels
 * want (blocked nChw8c / 16c on AVX2 / AVX-512); each argument whose chosen
 * layout differs from the plain one gets a reorder before (inputs) or after
 * (outputs) the primitive. Measured (bench/bench_conv.c): with plain
 * layouts forced, oneDNN falls back to its own im2col + GEMM and is 0.7× the
 * OpenBLAS path; blocked with the reorders it is 1.6–2.2× faster on 3×3.
 * The reorders are still a large share of the time, so the backward pass
 * reorders dY once for both of its primitives. Gradients ACCUMULATE
 * (dx += ...; wb/backend.h): every gradient output is computed into the
 * primitive's own buffer and reordered into the engine's buffer with a sum
 * post-op, so accumulating costs no extra pass.
 *
 * Which shapes: WB_CONV=auto (default) sends only those oneDNN wins on
 * (wb_cpu_conv2d_use_fused), WB_CONV=dnnl every one (the tests compare the
 * paths), WB_CONV=im2col none (the graph gets no context).
 *
 * State: a context per graph (wb_graph_new → conv_ctx_new, freed with the
 * graph) holding the oneDNN engine and stream and a small table of
 * primitives keyed by (kind, geometry, bias, threads); no globals.
 * Threads: this oneDNN runs on OpenMP. Before each call the calling
 * thread's OpenMP thread count is set to OpenBLAS's (openblas_get_num_threads:
 * OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, or openblas_set_num_threads), so
 * both paths use the same number of cores.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "wb/backend.h"
#include "wb/cpu.h" /* wb_cpu_deterministic */
#include "wb/tensor.h"

#ifndef WB_HAVE_DNNL

int wb_cpu_conv_ctx_new(void **ctx) {
    *ctx = NULL;
    if (wb_cpu_check_deterministic_env()) return -1;
    const char *mode = getenv("WB_CONV");
    /* cudnn is the CUDA backend's fused library: for the CPU, auto */
    if (!mode || !*mode || strcmp(mode, "im2col") == 0 || strcmp(mode, "auto") == 0 || strcmp(mode, "cudnn") == 0)
        return 0;
    if (strcmp(mode, "dnnl") == 0)
        wb_set_error("WB_CONV=dnnl: this build has no oneDNN (install libdnnl-dev and reconfigure)");
    else
        wb_set_error("WB_CONV=%s: want auto, im2col, dnnl (CPU) or cudnn (CUDA)", mode);
    return -1;
}

#else /* WB_HAVE_DNNL */

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>

enum { KIND_FWD = 0, KIND_BWD_DATA, KIND_BWD_WEIGHTS };
static const char *const KIND_NAME[] = {"forward", "backward-data", "backward-weights"};

#define CACHE_SIZE 96 /* a DDPM++ UNet has ~20 distinct conv shapes, ×3 kinds */
#define MAX_ARGS 4

/* One primitive argument. `user` wraps the engine's buffer (plain layout,
 * handle set per call); `mem` is what the primitive reads or writes: `user`
 * itself when the layouts agree and nothing accumulates, else a buffer
 * oneDNN allocated plus a reorder between the two. */
typedef struct conv_arg {
    int arg;        /* DNNL_ARG_* */
    int output;     /* written by the primitive */
    dnnl_memory_t user, mem;
    size_t mem_bytes; /* mem's size when it is not `user` (its buffer: the context's slot for arg) */
    dnnl_primitive_t reorder; /* user→mem (input) or mem→user (output, summing when accumulating) */
} conv_arg;

typedef struct conv_key {
    int kind, bias, nthr;
    wb_conv_geom geom;
} conv_key;

typedef struct conv_entry {
    conv_key key;
    dnnl_primitive_t prim;
    int n_args;
    conv_arg a[MAX_ARGS];
} conv_entry;

/* Buffers for the blocked copies, one per argument role and shared by all
 * cached primitives (grown to the largest): a copy lives only during one
 * run (or, for dY, from the weights pass to the data pass of the same
 * backward, which use different roles otherwise), so keeping one per
 * primitive — ~60 geometries × 3 kinds, hundreds of MB at batch 64 — would
 * only hold memory. */
#define N_SLOTS 8
typedef struct dnnl_conv_ctx {
    int force;            /* WB_CONV=dnnl: every geometry, not just the ones oneDNN wins */
    dnnl_engine_t engine; /* created at the first convolution */
    dnnl_stream_t stream;
    conv_entry cache[CACHE_SIZE];
    int n, next_evict;
    void *slot[N_SLOTS];
    size_t slot_bytes[N_SLOTS];
} dnnl_conv_ctx;

static int slot_of(int arg) {
    switch (arg) {
    case DNNL_ARG_SRC: return 0;
    case DNNL_ARG_WEIGHTS: return 1;
    case DNNL_ARG_BIAS: return 2;
    case DNNL_ARG_DST: return 3;
    case DNNL_ARG_DIFF_DST: return 4;
    case DNNL_ARG_DIFF_SRC: return 5;
    case DNNL_ARG_DIFF_WEIGHTS: return 6;
    default: return 7; /* DNNL_ARG_DIFF_BIAS */
    }
}

/* The slot for `arg`, at least `bytes` long; NULL when out of memory. */
static void *slot_buffer(dnnl_conv_ctx *ctx, int arg, size_t bytes) {
    int i = slot_of(arg);
    if (ctx->slot_bytes[i] >= bytes) return ctx->slot[i];
    free(ctx->slot[i]);
    size_t rounded = (bytes + 4095) & ~(size_t)4095;
    ctx->slot[i] = aligned_alloc(4096, rounded);
    ctx->slot_bytes[i] = ctx->slot[i] ? rounded : 0;
    return ctx->slot[i];
}

/* "conv2d backward-data (oneDNN): creating the primitive: unimplemented;
 * x (8, 3, 32, 32), W (16, 3, 3, 3), stride (1, 1), pad (1, 1)" */
static int fail(int kind, const wb_conv_geom *c, const char *what, dnnl_status_t st) {
    wb_set_error("conv2d %s (oneDNN): %s: %s; x (%d, %d, %d, %d), W (%d, %d, %d, %d), stride (%d, %d), pad (%d, %d)",
                 KIND_NAME[kind], what, dnnl_status2str(st), c->b, c->cin, c->h, c->w, c->cout, c->cin, c->kh, c->kw,
                 c->sh, c->sw, c->ph, c->pw);
    return -1;
}

static void arg_destroy(conv_arg *a) {
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    if (a->mem && a->mem != a->user) dnnl_memory_destroy(a->mem);
    if (a->user) dnnl_memory_destroy(a->user);
    memset(a, 0, sizeof *a);
}

static void entry_destroy(conv_entry *e) {
    for (int i = 0; i < e->n_args; i++) arg_destroy(&e->a[i]);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}

/* Adds argument `arg`: plain layout `plain_md`, the primitive's layout
 * `prim_md`. Outputs that accumulate always go through a summing reorder. */
static dnnl_status_t add_arg(dnnl_conv_ctx *ctx, conv_entry *e, int arg, int output, int accumulate,
                             const dnnl_memory_desc_t *plain_md, const dnnl_memory_desc_t *prim_md) {
    conv_arg *a = &e->a[e->n_args++];
    a->arg = arg;
    a->output = output;
    dnnl_status_t st = dnnl_memory_create(&a->user, plain_md, ctx->engine, DNNL_MEMORY_NONE);
    if (st != dnnl_success) return st;
    if (!accumulate && dnnl_memory_desc_equal(plain_md, prim_md)) {
        a->mem = a->user;
        return dnnl_success;
    }
    if ((st = dnnl_memory_create(&a->mem, prim_md, ctx->engine, DNNL_MEMORY_NONE)) != dnnl_success) return st;
    a->mem_bytes = dnnl_memory_desc_get_size(prim_md);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if ((st = dnnl_primitive_attr_create(&attr)) != dnnl_success) return st;
    if (accumulate) { /* user = mem + user */
        if ((st = dnnl_post_ops_create(&po)) == dnnl_success && (st = dnnl_post_ops_append_sum(po, 1.0f)) == dnnl_success)
            st = dnnl_primitive_attr_set_post_ops(attr, po);
        if (po) dnnl_post_ops_destroy(po);
    }
    if (st != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return st;
    }
    dnnl_primitive_desc_t rpd = NULL;
    st = output ? dnnl_reorder_primitive_desc_create(&rpd, prim_md, ctx->engine, plain_md, ctx->engine, attr)
                : dnnl_reorder_primitive_desc_create(&rpd, plain_md, ctx->engine, prim_md, ctx->engine, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return st;
    st = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

/* Plain memory descriptors of x, W, b, y for a geometry. */
static dnnl_status_t plain_mds(const wb_conv_geom *c, dnnl_memory_desc_t *x, dnnl_memory_desc_t *w,
                               dnnl_memory_desc_t *b, dnnl_memory_desc_t *y) {
    dnnl_dims_t xd = {c->b, c->cin, c->h, c->w}, wd = {c->cout, c->cin, c->kh, c->kw}, bd = {c->cout},
                yd = {c->b, c->cout, c->ho, c->wo};
    dnnl_status_t st;
    if ((st = dnnl_memory_desc_init_by_tag(x, 4, xd, dnnl_f32, dnnl_nchw)) != dnnl_success) return st;
    if ((st = dnnl_memory_desc_init_by_tag(w, 4, wd, dnnl_f32, dnnl_oihw)) != dnnl_success) return st;
    if ((st = dnnl_memory_desc_init_by_tag(b, 1, bd, dnnl_f32, dnnl_x)) != dnnl_success) return st;
    return dnnl_memory_desc_init_by_tag(y, 4, yd, dnnl_f32, dnnl_nchw);
}

/* The forward descriptor (also the hint the backward primitives need);
 * x, W, y in format "any" so oneDNN chooses. */
static dnnl_status_t fwd_desc(const wb_conv_geom *c, int bias, dnnl_convolution_desc_t *d) {
    dnnl_dims_t xd = {c->b, c->cin, c->h, c->w}, wd = {c->cout, c->cin, c->kh, c->kw}, bd = {c->cout},
                yd = {c->b, c->cout, c->ho, c->wo};
    dnnl_dims_t strides = {c->sh, c->sw}, pad = {c->ph, c->pw};
    /* The right/bottom pad is what makes the output Ho×Wo: with a stride
     * that does not divide, the floor drops input rows, and oneDNN wants
     * padding_r = (Ho − 1)·s + k − H − pad_l (possibly less than pad_l). */
    dnnl_dims_t pad_r = {(dnnl_dim_t)(c->ho - 1) * c->sh + c->kh - c->h - c->ph,
                         (dnnl_dim_t)(c->wo - 1) * c->sw + c->kw - c->w - c->pw};
    dnnl_memory_desc_t x, w, b, y;
    dnnl_status_t st;
    if ((st = dnnl_memory_desc_init_by_tag(&x, 4, xd, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return st;
    if ((st = dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return st;
    if ((st = dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return st;
    if ((st = dnnl_memory_desc_init_by_tag(&y, 4, yd, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return st;
    return dnnl_convolution_forward_desc_init(d, dnnl_forward_training, dnnl_convolution_direct, &x, &w,
                                              bias ? &b : NULL, &y, strides, pad, pad_r);
}

/* Creates the primitive for key k into e; returns a status and sets *what. */
static dnnl_status_t build(dnnl_conv_ctx *ctx, const conv_key *k, conv_entry *e, const char **what) {
    const wb_conv_geom *c = &k->geom;
    dnnl_memory_desc_t px, pw, pb, py;
    dnnl_convolution_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    dnnl_status_t st;
    *what = "describing the convolution";
    if ((st = plain_mds(c, &px, &pw, &pb, &py)) != dnnl_success) return st;
    if ((st = fwd_desc(c, k->bias, &fd)) != dnnl_success) return st;
    *what = "creating the primitive";
    if ((st = dnnl_primitive_desc_create(&fpd, &fd, NULL, ctx->engine, NULL)) != dnnl_success) return st;
    if (k->kind == KIND_FWD) {
        pd = fpd;
        fpd = NULL;
    } else {
        dnnl_dims_t strides = {c->sh, c->sw}, pad = {c->ph, c->pw};
        dnnl_dims_t pad_r = {(dnnl_dim_t)(c->ho - 1) * c->sh + c->kh - c->h - c->ph,
                             (dnnl_dim_t)(c->wo - 1) * c->sw + c->kw - c->w - c->pw};
        if (k->kind == KIND_BWD_DATA)
            st = dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &fd.src_desc,
                                                          &fd.weights_desc, &fd.dst_desc, strides, pad, pad_r);
        else
            st = dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &fd.src_desc,
                                                             &fd.weights_desc, k->bias ? &fd.bias_desc : NULL,
                                                             &fd.dst_desc, strides, pad, pad_r);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &bd, NULL, ctx->engine, fpd);
        dnnl_primitive_desc_destroy(fpd);
        if (st != dnnl_success) return st;
    }
#define MD(q, i) dnnl_primitive_desc_query_md(pd, q, i)
    *what = "creating its memory and reorders";
    switch (k->kind) {
    case KIND_FWD:
        if ((st = add_arg(ctx, e, DNNL_ARG_SRC, 0, 0, &px, MD(dnnl_query_src_md, 0))) != dnnl_success) break;
        if ((st = add_arg(ctx, e, DNNL_ARG_WEIGHTS, 0, 0, &pw, MD(dnnl_query_weights_md, 0))) != dnnl_success) break;
        if (k->bias && (st = add_arg(ctx, e, DNNL_ARG_BIAS, 0, 0, &pb, MD(dnnl_query_weights_md, 1))) != dnnl_success)
            break;
        st = add_arg(ctx, e, DNNL_ARG_DST, 1, 0, &py, MD(dnnl_query_dst_md, 0));
        break;
    case KIND_BWD_DATA:
        if ((st = add_arg(ctx, e, DNNL_ARG_WEIGHTS, 0, 0, &pw, MD(dnnl_query_weights_md, 0))) != dnnl_success) break;
        if ((st = add_arg(ctx, e, DNNL_ARG_DIFF_DST, 0, 0, &py, MD(dnnl_query_diff_dst_md, 0))) != dnnl_success) break;
        st = add_arg(ctx, e, DNNL_ARG_DIFF_SRC, 1, 1, &px, MD(dnnl_query_diff_src_md, 0));
        break;
    default:
        if ((st = add_arg(ctx, e, DNNL_ARG_SRC, 0, 0, &px, MD(dnnl_query_src_md, 0))) != dnnl_success) break;
        if ((st = add_arg(ctx, e, DNNL_ARG_DIFF_DST, 0, 0, &py, MD(dnnl_query_diff_dst_md, 0))) != dnnl_success) break;
        if ((st = add_arg(ctx, e, DNNL_ARG_DIFF_WEIGHTS, 1, 1, &pw, MD(dnnl_query_diff_weights_md, 0))) != dnnl_success)
            break;
        if (k->bias) st = add_arg(ctx, e, DNNL_ARG_DIFF_BIAS, 1, 1, &pb, MD(dnnl_query_diff_weights_md, 1));
        break;
    }
#undef MD
    if (st == dnnl_success) {
        *what = "creating the primitive";
        st = dnnl_primitive_create(&e->prim, pd);
    }
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* The cached primitive for k, built on a miss (evicting round-robin when
 * the table is full, never `keep`); NULL with the error set. */
static conv_entry *lookup(dnnl_conv_ctx *ctx, const conv_key *k, const conv_entry *keep) {
    for (int i = 0; i < ctx->n; i++)
        if (memcmp(&ctx->cache[i].key, k, sizeof *k) == 0) return &ctx->cache[i];
    dnnl_status_t st;
    if (!ctx->engine) {
        if ((st = dnnl_engine_create(&ctx->engine, dnnl_cpu, 0)) != dnnl_success) {
            fail(k->kind, &k->geom, "creating the CPU engine", st);
            return NULL;
        }
        if ((st = dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags)) != dnnl_success) {
            fail(k->kind, &k->geom, "creating the stream", st);
            return NULL;
        }
    }
    conv_entry *e;
    if (ctx->n < CACHE_SIZE) {
        e = &ctx->cache[ctx->n++];
    } else {
        if (&ctx->cache[ctx->next_evict] == keep) ctx->next_evict = (ctx->next_evict + 1) % CACHE_SIZE;
        e = &ctx->cache[ctx->next_evict];
        ctx->next_evict = (ctx->next_evict + 1) % CACHE_SIZE;
        entry_destroy(e);
    }
    memset(e, 0, sizeof *e);
    const char *what = "";
    if ((st = build(ctx, k, e, &what)) != dnnl_success) {
        entry_destroy(e);
        e->key.kind = -1; /* never matches; reused by the next miss */
        fail(k->kind, &k->geom, what, st);
        return NULL;
    }
    e->key = *k;
    return e;
}

/* Runs entry e on the buffers given per argument (same order as e->a; NULL:
 * an output nobody wants, computed and dropped). `shared`, when not NULL,
 * is an input already reordered into the primitive's layout (by another
 * entry's run) for the argument of that layout whose id is `shared_arg`. */
static int run(dnnl_conv_ctx *ctx, conv_entry *e, void *const *ptr, int shared_arg, dnnl_memory_t shared) {
    dnnl_exec_arg_t args[MAX_ARGS], rargs[2];
    dnnl_status_t st = dnnl_success;
    const char *what = "setting buffers";
    for (int i = 0; i < e->n_args && st == dnnl_success; i++) {
        conv_arg *a = &e->a[i];
        args[i].arg = a->arg;
        args[i].memory = a->mem;
        if (shared && a->arg == shared_arg) {
            args[i].memory = shared;
            continue;
        }
        if (ptr[i]) st = dnnl_memory_set_data_handle(a->user, ptr[i]);
        if (st == dnnl_success && a->mem != a->user) {
            what = "allocating a blocked copy";
            void *buf = slot_buffer(ctx, a->arg, a->mem_bytes);
            st = buf ? dnnl_memory_set_data_handle(a->mem, buf) : dnnl_out_of_memory;
        }
        if (st == dnnl_success && !a->output && a->reorder) {
            what = "reordering an input";
            rargs[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, a->user};
            rargs[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, a->mem};
            st = dnnl_primitive_execute(a->reorder, ctx->stream, 2, rargs);
        }
    }
    if (st == dnnl_success) {
        what = "executing";
        st = dnnl_primitive_execute(e->prim, ctx->stream, e->n_args, args);
    }
    for (int i = 0; i < e->n_args && st == dnnl_success; i++) {
        conv_arg *a = &e->a[i];
        if (!a->output || !a->reorder || !ptr[i]) continue;
        what = "reordering an output";
        rargs[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, a->mem};
        rargs[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, a->user};
        st = dnnl_primitive_execute(a->reorder, ctx->stream, 2, rargs);
    }
    if (st == dnnl_success) {
        what = "waiting for the stream";
        st = dnnl_stream_wait(ctx->stream);
    }
    return st == dnnl_success ? 0 : fail(e->key.kind, &e->key.geom, what, st);
}

/* OpenMP threads = OpenBLAS threads (see the top comment); the count is
 * part of the cache key because oneDNN sizes its kernels' work split for
 * it when a primitive is created. That split changes the results (the
 * backward-weights reduction, and forward blockings: a UNet's weights
 * after 4 steps differ between 1 and 2 threads), so the deterministic mode
 * (wb_cpu_deterministic) runs oneDNN on one thread. */
static int sync_threads(void) {
    int n = wb_cpu_deterministic() ? 1 : openblas_get_num_threads();
    if (n < 1) n = 1;
    if (omp_get_max_threads() != n) omp_set_num_threads(n);
    return n;
}
/* After a oneDNN call in the deterministic mode: OpenMP's count back to
 * OpenBLAS's, which the OpenMP OpenBLAS would otherwise take for its own
 * at its next call (it follows omp_get_max_threads), leaving the whole run
 * on one thread. */
static void unsync_threads(void) {
    if (!wb_cpu_deterministic()) return;
    int n = openblas_get_num_threads();
    if (n >= 1 && omp_get_max_threads() != n) omp_set_num_threads(n);
}

static conv_entry *prepare(void *vctx, int kind, const wb_conv_geom *geom, int bias, const conv_entry *keep) {
    conv_key k;
    memset(&k, 0, sizeof k); /* padding bytes too: the key is compared with memcmp */
    k.kind = kind;
    k.bias = bias;
    k.nthr = sync_threads();
    k.geom = *geom;
    return lookup(vctx, &k, keep);
}

int wb_cpu_conv2d_fwd(void *ctx, const wb_conv_geom *geom, const float *x, const float *w, const float *b,
                      float *y) {
    if (geom->b == 0) return 0;
    conv_entry *e = prepare(ctx, KIND_FWD, geom, b != NULL, NULL);
    if (!e) return -1;
    void *ptr[MAX_ARGS] = {(void *)x, (void *)w, b ? (void *)b : y, y};
    int rc = run(ctx, e, ptr, 0, NULL);
    unsync_threads();
    return rc;
}

/* The argument of entry e whose id is arg. */
static conv_arg *find_arg(conv_entry *e, int arg) {
    for (int i = 0; i < e->n_args; i++)
        if (e->a[i].arg == arg) return &e->a[i];
    return NULL;
}

static int conv2d_bwd(void *ctx, const wb_conv_geom *geom, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db) {
    conv_entry *ew = NULL, *ed = NULL;
    if ((dw || db) && !(ew = prepare(ctx, KIND_BWD_WEIGHTS, geom, db != NULL, NULL))) return -1;
    if (dx && !(ed = prepare(ctx, KIND_BWD_DATA, geom, 0, ew))) return -1; /* a miss must not evict ew */
    if (ew) {
        void *ptr[MAX_ARGS] = {(void *)x, (void *)dy, dw, db};
        if (run(ctx, ew, ptr, 0, NULL)) return -1;
    }
    if (ed) {
        /* dY in the blocked layout both primitives want is reordered once:
         * the weights pass left it in its own buffer. */
        dnnl_memory_t shared = NULL;
        conv_arg *aw = ew ? find_arg(ew, DNNL_ARG_DIFF_DST) : NULL, *ad = find_arg(ed, DNNL_ARG_DIFF_DST);
        if (aw && ad && aw->reorder && ad->reorder) {
            const dnnl_memory_desc_t *mw = NULL, *md = NULL;
            if (dnnl_memory_get_memory_desc(aw->mem, &mw) == dnnl_success &&
                dnnl_memory_get_memory_desc(ad->mem, &md) == dnnl_success && dnnl_memory_desc_equal(mw, md))
                shared = aw->mem;
        }
        void *ptr[MAX_ARGS] = {(void *)w, (void *)dy, dx};
        if (run(ctx, ed, ptr, DNNL_ARG_DIFF_DST, shared)) return -1;
    }
    return 0;
}

int wb_cpu_conv2d_bwd(void *ctx, const wb_conv_geom *geom, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db) {
    if (geom->b == 0 || (!dx && !dw && !db)) return 0;
    int rc = conv2d_bwd(ctx, geom, x, w, dy, dx, dw, db);
    unsync_threads();
    return rc;
}

int wb_cpu_conv_ctx_new(void **out) {
    *out = NULL;
    if (wb_cpu_check_deterministic_env()) return -1;
    const char *mode = getenv("WB_CONV");
    int force = 0;
    /* cudnn is the CUDA backend's fused library: for the CPU, auto */
    if (mode && *mode && strcmp(mode, "auto") != 0 && strcmp(mode, "cudnn") != 0) {
        if (strcmp(mode, "im2col") == 0) return 0;
        if (strcmp(mode, "dnnl") != 0) {
            wb_set_error("WB_CONV=%s: want auto, im2col, dnnl (CPU) or cudnn (CUDA)", mode);
            return -1;
        }
        force = 1;
    }
    /* The engine and stream wait for the first convolution: most graphs
     * (MLP nets, metrics) never convolve. */
    dnnl_conv_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        wb_set_error("conv2d (oneDNN): out of memory for the primitive cache");
        return -1;
    }
    ctx->force = force;
    *out = ctx;
    return 0;
}

/* WB_CONV=auto (the default): oneDNN where it measured faster than im2col +
 * OpenBLAS (bench/bench_conv.c; bench/README.md): kernels larger than 1×1
 * with K = Cin·kh·kw >= WB_DNNL_MIN_K. A pointwise 1×1 is already one
 * batched GEMM without im2col, and a tiny K (the UNet's 1-channel input
 * conv) leaves oneDNN's 16-channel blocks mostly padding. */
#define WB_DNNL_MIN_K 32
int wb_cpu_conv2d_use_fused(const void *vctx, const wb_conv_geom *c) {
    const dnnl_conv_ctx *ctx = vctx;
    if (ctx->force) return 1;
    return c->kh * c->kw > 1 && c->cin * c->kh * c->kw >= WB_DNNL_MIN_K;
}

void wb_cpu_conv_ctx_free(void *vctx) {
    dnnl_conv_ctx *ctx = vctx;
    if (!ctx) return;
    for (int i = 0; i < ctx->n; i++) entry_destroy(&ctx->cache[i]);
    for (int i = 0; i < N_SLOTS; i++) free(ctx->slot[i]);
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    if (ctx->engine) dnnl_engine_destroy(ctx->engine);
    free(ctx);
}

#endif /* WB_HAVE_DNNL */
