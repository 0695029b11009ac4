/* host/core/safetensors.c — checkpoints in the safetensors format
 * (https://github.com/huggingface/safetensors), so weights can be read by
 * PyTorch/NumPy tooling and vice versa.
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 *   {"__metadata__": {"k": "v", ...},
 *    "name": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}, ...}
 * padded with spaces to a multiple of 8, then the byte buffer; offsets are
 * relative to the start of the buffer. Parameter stores are F32; named host
 * arrays (core/safetensors.h, e.g. the F64 feature statistics) are F32 or F64.
 *
 * One writer and one reader serve both. Save is atomic (core/atomic_file.h):
 * everything goes to PATH.tmp, which is fsynced and then renamed over PATH,
 * so a crash or an error never leaves a damaged file at PATH. The reader
 * validates the header once (st_open) and every tensor it is asked for
 * (check_entry: dtype, shape, offsets inside the file). Loading a store
 * stages all data on the host before it uploads a single parameter, so a bad
 * file never leaves a store half-loaded. Data moves through the backend's
 * upload/download because parameters may live in device memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/escape.h"
#include "wb/atomic_file.h"
#include "wb/safetensors.h"
#include "wb/backend.h"
#include "wb/tensor.h"

/* Tensor bytes are written as they sit in memory; the format is little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000) /* same order as the reference reader's limit */
#define ST_META_KEY "__metadata__"

/* ---- small helpers --------------------------------------------------------- */

static char *full_name(const char *prefix, const char *name) {
    if (!prefix) prefix = "";
    if (!name) name = "";
    size_t a = strlen(prefix), b = strlen(name);
    char *s = malloc(a + b + 1);
    if (!s) return NULL;
    memcpy(s, prefix, a);
    memcpy(s + a, name, b + 1);
    return s;
}

/* "[64,2]" into buf. */
static const char *dims_str(const int64_t *d, int n, char *buf, size_t cap) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ",%lld" : "%lld", (long long)d[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* 0 on success, -1 on an I/O error, 1 on a short read (end of file). */
static int pread_all(int fd, void *buf, size_t n, off_t off) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) return 1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static cJSON *raw_int(int64_t v) {
    /* Raw text rather than cJSON numbers: cJSON prints doubles, and offsets
     * must be written as exact integers whatever their size. */
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return cJSON_CreateRaw(b);
}

static int check_stores(const char *fn, const char *path, const wb_named_params *stores,
                        int n_stores) {
    if (!path) {
        wb_set_error("%s: path is NULL", fn);
        return -1;
    }
    if (n_stores < 0 || (n_stores > 0 && !stores)) {
        wb_set_error("%s: %s: bad store list", fn, path);
        return -1;
    }
    for (int s = 0; s < n_stores; s++) {
        wb_params *ps = stores[s].params;
        if (!ps) {
            wb_set_error("%s: %s: store %d has no params", fn, path, s);
            return -1;
        }
        for (int i = 0; i < wb_params_count(ps); i++) {
            const wb_tensor *t = wb_params_at(ps, i);
            if (!t || !t->name || (t->numel > 0 && (!t->data || !t->backend))) {
                wb_set_error("%s: %s: store %d parameter %d is not finalized", fn, path, s, i);
                return -1;
            }
            if (t->ndim < 0 || t->ndim > WB_MAX_DIMS || t->numel < 0) {
                wb_set_error("%s: %s: store %d parameter '%s' has a bad shape", fn, path, s,
                             t->name);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- dtypes -------------------------------------------------------------------- */

static const char *const dtype_names[] = {"F32", "F64"};
static const size_t dtype_sizes[] = {sizeof(float), sizeof(double)};

/* ---- save -------------------------------------------------------------------- */

/* One tensor on its way into a file: a parameter (downloaded from its
 * backend) or a host array. */
typedef struct st_out {
    char *name; /* owned */
    wb_st_dtype dtype;
    int ndim;
    const int64_t *shape;
    uint64_t bytes;
    const wb_tensor *param; /* or */
    const void *host;
} st_out;

/* The JSON header (unpadded), or NULL with the error set. */
static char *build_header(const char *path, const st_out *outs, int n_outs, const char *const *meta_kv,
                          int n_meta) {
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    if (!root) goto oom;
    if (n_meta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, ST_META_KEY);
        if (!meta) goto oom;
        for (int i = 0; i < n_meta; i++) {
            const char *k = meta_kv[2 * i], *v = meta_kv[2 * i + 1];
            if (!k || !v) {
                wb_set_error("%s: metadata pair %d has a NULL %s", path, i, !k ? "key" : "value");
                goto fail;
            }
            if (cJSON_GetObjectItemCaseSensitive(meta, k)) {
                wb_set_error("%s: duplicate metadata key '%s'", path, k);
                goto fail;
            }
            if (!cJSON_AddStringToObject(meta, k, v)) goto oom;
        }
    }
    uint64_t off = 0;
    for (int i = 0; i < n_outs; i++) {
        const st_out *o = &outs[i];
        if (strcmp(o->name, ST_META_KEY) == 0 || cJSON_GetObjectItemCaseSensitive(root, o->name)) {
            wb_set_error("%s: duplicate tensor name '%s' (check the store prefixes)", path, o->name);
            goto fail;
        }
        cJSON *e = cJSON_CreateObject();
        if (!e) goto oom;
        cJSON_AddItemToObject(root, o->name, e);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        if (!cJSON_AddStringToObject(e, "dtype", dtype_names[o->dtype]) || !shape || !offs) goto oom;
        for (int d = 0; d < o->ndim; d++) {
            cJSON *v = raw_int(o->shape[d]);
            if (!v) goto oom;
            cJSON_AddItemToArray(shape, v);
        }
        cJSON *b = raw_int((int64_t)off), *en = raw_int((int64_t)(off + o->bytes));
        if (!b || !en) {
            cJSON_Delete(b);
            cJSON_Delete(en);
            goto oom;
        }
        cJSON_AddItemToArray(offs, b);
        cJSON_AddItemToArray(offs, en);
        off += o->bytes;
    }
    text = cJSON_PrintUnformatted(root);
    if (!text) goto oom;
    cJSON_Delete(root);
    return text;
oom:
    wb_set_error("%s: out of memory building the header", path);
fail:
    cJSON_Delete(root);
    return NULL;
}

/* The one writer: header, then every tensor's bytes in order, atomically. */
static int write_file(const char *path, const st_out *outs, int n_outs, const char *const *meta_kv, int n_meta) {
    if (n_meta < 0 || (n_meta > 0 && !meta_kv)) {
        wb_set_error("%s: bad metadata list", path);
        return -1;
    }
    char *header = build_header(path, outs, n_outs, meta_kv, n_meta);
    if (!header) return -1;

    /* Space padding to a multiple of 8 keeps the buffer 8-byte aligned for
     * readers that mmap the file. */
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) & ~(size_t)7;
    char *hbuf = malloc(padded);
    void *stage = NULL;
    int rc = -1;
    wb_atomic_file af = {0};
    if (!hbuf) {
        wb_set_error("%s: out of memory", path);
        goto done;
    }
    memcpy(hbuf, header, hlen);
    memset(hbuf + hlen, ' ', padded - hlen);

    /* Largest parameter: one host staging buffer serves every download. */
    uint64_t max_bytes = 0;
    for (int i = 0; i < n_outs; i++)
        if (outs[i].param && outs[i].bytes > max_bytes) max_bytes = outs[i].bytes;
    if (max_bytes > 0 && !(stage = malloc((size_t)max_bytes))) {
        wb_set_error("%s: out of memory staging %llu bytes", path, (unsigned long long)max_bytes);
        goto done;
    }

    if (wb_atomic_open(&af, path)) goto done;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    /* A failed fwrite sets the stream's error flag, which the commit reports. */
    int ok = fwrite(len8, 1, 8, af.f) == 8 && fwrite(hbuf, 1, padded, af.f) == padded;
    for (int i = 0; ok && i < n_outs; i++) {
        const st_out *o = &outs[i];
        if (o->bytes == 0) continue;
        const void *src = o->host;
        if (o->param) {
            wb_backend_download(o->param->backend, stage, o->param->data, (size_t)o->bytes);
            src = stage;
        }
        ok = fwrite(src, 1, (size_t)o->bytes, af.f) == o->bytes;
    }
    rc = wb_atomic_commit(&af); /* af is empty afterwards, whatever the outcome */
done:
    wb_atomic_abort(&af);
    free(stage);
    free(hbuf);
    free(header);
    return rc;
}

int wb_safetensors_save(const char *path, const wb_named_params *stores, int n_stores,
                        const char *const *meta_kv, int n_meta) {
    if (check_stores("wb_safetensors_save", path, stores, n_stores)) return -1;
    int total = 0, n_outs = 0, rc = -1;
    for (int s = 0; s < n_stores; s++) total += wb_params_count(stores[s].params);
    st_out *outs = calloc(total > 0 ? (size_t)total : 1, sizeof *outs);
    if (!outs) {
        wb_set_error("%s: out of memory", path);
        return -1;
    }
    for (int s = 0; s < n_stores; s++)
        for (int i = 0; i < wb_params_count(stores[s].params); i++) {
            const wb_tensor *t = wb_params_at(stores[s].params, i);
            st_out *o = &outs[n_outs];
            if (!(o->name = full_name(stores[s].prefix, t->name))) {
                wb_set_error("%s: out of memory building the header", path);
                goto done;
            }
            n_outs++;
            o->dtype = WB_ST_F32;
            o->ndim = t->ndim;
            o->shape = t->shape;
            o->bytes = (uint64_t)t->numel * sizeof(float);
            o->param = t;
        }
    rc = write_file(path, outs, n_outs, meta_kv, n_meta);
done:
    for (int i = 0; i < n_outs; i++) free(outs[i].name);
    free(outs);
    return rc;
}

int wb_safetensors_save_arrays(const char *path, const wb_st_array *arrays, int n, const char *const *meta_kv,
                               int n_meta) {
    if (!path) {
        wb_set_error("wb_safetensors_save_arrays: path is NULL");
        return -1;
    }
    if (n < 0 || (n > 0 && !arrays)) {
        wb_set_error("%s: bad array list", path);
        return -1;
    }
    st_out *outs = calloc(n > 0 ? (size_t)n : 1, sizeof *outs);
    if (!outs) {
        wb_set_error("%s: out of memory", path);
        return -1;
    }
    int rc = -1;
    for (int i = 0; i < n; i++) {
        const wb_st_array *a = &arrays[i];
        if (!a->name || (a->dtype != WB_ST_F32 && a->dtype != WB_ST_F64) || a->ndim < 0 || a->ndim > WB_MAX_DIMS) {
            wb_set_error("%s: array %d has no name, an unknown dtype or a bad rank", path, i);
            goto done;
        }
        uint64_t numel = 1;
        for (int d = 0; d < a->ndim; d++) {
            if (a->shape[d] < 0 || (a->shape[d] > 0 && numel > (UINT64_MAX / 16) / (uint64_t)a->shape[d])) {
                wb_set_error("%s: array '%s' has a bad shape", path, a->name);
                goto done;
            }
            numel *= (uint64_t)a->shape[d];
        }
        if (numel > 0 && !a->data) {
            wb_set_error("%s: array '%s' has no data", path, a->name);
            goto done;
        }
        outs[i] = (st_out){.name = (char *)a->name, .dtype = a->dtype, .ndim = a->ndim, .shape = a->shape,
                           .bytes = numel * dtype_sizes[a->dtype], .host = a->data};
    }
    rc = write_file(path, outs, n, meta_kv, n_meta);
done:
    free(outs); /* names belong to the caller */
    return rc;
}

/* ---- load -------------------------------------------------------------------- */

/* A JSON number that is an exact non-negative integer ≤ 2^53; -1 otherwise. */
static int64_t json_uint(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || floor(d) != d) return -1;
    return (int64_t)d;
}

struct wb_st_file {
    const char *path; /* the caller's (st_open) or own copy (wb_safetensors_open) */
    char *own_path;
    int fd;
    uint64_t hlen;     /* header bytes after the 8-byte length */
    uint64_t buf_size; /* bytes after the header */
    cJSON *root;
    char *hbuf;
};

static void st_close(wb_st_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    cJSON_Delete(f->root);
    free(f->hbuf);
    free(f->own_path);
    f->root = NULL;
    f->hbuf = f->own_path = NULL;
}

/* Whole-header checks a lookup by name would miss: a tensor name given
 * twice (cJSON keeps both; the first would win silently) and two F32/F64
 * tensors whose data_offsets overlap (their values would alias). Entries
 * whose offsets are malformed or do not match their dtype and shape are
 * left to check_entry, which names them precisely when they are read;
 * tensors of other dtypes are never read here; empty tensors ([b, b])
 * overlap nothing. */
typedef struct st_span {
    uint64_t begin, end;
    const char *name;
} st_span;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int check_names_and_spans(const char *path, const cJSON *root) {
    int n = cJSON_GetArraySize(root), n_spans = 0, n_keys = 0, rc = -1;
    st_span *spans = malloc((size_t)(n > 0 ? n : 1) * sizeof *spans);
    const char **keys = malloc((size_t)(n > 0 ? n : 1) * sizeof *keys);
    if (!spans || !keys) {
        wb_set_error("%s: out of memory checking the header", path);
        goto done;
    }
    /* repeated names: sorted, so a header of a million keys costs n log n,
     * not n² string compares */
    const cJSON *e;
    cJSON_ArrayForEach(e, root) if (e->string) keys[n_keys++] = e->string;
    qsort(keys, (size_t)n_keys, sizeof *keys, cmp_key);
    for (int i = 1; i < n_keys; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            char k[WB_ESCAPED_KEY];
            wb_set_error("%s: key '%s' appears twice in the header", path, wb_escape(keys[i], k, sizeof k));
            goto done;
        }
    cJSON_ArrayForEach(e, root) {
        if (!e->string) continue;
        if (strcmp(e->string, ST_META_KEY) == 0) continue;
        const cJSON *of = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "data_offsets") : NULL;
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) continue;
        const cJSON *b = cJSON_GetArrayItem(of, 0), *en = cJSON_GetArrayItem(of, 1);
        if (!cJSON_IsNumber(b) || !cJSON_IsNumber(en) || b->valuedouble < 0 || en->valuedouble < b->valuedouble ||
            en->valuedouble > 18446744073709549568.0)
            continue;
        if (en->valuedouble == b->valuedouble) continue; /* empty */
        /* only tensors this reader can read and whose span fits their dtype
         * and shape (the others are check_entry's to name when asked for) */
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        double elem = !cJSON_IsString(dt) ? 0 : strcmp(dt->valuestring, "F32") == 0 ? 4 : strcmp(dt->valuestring, "F64") == 0 ? 8 : 0;
        if (elem == 0 || !cJSON_IsArray(sh)) continue;
        double bytes = elem;
        const cJSON *d;
        cJSON_ArrayForEach(d, sh) bytes *= cJSON_IsNumber(d) ? d->valuedouble : -1.0;
        if (bytes != en->valuedouble - b->valuedouble) continue;
        spans[n_spans++] = (st_span){(uint64_t)b->valuedouble, (uint64_t)en->valuedouble, e->string};
    }
    qsort(spans, (size_t)n_spans, sizeof *spans, cmp_span);
    for (int i = 1; i < n_spans; i++)
        if (spans[i].begin < spans[i - 1].end) {
            char k1[WB_ESCAPED_KEY], k2[WB_ESCAPED_KEY];
            wb_set_error("%s: keys '%s' [%llu,%llu] and '%s' [%llu,%llu]: data_offsets overlap", path,
                         wb_escape(spans[i - 1].name, k1, sizeof k1), (unsigned long long)spans[i - 1].begin,
                         (unsigned long long)spans[i - 1].end, wb_escape(spans[i].name, k2, sizeof k2),
                         (unsigned long long)spans[i].begin,
                         (unsigned long long)spans[i].end);
            goto done;
        }
    rc = 0;
done:
    free(spans);
    free(keys);
    return rc;
}

/* The one header reader: opens path and validates the length, the JSON
 * object and its string metadata. On failure f is closed. */
static int st_open(wb_st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        wb_set_error("%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(f->fd, &st)) {
        wb_set_error("%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        wb_set_error("%s: not a regular file", path);
        goto fail;
    }
    uint64_t fsize = (uint64_t)st.st_size;
    if (fsize < 8) {
        wb_set_error("%s: truncated: %llu bytes, too short for the 8-byte header length", path,
                     (unsigned long long)fsize);
        goto fail;
    }
    unsigned char len8[8];
    int r = pread_all(f->fd, len8, 8, 0);
    if (r) {
        wb_set_error("%s: read error: %s", path, r < 0 ? strerror(errno) : "unexpected end of file");
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > fsize - 8) {
        wb_set_error("%s: truncated: header says %llu bytes, file has %llu after the length", path,
                     (unsigned long long)hlen, (unsigned long long)(fsize - 8));
        goto fail;
    }
    if (hlen > ST_MAX_HEADER) {
        wb_set_error("%s: header of %llu bytes is larger than the %llu-byte limit", path,
                     (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        goto fail;
    }
    f->hlen = hlen;
    f->buf_size = fsize - 8 - hlen;

    f->hbuf = malloc((size_t)hlen + 1);
    if (!f->hbuf) {
        wb_set_error("%s: out of memory for a %llu-byte header", path, (unsigned long long)hlen);
        goto fail;
    }
    r = pread_all(f->fd, f->hbuf, (size_t)hlen, 8);
    if (r) {
        wb_set_error("%s: read error: %s", path, r < 0 ? strerror(errno) : "unexpected end of file");
        goto fail;
    }
    f->hbuf[hlen] = '\0';
    const char *end = NULL;
    f->root = cJSON_ParseWithOpts(f->hbuf, &end, 1);
    /* The whole header must be JSON plus trailing whitespace: an embedded NUL
     * would otherwise hide garbage after it. */
    if (!f->root || end != f->hbuf + hlen) {
        wb_set_error("%s: header (%llu bytes) is not valid JSON", path, (unsigned long long)hlen);
        goto fail;
    }
    if (!cJSON_IsObject(f->root)) {
        wb_set_error("%s: header is not a JSON object", path);
        goto fail;
    }
    if (check_names_and_spans(path, f->root)) goto fail;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(f->root, ST_META_KEY);
    if (meta) {
        if (!cJSON_IsObject(meta)) {
            wb_set_error("%s: %s is not an object", path, ST_META_KEY);
            goto fail;
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, meta) {
            if (!cJSON_IsString(m)) {
                char k[WB_ESCAPED_KEY];
                wb_set_error("%s: %s value '%s' is not a string", path, ST_META_KEY,
                             m->string ? wb_escape(m->string, k, sizeof k) : "?");
                goto fail;
            }
        }
    }
    return 0;
fail:
    st_close(f);
    return -1;
}

/* Where one tensor's bytes are. */
typedef struct st_entry {
    int ndim;
    int64_t dims[WB_MAX_DIMS];
    uint64_t begin, bytes; /* into the buffer */
} st_entry;

/* The one entry check: tensor name exists with dtype, its shape is
 * want_dims[0..want_ndim) (want_ndim < 0: any shape of at most WB_MAX_DIMS
 * dims), and its data_offsets span exactly its bytes inside the file. */
static int check_entry(const wb_st_file *f, const char *name, wb_st_dtype dtype, int want_ndim,
                       const int64_t *want_dims, st_entry *out) {
    const char *path = f->path;
    char sa[128], sb[128], key_buf[WB_ESCAPED_KEY], dtype_buf[WB_ESCAPED_KEY];
    const char *key = wb_escape(name, key_buf, sizeof key_buf); /* for messages */
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(f->root, name);
    if (!e || strcmp(name, ST_META_KEY) == 0) {
        if (want_ndim >= 0)
            wb_set_error("%s: key '%s' missing (expected shape %s)", path, key,
                         dims_str(want_dims, want_ndim, sa, sizeof sa));
        else
            wb_set_error("%s: key '%s' missing", path, key);
        return -1;
    }
    if (!cJSON_IsObject(e)) {
        wb_set_error("%s: key '%s': entry is not an object", path, key);
        return -1;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt)) {
        wb_set_error("%s: key '%s': dtype missing or not a string", path, key);
        return -1;
    }
    if (strcmp(dt->valuestring, dtype_names[dtype]) != 0) {
        wb_set_error("%s: key '%s': dtype %s in file, %s expected", path, key, wb_escape(dt->valuestring, dtype_buf, sizeof dtype_buf),
                     dtype_names[dtype]);
        return -1;
    }
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh)) {
        wb_set_error("%s: key '%s': shape missing or not an array", path, key);
        return -1;
    }
    int fnd = cJSON_GetArraySize(sh);
    int64_t fdims[WB_MAX_DIMS + 1];
    int same = want_ndim < 0 || fnd == want_ndim, k = 0;
    uint64_t numel = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh) {
        int64_t v = json_uint(d);
        if (v < 0) {
            wb_set_error("%s: key '%s': shape holds a value that is not a "
                         "non-negative integer",
                         path, key);
            return -1;
        }
        if (k <= WB_MAX_DIMS) fdims[k] = v;
        if (want_ndim >= 0 && k < want_ndim && v != want_dims[k]) same = 0;
        /* saturate: a product past any file size fails the span check below */
        numel = v == 0 ? 0 : numel > UINT64_MAX / 16 / (uint64_t)v ? UINT64_MAX / 16 : numel * (uint64_t)v;
        k++;
    }
    if (!same) {
        if (fnd > WB_MAX_DIMS)
            snprintf(sa, sizeof sa, "(%d dims)", fnd);
        else
            dims_str(fdims, fnd, sa, sizeof sa);
        wb_set_error("%s: key '%s': shape %s in file, %s expected", path, key, sa,
                     dims_str(want_dims, want_ndim, sb, sizeof sb));
        return -1;
    }
    if (fnd > WB_MAX_DIMS) {
        wb_set_error("%s: key '%s': %d dims in file, at most %d supported", path, key, fnd, WB_MAX_DIMS);
        return -1;
    }
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    int64_t b = -1, en = -1;
    if (cJSON_IsArray(of) && cJSON_GetArraySize(of) == 2) {
        b = json_uint(cJSON_GetArrayItem(of, 0));
        en = json_uint(cJSON_GetArrayItem(of, 1));
    }
    if (b < 0 || en < 0 || en < b) {
        wb_set_error("%s: key '%s': data_offsets must be [begin, end] integers with "
                     "begin <= end",
                     path, key);
        return -1;
    }
    uint64_t want = numel * dtype_sizes[dtype];
    if ((uint64_t)(en - b) != want) {
        wb_set_error("%s: key '%s': data_offsets [%lld,%lld] span %lld bytes, %llu "
                     "expected for %s %s",
                     path, key, (long long)b, (long long)en, (long long)(en - b), (unsigned long long)want,
                     dtype_names[dtype], dims_str(fdims, fnd, sb, sizeof sb));
        return -1;
    }
    if ((uint64_t)en > f->buf_size) {
        wb_set_error("%s: truncated: key '%s' data ends at byte %lld of the buffer, "
                     "file has %llu buffer bytes",
                     path, key, (long long)en, (unsigned long long)f->buf_size);
        return -1;
    }
    out->ndim = fnd;
    memcpy(out->dims, fdims, (size_t)fnd * sizeof *fdims);
    out->begin = (uint64_t)b;
    out->bytes = want;
    return 0;
}

/* Reads one checked entry's bytes. */
static int read_entry(const wb_st_file *f, const char *name, const st_entry *en, void *out) {
    int r = pread_all(f->fd, out, (size_t)en->bytes, (off_t)(8 + f->hlen + en->begin));
    if (r) {
        char k[WB_ESCAPED_KEY];
        wb_set_error("%s: key '%s': read error: %s", f->path, wb_escape(name, k, sizeof k),
                     r < 0 ? strerror(errno) : "unexpected end of file");
        return -1;
    }
    return 0;
}

typedef struct {
    wb_tensor *t;
    char *name;
    st_entry entry;
} st_slot;

int wb_safetensors_load(const char *path, const wb_named_params *stores, int n_stores,
                        int allow_extra) {
    if (check_stores("wb_safetensors_load", path, stores, n_stores)) return -1;

    int rc = -1, n_slots = 0;
    st_slot *slots = NULL;
    unsigned char *stage = NULL;
    wb_st_file file;
    if (st_open(&file, path)) return -1;

    /* Every parameter of every store: present, F32, same shape, in bounds. */
    int total = 0;
    for (int s = 0; s < n_stores; s++) total += wb_params_count(stores[s].params);
    slots = calloc(total > 0 ? (size_t)total : 1, sizeof *slots);
    if (!slots) {
        wb_set_error("%s: out of memory", path);
        goto done;
    }
    uint64_t stage_bytes = 0;
    for (int s = 0; s < n_stores; s++)
        for (int i = 0; i < wb_params_count(stores[s].params); i++) {
            wb_tensor *t = wb_params_at(stores[s].params, i);
            char *name = full_name(stores[s].prefix, t->name);
            if (!name) {
                wb_set_error("%s: out of memory", path);
                goto done;
            }
            slots[n_slots].t = t;
            slots[n_slots].name = name;
            n_slots++;
            if (check_entry(&file, name, WB_ST_F32, t->ndim, t->shape, &slots[n_slots - 1].entry)) goto done;
            stage_bytes += slots[n_slots - 1].entry.bytes;
        }

    /* Extra tensors: anything in the file that no store asked for. */
    if (!allow_extra) {
        const cJSON *e;
        cJSON_ArrayForEach(e, file.root) {
            if (!e->string || strcmp(e->string, ST_META_KEY) == 0) continue;
            int known = 0;
            for (int i = 0; i < n_slots && !known; i++) known = strcmp(slots[i].name, e->string) == 0;
            if (!known) {
                char k[WB_ESCAPED_KEY];
                wb_set_error("%s: unexpected key '%s' in file (no parameter of that name; "
                             "allow_extra ignores it)",
                             path, wb_escape(e->string, k, sizeof k));
                goto done;
            }
        }
    }

    /* Stage everything on the host first: an I/O error halfway must not leave
     * some parameters loaded and others not. */
    if (stage_bytes > SIZE_MAX) {
        wb_set_error("%s: %llu bytes of parameters do not fit in memory", path,
                     (unsigned long long)stage_bytes);
        goto done;
    }
    stage = malloc(stage_bytes > 0 ? (size_t)stage_bytes : 1);
    if (!stage) {
        wb_set_error("%s: out of memory staging %llu bytes", path, (unsigned long long)stage_bytes);
        goto done;
    }
    uint64_t at = 0;
    for (int i = 0; i < n_slots; i++) {
        if (read_entry(&file, slots[i].name, &slots[i].entry, stage + at)) goto done;
        at += slots[i].entry.bytes;
    }
    at = 0;
    for (int i = 0; i < n_slots; i++) {
        wb_tensor *t = slots[i].t;
        size_t bytes = (size_t)slots[i].entry.bytes;
        if (bytes) wb_backend_upload(t->backend, t->data, stage + at, bytes);
        at += bytes;
    }
    rc = 0;

done:
    st_close(&file);
    for (int i = 0; i < n_slots; i++) free(slots[i].name);
    free(slots);
    free(stage);
    return rc;
}

/* ---- named host arrays ---------------------------------------------------------- */

wb_st_file *wb_safetensors_open(const char *path) {
    if (!path) {
        wb_set_error("wb_safetensors_open: path is NULL");
        return NULL;
    }
    wb_st_file *f = calloc(1, sizeof *f);
    char *own = strdup(path);
    if (!f || !own) {
        free(f);
        free(own);
        wb_set_error("%s: out of memory", path);
        return NULL;
    }
    if (st_open(f, own)) {
        free(f);
        free(own);
        return NULL;
    }
    f->own_path = own;
    return f;
}

void wb_safetensors_close(wb_st_file *f) {
    if (!f) return;
    st_close(f);
    free(f);
}

const char *wb_safetensors_meta(const wb_st_file *f, const char *key) {
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(f->root, ST_META_KEY);
    const cJSON *v = meta ? cJSON_GetObjectItemCaseSensitive(meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL; /* st_open checked: every value is a string */
}

int wb_safetensors_shape(const wb_st_file *f, const char *name, wb_st_dtype dtype, int *ndim,
                         int64_t shape[WB_MAX_DIMS]) {
    st_entry en;
    if (dtype != WB_ST_F32 && dtype != WB_ST_F64) {
        char k[WB_ESCAPED_KEY];
        wb_set_error("%s: key '%s': unknown dtype asked for", f->path, wb_escape(name, k, sizeof k));
        return -1;
    }
    if (check_entry(f, name, dtype, -1, NULL, &en)) return -1;
    *ndim = en.ndim;
    memcpy(shape, en.dims, (size_t)en.ndim * sizeof *shape);
    return 0;
}

int wb_safetensors_read(const wb_st_file *f, const char *name, wb_st_dtype dtype, void *out, int64_t numel) {
    st_entry en;
    if (dtype != WB_ST_F32 && dtype != WB_ST_F64) {
        char k[WB_ESCAPED_KEY];
        wb_set_error("%s: key '%s': unknown dtype asked for", f->path, wb_escape(name, k, sizeof k));
        return -1;
    }
    if (check_entry(f, name, dtype, -1, NULL, &en)) return -1;
    if (numel < 0 || en.bytes != (uint64_t)numel * dtype_sizes[dtype]) {
        char k[WB_ESCAPED_KEY];
        wb_set_error("%s: key '%s': %llu elements in file, %lld expected", f->path, wb_escape(name, k, sizeof k),
                     (unsigned long long)(en.bytes / dtype_sizes[dtype]), (long long)numel);
        return -1;
    }
    return read_entry(f, name, &en, out);
}
