/* kernels/cuda/cuda_elementwise.cu — the CUDA backend's elementwise kernels:
 * fill, unary (+bwd), broadcasting binary (+bwd), bcast_rows_add, copy_2d,
 * sinusoidal (+bwd), axpy, axpby, adam. Semantics are those written in
 * include/wb/backend.h; every "bwd" kernel ACCUMULATES (dx += ...).
 *
 * Every kernel is a 1-D grid-stride loop over its output, launched with
 * WB_CUDA_BLOCK threads and wb_cuda_grid(n) blocks (see cuda_backend.h for
 * why those numbers): memory-bound, one element per iteration, adjacent
 * threads touching adjacent addresses so loads and stores coalesce. Indices
 * are int64_t because tensors may exceed 2^31 elements. n <= 0 launches
 * nothing (a zero-block launch is an error in CUDA).
 *
 * The scalar math comes from include/wb/elementwise.h (WB_HD), the same
 * functions the CPU reference uses, so both backends round alike.
 */
#include "cuda/cuda_backend.h"
#include "wb/elementwise.h"

/* ---- scalar definitions of the unary ops ----------------------------------- *
 * f(x) and f'(x) for each wb_unary_op. y = f(x) is passed so the derivatives
 * that are cheapest in terms of the output (exp, sigmoid, tanh, sqrt) reuse
 * it; the unary_bwd kernel recomputes y when the caller passed NULL. SiLU's
 * backward is given σ(x) instead (wb/backend.h). */
static WB_HD float unary_fwd(wb_unary_op op, float x, float alpha) {
    switch (op) {
    case WB_UNARY_SCALE: return alpha * x;
    case WB_UNARY_ADD_SCALAR: return x + alpha;
    case WB_UNARY_EXP: return expf(x);
    case WB_UNARY_LOG: return logf(x);
    case WB_UNARY_SIGMOID: return wb_sigmoidf(x);
    case WB_UNARY_SOFTPLUS: return wb_softplusf(x);
    case WB_UNARY_LOGSIGMOID: return wb_logsigmoidf(x);
    case WB_UNARY_SILU: return wb_siluf(x);
    case WB_UNARY_TANH: return tanhf(x);
    case WB_UNARY_RELU: return x > 0.0f ? x : 0.0f;
    case WB_UNARY_SQUARE: return x * x;
    case WB_UNARY_SQRT: return sqrtf(x);
    default: return 0.0f; /* unreachable: wb_cuda_unary rejects bad ops */
    }
}

static WB_HD float unary_grad(wb_unary_op op, float x, float y, float alpha) {
    switch (op) {
    case WB_UNARY_SCALE: return alpha;
    case WB_UNARY_ADD_SCALAR: return 1.0f;
    case WB_UNARY_EXP: return y;                        /* (e^x)' = e^x          */
    case WB_UNARY_LOG: return 1.0f / x;
    case WB_UNARY_SIGMOID: return y * (1.0f - y);       /* σ' = σ(1−σ)           */
    case WB_UNARY_SOFTPLUS: return wb_sigmoidf(x);      /* softplus' = σ(x)      */
    case WB_UNARY_LOGSIGMOID: return wb_sigmoidf(-x);   /* (log σ)' = σ(−x)      */
    case WB_UNARY_SILU: return wb_silu_grad_sigf(x, y); /* y = σ(x) here, not silu(x) */
    case WB_UNARY_TANH: return 1.0f - y * y;
    case WB_UNARY_RELU: return x > 0.0f ? 1.0f : 0.0f;  /* relu'(0) := 0         */
    case WB_UNARY_SQUARE: return 2.0f * x;
    case WB_UNARY_SQRT: return 0.5f / y;                /* (√x)' = 1/(2√x)       */
    default: return 0.0f;
    }
}

static int check_unary_op(wb_unary_op op, const char *what) {
    if ((int)op >= 0 && op < WB_UNARY_COUNT) return 0;
    wb_set_error("cuda %s: unknown unary op %d", what, (int)op);
    return -1;
}

static int check_binary_op(wb_binary_op op, const char *what) {
    if ((int)op >= 0 && op < WB_BINARY_COUNT) return 0;
    wb_set_error("cuda %s: unknown binary op %d", what, (int)op);
    return -1;
}

/* ---- fill --------------------------------------------------------------------- */

static __global__ void k_fill(float *dst, int64_t n, float value) {
    WB_GRID_STRIDE(i, n) dst[i] = value;
}

void wb_cuda_fill(float *dst, int64_t n, float value) {
    if (n <= 0) return;
    WB_CUDA_LAUNCH(k_fill, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(dst, n, value);
    wb_cuda_launched("fill");
}

/* ---- unary ------------------------------------------------------------------- */

/* *flag (mapped host memory) = 1 when any x is NaN or inf; racing writers
 * all write 1, so no atomic is needed. */
static __global__ void k_flag_nonfinite(int64_t n, const float *x, int *flag) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        if (!isfinite(x[i])) *flag = 1;
}

void wb_cuda_flag_nonfinite(int64_t n, const float *x, int *flag) {
    if (n <= 0) return;
    WB_CUDA_LAUNCH(k_flag_nonfinite, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(n, x, flag);
    wb_cuda_launched("flag_nonfinite");
}

static __global__ void k_unary(wb_unary_op op, int64_t n, const float *x, float *y, float alpha) {
    WB_GRID_STRIDE(i, n) y[i] = unary_fwd(op, x[i], alpha);
}

static __global__ void k_unary_bwd(wb_unary_op op, int64_t n, const float *x, const float *y,
                                   const float *dy, float *dx, float alpha) {
    WB_GRID_STRIDE(i, n) {
        float xi = x[i];
        float yi = y ? y[i] : op == WB_UNARY_SILU ? wb_sigmoidf(xi) : unary_fwd(op, xi, alpha);
        dx[i] += dy[i] * unary_grad(op, xi, yi, alpha);
    }
}

void wb_cuda_unary(wb_unary_op op, int64_t n, const float *x, float *y, float alpha) {
    if (n <= 0 || check_unary_op(op, "unary")) return;
    WB_CUDA_LAUNCH(k_unary, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(op, n, x, y, alpha);
    wb_cuda_launched("unary");
}

void wb_cuda_unary_bwd(wb_unary_op op, int64_t n, const float *x, const float *y,
                       const float *dy, float *dx, float alpha) {
    if (n <= 0 || check_unary_op(op, "unary_bwd")) return;
    WB_CUDA_LAUNCH(k_unary_bwd, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(op, n, x, y, dy, dx, alpha);
    wb_cuda_launched("unary_bwd");
}

/* ---- broadcasting binary -------------------------------------------------------- *
 * The wb_bcast geometry (120 bytes) is passed BY VALUE as a kernel argument:
 * it lands in the constant parameter bank, read-only and broadcast to all
 * threads, with no device allocation or copy. out_shape is right-aligned to 4
 * dims (leading 1s), so a flat output index unravels into (i0, i1, i2, i3). */

__device__ __forceinline__ void bc_offsets(const wb_bcast &bc, int64_t i, int64_t *ia,
                                           int64_t *ib) {
    int64_t i3 = i % bc.out_shape[3];
    int64_t r = i / bc.out_shape[3];
    int64_t i2 = r % bc.out_shape[2];
    r /= bc.out_shape[2];
    int64_t i1 = r % bc.out_shape[1];
    int64_t i0 = r / bc.out_shape[1];
    *ia = i0 * bc.a_stride[0] + i1 * bc.a_stride[1] + i2 * bc.a_stride[2] + i3 * bc.a_stride[3];
    *ib = i0 * bc.b_stride[0] + i1 * bc.b_stride[1] + i2 * bc.b_stride[2] + i3 * bc.b_stride[3];
}

static __global__ void k_binary(wb_binary_op op, wb_bcast bc, const float *a, const float *b,
                                float *y) {
    WB_GRID_STRIDE(i, bc.out_numel) {
        int64_t ia, ib;
        bc_offsets(bc, i, &ia, &ib);
        float av = a[ia], bv = b[ib], out;
        switch (op) {
        case WB_BINARY_ADD: out = av + bv; break;
        case WB_BINARY_SUB: out = av - bv; break;
        case WB_BINARY_MUL: out = av * bv; break;
        default: out = av / bv; break; /* WB_BINARY_DIV */
        }
        y[i] = out;
    }
}

/* ∂y/∂a (which = 0) or ∂y/∂b (which = 1) times dy at output element i. */
__device__ __forceinline__ float binary_grad(wb_binary_op op, int which, const wb_bcast &bc, int64_t i,
                                             const float *a, const float *b, const float *dy) {
    float g = dy[i];
    switch (op) {
    case WB_BINARY_ADD: return g;
    case WB_BINARY_SUB: return which ? -g : g;
    default: break;
    }
    int64_t ia, ib;
    bc_offsets(bc, i, &ia, &ib);
    if (op == WB_BINARY_MUL) return which ? g * a[ia] : g * b[ib];
    float bv = b[ib]; /* WB_BINARY_DIV: ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b² */
    return which ? -g * a[ia] / (bv * bv) : g / bv;
}

/* Operands that are not broadcast (numel == out_numel) map output elements
 * one-to-one onto their own: a flat pass, one writer per element. Inputs
 * are read only by the ops whose derivative needs them, so a caller may
 * pass NULL a/b for ADD/SUB. */
static __global__ void k_binary_bwd_same(wb_binary_op op, wb_bcast bc, const float *a, const float *b,
                                         const float *dy, float *da, float *db) {
    WB_GRID_STRIDE(i, bc.out_numel) {
        if (da) da[i] += binary_grad(op, 0, bc, i, a, b, dy);
        if (db) db[i] += binary_grad(op, 1, bc, i, a, b, dy);
    }
}

/* A broadcast operand receives several contributions per element. Instead
 * of atomics (whose order, and so whose rounding, changes run to run) each
 * element GATHERS its contributions: the output elements that read it are
 * its own coordinates on the kept dims times every coordinate of the
 * reduced dims (stride 0, size > 1), visited in row-major order — the order
 * the CPU reference adds them in, so the two round alike. */
struct bcast_gather {
    int64_t own[4];      /* the operand's shape, right-aligned (1 on reduced dims) */
    int64_t red[4];      /* sizes of the reduced dims (1 elsewhere)               */
    int64_t out_str[4];  /* row-major strides of the output                       */
    int64_t reduce_count, numel;
};

static bcast_gather make_gather(const wb_bcast &bc, int which) {
    bcast_gather gt;
    const int64_t *st = which ? bc.b_stride : bc.a_stride;
    int64_t str = 1;
    gt.reduce_count = 1;
    gt.numel = 1;
    for (int k = 3; k >= 0; k--) {
        int reduced = st[k] == 0 && bc.out_shape[k] > 1;
        gt.own[k] = reduced ? 1 : bc.out_shape[k];
        gt.red[k] = reduced ? bc.out_shape[k] : 1;
        gt.out_str[k] = str;
        str *= bc.out_shape[k];
        gt.reduce_count *= gt.red[k];
        gt.numel *= gt.own[k];
    }
    return gt;
}

/* Output index of operand element e's r-th contribution. */
__device__ __forceinline__ int64_t gather_index(const bcast_gather &gt, int64_t e, int64_t r) {
    int64_t i = 0;
    for (int k = 3; k >= 0; k--) {
        int64_t ce = e % gt.own[k], cr = r % gt.red[k];
        e /= gt.own[k];
        r /= gt.red[k];
        i += (ce + cr) * gt.out_str[k]; /* one of the two is 0 on every dim */
    }
    return i;
}

/* Few contributions per element: one thread per element, in order. */
static __global__ void k_bcast_grad_serial(wb_binary_op op, int which, wb_bcast bc, bcast_gather gt, const float *a,
                                           const float *b, const float *dy, float *grad) {
    WB_GRID_STRIDE(e, gt.numel) {
        float acc = grad[e];
        for (int64_t r = 0; r < gt.reduce_count; r++) acc += binary_grad(op, which, bc, gather_index(gt, e, r), a, b, dy);
        grad[e] = acc;
    }
}

/* Many contributions (a scalar or per-channel operand of a big tensor): one
 * block per element, threads striding over the contributions, a fixed-order
 * block sum. The loop bound depends only on blockIdx (barriers inside). */
static __global__ void k_bcast_grad_block(wb_binary_op op, int which, wb_bcast bc, bcast_gather gt, const float *a,
                                          const float *b, const float *dy, float *grad) {
    for (int64_t e = blockIdx.x; e < gt.numel; e += gridDim.x) {
        float s = 0.0f;
        for (int64_t r = threadIdx.x; r < gt.reduce_count; r += blockDim.x)
            s += binary_grad(op, which, bc, gather_index(gt, e, r), a, b, dy);
        s = wb_cuda_block_sum(s);
        if (threadIdx.x == 0) grad[e] += s;
    }
}

#define BCAST_BLOCK_REDUCE 2048 /* contributions per element from which a block gathers */

static void bcast_grad(wb_binary_op op, int which, const wb_bcast *bc, const float *a, const float *b,
                       const float *dy, float *grad) {
    bcast_gather gt = make_gather(*bc, which);
    if (gt.reduce_count >= BCAST_BLOCK_REDUCE) {
        unsigned grid = gt.numel < WB_CUDA_MAX_BLOCKS ? (unsigned)gt.numel : WB_CUDA_MAX_BLOCKS;
        WB_CUDA_LAUNCH(k_bcast_grad_block, grid, WB_CUDA_BLOCK, 0)(op, which, *bc, gt, a, b, dy, grad);
    } else {
        WB_CUDA_LAUNCH(k_bcast_grad_serial, wb_cuda_grid(gt.numel), WB_CUDA_BLOCK, 0)(op, which, *bc, gt, a, b, dy,
                                                                                      grad);
    }
    wb_cuda_launched("binary_bwd");
}

void wb_cuda_binary(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b,
                    float *y) {
    if (bc->out_numel <= 0 || check_binary_op(op, "binary")) return;
    WB_CUDA_LAUNCH(k_binary, wb_cuda_grid(bc->out_numel), WB_CUDA_BLOCK, 0)(op, *bc, a, b, y);
    wb_cuda_launched("binary");
}

void wb_cuda_binary_bwd(wb_binary_op op, const wb_bcast *bc, const float *a, const float *b,
                        const float *dy, float *da, float *db) {
    if (bc->out_numel <= 0 || (!da && !db) || check_binary_op(op, "binary_bwd")) return;
    const bool a_bc = bc->a_numel != bc->out_numel, b_bc = bc->b_numel != bc->out_numel;
    float *da_same = da && !a_bc ? da : NULL, *db_same = db && !b_bc ? db : NULL;
    if (da_same || db_same) {
        WB_CUDA_LAUNCH(k_binary_bwd_same, wb_cuda_grid(bc->out_numel), WB_CUDA_BLOCK, 0)(op, *bc, a, b, dy, da_same,
                                                                                         db_same);
        wb_cuda_launched("binary_bwd");
    }
    if (da && a_bc) bcast_grad(op, 0, bc, a, b, dy, da);
    if (db && b_bc) bcast_grad(op, 1, bc, a, b, dy, db);
}

/* ---- C = β·C (gemm with k = 0) --------------------------------------------------- */
static __global__ void k_scale_matrices(int64_t total, int rows, int cols, int ld, int64_t stride, float beta,
                                        float *c) {
    WB_GRID_STRIDE(i, total) {
        int64_t per = (int64_t)rows * cols, m = i / per, r = (i % per) / cols, j = i % cols;
        float *p = c + m * stride + r * ld + j;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

void wb_cuda_scale_matrices(int batch, int rows, int cols, int ld, int64_t stride, float beta, float *c) {
    int64_t total = (int64_t)batch * rows * cols;
    if (total <= 0 || beta == 1.0f) return;
    WB_CUDA_LAUNCH(k_scale_matrices, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, rows, cols, ld, stride, beta, c);
    wb_cuda_launched("gemm");
}

/* ---- row/2-D helpers ------------------------------------------------------------ */

static __global__ void k_bcast_rows_add(int64_t rows, int64_t cols, const float *dy, float alpha,
                                        float *dx) {
    WB_GRID_STRIDE(i, rows * cols) dx[i] += alpha * dy[i / cols];
}

void wb_cuda_bcast_rows_add(int64_t rows, int64_t cols, const float *dy, float alpha,
                            float *dx) {
    if (rows <= 0 || cols <= 0) return;
    WB_CUDA_LAUNCH(k_bcast_rows_add, wb_cuda_grid(rows * cols), WB_CUDA_BLOCK, 0)(rows, cols, dy, alpha, dx);
    wb_cuda_launched("bcast_rows_add");
}

/* Flattened over rows·cols rather than one block per row: rows are often
 * short (a few features), and a flat index keeps every thread busy while
 * consecutive threads still walk consecutive columns of a row. */
static __global__ void k_copy_2d(int64_t rows, int64_t cols, const float *src, int64_t src_stride,
                                 float *dst, int64_t dst_stride, int accumulate) {
    WB_GRID_STRIDE(i, rows * cols) {
        int64_t r = i / cols, c = i - r * cols;
        float v = src[r * src_stride + c];
        float *d = &dst[r * dst_stride + c];
        *d = accumulate ? *d + v : v;
    }
}

void wb_cuda_copy_2d(int64_t rows, int64_t cols, const float *src, int64_t src_stride,
                     float *dst, int64_t dst_stride, int accumulate) {
    if (rows <= 0 || cols <= 0) return;
    WB_CUDA_LAUNCH(k_copy_2d, wb_cuda_grid(rows * cols), WB_CUDA_BLOCK, 0)(rows, cols, src, src_stride, dst,
                                                            dst_stride, accumulate);
    wb_cuda_launched("copy_2d");
}

/* ---- sinusoidal embedding ---------------------------------------------------------- *
 * y[i, j] = cos(t_i·f_j) for j < h, sin(t_i·f_{j−h}) for h ≤ j < 2h, with
 * h = dim/2 and f_j = max_period^(−j/h); an odd dim leaves its last column 0.
 * Full-precision sinf/cosf/powf (no fast-math intrinsics): the result must
 * match the CPU reference, and the kernel is nowhere near compute-bound. */

__device__ __forceinline__ float sin_freq(int j, int h, float max_period) {
    return powf(max_period, -(float)j / (float)h);
}

static __global__ void k_sinusoidal(int64_t n, int dim, float max_period, const float *t,
                                    float *y) {
    const int h = dim / 2;
    WB_GRID_STRIDE(idx, n * dim) {
        int64_t i = idx / dim;
        int j = (int)(idx - i * dim);
        float out = 0.0f;
        if (j < h) out = cosf(t[i] * sin_freq(j, h, max_period));
        else if (j < 2 * h) out = sinf(t[i] * sin_freq(j - h, h, max_period));
        y[idx] = out;
    }
}

/* dt_i += Σ_j dy[i,j]·∂y[i,j]/∂t_i
 *       = Σ_{j<h} f_j·(dy[i,h+j]·cos(t_i f_j) − dy[i,j]·sin(t_i f_j)).
 * One thread per row: n is a batch size and dim a few hundred at most, so a
 * sequential sum per row is cheap and needs no atomics or shared memory. */
static __global__ void k_sinusoidal_bwd(int64_t n, int dim, float max_period, const float *t,
                                        const float *dy, float *dt) {
    const int h = dim / 2;
    WB_GRID_STRIDE(i, n) {
        const float ti = t[i];
        const float *row = dy + i * dim;
        float s = 0.0f;
        for (int j = 0; j < h; j++) {
            float f = sin_freq(j, h, max_period);
            float arg = ti * f;
            s += f * (row[h + j] * cosf(arg) - row[j] * sinf(arg));
        }
        dt[i] += s;
    }
}

void wb_cuda_sinusoidal(int64_t n, int dim, float max_period, const float *t, float *y) {
    if (n <= 0 || dim <= 0) return;
    WB_CUDA_LAUNCH(k_sinusoidal, wb_cuda_grid(n * dim), WB_CUDA_BLOCK, 0)(n, dim, max_period, t, y);
    wb_cuda_launched("sinusoidal");
}

void wb_cuda_sinusoidal_bwd(int64_t n, int dim, float max_period, const float *t,
                            const float *dy, float *dt) {
    if (n <= 0 || dim < 2) return; /* dim < 2: no frequency, zero gradient */
    WB_CUDA_LAUNCH(k_sinusoidal_bwd, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(n, dim, max_period, t, dy, dt);
    wb_cuda_launched("sinusoidal_bwd");
}

/* ---- BLAS-1 and the optimiser ------------------------------------------------------- */

static __global__ void k_axpy(int64_t n, float alpha, const float *x, float *y) {
    WB_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

static __global__ void k_axpby(int64_t n, float a, const float *x, float b, float *y) {
    WB_GRID_STRIDE(i, n) y[i] = a * y[i] + b * x[i];
}

void wb_cuda_axpy(int64_t n, float alpha, const float *x, float *y) {
    if (n <= 0) return;
    WB_CUDA_LAUNCH(k_axpy, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(n, alpha, x, y);
    wb_cuda_launched("axpy");
}

void wb_cuda_axpby(int64_t n, float a, const float *x, float b, float *y) {
    if (n <= 0) return;
    WB_CUDA_LAUNCH(k_axpby, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(n, a, x, b, y);
    wb_cuda_launched("axpby");
}

/* Adam (decoupled = 0: weight decay enters the gradient as L2) or AdamW
 * (decoupled = 1: p ← p − lr·wd·p before the step), torch.optim semantics:
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,
 *   p ← p − lr·(m/bc1) / (√(v/bc2) + eps),  bc1 = 1−β1^t, bc2 = 1−β2^t.
 * The last line is evaluated as (lr/bc1)·m / (√v·(1/√bc2) + eps), in the
 * same order as the CPU reference (kernels/cpu/cpu_backend.c), so the two
 * backends round alike; the two scalars are hoisted to the host. */
static __global__ void k_adam(int64_t n, float *p, const float *g, float *m, float *v, float lr,
                              float beta1, float beta2, float eps, float wd, int decoupled,
                              float step, float inv_sqrt_bc2) {
    WB_GRID_STRIDE(i, n) {
        float pi = p[i], gi = g[i];
        if (decoupled) pi -= lr * wd * pi;
        else gi += wd * pi;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

void wb_cuda_adam(int64_t n, float *p, const float *g, float *m, float *v, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int decoupled,
                  float bc1, float bc2) {
    if (n <= 0) return;
    const float step = lr / bc1, inv_sqrt_bc2 = 1.0f / sqrtf(bc2);
    WB_CUDA_LAUNCH(k_adam, wb_cuda_grid(n), WB_CUDA_BLOCK, 0)(n, p, g, m, v, lr, beta1, beta2, eps, weight_decay,
                                               decoupled, step, inv_sqrt_bc2);
    wb_cuda_launched("adam");
}

/* ---- y[n, c, p] += b[c] (a convolution's bias) -------------------------------------- */
static __global__ void k_add_channel_bias(int64_t total, int c, int64_t hw, const float *b, float *y) {
    WB_GRID_STRIDE(i, total) y[i] += b[(i / hw) % c];
}

void wb_cuda_add_channel_bias(int b, int c, int64_t hw, const float *bias, float *y) {
    int64_t total = (int64_t)b * c * hw;
    if (total <= 0) return;
    WB_CUDA_LAUNCH(k_add_channel_bias, wb_cuda_grid(total), WB_CUDA_BLOCK, 0)(total, c, hw, bias, y);
    wb_cuda_launched("conv2d");
}
