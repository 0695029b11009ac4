/* tests/fuzz/fuzz_safetensors.c — fuzzes the safetensors reader
 * (host/core/safetensors.c, wb/safetensors.h and wb_safetensors_load of
 * wb/tensor.h) and the feature-statistics cache on top of it
 * (wb_feature_stats_load, host/engine/metrics.c).
 *
 * Input: byte 0 picks the options (bit 0: allow_extra; bit 1: load into two
 * stores, prefixes "" and "q.", instead of one with prefix "p."); the rest
 * is the file, written to a scratch file and then
 *   - opened (header length, JSON, metadata, repeated keys, overlapping
 *     spans) and its metadata looked up;
 *   - for each key the header names (parsed here with cJSON to know them,
 *     at most 32): shape and read as F32 and as F64, the read buffer sized
 *     from the shape the reader accepted, and a read asking for one element
 *     too many;
 *   - loaded into small CPU parameter stores (w [2,3], b [3]; q.x [4]): the
 *     data path, staging and upload included;
 *   - loaded as feature statistics (mean [d], cov [d,d], F64).
 * Seeds: tests/fuzz/corpus/fuzz_safetensors/ (make_corpus.py).
 */
#include "fuzz_util.h"

#include <cjson/cJSON.h>

#include "engine/metrics.h"
#include "wb/safetensors.h"
#include "wb/tensor.h"

static wb_params *store_p, *store_q; /* made once: loads overwrite their values */

static wb_params *make_store(const char *const *names, const int *ndims, const int64_t (*shapes)[2], int n) {
    wb_params *ps = wb_params_new(wb_backend_cpu());
    if (!ps) abort();
    for (int i = 0; i < n; i++)
        if (!wb_params_add(ps, names[i], ndims[i], shapes[i], WB_INIT_ZEROS, 0.0f)) abort();
    wb_rng rng;
    wb_rng_init(&rng, 1, 0);
    if (wb_params_finalize(ps, &rng)) abort();
    return ps;
}

static void make_stores(void) {
    if (store_p) return;
    static const char *const p_names[] = {"w", "b"};
    static const int p_ndims[] = {2, 1};
    static const int64_t p_shapes[][2] = {{2, 3}, {3, 0}};
    store_p = make_store(p_names, p_ndims, p_shapes, 2);
    static const char *const q_names[] = {"x"};
    static const int q_ndims[] = {1};
    static const int64_t q_shapes[][2] = {{4, 0}};
    store_q = make_store(q_names, q_ndims, q_shapes, 1);
}

/* Shape, then read, of one key in one dtype. */
static void probe_key(const wb_st_file *f, const char *key, wb_st_dtype dtype) {
    int ndim = 0;
    int64_t shape[WB_MAX_DIMS];
    int bad = wb_safetensors_shape(f, key, dtype, &ndim, shape) != 0;
    fuzz_note(dtype == WB_ST_F64 ? "shape (F64)" : "shape (F32)", bad);
    if (bad) return;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d]; /* accepted: its bytes lie inside the file */
    size_t elem = dtype == WB_ST_F64 ? sizeof(double) : sizeof(float);
    void *buf = malloc((size_t)(numel > 0 ? numel : 1) * elem);
    if (!buf) abort();
    wb_safetensors_read(f, key, dtype, buf, numel);
    wb_safetensors_read(f, key, dtype, buf, numel + 1); /* must be refused, not read past buf */
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    make_stores();
    const uint8_t flags = data[0];
    const uint8_t *file = data + 1;
    size_t fsize = size - 1;
    char path[512];
    fuzz_path(path, sizeof path, "t.safetensors");
    fuzz_write(path, file, fsize);

    wb_st_file *f = wb_safetensors_open(path);
    fuzz_note("open", !f);
    if (f) {
        static const char *const meta_keys[] = {"format", "n", "classes", "precond", "net_resolved", ""};
        for (size_t i = 0; i < sizeof meta_keys / sizeof meta_keys[0]; i++) (void)wb_safetensors_meta(f, meta_keys[i]);
        /* the header's own keys, read here only to know what to ask for */
        uint64_t hlen = 0;
        for (int i = 0; i < 8; i++) hlen |= (uint64_t)file[i] << (8 * i); /* open checked: fsize >= 8 */
        cJSON *root = hlen <= fsize - 8 ? cJSON_ParseWithLength((const char *)file + 8, (size_t)hlen) : NULL;
        int asked = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, root) {
            if (!e->string || asked++ >= 32) continue;
            probe_key(f, e->string, WB_ST_F32);
            probe_key(f, e->string, WB_ST_F64);
        }
        cJSON_Delete(root);
        probe_key(f, "no-such-key", WB_ST_F32);
        probe_key(f, "__metadata__", WB_ST_F32);
        wb_safetensors_close(f);
    }

    int allow_extra = flags & 1;
    if (flags & 2) {
        wb_named_params stores[2] = {{"", store_p}, {"q.", store_q}};
        fuzz_note("load into two stores", wb_safetensors_load(path, stores, 2, allow_extra) != 0);
    } else {
        wb_named_params store = {"p.", store_p};
        fuzz_note("load into one store", wb_safetensors_load(path, &store, 1, allow_extra) != 0);
    }

    wb_feature_stats *stats = wb_feature_stats_load(path);
    fuzz_note("feature stats", !stats);
    wb_feature_stats_free(stats);
    return 0;
}
