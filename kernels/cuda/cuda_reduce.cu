/* kernels/cuda/cuda_reduce.cu — the CUDA backend's reductions: sum_rows,
 * sum_cols (bias gradients) and sum_squares (gradient norms, in double).
 * Semantics are those of include/wb/backend.h.
 *
 * Each reduction gives one output element to one block (or one block column)
 * so that no atomics are needed and results are deterministic run to run:
 * the summation order depends only on the shape and the launch geometry.
 */
#include <math.h>

#include "cuda/cuda_backend.h"

/* ---- sum_rows: y[r] = Σ_c x[r·cols + c] ----------------------------------------- *
 * One block per row (grid-stride over rows; the loop bound depends only on
 * blockIdx, so every thread of a block reaches the barriers together). The
 * block's threads stride across the row: coalesced reads of long rows. For
 * very short rows most threads idle, which is acceptable for the losses and
 * per-sample reductions this serves. Accumulates in double, as the CPU
 * reference does (means over large batches); the kernel is memory-bound, so
 * the FP64 adds cost nothing measurable on sm_80/sm_90. */
static __global__ void k_sum_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *row = x + r * cols;
        double s = 0.0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += row[c];
        s = wb_cuda_block_sum(s);
        if (threadIdx.x == 0) y[r] = (float)s;
    }
}

/* Short rows (bias gradients: one row per (image, channel) of a few dozen
 * pixels): one thread per row, summing in order in double, as the CPU
 * does. Many short rows keep every thread busy with no barrier at all. */
static __global__ void k_sum_rows_short(int64_t rows, int64_t cols, const float *x, float *y) {
    WB_GRID_STRIDE(r, rows) {
        const float *row = x + r * cols;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += row[c];
        y[r] = (float)s;
    }
}

#define SHORT_ROW 128 /* at most this many columns: a thread per row */

void wb_cuda_sum_rows(int64_t rows, int64_t cols, const float *x, float *y) {
    if (rows <= 0) return;
    if (cols <= 0) { /* empty rows sum to 0 */
        wb_cuda_check(cudaMemset(y, 0, (size_t)rows * sizeof(float)), "sum_rows");
        return;
    }
    if (cols <= SHORT_ROW && rows >= 2 * WB_CUDA_BLOCK) {
        WB_CUDA_LAUNCH(k_sum_rows_short, wb_cuda_grid(rows), WB_CUDA_BLOCK, 0)(rows, cols, x, y);
        wb_cuda_launched("sum_rows");
        return;
    }
    unsigned grid = rows < WB_CUDA_MAX_BLOCKS ? (unsigned)rows : WB_CUDA_MAX_BLOCKS;
    WB_CUDA_LAUNCH(k_sum_rows, grid, WB_CUDA_BLOCK, 0)(rows, cols, x, y);
    wb_cuda_launched("sum_rows");
}

/* ---- sum_cols: y[c] (+)= Σ_r x[r·cols + c] --------------------------------------- *
 * 2-D blocks of 32 columns × SC_LANES row lanes. threadIdx.x is the fastest
 * index, so each warp reads 32 consecutive floats of one row (one 128-byte
 * transaction); the SC_LANES warps take interleaved rows, then combine their
 * partial column sums through shared memory. Blocks stride over tiles of 32
 * columns. Few columns and very many rows leave the GPU under-used (one
 * block per 32 columns), but bias gradients have batch-sized row counts. */
#define SC_COLS 32
#define SC_LANES 8

static __global__ void k_sum_cols(int64_t rows, int64_t cols, const float *x, float *y,
                                  int accumulate) {
    __shared__ float part[SC_LANES][SC_COLS];
    for (int64_t c0 = (int64_t)blockIdx.x * SC_COLS; c0 < cols;
         c0 += (int64_t)gridDim.x * SC_COLS) {
        const int64_t c = c0 + threadIdx.x;
        float s = 0.0f;
        if (c < cols)
            for (int64_t r = threadIdx.y; r < rows; r += SC_LANES) s += x[r * cols + c];
        part[threadIdx.y][threadIdx.x] = s;
        __syncthreads();
        if (threadIdx.y == 0 && c < cols) {
            float t = 0.0f;
            for (int k = 0; k < SC_LANES; k++) t += part[k][threadIdx.x];
            y[c] = accumulate ? y[c] + t : t;
        }
        __syncthreads(); /* part[] is rewritten by the next tile */
    }
}

void wb_cuda_sum_cols(int64_t rows, int64_t cols, const float *x, float *y, int accumulate) {
    if (cols <= 0) return;
    if (rows <= 0) { /* Σ over no rows is 0: y = 0, or y unchanged when accumulating */
        if (!accumulate)
            wb_cuda_check(cudaMemset(y, 0, (size_t)cols * sizeof(float)), "sum_cols");
        return;
    }
    int64_t tiles = (cols + SC_COLS - 1) / SC_COLS;
    unsigned grid = tiles < WB_CUDA_MAX_BLOCKS ? (unsigned)tiles : WB_CUDA_MAX_BLOCKS;
    WB_CUDA_LAUNCH(k_sum_cols, grid, dim3(SC_COLS, SC_LANES), 0)(rows, cols, x, y, accumulate);
    wb_cuda_launched("sum_cols");
}

/* ---- sum_squares: Σ x² in double -------------------------------------------------- *
 * Two stages: each block writes its double partial sum (squares are formed
 * in double, so no float overflow for large finite x) into the backend's
 * partials buffer (made once with the table: no allocation per call); the
 * partials come back through their pinned mirror and the host adds them in
 * a fixed order. Deterministic, no atomics. The call waits for the stream
 * (it returns a host value). NaN/inf in x propagate; on a CUDA failure the
 * result is NaN (so a finiteness check trips) and the sticky error says why. */
static __global__ void k_sum_squares(int64_t n, const float *x, double *partials) {
    double s = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)blockDim.x * gridDim.x) {
        double v = (double)x[i];
        s += v * v;
    }
    s = wb_cuda_block_sum(s);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

double wb_cuda_sum_squares(int64_t n, const float *x) {
    if (n <= 0) return 0.0;
    unsigned grid = wb_cuda_grid(n);
    if (grid > WB_CUDA_MAX_PARTIALS) grid = WB_CUDA_MAX_PARTIALS;
    double *host = NULL, *dev = wb_cuda_partials(&host);
    WB_CUDA_LAUNCH(k_sum_squares, grid, WB_CUDA_BLOCK, 0)(n, x, dev);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(host, dev, grid * sizeof(double), cudaMemcpyDeviceToHost, wb_cuda_stream());
    if (e == cudaSuccess) e = cudaStreamSynchronize(wb_cuda_stream());
    if (wb_cuda_check(e, "sum_squares")) return NAN;
    double total = 0.0;
    for (unsigned i = 0; i < grid; i++) total += host[i];
    return total;
}

/* ---- channel sums: db[c] += Σ_{n, p} dy[n, c, p] (a convolution's bias gradient) -- *
 * One block per channel, threads striding over the B·HW values of that
 * channel, a fixed-order block sum: deterministic, no atomics. */
static __global__ void k_channel_sums(int b, int c, int64_t hw, const float *dy, float *db) {
    for (int ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double s = 0.0;
        for (int64_t i = threadIdx.x; i < (int64_t)b * hw; i += blockDim.x) {
            int64_t n = i / hw, p = i - n * hw;
            s += dy[(n * c + ch) * hw + p];
        }
        s = wb_cuda_block_sum(s);
        if (threadIdx.x == 0) db[ch] += (float)s;
    }
}

void wb_cuda_channel_sums(int b, int c, int64_t hw, const float *dy, float *db) {
    if (b <= 0 || c <= 0 || hw <= 0) return;
    unsigned grid = c < WB_CUDA_MAX_BLOCKS ? (unsigned)c : WB_CUDA_MAX_BLOCKS;
    WB_CUDA_LAUNCH(k_channel_sums, grid, WB_CUDA_BLOCK, 0)(b, c, hw, dy, db);
    wb_cuda_launched("conv2d_bwd");
}
