/* host/engine/images.c — image datasets (Fashion-MNIST / MNIST gzip IDX, CIFAR-10,
 * CIFAR-100, a PNG folder) behind the wb_dataset interface; see images.h.
 *
 * Loaders produce one uint8 (C, H, W) array plus int32 labels; the common
 * code then filters labels, applies max_images and fixes the output
 * geometry. Conversion to float (channels -> resize -> pad -> flip) happens
 * per drawn image, so 60000 MNIST digits stay at 47 MB instead of 188 MB
 * and the conversion options cost nothing at load time.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "engine/images.h"
#include "core/wb_internal.h"

typedef struct img_set {
    wb_dataset base;
    uint8_t *pix;          /* count x (sc, sh, sw)                          */
    int32_t *labels;       /* count                                         */
    int64_t count;
    int sc, sh, sw;        /* stored geometry                               */
    int oc, rh, rw;        /* after channel conversion and resize           */
    int oh, ow;            /* after padding: the output image               */
    wb_resize_mode resize;
    int flip;
    int n_classes;
} img_set;

/* What a loader hands back before filtering. */
typedef struct raw_images {
    uint8_t *pix;
    int32_t *labels;
    int64_t count;
    int c, h, w;
    int n_classes;
} raw_images;

static void raw_free(raw_images *r) {
    free(r->pix);
    free(r->labels);
    memset(r, 0, sizeof *r);
}

static void join_path(char *out, size_t cap, const char *dir, const char *name) {
    size_t n = strlen(dir);
    snprintf(out, cap, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

/* ---- gzip IDX (MNIST, Fashion-MNIST) ------------------------------------------ */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Open DIR/NAME.gz, or DIR/NAME when only the uncompressed file exists
 * (gzread reads plain files transparently). path gets the name used. */
static gzFile idx_open(const char *dir, const char *name, char *path, size_t cap) {
    join_path(path, cap, dir, name);
    gzFile f = gzopen(path, "rb");
    if (f) return f;
    int err = errno;
    char plain[4096];
    snprintf(plain, sizeof plain, "%s", path);
    size_t n = strlen(plain);
    if (n > 3 && strcmp(plain + n - 3, ".gz") == 0) {
        plain[n - 3] = '\0';
        f = gzopen(plain, "rb");
        if (f) {
            snprintf(path, cap, "%s", plain);
            return f;
        }
    }
    wb_set_error("%s: cannot open: %s", path, strerror(err ? err : ENOENT));
    return NULL;
}

/* Read up to n bytes; *got = bytes read. Non-zero (error set) only when
 * zlib reports a damaged stream; a short read is the caller's to judge. */
static int gz_read_full(gzFile f, const char *path, uint8_t *buf, size_t n, size_t *got) {
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        if (want > (1u << 30)) want = 1u << 30;
        int r = gzread(f, buf + *got, (unsigned)want);
        if (r < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            wb_set_error("%s: truncated or corrupt gzip data after %zu bytes: %s", path, *got, msg);
            return -1;
        }
        if (r == 0) {
            /* zlib returns what it has at a premature end of the stream and
             * only says so in gzerror (Z_BUF_ERROR): a gzip file cut inside
             * its data or its CRC trailer would otherwise pass unchecked */
            int code;
            const char *msg = gzerror(f, &code);
            if (code == Z_BUF_ERROR) {
                wb_set_error("%s: truncated gzip stream after %zu bytes: %s", path, *got, msg);
                return -1;
            }
            break;
        }
        *got += (size_t)r;
    }
    return 0;
}

/* Reads n bytes the header promises into a new buffer (*out, malloc'd)
 * that grows as the data arrives — doubling from 1 MiB, never past n — so
 * a header that claims more than the file holds costs what the file holds,
 * not what it claims. *got: bytes read (< n: the file is short; the
 * caller names what is missing). Non-zero (error set) on a damaged stream
 * or out of memory. */
static int gz_read_grow(gzFile f, const char *path, size_t n, uint8_t **out, size_t *got) {
    size_t cap = n < ((size_t)1 << 20) ? n : (size_t)1 << 20;
    uint8_t *buf = malloc(cap ? cap : 1);
    *out = NULL;
    *got = 0;
    if (!buf) {
        wb_set_error("%s: out of memory", path);
        return -1;
    }
    for (;;) {
        size_t part;
        if (gz_read_full(f, path, buf + *got, cap - *got, &part)) {
            free(buf);
            return -1;
        }
        *got += part;
        if (*got < cap || cap == n) break; /* end of file, or all of it */
        size_t more = cap > n / 2 ? n : 2 * cap;
        uint8_t *grown = realloc(buf, more);
        if (!grown) {
            wb_set_error("%s: out of memory reading %zu bytes", path, more);
            free(buf);
            return -1;
        }
        buf = grown;
        cap = more;
    }
    *out = buf;
    return 0;
}

/* Anything after the declared payload means the header and the file
 * disagree, which is as suspicious as a short file. */
static int gz_expect_eof(gzFile f, const char *path, const char *what) {
    uint8_t extra;
    int r = gzread(f, &extra, 1);
    if (r > 0) {
        wb_set_error("%s: trailing bytes after the %s the header declares", path, what);
        return -1;
    }
    int code;
    const char *msg = gzerror(f, &code);
    if (r < 0 || code == Z_BUF_ERROR) { /* Z_BUF_ERROR: cut inside the CRC trailer */
        wb_set_error("%s: %s gzip data at the end: %s", path, r < 0 ? "corrupt" : "truncated", msg);
        return -1;
    }
    return 0;
}

static int load_idx(const char *dir, const char *split, raw_images *out) {
    const char *prefix = strcmp(split, "test") == 0 ? "t10k" : "train";
    char ipath[4096], lpath[4096], name[64];
    uint8_t hdr[16];
    size_t got;
    int rc = -1;
    gzFile fi = NULL, fl = NULL;

    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", prefix);
    if (!(fi = idx_open(dir, name, ipath, sizeof ipath))) goto done;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", prefix);
    if (!(fl = idx_open(dir, name, lpath, sizeof lpath))) goto done;

    if (gz_read_full(fi, ipath, hdr, 16, &got)) goto done;
    if (got < 16) {
        wb_set_error("%s: truncated: %zu bytes, shorter than the 16-byte IDX3 header", ipath, got);
        goto done;
    }
    uint32_t magic = be32(hdr), n = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
    if (magic != 0x00000803u) {
        wb_set_error("%s: bad magic 0x%08x (expected 0x00000803, IDX3 ubyte images)", ipath, (unsigned)magic);
        goto done;
    }
    /* Bounds keep n·rows·cols far from overflow (< 2^32) and reject garbage
     * headers; memory then follows the pixels actually read (gz_read_grow). */
    uint64_t npix64 = (uint64_t)n * rows * cols;
    if (n == 0 || n > (1u << 26) || rows == 0 || cols == 0 || rows > 4096 || cols > 4096 ||
        npix64 > ((uint64_t)1 << 32)) {
        wb_set_error("%s: implausible header: %u images of %ux%u (at most 2^26 images, 4096x4096, 4 GiB of pixels)",
                     ipath, (unsigned)n, (unsigned)rows, (unsigned)cols);
        goto done;
    }
    size_t npix = (size_t)npix64;
    if (gz_read_grow(fi, ipath, npix, &out->pix, &got)) goto done;
    if (got < npix) {
        wb_set_error("%s: truncated: header says %u images of %ux%u, file has %zu bytes of pixels (expected %zu)",
                     ipath, (unsigned)n, (unsigned)rows, (unsigned)cols, got, npix);
        goto done;
    }
    if (gz_expect_eof(fi, ipath, "images")) goto done;

    if (gz_read_full(fl, lpath, hdr, 8, &got)) goto done;
    if (got < 8) {
        wb_set_error("%s: truncated: %zu bytes, shorter than the 8-byte IDX1 header", lpath, got);
        goto done;
    }
    uint32_t lmagic = be32(hdr), ln = be32(hdr + 4);
    if (lmagic != 0x00000801u) {
        wb_set_error("%s: bad magic 0x%08x (expected 0x00000801, IDX1 ubyte labels)", lpath, (unsigned)lmagic);
        goto done;
    }
    if (ln != n) {
        wb_set_error("%s: header says %u labels but %s has %u images", lpath, (unsigned)ln, ipath, (unsigned)n);
        goto done;
    }
    /* n labels fit: the file held n·rows·cols >= n pixel bytes */
    out->labels = malloc((size_t)n * sizeof *out->labels);
    uint8_t *lb = malloc(n);
    if (!lb || !out->labels) {
        free(lb);
        wb_set_error("%s: out of memory", lpath);
        goto done;
    }
    if (gz_read_full(fl, lpath, lb, n, &got)) {
        free(lb);
        goto done;
    }
    if (got < n) {
        wb_set_error("%s: truncated: header says %u labels, file has %zu", lpath, (unsigned)n, got);
        free(lb);
        goto done;
    }
    if (gz_expect_eof(fl, lpath, "labels")) {
        free(lb);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (lb[i] > 9) {
            wb_set_error("%s: label %u of item %u outside 0..9", lpath, lb[i], (unsigned)i);
            free(lb);
            goto done;
        }
        out->labels[i] = lb[i];
    }
    free(lb);
    out->count = n;
    out->c = 1;
    out->h = (int)rows;
    out->w = (int)cols;
    out->n_classes = 10;
    rc = 0;
done:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    if (rc) raw_free(out);
    return rc;
}

/* ---- CIFAR binary ------------------------------------------------------------- */

/* Append every record of one CIFAR file. label_byte picks which of the
 * leading label bytes is the label (CIFAR-100: 0 coarse, 1 fine). */
static int load_cifar_file(const char *path, int label_bytes, int label_byte, int n_classes, raw_images *out) {
    const size_t rec = (size_t)label_bytes + 3072;
    FILE *f = fopen(path, "rb");
    if (!f) {
        wb_set_error("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        wb_set_error("%s: cannot determine the file size", path);
        fclose(f);
        return -1;
    }
    if (size == 0 || (size_t)size % rec != 0) {
        wb_set_error("%s: size %ld bytes is not a positive multiple of the %zu-byte record", path, size, rec);
        fclose(f);
        return -1;
    }
    int64_t n = (int64_t)((size_t)size / rec);
    uint8_t *pix = realloc(out->pix, (size_t)(out->count + n) * 3072);
    if (pix) out->pix = pix;
    int32_t *lab = realloc(out->labels, (size_t)(out->count + n) * sizeof *lab);
    if (lab) out->labels = lab;
    uint8_t *buf = malloc(rec);
    if (!pix || !lab || !buf) {
        wb_set_error("%s: out of memory", path);
        free(buf);
        fclose(f);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (fread(buf, 1, rec, f) != rec) {
            wb_set_error("%s: read error at record %lld", path, (long long)i);
            free(buf);
            fclose(f);
            return -1;
        }
        if (buf[label_byte] >= n_classes) {
            wb_set_error("%s: label %u of record %lld outside 0..%d", path, buf[label_byte], (long long)i, n_classes - 1);
            free(buf);
            fclose(f);
            return -1;
        }
        out->labels[out->count + i] = buf[label_byte];
        /* The record is already R, G, B planes of 32x32: CHW as stored. */
        memcpy(out->pix + (size_t)(out->count + i) * 3072, buf + label_bytes, 3072);
    }
    free(buf);
    fclose(f);
    out->count += n;
    return 0;
}

static int load_cifar(const char *dir, const char *split, int is100, int coarse, raw_images *out) {
    char path[4096];
    int test = strcmp(split, "test") == 0;
    int label_bytes = is100 ? 2 : 1, label_byte = is100 && !coarse ? 1 : 0;
    int n_classes = is100 ? (coarse ? 20 : 100) : 10;
    if (is100) {
        join_path(path, sizeof path, dir, test ? "test.bin" : "train.bin");
        if (load_cifar_file(path, label_bytes, label_byte, n_classes, out)) goto fail;
    } else if (test) {
        join_path(path, sizeof path, dir, "test_batch.bin");
        if (load_cifar_file(path, label_bytes, label_byte, n_classes, out)) goto fail;
    } else {
        for (int b = 1; b <= 5; b++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d.bin", b);
            join_path(path, sizeof path, dir, name);
            if (load_cifar_file(path, label_bytes, label_byte, n_classes, out)) goto fail;
        }
    }
    out->c = 3;
    out->h = out->w = 32;
    out->n_classes = n_classes;
    return 0;
fail:
    raw_free(out);
    return -1;
}

/* ---- resampling ----------------------------------------------------------------- */

/* One plane, sh x sw -> dh x dw. Pixel centres are aligned (the
 * align_corners = False convention), so resizing never shifts the image. */
static void resize_plane(const float *src, int sh, int sw, float *dst, int dh, int dw, wb_resize_mode mode) {
    if (mode == WB_RESIZE_NEAREST) {
        for (int y = 0; y < dh; y++) {
            int sy = (int)(((int64_t)y * 2 + 1) * sh / (2 * (int64_t)dh));
            for (int x = 0; x < dw; x++) {
                int sx = (int)(((int64_t)x * 2 + 1) * sw / (2 * (int64_t)dw));
                dst[(size_t)y * dw + x] = src[(size_t)sy * sw + sx];
            }
        }
        return;
    }
    for (int y = 0; y < dh; y++) {
        double fy = ((double)y + 0.5) * sh / dh - 0.5;
        if (fy < 0) fy = 0;
        int y0 = (int)fy;
        if (y0 > sh - 1) y0 = sh - 1;
        int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
        double ty = fy - y0;
        if (ty > 1) ty = 1;
        for (int x = 0; x < dw; x++) {
            double fx = ((double)x + 0.5) * sw / dw - 0.5;
            if (fx < 0) fx = 0;
            int x0 = (int)fx;
            if (x0 > sw - 1) x0 = sw - 1;
            int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
            double tx = fx - x0;
            if (tx > 1) tx = 1;
            double top = src[(size_t)y0 * sw + x0] * (1 - tx) + src[(size_t)y0 * sw + x1] * tx;
            double bot = src[(size_t)y1 * sw + x0] * (1 - tx) + src[(size_t)y1 * sw + x1] * tx;
            dst[(size_t)y * dw + x] = (float)(top * (1 - ty) + bot * ty);
        }
    }
}

/* ---- PNG folder ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct png_item {
    uint8_t *data; /* CHW at c channels */
    int c, h, w;
} png_item;

static int load_png_folder(const char *dir, int resize_to, wb_resize_mode mode, raw_images *out) {
    DIR *d = opendir(dir);
    if (!d) {
        wb_set_error("%s: cannot open directory: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    png_item *items = NULL;
    int rc = -1, any_color = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcasecmp(e->d_name + len - 4, ".png") != 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) goto oom;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) goto oom;
        n++;
    }
    closedir(d);
    d = NULL;
    if (n == 0) {
        wb_set_error("%s: no .png files in the directory", dir);
        goto done;
    }
    /* Sorted so that index i means the same file on every machine. */
    qsort(names, n, sizeof *names, cmp_str);
    items = calloc(n, sizeof *items);
    if (!items) goto oom;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        join_path(path, sizeof path, dir, names[i]);
        png_image img;
        memset(&img, 0, sizeof img);
        img.version = PNG_IMAGE_VERSION;
        if (!png_image_begin_read_from_file(&img, path)) {
            wb_set_error("%s: cannot read PNG: %s", path, img.message);
            png_image_free(&img);
            goto done;
        }
        int color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
        /* libpng reduces 16-bit, palette and alpha (over black) to 8-bit
         * gray or RGB for us. */
        img.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
        int c = color ? 3 : 1, h = (int)img.height, w = (int)img.width;
        if (h <= 0 || w <= 0 || h > 16384 || w > 16384) {
            wb_set_error("%s: implausible size %dx%d (at most 16384x16384)", path, w, h);
            png_image_free(&img);
            goto done;
        }
        /* The decoded image must fit what the file can hold: every row is
         * a filter byte and at least w bits, and deflate expands at most
         * 1032:1. A small file claiming a huge image is refused before
         * 2·h·w·c bytes are allocated for it. */
        struct stat st;
        memset(&st, 0, sizeof st);
        uint64_t min_raw = (uint64_t)h * (1 + ((uint64_t)w + 7) / 8);
        if (stat(path, &st) != 0 || min_raw > 1100 * (uint64_t)st.st_size + 4096) {
            wb_set_error("%s: header claims %dx%d pixels, more than its %lld bytes can hold", path, w, h,
                         (long long)st.st_size);
            png_image_free(&img);
            goto done;
        }
        uint8_t *hwc = malloc((size_t)h * w * c);
        uint8_t *chw = malloc((size_t)h * w * c);
        png_color black = {0, 0, 0};
        if (!hwc || !chw || !png_image_finish_read(&img, &black, hwc, 0, NULL)) {
            if (hwc && chw) wb_set_error("%s: cannot decode PNG: %s", path, img.message);
            else wb_set_error("%s: out of memory", path);
            free(hwc);
            free(chw);
            png_image_free(&img);
            goto done;
        }
        for (int ch = 0; ch < c; ch++)
            for (size_t p = 0; p < (size_t)h * w; p++) chw[(size_t)ch * h * w + p] = hwc[p * c + ch];
        free(hwc);
        items[i] = (png_item){.data = chw, .c = c, .h = h, .w = w};
        any_color |= color;
        if (resize_to <= 0 && (h != items[0].h || w != items[0].w)) {
            wb_set_error("%s: size %dx%d differs from %s (%dx%d); set resize_to to load mixed sizes", path, w, h,
                         names[0], items[0].w, items[0].h);
            goto done;
        }
    }
    /* Mixed sizes are resized once here (rounded back to uint8) so every
     * stored image has one geometry; a folder of one size stays native and
     * is resized in float when drawn, like the other kinds. */
    int sc = any_color ? 3 : 1, same = 1;
    for (size_t i = 1; i < n; i++) same &= items[i].h == items[0].h && items[i].w == items[0].w;
    int sh = same ? items[0].h : resize_to, sw = same ? items[0].w : resize_to;
    size_t per = (size_t)sc * sh * sw;
    out->pix = malloc(n * per);
    out->labels = calloc(n, sizeof *out->labels);
    if (!out->pix || !out->labels) goto oom;
    for (size_t i = 0; i < n; i++) {
        png_item *it = &items[i];
        size_t hw = (size_t)it->h * it->w;
        float *plane = malloc(hw * sizeof *plane), *res = malloc((size_t)sh * sw * sizeof *res);
        if (!plane || !res) {
            free(plane);
            free(res);
            goto oom;
        }
        for (int ch = 0; ch < sc; ch++) {
            const uint8_t *src = it->data + (size_t)(it->c == 1 ? 0 : ch) * hw;
            uint8_t *dst = out->pix + i * per + (size_t)ch * sh * sw;
            if (it->h == sh && it->w == sw) {
                memcpy(dst, src, hw);
                continue;
            }
            for (size_t p = 0; p < hw; p++) plane[p] = src[p];
            resize_plane(plane, it->h, it->w, res, sh, sw, mode);
            for (size_t p = 0; p < (size_t)sh * sw; p++) {
                float v = roundf(res[p]);
                dst[p] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
        free(plane);
        free(res);
    }
    out->count = (int64_t)n;
    out->c = sc;
    out->h = sh;
    out->w = sw;
    out->n_classes = 1;
    rc = 0;
    goto done;
oom:
    wb_set_error("%s: out of memory", dir);
done:
    if (d) closedir(d);
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        if (items) free(items[i].data);
    }
    free(names);
    free(items);
    if (rc) raw_free(out);
    return rc;
}

/* ---- conversion and sampling ------------------------------------------------------ */

static void images_destroy(wb_dataset *ds) {
    img_set *d = (img_set *)ds;
    free(d->pix);
    free(d->labels);
    free(d);
}

static size_t scratch_floats(const img_set *d) {
    return (size_t)d->oc * d->sh * d->sw + (size_t)d->oc * d->rh * d->rw;
}

/* Image idx -> out (oc, oh, ow) floats in [-1, 1]. */
static void convert(const img_set *d, int64_t idx, float *out, float *scratch, int flip) {
    size_t shw = (size_t)d->sh * d->sw, rhw = (size_t)d->rh * d->rw;
    const uint8_t *src = d->pix + (size_t)idx * d->sc * shw;
    float *a = scratch, *b = scratch + (size_t)d->oc * shw;
    for (int c = 0; c < d->oc; c++) {
        float *dst = a + c * shw;
        if (d->sc == d->oc || d->sc == 1) {
            const uint8_t *s = src + (d->sc == 1 ? 0 : (size_t)c * shw);
            for (size_t p = 0; p < shw; p++) dst[p] = (float)s[p] / 127.5f - 1.0f;
        } else { /* RGB -> gray: BT.601 luma */
            for (size_t p = 0; p < shw; p++) {
                float y = 0.299f * src[p] + 0.587f * src[shw + p] + 0.114f * src[2 * shw + p];
                dst[p] = y / 127.5f - 1.0f;
            }
        }
    }
    const float *img = a;
    if (d->rh != d->sh || d->rw != d->sw) {
        for (int c = 0; c < d->oc; c++) resize_plane(a + c * shw, d->sh, d->sw, b + c * rhw, d->rh, d->rw, d->resize);
        img = b;
    }
    int oy = (d->oh - d->rh) / 2, ox = (d->ow - d->rw) / 2;
    size_t ohw = (size_t)d->oh * d->ow;
    if (oy || ox || d->oh != d->rh || d->ow != d->rw)
        for (size_t p = 0; p < (size_t)d->oc * ohw; p++) out[p] = -1.0f; /* pixel 0 */
    for (int c = 0; c < d->oc; c++)
        for (int y = 0; y < d->rh; y++) {
            const float *s = img + c * rhw + (size_t)y * d->rw;
            float *o = out + c * ohw + (size_t)(y + oy) * d->ow + ox;
            if (flip)
                for (int x = 0; x < d->rw; x++) o[x] = s[d->rw - 1 - x];
            else
                memcpy(o, s, (size_t)d->rw * sizeof *o);
        }
}

int wb_images_is(const wb_dataset *ds) { return ds && ds->destroy == images_destroy; }

int wb_images_sample_labeled(wb_dataset *ds, wb_rng *rng, int64_t n, float *out, int *labels) {
    if (!wb_images_is(ds)) {
        wb_set_error("images: not an image dataset");
        return -1;
    }
    img_set *d = (img_set *)ds;
    if (n < 0) {
        wb_set_error("%s: negative sample count %lld", ds->name, (long long)n);
        return -1;
    }
    float *scratch = malloc(scratch_floats(d) * sizeof *scratch);
    if (!scratch) {
        wb_set_error("%s: out of memory", ds->name);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        /* Multiply-shift maps 32 random bits onto [0, count) without the
         * modulo's bias towards low indices; count < 2^27 by construction. */
        int64_t idx = (int64_t)(((uint64_t)wb_rng_u32(rng) * (uint64_t)d->count) >> 32);
        int flip = d->flip ? (int)(wb_rng_u32(rng) >> 31) : 0;
        convert(d, idx, out + i * ds->dim, scratch, flip);
        if (labels) labels[i] = d->labels[idx];
    }
    free(scratch);
    return 0;
}

static int images_sample(wb_dataset *ds, wb_rng *rng, int64_t n, float *out) {
    return wb_images_sample_labeled(ds, rng, n, out, NULL);
}

int64_t wb_images_count(const wb_dataset *ds) { return wb_images_is(ds) ? ((const img_set *)ds)->count : -1; }

int wb_images_n_classes(const wb_dataset *ds) { return wb_images_is(ds) ? ((const img_set *)ds)->n_classes : -1; }

int wb_images_label(const wb_dataset *ds, int64_t index) {
    if (!wb_images_is(ds)) {
        wb_set_error("images: not an image dataset");
        return -1;
    }
    const img_set *d = (const img_set *)ds;
    if (index < 0 || index >= d->count) {
        wb_set_error("%s: index %lld outside 0..%lld", ds->name, (long long)index, (long long)d->count - 1);
        return -1;
    }
    return d->labels[index];
}

int wb_images_get(const wb_dataset *ds, int64_t index, float *out, int *label) {
    int lab = wb_images_label(ds, index);
    if (lab < 0) return -1;
    const img_set *d = (const img_set *)ds;
    float *scratch = malloc(scratch_floats(d) * sizeof *scratch);
    if (!scratch) {
        wb_set_error("%s: out of memory", ds->name);
        return -1;
    }
    convert(d, index, out, scratch, 0);
    free(scratch);
    if (label) *label = lab;
    return 0;
}

/* ---- open ---------------------------------------------------------------------------- */

void wb_image_options_default(wb_image_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->split = "train";
    opt->resize = WB_RESIZE_BILINEAR;
}

static int in_list(const int *list, int n, int v) {
    for (int i = 0; i < n; i++)
        if (list[i] == v) return 1;
    return 0;
}

/* "-c0.1.2" for a short label list, "-c90h1a2b3c4d" (count and FNV-1a hash)
 * for a long one, so the dataset name stays short and unique. */
static void append_filter(char *name, size_t cap, const char *tag, const int *labels, int n) {
    if (n <= 0 || !labels) return;
    char list[256] = "";
    size_t used = 0;
    uint32_t hash = 2166136261u;
    for (int i = 0; i < n; i++) {
        if (used < sizeof list) used += (size_t)snprintf(list + used, sizeof list - used, i ? ".%d" : "%d", labels[i]);
        hash = (hash ^ (uint32_t)labels[i]) * 16777619u;
    }
    size_t len = strlen(name);
    if (used <= 16) snprintf(name + len, cap - len, "%s%s", tag, list);
    else snprintf(name + len, cap - len, "%s%dh%08x", tag, n, hash);
}

wb_dataset *wb_images_open(const char *kind, const char *path, const wb_image_options *opt_in) {
    wb_image_options opt;
    if (opt_in) opt = *opt_in;
    else wb_image_options_default(&opt);
    const char *split = opt.split ? opt.split : "train";
    if (!kind || !path) {
        wb_set_error("images: kind and path are required");
        return NULL;
    }
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0) {
        wb_set_error("%s: unknown split '%s' (train or test)", path, split);
        return NULL;
    }
    if (opt.channels != 0 && opt.channels != 1 && opt.channels != 3) {
        wb_set_error("%s: channels must be 0 (as stored), 1 or 3, not %d", path, opt.channels);
        return NULL;
    }
    if (opt.resize_to < 0 || opt.resize_to > 4096 || opt.pad_to < 0 || opt.pad_to > 4096 || opt.max_images < 0 ||
        opt.n_include < 0 || opt.n_exclude < 0 || (opt.resize != WB_RESIZE_NEAREST && opt.resize != WB_RESIZE_BILINEAR)) {
        wb_set_error("%s: invalid options (resize_to %d, pad_to %d, max_images %lld, resize mode %d)", path,
                     opt.resize_to, opt.pad_to, (long long)opt.max_images, (int)opt.resize);
        return NULL;
    }

    raw_images raw;
    memset(&raw, 0, sizeof raw);
    int rc;
    if (strcmp(kind, "fashion-mnist") == 0 || strcmp(kind, "mnist") == 0) rc = load_idx(path, split, &raw);
    else if (strcmp(kind, "cifar10") == 0) rc = load_cifar(path, split, 0, 0, &raw);
    else if (strcmp(kind, "cifar100") == 0) rc = load_cifar(path, split, 1, opt.cifar100_coarse, &raw);
    else if (strcmp(kind, "png-folder") == 0) rc = load_png_folder(path, opt.resize_to, opt.resize, &raw);
    else {
        wb_set_error("%s: unknown image dataset kind '%s' (fashion-mnist, mnist, cifar10, cifar100, png-folder)", path,
                     kind);
        return NULL;
    }
    if (rc) return NULL;

    for (int i = 0; i < opt.n_include; i++)
        if (opt.include[i] < 0 || opt.include[i] >= raw.n_classes) {
            wb_set_error("%s: include label %d outside 0..%d", path, opt.include[i], raw.n_classes - 1);
            raw_free(&raw);
            return NULL;
        }
    for (int i = 0; i < opt.n_exclude; i++)
        if (opt.exclude[i] < 0 || opt.exclude[i] >= raw.n_classes) {
            wb_set_error("%s: exclude label %d outside 0..%d", path, opt.exclude[i], raw.n_classes - 1);
            raw_free(&raw);
            return NULL;
        }

    /* Compact the kept images in place: order is preserved, so max_images
     * takes the first ones of the file. */
    size_t per = (size_t)raw.c * raw.h * raw.w;
    int64_t kept = 0;
    for (int64_t i = 0; i < raw.count; i++) {
        if (opt.max_images && kept >= opt.max_images) break;
        int lab = raw.labels[i];
        if (opt.n_include && !in_list(opt.include, opt.n_include, lab)) continue;
        if (in_list(opt.exclude, opt.n_exclude, lab)) continue;
        if (kept != i) {
            memmove(raw.pix + (size_t)kept * per, raw.pix + (size_t)i * per, per);
            raw.labels[kept] = lab;
        }
        kept++;
    }
    if (kept == 0) {
        wb_set_error("%s: no images left after the include/exclude filter", path);
        raw_free(&raw);
        return NULL;
    }

    img_set *d = calloc(1, sizeof *d);
    if (!d) {
        wb_set_error("%s: out of memory", path);
        raw_free(&raw);
        return NULL;
    }
    d->pix = raw.pix;
    d->labels = raw.labels;
    d->count = kept;
    d->n_classes = raw.n_classes;
    d->sc = raw.c;
    d->sh = raw.h;
    d->sw = raw.w;
    d->oc = opt.channels ? opt.channels : raw.c;
    d->rh = opt.resize_to ? opt.resize_to : raw.h;
    d->rw = opt.resize_to ? opt.resize_to : raw.w;
    d->oh = opt.pad_to ? opt.pad_to : d->rh;
    d->ow = opt.pad_to ? opt.pad_to : d->rw;
    d->resize = opt.resize;
    d->flip = opt.flip != 0;
    if (d->oh < d->rh || d->ow < d->rw) {
        wb_set_error("%s: pad_to %d is smaller than the %dx%d image", path, opt.pad_to, d->rw, d->rh);
        images_destroy(&d->base);
        return NULL;
    }
    /* Release the tail the filter freed; failure just keeps the larger block. */
    if (kept < raw.count) {
        uint8_t *p = realloc(d->pix, (size_t)kept * per);
        if (p) d->pix = p;
        int32_t *l = realloc(d->labels, (size_t)kept * sizeof *l);
        if (l) d->labels = l;
    }
    if (strcmp(kind, "png-folder") == 0) snprintf(d->base.name, sizeof d->base.name, "png-folder");
    else snprintf(d->base.name, sizeof d->base.name, "%s-%s", kind, split);
    /* The name identifies the image set: caches (feature classifier,
     * reference statistics) and result tables key on it, so a class subset
     * must not share a name with the full set. */
    append_filter(d->base.name, sizeof d->base.name, "-c", opt.include, opt.n_include);
    append_filter(d->base.name, sizeof d->base.name, "-x", opt.exclude, opt.n_exclude);
    if (opt.max_images > 0) {
        size_t used = strlen(d->base.name);
        snprintf(d->base.name + used, sizeof d->base.name - used, "-max%lld", (long long)opt.max_images);
    }
    d->base.shape = (wb_net_shape){.channels = d->oc, .height = d->oh, .width = d->ow, .out_channels = d->oc,
                                   .label_dim = 0};
    d->base.dim = (int64_t)d->oc * d->oh * d->ow;
    d->base.sample = images_sample;
    d->base.destroy = images_destroy;
    d->base.gmm = NULL;
    return &d->base;
}
