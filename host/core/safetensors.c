/* host/core/safetensors.c — checkpoints in the safetensors format
 * (https://github.com/huggingface/safetensors), so weights can be read by
 * PyTorch/NumPy tooling and vice versa.
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 *   {"__metadata__": {"k": "v", ...},
 *    "name": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}, ...}
 * padded with spaces to a multiple of 8, then the byte buffer; offsets are
 * relative to the start of the buffer. We only write and accept F32.
 *
 * Save is atomic: everything goes to PATH.tmp, which is fsynced and then
 * rename()d over PATH, so a crash or an error never leaves a damaged
 * checkpoint at PATH. Load validates the whole file and stages all data on
 * the host before it uploads a single parameter, so a bad file never leaves
 * a store half-loaded. Data moves through the backend's upload/download
 * because parameters may live in device memory.
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

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
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

/* ---- save -------------------------------------------------------------------- */

/* The JSON header (unpadded), or NULL with the error set. */
static char *build_header(const char *path, const wb_named_params *stores, int n_stores,
                          const char *const *meta_kv, int n_meta) {
    cJSON *root = cJSON_CreateObject();
    char *text = NULL, *name = NULL;
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
    for (int s = 0; s < n_stores; s++) {
        wb_params *ps = stores[s].params;
        for (int i = 0; i < wb_params_count(ps); i++) {
            const wb_tensor *t = wb_params_at(ps, i);
            name = full_name(stores[s].prefix, t->name);
            if (!name) goto oom;
            if (strcmp(name, ST_META_KEY) == 0 || cJSON_GetObjectItemCaseSensitive(root, name)) {
                wb_set_error("%s: duplicate tensor name '%s' (check the store prefixes)", path,
                             name);
                goto fail;
            }
            uint64_t bytes = (uint64_t)t->numel * sizeof(float);
            cJSON *e = cJSON_CreateObject();
            if (!e) goto oom;
            cJSON_AddItemToObject(root, name, e);
            cJSON *shape = cJSON_AddArrayToObject(e, "shape");
            cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
            if (!cJSON_AddStringToObject(e, "dtype", "F32") || !shape || !offs) goto oom;
            for (int d = 0; d < t->ndim; d++) {
                cJSON *v = raw_int(t->shape[d]);
                if (!v) goto oom;
                cJSON_AddItemToArray(shape, v);
            }
            cJSON *b = raw_int((int64_t)off), *en = raw_int((int64_t)(off + bytes));
            if (!b || !en) {
                cJSON_Delete(b);
                cJSON_Delete(en);
                goto oom;
            }
            cJSON_AddItemToArray(offs, b);
            cJSON_AddItemToArray(offs, en);
            off += bytes;
            free(name);
            name = NULL;
        }
    }
    text = cJSON_PrintUnformatted(root);
    if (!text) goto oom;
    cJSON_Delete(root);
    return text;
oom:
    wb_set_error("%s: out of memory building the header", path);
fail:
    free(name);
    cJSON_Delete(root);
    return NULL;
}

int wb_safetensors_save(const char *path, const wb_named_params *stores, int n_stores,
                        const char *const *meta_kv, int n_meta) {
    if (check_stores("wb_safetensors_save", path, stores, n_stores)) return -1;
    if (n_meta < 0 || (n_meta > 0 && !meta_kv)) {
        wb_set_error("%s: bad metadata list", path);
        return -1;
    }
    char *header = build_header(path, stores, n_stores, meta_kv, n_meta);
    if (!header) return -1;

    /* Space padding to a multiple of 8 keeps the buffer 8-byte aligned for
     * readers that mmap the file. */
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) & ~(size_t)7;
    char *hbuf = malloc(padded);
    float *host = NULL;
    char *tmp = malloc(strlen(path) + 5);
    int fd = -1, rc = -1;
    if (!hbuf || !tmp) {
        wb_set_error("%s: out of memory", path);
        goto done;
    }
    memcpy(hbuf, header, hlen);
    memset(hbuf + hlen, ' ', padded - hlen);
    sprintf(tmp, "%s.tmp", path);

    /* Largest parameter: one host staging buffer serves every download. */
    int64_t max_numel = 0;
    for (int s = 0; s < n_stores; s++)
        for (int i = 0; i < wb_params_count(stores[s].params); i++) {
            const wb_tensor *t = wb_params_at(stores[s].params, i);
            if (t->numel > max_numel) max_numel = t->numel;
        }
    if (max_numel > 0 && !(host = malloc((size_t)max_numel * sizeof(float)))) {
        wb_set_error("%s: out of memory staging %lld floats", path, (long long)max_numel);
        goto done;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        wb_set_error("%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    if (write_all(fd, len8, 8) || write_all(fd, hbuf, padded)) goto io_error;
    for (int s = 0; s < n_stores; s++)
        for (int i = 0; i < wb_params_count(stores[s].params); i++) {
            const wb_tensor *t = wb_params_at(stores[s].params, i);
            if (t->numel == 0) continue;
            size_t bytes = (size_t)t->numel * sizeof(float);
            wb_backend_download(t->backend, host, t->data, bytes);
            if (write_all(fd, host, bytes)) goto io_error;
        }
    /* The data must be on disk before the rename makes it the checkpoint. */
    if (fsync(fd)) goto io_error;
    if (close(fd)) {
        fd = -1;
        goto io_error;
    }
    fd = -1;
    if (rename(tmp, path)) {
        wb_set_error("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    /* Persist the rename itself; best effort (not every filesystem allows
     * fsync on a directory, and the file is already complete). */
    {
        char *dir = strdup(path);
        if (dir) {
            char *slash = strrchr(dir, '/');
            const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
            int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
    rc = 0;
    goto done;

io_error:
    wb_set_error("%s: writing %s failed: %s", path, tmp, strerror(errno));
    if (fd >= 0) close(fd);
    fd = -1;
    unlink(tmp);
done:
    free(host);
    free(hbuf);
    free(tmp);
    free(header);
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

typedef struct {
    wb_tensor *t;
    char *name;
    uint64_t begin; /* into the buffer */
} st_slot;

int wb_safetensors_load(const char *path, const wb_named_params *stores, int n_stores,
                        int allow_extra) {
    if (check_stores("wb_safetensors_load", path, stores, n_stores)) return -1;

    int rc = -1, fd = -1, n_slots = 0;
    char *hbuf = NULL;
    cJSON *root = NULL;
    st_slot *slots = NULL;
    unsigned char *stage = NULL;
    char sa[128], sb[128];

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        wb_set_error("%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        wb_set_error("%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        wb_set_error("%s: not a regular file", path);
        goto done;
    }
    uint64_t fsize = (uint64_t)st.st_size;
    if (fsize < 8) {
        wb_set_error("%s: truncated: %llu bytes, too short for the 8-byte header length", path,
                     (unsigned long long)fsize);
        goto done;
    }
    unsigned char len8[8];
    int r = pread_all(fd, len8, 8, 0);
    if (r) {
        wb_set_error("%s: read error: %s", path, r < 0 ? strerror(errno) : "unexpected end of file");
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > fsize - 8) {
        wb_set_error("%s: truncated: header says %llu bytes, file has %llu after the length", path,
                     (unsigned long long)hlen, (unsigned long long)(fsize - 8));
        goto done;
    }
    if (hlen > ST_MAX_HEADER) {
        wb_set_error("%s: header of %llu bytes is larger than the %llu-byte limit", path,
                     (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        goto done;
    }
    uint64_t buf_size = fsize - 8 - hlen;

    hbuf = malloc((size_t)hlen + 1);
    if (!hbuf) {
        wb_set_error("%s: out of memory for a %llu-byte header", path, (unsigned long long)hlen);
        goto done;
    }
    r = pread_all(fd, hbuf, (size_t)hlen, 8);
    if (r) {
        wb_set_error("%s: read error: %s", path, r < 0 ? strerror(errno) : "unexpected end of file");
        goto done;
    }
    hbuf[hlen] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithOpts(hbuf, &end, 1);
    /* The whole header must be JSON plus trailing whitespace: an embedded NUL
     * would otherwise hide garbage after it. */
    if (!root || end != hbuf + hlen) {
        wb_set_error("%s: header (%llu bytes) is not valid JSON", path, (unsigned long long)hlen);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        wb_set_error("%s: header is not a JSON object", path);
        goto done;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, ST_META_KEY);
    if (meta) {
        if (!cJSON_IsObject(meta)) {
            wb_set_error("%s: %s is not an object", path, ST_META_KEY);
            goto done;
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, meta) {
            if (!cJSON_IsString(m)) {
                wb_set_error("%s: %s value '%s' is not a string", path, ST_META_KEY,
                             m->string ? m->string : "?");
                goto done;
            }
        }
    }

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

            const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, name);
            if (!e || strcmp(name, ST_META_KEY) == 0) {
                wb_set_error("%s: key '%s' missing (expected shape %s)", path, name,
                             dims_str(t->shape, t->ndim, sa, sizeof sa));
                goto done;
            }
            if (!cJSON_IsObject(e)) {
                wb_set_error("%s: key '%s': entry is not an object", path, name);
                goto done;
            }
            const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
            if (!cJSON_IsString(dt)) {
                wb_set_error("%s: key '%s': dtype missing or not a string", path, name);
                goto done;
            }
            if (strcmp(dt->valuestring, "F32") != 0) {
                wb_set_error("%s: key '%s': dtype %s in file, only F32 is supported", path, name,
                             dt->valuestring);
                goto done;
            }
            const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
            if (!cJSON_IsArray(sh)) {
                wb_set_error("%s: key '%s': shape missing or not an array", path, name);
                goto done;
            }
            int fnd = cJSON_GetArraySize(sh);
            int64_t fdims[WB_MAX_DIMS + 1];
            int same = fnd == t->ndim, k = 0;
            const cJSON *d;
            cJSON_ArrayForEach(d, sh) {
                int64_t v = json_uint(d);
                if (v < 0) {
                    wb_set_error("%s: key '%s': shape holds a value that is not a "
                                 "non-negative integer",
                                 path, name);
                    goto done;
                }
                if (k <= WB_MAX_DIMS) fdims[k] = v;
                if (k < t->ndim && v != t->shape[k]) same = 0;
                k++;
            }
            if (!same) {
                if (fnd > WB_MAX_DIMS)
                    snprintf(sa, sizeof sa, "(%d dims)", fnd);
                else
                    dims_str(fdims, fnd, sa, sizeof sa);
                wb_set_error("%s: key '%s': shape %s in file, %s expected", path, name, sa,
                             dims_str(t->shape, t->ndim, sb, sizeof sb));
                goto done;
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
                             path, name);
                goto done;
            }
            uint64_t want = (uint64_t)t->numel * sizeof(float);
            if ((uint64_t)(en - b) != want) {
                wb_set_error("%s: key '%s': data_offsets [%lld,%lld] span %lld bytes, %llu "
                             "expected for F32 %s",
                             path, name, (long long)b, (long long)en, (long long)(en - b),
                             (unsigned long long)want, dims_str(t->shape, t->ndim, sb, sizeof sb));
                goto done;
            }
            if ((uint64_t)en > buf_size) {
                wb_set_error("%s: truncated: key '%s' data ends at byte %lld of the buffer, "
                             "file has %llu buffer bytes",
                             path, name, (long long)en, (unsigned long long)buf_size);
                goto done;
            }
            slots[n_slots - 1].begin = (uint64_t)b;
            stage_bytes += want;
        }

    /* Extra tensors: anything in the file that no store asked for. */
    if (!allow_extra) {
        const cJSON *e;
        cJSON_ArrayForEach(e, root) {
            if (!e->string || strcmp(e->string, ST_META_KEY) == 0) continue;
            int known = 0;
            for (int i = 0; i < n_slots && !known; i++) known = strcmp(slots[i].name, e->string) == 0;
            if (!known) {
                wb_set_error("%s: unexpected key '%s' in file (no parameter of that name; "
                             "allow_extra ignores it)",
                             path, e->string);
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
    off_t data_start = (off_t)(8 + hlen);
    for (int i = 0; i < n_slots; i++) {
        size_t bytes = (size_t)slots[i].t->numel * sizeof(float);
        r = pread_all(fd, stage + at, bytes, data_start + (off_t)slots[i].begin);
        if (r) {
            wb_set_error("%s: key '%s': read error: %s", path, slots[i].name,
                         r < 0 ? strerror(errno) : "unexpected end of file");
            goto done;
        }
        at += bytes;
    }
    at = 0;
    for (int i = 0; i < n_slots; i++) {
        wb_tensor *t = slots[i].t;
        size_t bytes = (size_t)t->numel * sizeof(float);
        if (bytes) wb_backend_upload(t->backend, t->data, stage + at, bytes);
        at += bytes;
    }
    rc = 0;

done:
    if (fd >= 0) close(fd);
    for (int i = 0; i < n_slots; i++) free(slots[i].name);
    free(slots);
    free(stage);
    cJSON_Delete(root);
    free(hbuf);
    return rc;
}
