/* kernels/cuda/cuda_conv_cudnn.cu — the CUDA backend's fused convolutions
 * through cuDNN: the optional conv_ctx_new / conv2d_fwd / conv2d_bwd entries
 * of struct wb_backend (wb/backend.h), the CUDA twin of the CPU's oneDNN
 * path (kernels/cpu/cpu_conv_dnnl.c). Without them (no cuDNN at build time,
 * WB_CONV=im2col, and always on the cuda-emu CPU emulation, which cannot
 * run cuDNN) a graph convolves by im2col + cuBLAS, which is the reference
 * the cuDNN path is compared with on a device (scripts/gpu_check.sh).
 *
 * Which path: WB_CONV, read when a graph is made (conv_ctx_new):
 *   auto (default)  cuDNN for every geometry when cuDNN starts, else im2col.
 *                   im2col + GEMM issues one GEMM per image, cuDNN one call
 *                   per batch; on a GPU the per-image launches lose at every
 *                   size the nets use (scripts/gpu_check.sh measures both);
 *   cudnn           cuDNN, an error when it cannot start;
 *   im2col          never cuDNN;
 *   dnnl            the CPU's fused library: for this backend, auto.
 *
 * Determinism: algorithms come from cuDNN's heuristics (cudnnGet*_v7, the
 * same answer for the same device, library and shape), filtered to
 * CUDNN_DETERMINISTIC ones, never from timed searches whose winner can
 * change run to run; the bias gradient is the backend's own fixed-order
 * reduction. Numerics: CUDNN_FMA_MATH (no TF32) unless WB_CUDA_TF32=1.
 *
 * State: the cuDNN handle is made once per process (pthread_once, read-only
 * after), bound to the backend's stream; each graph's context caches the
 * descriptors and chosen algorithms of the geometries it has seen.
 * Workspaces come from the stream-ordered pool and go back to it after the
 * call (no driver allocation once warm).
 *
 * Shape legend: x (B, Cin, H, W), w (Cout, Cin, kh, kw), y (B, Cout, Ho, Wo).
 */
#if defined(WB_HAVE_CUDNN) && !defined(WB_CUDA_EMU)
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "cuda/cuda_backend.h"

static struct {
    pthread_once_t once;
    cudnnHandle_t handle; /* NULL when cuDNN could not start (why: reason) */
    char reason[160];
} g_cudnn = {PTHREAD_ONCE_INIT, NULL, {0}};

static void cudnn_init_once(void) {
    cudnnStatus_t st = cudnnCreate(&g_cudnn.handle);
    if (st != CUDNN_STATUS_SUCCESS) {
        snprintf(g_cudnn.reason, sizeof g_cudnn.reason, "cudnnCreate: %s", cudnnGetErrorString(st));
        g_cudnn.handle = NULL;
        return;
    }
    cudnnSetStream(g_cudnn.handle, wb_cuda_stream());
}

#define PLAN_CACHE 64              /* geometries per graph (a UNet has ~30) */
#define WORKSPACE_LIMIT ((size_t)1 << 30)

typedef struct conv_plan {
    wb_conv_geom geom;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws_fwd, ws_data, ws_filter;
} conv_plan;

typedef struct cudnn_ctx {
    conv_plan plans[PLAN_CACHE];
    int n_plans, next_evict;
} cudnn_ctx;

static int env_tf32(void) {
    const char *v = getenv("WB_CUDA_TF32");
    return v && v[0] && strcmp(v, "0") != 0;
}

int wb_cuda_conv_ctx_new(void **ctx) {
    *ctx = NULL;
    const char *mode = getenv("WB_CONV");
    if (mode && strcmp(mode, "im2col") == 0) return 0;
    int force = mode && strcmp(mode, "cudnn") == 0;
    if (mode && *mode && !force && strcmp(mode, "auto") != 0 && strcmp(mode, "dnnl") != 0) {
        wb_set_error("WB_CONV=%s: want auto, im2col, dnnl (CPU) or cudnn (CUDA)", mode);
        return -1;
    }
    pthread_once(&g_cudnn.once, cudnn_init_once);
    if (!g_cudnn.handle) {
        if (!force) return 0; /* auto: im2col + cuBLAS */
        wb_set_error("WB_CONV=cudnn: cuDNN unavailable (%s)", g_cudnn.reason);
        return -1;
    }
    cudnn_ctx *c = (cudnn_ctx *)calloc(1, sizeof *c);
    if (!c) {
        wb_set_error("cuDNN convolution context: out of memory");
        return -1;
    }
    *ctx = c;
    return 0;
}

static void plan_destroy(conv_plan *p) {
    cudnnDestroyTensorDescriptor(p->x);
    cudnnDestroyTensorDescriptor(p->y);
    cudnnDestroyFilterDescriptor(p->w);
    cudnnDestroyConvolutionDescriptor(p->conv);
}

void wb_cuda_conv_ctx_free(void *ctx) {
    cudnn_ctx *c = (cudnn_ctx *)ctx;
    if (!c) return;
    for (int i = 0; i < c->n_plans; i++) plan_destroy(&c->plans[i]);
    free(c);
}

static int fail(cudnnStatus_t st, const char *what, const wb_conv_geom *g) {
    wb_set_error("cuda conv2d (cuDNN %s, x %dx%dx%dx%d, W %dx%dx%dx%d, stride %dx%d, pad %dx%d): %s", what, g->b,
                 g->cin, g->h, g->w, g->cout, g->cin, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw,
                 cudnnGetErrorString(st));
    return -1;
}

#define TRY(call, what)                                                                                         \
    do {                                                                                                        \
        cudnnStatus_t st_ = (call);                                                                             \
        if (st_ != CUDNN_STATUS_SUCCESS) return fail(st_, what, g);                                             \
    } while (0)

/* The heuristics' best deterministic choice for each pass. */
static int choose_algorithms(conv_plan *p, const wb_conv_geom *g) {
    cudnnHandle_t h = g_cudnn.handle;
    int n = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    TRY(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, fwd),
        "forward heuristics");
    int found = 0;
    for (int i = 0; i < n && !found; i++)
        if (fwd[i].status == CUDNN_STATUS_SUCCESS && fwd[i].determinism == CUDNN_DETERMINISTIC &&
            fwd[i].memory <= WORKSPACE_LIMIT) {
            p->fwd = fwd[i].algo;
            found = 1;
        }
    if (!found) return fail(CUDNN_STATUS_NOT_SUPPORTED, "no deterministic forward algorithm", g);
    TRY(cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, p->fwd, &p->ws_fwd), "forward workspace");

    cudnnConvolutionBwdDataAlgoPerf_t bd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                    &n, bd),
        "backward-data heuristics");
    found = 0;
    for (int i = 0; i < n && !found; i++)
        if (bd[i].status == CUDNN_STATUS_SUCCESS && bd[i].determinism == CUDNN_DETERMINISTIC &&
            bd[i].memory <= WORKSPACE_LIMIT) {
            p->bwd_data = bd[i].algo;
            found = 1;
        }
    if (!found) return fail(CUDNN_STATUS_NOT_SUPPORTED, "no deterministic backward-data algorithm", g);
    TRY(cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x, p->bwd_data, &p->ws_data),
        "backward-data workspace");

    cudnnConvolutionBwdFilterAlgoPerf_t bf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w,
                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, bf),
        "backward-filter heuristics");
    found = 0;
    for (int i = 0; i < n && !found; i++)
        if (bf[i].status == CUDNN_STATUS_SUCCESS && bf[i].determinism == CUDNN_DETERMINISTIC &&
            bf[i].memory <= WORKSPACE_LIMIT) {
            p->bwd_filter = bf[i].algo;
            found = 1;
        }
    if (!found) return fail(CUDNN_STATUS_NOT_SUPPORTED, "no deterministic backward-filter algorithm", g);
    TRY(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w, p->bwd_filter, &p->ws_filter),
        "backward-filter workspace");
    return 0;
}

static int plan_make(conv_plan *p, const wb_conv_geom *g) {
    memset(p, 0, sizeof *p);
    p->geom = *g;
    TRY(cudnnCreateTensorDescriptor(&p->x), "descriptor");
    TRY(cudnnCreateTensorDescriptor(&p->y), "descriptor");
    TRY(cudnnCreateFilterDescriptor(&p->w), "descriptor");
    TRY(cudnnCreateConvolutionDescriptor(&p->conv), "descriptor");
    TRY(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g->b, g->cin, g->h, g->w), "x descriptor");
    TRY(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g->b, g->cout, g->ho, g->wo),
        "y descriptor");
    TRY(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g->cout, g->cin, g->kh, g->kw),
        "W descriptor");
    TRY(cudnnSetConvolution2dDescriptor(p->conv, g->ph, g->pw, g->sh, g->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT),
        "convolution descriptor");
    TRY(cudnnSetConvolutionMathType(p->conv, env_tf32() ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH),
        "math type");
    int n, c, h, w; /* our output shape must be cuDNN's */
    TRY(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w), "output shape");
    if (n != g->b || c != g->cout || h != g->ho || w != g->wo)
        return fail(CUDNN_STATUS_BAD_PARAM, "output shape differs from the op's", g);
    return choose_algorithms(p, g);
}

static conv_plan *plan_for(cudnn_ctx *c, const wb_conv_geom *g) {
    for (int i = 0; i < c->n_plans; i++)
        if (memcmp(&c->plans[i].geom, g, sizeof *g) == 0) return &c->plans[i];
    conv_plan *p;
    if (c->n_plans < PLAN_CACHE) {
        p = &c->plans[c->n_plans++];
    } else { /* full: replace in turn */
        p = &c->plans[c->next_evict];
        c->next_evict = (c->next_evict + 1) % PLAN_CACHE;
        plan_destroy(p);
    }
    if (plan_make(p, g)) {
        plan_destroy(p);
        memset(&p->geom, 0xff, sizeof p->geom); /* never matches */
        return NULL;
    }
    return p;
}

/* A workspace from the stream-ordered pool; freed in stream order after use. */
static void *workspace(size_t bytes) {
    void *ws = NULL;
    if (bytes && cudaMallocAsync(&ws, bytes, wb_cuda_stream()) != cudaSuccess) {
        cudaGetLastError();
        wb_set_error("cuda conv2d: cannot allocate a %zu-byte cuDNN workspace", bytes);
        return NULL;
    }
    return ws;
}

static void release(void *ws) {
    if (ws) cudaFreeAsync(ws, wb_cuda_stream());
}

int wb_cuda_conv2d_fwd(void *ctx, const wb_conv_geom *g, const float *x, const float *w, const float *b, float *y) {
    conv_plan *p = plan_for((cudnn_ctx *)ctx, g);
    if (!p) return -1;
    void *ws = workspace(p->ws_fwd);
    if (p->ws_fwd && !ws) return -1;
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t st = cudnnConvolutionForward(g_cudnn.handle, &one, p->x, x, p->w, w, p->conv, p->fwd, ws, p->ws_fwd,
                                               &zero, p->y, y);
    release(ws);
    if (st != CUDNN_STATUS_SUCCESS) return fail(st, "forward", g);
    if (b) wb_cuda_add_channel_bias(g->b, g->cout, (int64_t)g->ho * g->wo, b, y);
    wb_cuda_launched("conv2d");
    return 0;
}

int wb_cuda_conv2d_bwd(void *ctx, const wb_conv_geom *g, const float *x, const float *w, const float *dy, float *dx,
                       float *dw, float *db) {
    conv_plan *p = plan_for((cudnn_ctx *)ctx, g);
    if (!p) return -1;
    const float one = 1.0f;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (db) wb_cuda_channel_sums(g->b, g->cout, (int64_t)g->ho * g->wo, dy, db);
    if (dw) { /* dW += ∂L/∂W: beta = 1 accumulates */
        void *ws = workspace(p->ws_filter);
        if (p->ws_filter && !ws) return -1;
        st = cudnnConvolutionBackwardFilter(g_cudnn.handle, &one, p->x, x, p->y, dy, p->conv, p->bwd_filter, ws,
                                            p->ws_filter, &one, p->w, dw);
        release(ws);
        if (st != CUDNN_STATUS_SUCCESS) return fail(st, "backward filter", g);
    }
    if (dx) {
        void *ws = workspace(p->ws_data);
        if (p->ws_data && !ws) return -1;
        st = cudnnConvolutionBackwardData(g_cudnn.handle, &one, p->w, w, p->y, dy, p->conv, p->bwd_data, ws,
                                          p->ws_data, &one, p->x, dx);
        release(ws);
        if (st != CUDNN_STATUS_SUCCESS) return fail(st, "backward data", g);
    }
    wb_cuda_launched("conv2d_bwd");
    return 0;
}
#endif /* WB_HAVE_CUDNN && !WB_CUDA_EMU */
