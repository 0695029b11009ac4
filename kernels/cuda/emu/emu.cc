/* kernels/cuda/emu/emu.cc — the CPU emulation of the CUDA runtime declared
 * in cuda_runtime.h: memory (host memory), the last-error slot, and kernel
 * launches where every CUDA thread of a block is a fiber (its own stack; a
 * register-only switch on x86-64, ucontext elsewhere) and
 * barriers are real: __syncthreads waits for every live thread of the
 * block, warp shuffles and votes for every live lane of the warp.
 *
 * Scheduling: rounds. In a round every runnable fiber runs until it blocks
 * (block barrier, warp barrier) or returns; then a warp whose live lanes all
 * wait at a warp barrier is released, or, when every live fiber waits at the
 * block barrier, the block is. A round in which nothing can be released is a
 * deadlock (a barrier that not every thread reaches): the launch stops and
 * cudaGetLastError reports it. WB_EMU_SCHEDULE=reverse runs each round's
 * fibers in reverse order, which makes a missing __syncthreads visible.
 */
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdint.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <vector>

#include "cuda_runtime.h"

/* AddressSanitizer (WB_SANITIZE=ON) must be told about every switch between
 * the host thread's stack and a fiber's: it keeps the bounds of the stack
 * code runs on. Without the annotations its reports cannot name a kernel's
 * frame ("located in stack of thread T0 ... in frame k"), a noreturn call on
 * a fiber unpoisons the wrong range, and detect_stack_use_after_return's
 * fake stacks would be shared by all the fibers. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define WB_EMU_ASAN 1
#endif

/* The bounds of the section every __shared__ variable is in (defined by the
 * linker; weak: a program with no kernel has no such section). */
extern "C" char __start_wb_emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_wb_emu_shared[] __attribute__((weak, visibility("hidden")));

namespace wb_emu {

fiber_info *current = nullptr;

namespace {

/* ---- context switching --------------------------------------------------------- *
 * On x86-64 a fiber switch is six callee-saved registers and the stack
 * pointer (wb_emu_switch below): no system call, unlike swapcontext, which
 * saves the signal mask on every switch and made a launch cost milliseconds.
 * Elsewhere ucontext does the same job, slower. */
#if defined(__x86_64__) && !defined(WB_EMU_UCONTEXT)
#define WB_EMU_ASM_SWITCH 1
extern "C" void wb_emu_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl wb_emu_switch\n"
        ".hidden wb_emu_switch\n"
        ".type wb_emu_switch,@function\n"
        "wb_emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size wb_emu_switch, .-wb_emu_switch\n");
#endif

enum state_t { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct fiber {
    fiber_info info;
#ifdef WB_EMU_ASM_SWITCH
    void *sp;
#else
    ucontext_t ctx;
#endif
    state_t state;
    int lane, warp;
    unsigned linear;
    unsigned bank; /* which of the two exchange banks this lane's next shuffle uses */
    const char *site; /* the __syncthreads() this fiber waits at: "file:line" */
#ifdef WB_EMU_ASAN
    void *fake_stack; /* ASan's fake stack of this fiber while it is switched out */
#endif
};

/* One block's fibers. Kept for the whole process (per host thread) so
 * that a launch allocates nothing: the stacks are mapped once, 1024 of
 * them (the largest block), and only the pages a kernel touches are ever
 * backed by memory. */
struct block_run {
    std::vector<fiber> fibers;
    char *stacks = nullptr;
#ifdef WB_EMU_ASM_SWITCH
    void *sched_sp = nullptr;
#else
    ucontext_t sched;
#endif
    const std::function<void()> *body = nullptr;
    fiber *running = nullptr;
#ifdef WB_EMU_ASAN
    /* the host thread's stack (what the first switch into a fiber leaves)
     * and its fake stack while a fiber runs */
    const void *sched_bottom = nullptr;
    size_t sched_size = 0;
    void *sched_fake_stack = nullptr;
#endif
    /* warp exchange: two banks of one slot per lane (values widened to 8
     * bytes). Consecutive shuffles of a warp use alternate banks, so one
     * barrier per shuffle suffices: no lane can reach the next use of a
     * bank before every lane has passed the shuffle in between. */
    std::vector<unsigned long long> slots[2];
};

const size_t STACK_BYTES = 64 * 1024;
const unsigned MAX_THREADS = 1024;

block_run *g_run = nullptr;
cudaError_t g_last_error = cudaSuccess;
const char *g_last_message = "no error";

void set_error(cudaError_t e, const char *message) {
    if (g_last_error == cudaSuccess) {
        g_last_error = e;
        g_last_message = message;
    }
}

/* A fiber's half of an ASan switch annotation: the switch into it is
 * finished (recording the host thread's stack to go back to). */
void fiber_entered(fiber *f) {
#ifdef WB_EMU_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &g_run->sched_bottom, &g_run->sched_size);
#else
    (void)f;
#endif
}

void to_scheduler(fiber *f) {
#ifdef WB_EMU_ASAN
    /* a finished fiber never comes back: nullptr lets ASan drop its fake stack */
    __sanitizer_start_switch_fiber(f->state == DONE ? nullptr : &f->fake_stack, g_run->sched_bottom,
                                   g_run->sched_size);
#endif
#ifdef WB_EMU_ASM_SWITCH
    wb_emu_switch(&f->sp, g_run->sched_sp);
#else
    swapcontext(&f->ctx, &g_run->sched);
#endif
    fiber_entered(f);
}

/* First frame of every fiber: run the kernel body, mark the thread done and
 * hand control back for good (never returns). */
void fiber_main() {
    block_run *r = g_run;
    fiber_entered(r->running);
    (*r->body)();
    fiber *f = r->running;
    f->state = DONE;
    to_scheduler(f);
    __builtin_unreachable();
}

extern unsigned long long g_waits;
void block_wait(state_t s) {
    g_waits++;
    fiber *f = g_run->running;
    f->state = s;
    to_scheduler(f);
}

/* WB_EMU_SCHEDULE=reverse runs warps, and the lanes of each warp, last to
 * first; set_reverse_schedule overrides it (tests). */
int g_reverse = -1;
bool reverse_schedule() {
    if (g_reverse < 0) {
        const char *e = getenv("WB_EMU_SCHEDULE");
        g_reverse = e && strcmp(e, "reverse") == 0;
    }
    return g_reverse == 1;
}

void fiber_start(block_run &r, fiber &f, unsigned t) {
    char *top = r.stacks + (size_t)(t + 1) * STACK_BYTES;
#ifdef WB_EMU_ASM_SWITCH
    /* A frame wb_emu_switch can "return" into: six zero registers, then
     * fiber_main as the return address, at a 16-byte aligned slot so that
     * fiber_main starts with the stack alignment the ABI promises. */
    void **sp = (void **)((uintptr_t)top & ~(uintptr_t)15);
    *--sp = nullptr;               /* fiber_main's (never used) return address */
    *--sp = (void *)&fiber_main;
    for (int i = 0; i < 6; i++) *--sp = nullptr;
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = top - STACK_BYTES;
    f.ctx.uc_stack.ss_size = STACK_BYTES;
    f.ctx.uc_link = &r.sched;
    makecontext(&f.ctx, fiber_main, 0);
#endif
}

void run_fiber(block_run &r, fiber &f) {
    r.running = &f;
    current = &f.info;
#ifdef WB_EMU_ASAN
    __sanitizer_start_switch_fiber(&r.sched_fake_stack, r.stacks + (size_t)f.linear * STACK_BYTES, STACK_BYTES);
#endif
#ifdef WB_EMU_ASM_SWITCH
    wb_emu_switch(&r.sched_sp, f.sp);
#else
    swapcontext(&r.sched, &f.ctx);
#endif
#ifdef WB_EMU_ASAN
    __sanitizer_finish_switch_fiber(r.sched_fake_stack, nullptr, nullptr);
#endif
}

/* A block that ends in a deadlock leaves its live fibers' frames on their
 * stacks for good, and ASan's poisoned redzones of those frames with them:
 * the next launch that reuses the stacks would trip over them. */
void abandon_live_fibers(block_run &r) {
#ifdef WB_EMU_ASAN
    for (fiber &f : r.fibers)
        if (f.state != DONE) ASAN_UNPOISON_MEMORY_REGION(r.stacks + (size_t)f.linear * STACK_BYTES, STACK_BYTES);
#else
    (void)r;
#endif
}

/* Every __shared__ variable (the section the header puts them in); the
 * linker defines the bounds. Poisoned before each block. */
void poison_shared() {
    char *lo = __start_wb_emu_shared, *hi = __stop_wb_emu_shared;
    if (lo && hi > lo) memset(lo, 0xff, (size_t)(hi - lo));
}

enum block_outcome { BLOCK_DONE, BLOCK_DEADLOCK, BLOCK_DIVERGENT };

/* Runs one block. */
block_outcome run_block(block_run &r, dim3 grid, dim3 block, dim3 bidx) {
    poison_shared();
    unsigned n = block.x * block.y * block.z;
    r.fibers.resize(n);
    r.slots[0].assign(n, 0);
    r.slots[1].assign(n, 0);
    for (unsigned t = 0; t < n; t++) {
        fiber &f = r.fibers[t];
        f.linear = t;
        f.info.thread_idx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
        f.info.block_idx = bidx;
        f.info.block_dim = block;
        f.info.grid_dim = grid;
        f.lane = (int)(t % 32);
        f.warp = (int)(t / 32);
        f.state = RUNNABLE;
        f.bank = 0;
        f.site = nullptr;
#ifdef WB_EMU_ASAN
        f.fake_stack = nullptr;
#endif
        fiber_start(r, f, t);
    }
    bool rev = reverse_schedule();
    const unsigned warps = (n + 31) / 32;
    for (;;) {
        /* Each warp in turn runs until none of its lanes can go on: a warp
         * barrier that every live lane of the warp has reached is released
         * at once and the warp goes on; a lane at the block barrier waits
         * for the other warps. */
        for (unsigned wi = 0; wi < warps; wi++) {
            unsigned w = rev ? warps - 1 - wi : wi;
            unsigned lo = w * 32, hi = lo + 32 < n ? lo + 32 : n;
            for (;;) {
                for (unsigned k = lo; k < hi; k++) {
                    fiber &f = r.fibers[rev ? hi - 1 - (k - lo) : k];
                    if (f.state == RUNNABLE) run_fiber(r, f);
                }
                unsigned alive = 0, waiting = 0;
                for (unsigned t = lo; t < hi; t++) {
                    if (r.fibers[t].state != DONE) alive++;
                    if (r.fibers[t].state == AT_WARP_BARRIER) waiting++;
                }
                if (alive == 0 || waiting != alive) break;
                for (unsigned t = lo; t < hi; t++) r.fibers[t].state = RUNNABLE;
            }
        }
        current = nullptr;
        unsigned live = 0, at_block = 0;
        for (auto &f : r.fibers) {
            if (f.state != DONE) live++;
            if (f.state == AT_BLOCK_BARRIER) at_block++;
        }
        if (live == 0) return BLOCK_DONE;
        /* every warp is stuck: released by the block barrier, or a deadlock
         * (a barrier some live thread of the block or warp never reaches) */
        if (at_block != live) {
            abandon_live_fibers(r);
            return BLOCK_DEADLOCK;
        }
        const char *site = nullptr;
        for (auto &f : r.fibers)
            if (f.state == AT_BLOCK_BARRIER) {
                if (site && f.site != site && strcmp(f.site, site) != 0) {
                    abandon_live_fibers(r);
                    return BLOCK_DIVERGENT;
                }
                site = f.site;
            }
        for (auto &f : r.fibers)
            if (f.state == AT_BLOCK_BARRIER) f.state = RUNNABLE;
    }
}


block_run *the_run() {
    static thread_local block_run *run = nullptr;
    if (!run) {
        void *m = mmap(nullptr, STACK_BYTES * MAX_THREADS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return nullptr;
        run = new block_run;
        run->stacks = (char *)m;
        run->fibers.reserve(MAX_THREADS);
    }
    return run;
}

} // namespace

namespace {
/* WB_EMU_STATS=1: per kernel, launches, threads run and barrier waits,
 * printed to stderr at exit (where the emulation spends its time). */
struct kernel_stats {
    const char *kernel;
    unsigned long long launches, threads, waits;
};
std::vector<kernel_stats> *g_stats = nullptr;
unsigned long long g_waits = 0;

void print_stats() {
    std::vector<kernel_stats> &v = *g_stats;
    std::sort(v.begin(), v.end(), [](const kernel_stats &a, const kernel_stats &b) { return a.waits > b.waits; });
    fprintf(stderr, "cuda-emu: %-40s %10s %12s %12s\n", "kernel", "launches", "threads", "waits");
    for (const kernel_stats &k : v) {
        fprintf(stderr, "cuda-emu: %-40.40s %10llu %12llu %12llu\n", k.kernel ? k.kernel : "?", k.launches,
                k.threads, k.waits);
    }
}

kernel_stats *stats_for(const char *kernel) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("WB_EMU_STATS");
        on = e && strcmp(e, "1") == 0;
        if (on) {
            g_stats = new std::vector<kernel_stats>;
            atexit(print_stats);
        }
    }
    if (!on) return nullptr;
    for (kernel_stats &k : *g_stats)
        if (k.kernel == kernel || (k.kernel && kernel && strcmp(k.kernel, kernel) == 0)) return &k;
    g_stats->push_back({kernel, 0, 0, 0});
    return &g_stats->back();
}
} // namespace

void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()> &body, const char *kernel) {
    kernel_stats *st = stats_for(kernel);
    unsigned long long waits0 = g_waits;
    (void)shared_bytes;
    if (block.x * block.y * block.z == 0 || block.x * block.y * block.z > MAX_THREADS || grid.x * grid.y * grid.z == 0) {
        set_error(cudaErrorInvalidValue, "invalid configuration argument");
        return;
    }
    if (g_run) { /* a kernel launching a kernel: dynamic parallelism is not emulated */
        set_error(cudaErrorInvalidValue, "emulated launch from inside a kernel");
        return;
    }
    block_run *r = the_run();
    if (!r) {
        set_error(cudaErrorMemoryAllocation, "emulated launch: cannot map fiber stacks");
        return;
    }
    g_run = r;
    r->body = &body;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++)
                if (block_outcome o = run_block(*r, grid, block, dim3(bx, by, bz))) {
                    set_error(cudaErrorLaunchFailure,
                              o == BLOCK_DIVERGENT
                                  ? "emulated launch: divergent __syncthreads, live threads of a block wait at "
                                    "different barriers"
                                  : "emulated launch: deadlock, a barrier not every live thread of the block or "
                                    "warp reaches");
                    g_run = nullptr;
                    return;
                }
    g_run = nullptr;
    if (st) {
        st->launches++;
        st->threads += (unsigned long long)grid.x * grid.y * grid.z * block.x * block.y * block.z;
        st->waits += g_waits - waits0;
    }
}

void syncthreads(const char *site) {
    g_run->running->site = site;
    block_wait(AT_BLOCK_BARRIER);
}

void set_reverse_schedule(int reverse) { g_reverse = reverse ? 1 : 0; }

namespace {
/* Publish v, wait for the warp, read the source lane, wait again (so the
 * slot is not overwritten before every lane has read it). */
unsigned long long exchange(unsigned long long v, int arg, int mode, unsigned width) {
    block_run *r = g_run;
    fiber *f = r->running;
    unsigned base = (unsigned)f->warp * 32, lane = (unsigned)f->lane;
    std::vector<unsigned long long> &slot = r->slots[f->bank];
    f->bank ^= 1u;
    slot[base + lane] = v;
    block_wait(AT_WARP_BARRIER);
    unsigned seg = lane / width * width, in = lane % width, src = in;
    switch (mode) {
    case 0: src = (unsigned)arg % width; break;
    case 1: src = in + (unsigned)arg < width ? in + (unsigned)arg : in; break;
    case 2: src = in >= (unsigned)arg ? in - (unsigned)arg : in; break;
    case 3: src = (in ^ (unsigned)arg) < width ? in ^ (unsigned)arg : in; break;
    }
    return slot[base + seg + src];
}
} // namespace

float shfl(float v, int a, int mode, unsigned width) {
    unsigned long long u = 0;
    memcpy(&u, &v, sizeof v);
    u = exchange(u, a, mode, width);
    float out;
    memcpy(&out, &u, sizeof out);
    return out;
}
double shfl(double v, int a, int mode, unsigned width) {
    unsigned long long u;
    memcpy(&u, &v, sizeof v);
    u = exchange(u, a, mode, width);
    double out;
    memcpy(&out, &u, sizeof out);
    return out;
}
int shfl(int v, int a, int mode, unsigned width) { return (int)exchange((unsigned long long)(unsigned)v, a, mode, width); }

unsigned ballot(int p) {
    block_run *r = g_run;
    fiber *f = r->running;
    unsigned base = (unsigned)f->warp * 32;
    std::vector<unsigned long long> &slot = r->slots[f->bank];
    f->bank ^= 1u;
    slot[base + (unsigned)f->lane] = p ? 1 : 0;
    block_wait(AT_WARP_BARRIER);
    unsigned bits = 0;
    for (unsigned l = 0; l < 32 && base + l < r->fibers.size(); l++)
        if (r->fibers[base + l].state != DONE && slot[base + l]) bits |= 1u << l;
    return bits;
}

} // namespace wb_emu

/* ---- the runtime API ----------------------------------------------------------- */
using wb_emu::set_error;

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    /* 256-byte alignment, like cudaMalloc's */
#ifdef WB_EMU_ASAN
    /* exactly the bytes asked for, so ASan catches a kernel that reads or
     * writes past its buffer (aligned_alloc would need a multiple of 256) */
    if (posix_memalign(ptr, 256, bytes ? bytes : 1) != 0) *ptr = nullptr;
#else
    *ptr = aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
#endif
    if (!*ptr) {
        set_error(cudaErrorMemoryAllocation, "out of memory");
        return cudaErrorMemoryAllocation;
    }
    return cudaSuccess;
}
cudaError_t cudaFree(void *ptr) {
    free(ptr);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned flags) {
    (void)flags;
    return cudaMalloc(ptr, bytes);
}
cudaError_t cudaFreeHost(void *ptr) { return cudaFree(ptr); }
cudaError_t cudaHostGetDevicePointer(void **dev, void *host, unsigned flags) {
    (void)flags;
    *dev = host;
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    (void)kind;
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    (void)s;
    return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void *dst, int value, size_t bytes) {
    memset(dst, value, bytes);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return wb_emu::g_last_error; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    return wb_emu::g_last_error;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = wb_emu::g_last_error;
    wb_emu::g_last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return wb_emu::g_last_error; }
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    default: return wb_emu::g_last_message;
    }
}

static int the_stream, the_event, the_pool; /* distinct non-null handles */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    (void)flags;
    *s = (cudaStream_t)&the_stream;
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    (void)flags;
    *e = (cudaEvent_t)&the_event;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    (void)e;
    (void)s;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    (void)e;
    return cudaSuccess;
}
cudaError_t cudaMallocAsync(void **ptr, size_t bytes, cudaStream_t s) {
    (void)s;
    return cudaMalloc(ptr, bytes);
}
cudaError_t cudaFreeAsync(void *ptr, cudaStream_t s) {
    (void)s;
    return cudaFree(ptr);
}
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    (void)device;
    *value = attr == cudaDevAttrMemoryPoolsSupported ? 1 : 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int device) {
    (void)device;
    *pool = (cudaMemPool_t)&the_pool;
    return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value) {
    (void)pool;
    (void)attr;
    (void)value;
    return cudaSuccess;
}
