// tests/test_cuda_emu.cc — the CPU emulation of the CUDA runtime
// (kernels/cuda/emu) keeps CUDA's semantics, so the backend's kernels can be
// trusted when they pass on it: kernels written here, compiled against the
// emulation's headers exactly as kernels/cuda/*.cu are, check
//   - __syncthreads is a real block barrier, and a kernel that forgot one
//     computes a wrong result in at least one of the two fiber orders
//     (forward, reverse) — which is why CTest runs the backend tests in both;
//   - warp shuffles are warp-level barriers: a shuffle inside
//     `if (warp == 0)` works while the other warps wait at __syncthreads;
//   - a barrier that not every thread reaches is reported as a launch
//     failure (cudaGetLastError), not a hang, and the next launch works;
//   - ballot, shared-memory atomics, an invalid launch configuration;
//   - the cuBLAS stand-in keeps cuBLAS's column-major contract (transposes,
//     leading dimensions, strided batches, k = 0).
// Ends with "N passed, M failed".
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"

static int g_passed, g_failed;
#define CHECK(cond, ...)                                                                                              \
    do {                                                                                                              \
        if (cond) {                                                                                                   \
            g_passed++;                                                                                               \
        } else {                                                                                                      \
            g_failed++;                                                                                               \
            std::printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                          \
            std::printf(__VA_ARGS__);                                                                                 \
            std::printf("\n");                                                                                        \
        }                                                                                                             \
    } while (0)

// ---- kernels ----------------------------------------------------------------------
// Block sum through shared memory, with its barriers.
static __global__ void k_block_sum(const int *x, int *out) {
    __shared__ int s[256];
    unsigned t = threadIdx.x;
    s[t] = x[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half) s[t] += s[t + half];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// The same rotation with and without the barrier between write and read.
static __global__ void k_rotate(int *out, int with_barrier) {
    __shared__ int s[256];
    unsigned t = threadIdx.x, n = blockDim.x;
    s[t] = (int)(t * 7 + 1);
    if (with_barrier) __syncthreads();
    out[t] = s[(t + 1) % n];
}

// Per-warp shuffle sums, then warp 0 alone reduces the warp totals with
// shuffles while the other warps have left (or wait).
static __global__ void k_two_level(const float *x, float *out) {
    __shared__ float warp_sums[32];
    unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    float v = x[threadIdx.x];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (blockDim.x >> 5) ? warp_sums[lane] : 0.0f;
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        out[lane] = v; // every lane of warp 0 holds the total (xor butterfly)
    }
}

// Two warps at two different barriers.
static __global__ void k_divergent_barrier(int *out) {
    if (threadIdx.x < 32) {
        out[threadIdx.x] = 1;
        __syncthreads();
        out[threadIdx.x] *= 3;
    } else {
        out[threadIdx.x] = 2;
        __syncthreads();
        out[threadIdx.x] += 5;
    }
}

// Half a warp in a full-mask shuffle, the other half at the block barrier.
static __global__ void k_split_warp(float *out) {
    float v = (float)threadIdx.x;
    if ((threadIdx.x & 31u) < 16) v = __shfl_down_sync(0xffffffffu, v, 1);
    else __syncthreads();
    out[threadIdx.x] = v;
}

// Threads that return early count as arrived at a later barrier (sm_70+).
static __global__ void k_early_exit(int *out) {
    __shared__ int s[64];
    if (threadIdx.x >= 48) return;
    s[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = s[47 - threadIdx.x];
}

static __global__ void k_ballot(unsigned *out) {
    unsigned b = __ballot_sync(0xffffffffu, (threadIdx.x % 3) == 0);
    if ((threadIdx.x & 31u) == 0) out[threadIdx.x >> 5] = b;
}

static __global__ void k_count(int *out) {
    __shared__ int count;
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    atomicAdd(&count, 1);
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = count;
}

#define WB_LAUNCH WB_CUDA_LAUNCH

// ---- tests ------------------------------------------------------------------------------
static void test_block_barrier() {
    for (int rev = 0; rev < 2; rev++) {
        wb_emu::set_reverse_schedule(rev);
        std::vector<int> x(3 * 256), out(3, -1);
        for (size_t i = 0; i < x.size(); i++) x[i] = (int)(i % 97);
        WB_LAUNCH(k_block_sum, 3, 256, 0)(x.data(), out.data());
        CHECK(cudaGetLastError() == cudaSuccess, "block sum launch");
        for (int b = 0; b < 3; b++) {
            int want = 0;
            for (int i = 0; i < 256; i++) want += x[b * 256 + i];
            CHECK(out[b] == want, "block sum %d (%s): %d, want %d", b, rev ? "reverse" : "forward", out[b], want);
        }
    }
}

static void test_missing_barrier_is_caught() {
    int wrong_in[2] = {0, 0};
    for (int rev = 0; rev < 2; rev++) {
        wb_emu::set_reverse_schedule(rev);
        for (int with = 1; with >= 0; with--) {
            std::vector<int> out(64, -1);
            WB_LAUNCH(k_rotate, 1, 64, 0)(out.data(), with);
            int wrong = 0;
            for (unsigned t = 0; t < 64; t++) wrong += out[t] != (int)(((t + 1) % 64) * 7 + 1);
            if (with) CHECK(wrong == 0, "rotation with its barrier (%s): %d wrong", rev ? "reverse" : "forward", wrong);
            else wrong_in[rev] = wrong;
        }
    }
    CHECK(wrong_in[0] + wrong_in[1] > 0, "a missing __syncthreads went unnoticed in both fiber orders");
    std::printf("missing barrier: %d wrong lanes forward, %d reverse\n", wrong_in[0], wrong_in[1]);
}

static void test_shuffle_inside_warp0() {
    for (int rev = 0; rev < 2; rev++) {
        wb_emu::set_reverse_schedule(rev);
        std::vector<float> x(256), out(32, 0.0f);
        float want = 0.0f;
        for (int i = 0; i < 256; i++) want += (x[i] = (float)(i % 5));
        WB_LAUNCH(k_two_level, 1, 256, 0)(x.data(), out.data());
        CHECK(cudaGetLastError() == cudaSuccess, "two-level launch");
        int bad = 0;
        for (int l = 0; l < 32; l++) bad += out[l] != want;
        CHECK(bad == 0, "shuffle in warp 0 (%s): lane 0 %g, want %g, %d lanes wrong", rev ? "reverse" : "forward",
              (double)out[0], (double)want, bad);
    }
}

static void test_deadlock_is_reported() {
    wb_emu::set_reverse_schedule(0);
    std::vector<int> out(64, 0);
    WB_LAUNCH(k_divergent_barrier, 1, 64, 0)(out.data());
    cudaError_t e = cudaGetLastError();
    CHECK(e == cudaErrorLaunchFailure, "two warps at two barriers: error %d, want launch failure", (int)e);
    CHECK(std::strstr(cudaGetErrorString(e), "divergent") != nullptr, "message '%s' names the divergent barrier",
          cudaGetErrorString(e));
    CHECK(cudaGetLastError() == cudaSuccess, "the error is cleared once read");
    std::vector<float> f(64, 0.0f);
    WB_LAUNCH(k_split_warp, 1, 64, 0)(f.data());
    e = cudaGetLastError();
    CHECK(e == cudaErrorLaunchFailure && std::strstr(cudaGetErrorString(e), "deadlock") != nullptr,
          "half a warp in a shuffle, half at __syncthreads: '%s'", cudaGetErrorString(e));
    std::vector<int> early(64, -7);
    WB_LAUNCH(k_early_exit, 1, 64, 0)(early.data());
    CHECK(cudaGetLastError() == cudaSuccess, "early exits before a barrier are not a deadlock");
    int bad = 0;
    for (int t = 0; t < 48; t++) bad += early[t] != 47 - t;
    for (int t = 48; t < 64; t++) bad += early[t] != -7;
    CHECK(bad == 0, "early exit: %d values wrong", bad);
    std::vector<int> x(256, 1), sum(1, 0);
    WB_LAUNCH(k_block_sum, 1, 256, 0)(x.data(), sum.data());
    CHECK(cudaGetLastError() == cudaSuccess && sum[0] == 256, "a launch after the deadlock works (%d)", sum[0]);
}

static void test_ballot_atomics_config() {
    std::vector<unsigned> b(2, 0);
    WB_LAUNCH(k_ballot, 1, 64, 0)(b.data());
    unsigned want0 = 0, want1 = 0;
    for (unsigned l = 0; l < 32; l++) {
        if (l % 3 == 0) want0 |= 1u << l;
        if ((l + 32) % 3 == 0) want1 |= 1u << l;
    }
    CHECK(b[0] == want0 && b[1] == want1, "ballot %08x %08x, want %08x %08x", b[0], b[1], want0, want1);
    std::vector<int> c(2, 0);
    WB_LAUNCH(k_count, 2, 96, 0)(c.data());
    CHECK(c[0] == 96 && c[1] == 96, "shared atomicAdd count %d %d, want 96", c[0], c[1]);
    WB_LAUNCH(k_count, 1, 2048, 0)(c.data());
    CHECK(cudaGetLastError() == cudaErrorInvalidValue, "2048 threads per block is an invalid configuration");
}

// Column-major reference: C = alpha·op(A)·op(B) + beta·C.
static void ref_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                float av = ta ? a[p + i * lda] : a[i + p * lda];
                float bv = tb ? b[j + p * ldb] : b[p + j * ldb];
                s += (double)av * bv;
            }
            c[i + j * ldc] = (float)(alpha * s + (beta == 0.0f ? 0.0 : beta * c[i + j * ldc]));
        }
}

static void test_cublas_column_major() {
    cublasHandle_t h;
    CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
    const int m = 3, n = 4, k = 5, pad = 2;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? k : m) + pad, ldb = (tb ? n : k) + pad, ldc = m + pad;
            std::vector<float> a((size_t)lda * (ta ? m : k)), b((size_t)ldb * (tb ? k : n)), c((size_t)ldc * n);
            for (size_t i = 0; i < a.size(); i++) a[i] = (float)((i * 37) % 11) - 5.0f;
            for (size_t i = 0; i < b.size(); i++) b[i] = (float)((i * 53) % 7) - 3.0f;
            for (size_t i = 0; i < c.size(); i++) c[i] = (float)(i % 3);
            std::vector<float> want = c;
            const float alpha = 0.5f, beta = 2.0f;
            ref_gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, want.data(), ldc);
            cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, a.data(),
                        lda, b.data(), ldb, &beta, c.data(), ldc);
            double worst = 0.0;
            for (size_t i = 0; i < c.size(); i++) worst = std::fmax(worst, std::fabs(c[i] - want[i]));
            CHECK(worst < 1e-5, "cublasSgemm ta=%d tb=%d: off by %g", ta, tb, worst);
        }
    // k = 0 scales C by beta; beta = 0 clears even NaN
    std::vector<float> c = {1.0f, NAN, 3.0f, 4.0f};
    const float alpha = 1.0f, zero = 0.0f;
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0, &alpha, c.data(), 2, c.data(), 2, &zero, c.data(), 2);
    CHECK(c[0] == 0.0f && c[1] == 0.0f && c[3] == 0.0f, "k = 0, beta = 0 clears C");
    // strided batches with a shared A (stride 0)
    std::vector<float> a = {1, 2, 3, 4}, b = {1, 0, 0, 1, 2, 0, 0, 2}, cb(8, 0.0f);
    const float one = 1.0f;
    cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a.data(), 2, 0, b.data(), 2, 4, &zero,
                              cb.data(), 2, 4, 2);
    CHECK(cb[0] == 1 && cb[1] == 2 && cb[2] == 3 && cb[3] == 4 && cb[4] == 2 && cb[7] == 8,
          "strided batches: A·I and A·2I");
    cublasDestroy(h);
}

int main() {
    test_block_barrier();
    test_missing_barrier_is_caught();
    test_shuffle_inside_warp0();
    test_deadlock_is_reported();
    test_ballot_atomics_config();
    test_cublas_column_major();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
