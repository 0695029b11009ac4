/* host/engine/memory.h — the memory guard: how much a call will need,
 * estimated before it allocates, against what this process can still get
 * (issue 10, defect 1: an MLP within its declared bounds, widths 16384 × 4,
 * ran into the OOM killer at 15.5 GB, and `t:sample(2^40)` said only "not
 * enough memory"). A call that cannot fit fails at once, before any
 * allocation or training, with the estimate, its parts and the memory
 * available; the binding prefixes the call ("Teacher:sample(1099511627776):
 * needs ~8 TiB for the output alone, 22.3 GiB available (MemAvailable)").
 *
 * Available: the least of MemAvailable (/proc/meminfo; else the free
 * physical pages), RLIMIT_AS and RLIMIT_DATA minus what the process already
 * maps, and the cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes)
 * minus its usage less reclaimable file cache. WB_MEMORY_LIMIT=SIZE (bytes,
 * or with K, M, G, T: binary multiples, e.g. 2G, 512M, 1.5T) is used
 * instead when set, as a cap or to allow more; WB_MEMORY_LIMIT=off turns
 * the guard off.
 *
 * Estimates count what is certain and leave out what cannot be seen, so
 * they refuse only what cannot fit: parameters are counted from the net
 * plugin's declarations (create without allocating), activations measured
 * by one-sample and two-sample dry runs of the net on the CPU backend (the
 * graph arena's high-water mark, wb_graph_arena_bytes; linear in the batch),
 * host buffers from the shapes. Device memory of the cuda backend is not
 * estimated (only the host side). Every check returns 0 when the estimate
 * fits or the guard is off, else -1 with wb_last_error() set.
 */
#ifndef WB_MEMORY_H
#define WB_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

/* What this process can still allocate: 1 with *bytes and a few words in
 * source ("MemAvailable", "the cgroup's memory.max", "RLIMIT_AS",
 * "WB_MEMORY_LIMIT=8G"); 0 when the guard is off or nothing is known; -1
 * with the error set when WB_MEMORY_LIMIT is not a size. */
int wb_memory_available(double *bytes, char *source, size_t len);
/* "2G", "512M", "1.5T", "2GiB", "100000": bytes (K, M, G, T binary); 0 or -1. */
int wb_parse_bytes(const char *text, double *bytes);
/* "8 TiB", "22.3 GiB", "512 B". */
void wb_format_bytes(double bytes, char *buf, size_t len);

/* n × dim floats of output (Dataset:sample). */
int wb_memory_check_samples(int64_t n, int64_t dim);
/* wb_teacher_sample(t, n, ...): the output, the sampler's buffers and one
 * chunk's no-grad forward. */
int wb_memory_check_teacher_sample(wb_teacher *t, int64_t n);
/* wb_student_sample(s, n, ...): the output, the swapped-in EMA copy and one
 * chunk's forward. */
int wb_memory_check_student_sample(wb_student *s, int64_t n);
/* wb_teacher_train(ds, spec, cfg, ...): weights, gradients, EMA and Adam's
 * two moments (5 floats a parameter), the host batches and one step's
 * activations at cfg->batch. */
int wb_memory_check_teacher_train(const wb_dataset *ds, const wb_netspec *spec, const wb_teacher_config *cfg);
/* wb_distill(t, ds, cfg, ...): generator (with Adam and EMA), fake score
 * (score-based divergences), ratio backbone, the real batch and about two
 * training steps of the generator's net at cfg->batch. */
int wb_memory_check_distill(const wb_teacher *t, const wb_dataset *ds, const wb_distill_config *cfg);

#endif
