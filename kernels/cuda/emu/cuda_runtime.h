/* kernels/cuda/emu/cuda_runtime.h — a CPU emulation of the part of the CUDA
 * runtime the kernels of kernels/cuda use, so that their own source (the
 * .cu files, compiled as C++ with this folder first on the include path)
 * runs on a machine without a GPU — CI's — as the `cuda-emu` backend.
 *
 * Execution model (kernels/cuda/emu/emu.cc):
 *   - a launch runs its blocks one after another on the calling thread;
 *   - inside a block every CUDA thread is a fiber with its own stack; the
 *     scheduler runs each fiber until it reaches a barrier or returns;
 *   - __syncthreads() is a block barrier (threads that returned count as
 *     arrived, as on sm_70+); live threads waiting at two different
 *     __syncthreads() calls are a divergent barrier, reported as a launch
 *     failure (undefined behaviour on a GPU); warp shuffles and votes are a
 *     barrier among the live lanes of one warp of 32, so a shuffle inside
 *     `if (warp == 0)` works while the other warps wait elsewhere; a
 *     barrier nobody can pass is reported (cudaGetLastError) instead of
 *     hanging;
 *   - each warp runs until it reaches a barrier; WB_EMU_SCHEDULE=reverse
 *     runs warps and lanes last to first: a kernel that forgot a
 *     __syncthreads reads poisoned or stale shared memory in one order or
 *     the other, and its test fails;
 *   - `__shared__` is `static` (in one section, poisoned before each
 *     block): one copy, which the block running at the
 *     time owns (blocks never overlap); device memory is host memory.
 * What a CPU cannot tell apart from a GPU — memory coalescing, timing,
 * cuDNN — is only tested on a device (scripts/gpu_check.sh, issue 8).
 */
#ifndef WB_EMU_CUDA_RUNTIME_H
#define WB_EMU_CUDA_RUNTIME_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

using std::isfinite;
using std::isnan;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* Every __shared__ variable lands in one ELF section, so the runtime can
 * poison all of shared memory (0xff bytes: NaN floats, −1 integers) before
 * each block, as a GPU leaves it undefined: a kernel that reads shared
 * memory before writing it, or without the barrier in between, reads
 * poison instead of a previous block's matching values. */
#define __shared__ static __attribute__((section("wb_emu_shared")))

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

typedef int cudaError_t;
enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
typedef struct wb_emu_stream *cudaStream_t;
typedef struct wb_emu_event *cudaEvent_t;
typedef struct wb_emu_mempool *cudaMemPool_t;
#define cudaStreamNonBlocking 1u
#define cudaEventDisableTiming 2u
enum cudaDeviceAttr { cudaDevAttrMemoryPoolsSupported = 115 };
enum cudaMemPoolAttr { cudaMemPoolAttrReleaseThreshold = 4 };
#define cudaHostAllocDefault 0u
#define cudaHostAllocMapped 2u

/* ---- the runtime API (emu.cc) --------------------------------------------- */
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaMalloc(void **ptr, size_t bytes);
template <typename T> cudaError_t cudaMalloc(T **ptr, size_t bytes) { return cudaMalloc((void **)ptr, bytes); }
cudaError_t cudaFree(void *ptr);
cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void *ptr);
cudaError_t cudaHostGetDevicePointer(void **dev, void *host, unsigned flags);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemset(void *dst, int value, size_t bytes);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaGetLastError(void);
/* Streams and events: a launch runs to completion before it returns, so a
 * stream is already in order and every event has already happened. */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
/* The stream-ordered pool is plain host memory here. */
cudaError_t cudaMallocAsync(void **ptr, size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void *ptr, cudaStream_t s);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int device);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);

/* ---- thread geometry and barriers (emu.cc) -------------------------------- */
namespace wb_emu {
struct fiber_info {
    dim3 thread_idx, block_idx, block_dim, grid_dim;
};
extern fiber_info *current; /* the fiber running now */
void syncthreads(const char *site);
void set_reverse_schedule(int reverse); /* tests: override WB_EMU_SCHEDULE */
float shfl(float v, int src_lane, int mode, unsigned width); /* mode 0 idx, 1 down, 2 up, 3 xor */
double shfl(double v, int src_lane, int mode, unsigned width);
int shfl(int v, int src_lane, int mode, unsigned width);
unsigned ballot(int predicate);
/* Runs body for every thread of every block of the launch. */
void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()> &body,
            const char *kernel = nullptr);

template <typename F> struct launcher {
    F *kernel;
    dim3 grid, block;
    size_t shmem;
    const char *name;
    template <typename... A> void operator()(A... args) const {
        F *k = kernel;
        launch(grid, block, shmem, [=]() { k(args...); }, name);
    }
};
} // namespace wb_emu

#define threadIdx (wb_emu::current->thread_idx)
#define blockIdx (wb_emu::current->block_idx)
#define blockDim (wb_emu::current->block_dim)
#define gridDim (wb_emu::current->grid_dim)
#define warpSize 32

/* A macro, so each __syncthreads() in the source is told apart by its
 * file and line (the divergent-barrier check). */
#define WB_EMU_STR2(x) #x
#define WB_EMU_STR(x) WB_EMU_STR2(x)
#define __syncthreads() wb_emu::syncthreads(__FILE__ ":" WB_EMU_STR(__LINE__))
template <typename T> static inline T __shfl_sync(unsigned mask, T v, int lane, int width = 32) {
    (void)mask;
    return wb_emu::shfl(v, lane, 0, (unsigned)width);
}
template <typename T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    (void)mask;
    return wb_emu::shfl(v, (int)delta, 1, (unsigned)width);
}
template <typename T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    (void)mask;
    return wb_emu::shfl(v, (int)delta, 2, (unsigned)width);
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    (void)mask;
    return wb_emu::shfl(v, lane_mask, 3, (unsigned)width);
}
static inline unsigned __ballot_sync(unsigned mask, int p) { return wb_emu::ballot(p) & mask; }
static inline int __any_sync(unsigned mask, int p) { return __ballot_sync(mask, p) != 0; }
static inline int __all_sync(unsigned mask, int p) {
    (void)mask;
    return wb_emu::ballot(!p) == 0;
}

/* Fibers of one block never run at the same time: plain read-modify-write
 * is atomic here. */
static inline float atomicAdd(float *a, float v) {
    float old = *a;
    *a = old + v;
    return old;
}
static inline double atomicAdd(double *a, double v) {
    double old = *a;
    *a = old + v;
    return old;
}
static inline int atomicAdd(int *a, int v) {
    int old = *a;
    *a = old + v;
    return old;
}
static inline unsigned atomicAdd(unsigned *a, unsigned v) {
    unsigned old = *a;
    *a = old + v;
    return old;
}
static inline int atomicMax(int *a, int v) {
    int old = *a;
    if (v > old) *a = v;
    return old;
}
static inline int atomicExch(int *a, int v) {
    int old = *a;
    *a = v;
    return old;
}

#define WB_CUDA_LAUNCH(kernel, grid, block, shmem)                                                     \
    (wb_emu::launcher<decltype(kernel)>{kernel, dim3(grid), dim3(block), (size_t)(shmem), #kernel})

#endif
