/* tests/test_images.c — the image datasets (host/engine/images.c): small files in
 * the exact on-disk formats (gzip IDX, CIFAR-10 / CIFAR-100 binary, PNG
 * folders) written into a mkdtemp directory, then counts, scaling to
 * [-1, 1], label filters, CIFAR-100 fine vs coarse, padding, resizing,
 * channel conversion, flips, sampling, and every load error naming its file.
 * When the Debian Fashion-MNIST package is installed the real train split is
 * opened too (otherwise that part prints "SKIP: ...").
 *
 * The gzip files are written by hand with stored (uncompressed) deflate
 * blocks: the format is tiny, and it keeps this test free of a direct zlib
 * link while still going through zlib's gzread in the library.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/images.h"
#include "wb/tensor.h"

#define N_TRAIN 20
#define N_TEST 5
#define REAL_FMNIST "/usr/share/datasets/fashion-mnist"

/* ---- fixture: one temporary directory per test ---------------------------------- */

typedef struct {
    char dir[64];
} fixture;

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/wb_test_images_XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fx->dir);
    free(fx);
    return 0;
}

static void path_in(char *out, size_t cap, const char *dir, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static void make_subdir(char *out, size_t cap, const char *dir, const char *name) {
    path_in(out, cap, dir, name);
    assert_int_equal(mkdir(out, 0755), 0);
}

/* ---- writers ---------------------------------------------------------------------- */

static uint32_t crc32_buf(const uint8_t *p, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_le32(FILE *f, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    assert_int_equal(fwrite(b, 1, 4, f), 4);
}

/* RFC 1952 member holding RFC 1951 stored blocks (at most 65535 bytes each). */
static void write_gz(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    assert_int_equal(fwrite(hdr, 1, 10, f), 10);
    size_t off = 0;
    do {
        size_t len = n - off > 65535 ? 65535 : n - off;
        uint16_t l = (uint16_t)len, nl = (uint16_t)~l;
        uint8_t b[5] = {(uint8_t)(off + len == n), (uint8_t)l, (uint8_t)(l >> 8), (uint8_t)nl, (uint8_t)(nl >> 8)};
        assert_int_equal(fwrite(b, 1, 5, f), 5);
        if (len) assert_int_equal(fwrite(data + off, 1, len, f), len);
        off += len;
    } while (off < n);
    put_le32(f, crc32_buf(data, n));
    put_le32(f, (uint32_t)n);
    assert_int_equal(fclose(f), 0);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Pixel (image i, flat position p) of the synthetic IDX sets: position 0 is
 * black and 1 white in every image, the rest varies and is not mirror
 * symmetric, so flips are visible. */
static uint8_t idx_pixel(int i, int p) {
    if (p == 0) return 0;
    if (p == 1) return 255;
    return (uint8_t)((i * 31 + p * 3 + (p / 28) * 5) % 256);
}

/* IDX pair PREFIX-{images-idx3,labels-idx1}-ubyte.gz. header_images is
 * what the image header claims, n_images how many are written; the label
 * file says n_labels. Labels are i % 10. */
static void write_idx(const char *dir, const char *prefix, uint32_t img_magic, int header_images, int n_images,
                      int n_labels) {
    char path[512], name[64];
    size_t npix = (size_t)n_images * 784;
    uint8_t *buf = malloc(16 + npix);
    assert_non_null(buf);
    put_be32(buf, img_magic);
    put_be32(buf + 4, (uint32_t)header_images);
    put_be32(buf + 8, 28);
    put_be32(buf + 12, 28);
    for (int i = 0; i < n_images; i++)
        for (int p = 0; p < 784; p++) buf[16 + (size_t)i * 784 + p] = idx_pixel(i, p);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", prefix);
    path_in(path, sizeof path, dir, name);
    write_gz(path, buf, 16 + npix);
    free(buf);

    uint8_t *lb = malloc(8 + (size_t)n_labels);
    assert_non_null(lb);
    put_be32(lb, 0x801);
    put_be32(lb + 4, (uint32_t)n_labels);
    for (int i = 0; i < n_labels; i++) lb[8 + i] = (uint8_t)(i % 10);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", prefix);
    path_in(path, sizeof path, dir, name);
    write_gz(path, lb, 8 + (size_t)n_labels);
    free(lb);
}

static void write_good_idx(const char *dir) {
    write_idx(dir, "train", 0x803, N_TRAIN, N_TRAIN, N_TRAIN);
    write_idx(dir, "t10k", 0x803, N_TEST, N_TEST, N_TEST);
}

/* CIFAR record r (global index): R plane = r, G plane = 100 + r, B plane =
 * 200 + r, except pixel 0 of R is 0 and pixel 1 of R is 255. */
static void write_cifar_records(FILE *f, int first, int n, int is100) {
    uint8_t rec[3074];
    for (int r = first; r < first + n; r++) {
        int lb = is100 ? 2 : 1;
        if (is100) {
            rec[0] = (uint8_t)(r % 20);       /* coarse */
            rec[1] = (uint8_t)(r * 7 % 100);  /* fine   */
        } else {
            rec[0] = (uint8_t)(r % 10);
        }
        for (int c = 0; c < 3; c++) memset(rec + lb + c * 1024, 100 * c + r, 1024);
        rec[lb] = 0;
        rec[lb + 1] = 255;
        assert_int_equal(fwrite(rec, 1, (size_t)lb + 3072, f), (size_t)lb + 3072);
    }
}

static void write_cifar_file(const char *dir, const char *name, int first, int n, int is100, int extra_bytes) {
    char path[512];
    path_in(path, sizeof path, dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    write_cifar_records(f, first, n, is100);
    for (int i = 0; i < extra_bytes; i++) fputc(7, f);
    assert_int_equal(fclose(f), 0);
}

static void write_cifar10(const char *dir) {
    for (int b = 1; b <= 5; b++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        write_cifar_file(dir, name, (b - 1) * 2, 2, 0, 0);
    }
    write_cifar_file(dir, "test_batch.bin", 50, 3, 0, 0);
}

static void write_png(const char *path, int w, int h, int channels, const uint8_t *hwc) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    assert_true(png_image_write_to_file(&img, path, 0, hwc, 0, NULL));
}

static float scaled(int v) { return (float)v / 127.5f - 1.0f; }

static void assert_error_mentions(const char *a, const char *b) {
    const char *msg = wb_last_error();
    if (!msg || !strstr(msg, a) || (b && !strstr(msg, b)))
        fail_msg("error '%s' should mention '%s'%s%s", msg ? msg : "(null)", a, b ? " and " : "", b ? b : "");
}

/* ---- IDX ----------------------------------------------------------------------------- */

static void test_idx_basic(void **state) {
    fixture *fx = *state;
    write_good_idx(fx->dir);
    wb_dataset *ds = wb_images_open("fashion-mnist", fx->dir, NULL);
    assert_non_null(ds);
    assert_true(wb_images_is(ds));
    assert_string_equal(ds->name, "fashion-mnist-train");
    assert_int_equal(wb_images_count(ds), N_TRAIN);
    assert_int_equal(wb_images_n_classes(ds), 10);
    assert_int_equal(ds->shape.channels, 1);
    assert_int_equal(ds->shape.height, 28);
    assert_int_equal(ds->shape.width, 28);
    assert_int_equal(ds->dim, 784);
    assert_null(ds->gmm);
    float img[784];
    int label = -1;
    for (int i = 0; i < N_TRAIN; i++) {
        assert_int_equal(wb_images_get(ds, i, img, &label), 0);
        assert_int_equal(label, i % 10);
        assert_int_equal(wb_images_label(ds, i), i % 10);
        assert_true(img[0] == -1.0f); /* exact: 0 -> -1, 255 -> 1 */
        assert_true(img[1] == 1.0f);
        for (int p = 0; p < 784; p++) assert_float_equal(img[p], scaled(idx_pixel(i, p)), 1e-6);
    }
    assert_int_equal(wb_images_get(ds, N_TRAIN, img, NULL), -1);
    assert_int_equal(wb_images_label(ds, -1), -1);
    wb_dataset_free(ds);

    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.split = "test";
    ds = wb_images_open("mnist", fx->dir, &opt);
    assert_non_null(ds);
    assert_string_equal(ds->name, "mnist-test");
    assert_int_equal(wb_images_count(ds), N_TEST);
    wb_dataset_free(ds);

    /* not an image dataset: the accessors refuse it */
    wb_dataset *g = wb_gmm2d_new("ring8", 2.0, 0.05);
    assert_non_null(g);
    assert_false(wb_images_is(g));
    assert_int_equal(wb_images_count(g), -1);
    assert_int_equal(wb_images_n_classes(g), -1);
    wb_dataset_free(g);
}

static int64_t count_with(const char *dir, const int *inc, int ninc, const int *exc, int nexc, int64_t max) {
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.include = inc;
    opt.n_include = ninc;
    opt.exclude = exc;
    opt.n_exclude = nexc;
    opt.max_images = max;
    wb_dataset *ds = wb_images_open("fashion-mnist", dir, &opt);
    if (!ds) return -1;
    int64_t n = wb_images_count(ds);
    for (int64_t i = 0; i < n; i++) {
        int lab = wb_images_label(ds, i);
        if (ninc) {
            int ok = 0;
            for (int k = 0; k < ninc; k++) ok |= lab == inc[k];
            assert_true(ok);
        }
        for (int k = 0; k < nexc; k++) assert_int_not_equal(lab, exc[k]);
    }
    wb_dataset_free(ds);
    return n;
}

static void test_filters(void **state) {
    fixture *fx = *state;
    write_good_idx(fx->dir);
    const int inc[] = {1, 3}, exc0[] = {0}, exc3[] = {3}, bad[] = {12};
    const int all[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(count_with(fx->dir, inc, 2, NULL, 0, 0), 4);
    assert_int_equal(count_with(fx->dir, NULL, 0, exc0, 1, 0), 18);
    assert_int_equal(count_with(fx->dir, inc, 2, exc3, 1, 0), 2);
    assert_int_equal(count_with(fx->dir, NULL, 0, NULL, 0, 5), 5);
    assert_int_equal(count_with(fx->dir, inc, 2, NULL, 0, 3), 3);

    /* the kept images are the right ones, in file order: 1, 3, 11, 13 */
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.include = inc;
    opt.n_include = 2;
    wb_dataset *ds = wb_images_open("fashion-mnist", fx->dir, &opt);
    assert_non_null(ds);
    float img[784];
    const int want[] = {1, 3, 11, 13};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(wb_images_get(ds, k, img, NULL), 0);
        assert_float_equal(img[100], scaled(idx_pixel(want[k], 100)), 1e-6);
    }
    wb_dataset_free(ds);

    assert_int_equal(count_with(fx->dir, bad, 1, NULL, 0, 0), -1);
    assert_error_mentions("include label 12", NULL);
    assert_int_equal(count_with(fx->dir, NULL, 0, all, 10, 0), -1);
    assert_error_mentions("no images left", NULL);
}

static void test_pad_and_resize(void **state) {
    fixture *fx = *state;
    write_good_idx(fx->dir);
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.pad_to = 32;
    wb_dataset *ds = wb_images_open("fashion-mnist", fx->dir, &opt);
    assert_non_null(ds);
    assert_int_equal(ds->shape.height, 32);
    assert_int_equal(ds->shape.width, 32);
    assert_int_equal(ds->dim, 1024);
    float out[32 * 32];
    assert_int_equal(wb_images_get(ds, 4, out, NULL), 0);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            float v = out[y * 32 + x];
            if (y < 2 || y >= 30 || x < 2 || x >= 30) assert_true(v == -1.0f);
            else assert_float_equal(v, scaled(idx_pixel(4, (y - 2) * 28 + (x - 2))), 1e-6);
        }
    wb_dataset_free(ds);

    opt.pad_to = 20; /* smaller than 28: refused */
    assert_null(wb_images_open("fashion-mnist", fx->dir, &opt));
    assert_error_mentions("pad_to 20", NULL);

    /* nearest 28 -> 14 takes the centre-aligned source pixel 2y+1, 2x+1 */
    wb_image_options_default(&opt);
    opt.resize_to = 14;
    opt.resize = WB_RESIZE_NEAREST;
    ds = wb_images_open("fashion-mnist", fx->dir, &opt);
    assert_non_null(ds);
    assert_int_equal(ds->dim, 196);
    float small[196];
    assert_int_equal(wb_images_get(ds, 2, small, NULL), 0);
    for (int y = 0; y < 14; y++)
        for (int x = 0; x < 14; x++)
            assert_float_equal(small[y * 14 + x], scaled(idx_pixel(2, (2 * y + 1) * 28 + 2 * x + 1)), 1e-6);
    wb_dataset_free(ds);

    /* resize then pad: 28 -> 16 -> centred in 20 */
    opt.resize_to = 16;
    opt.resize = WB_RESIZE_BILINEAR;
    opt.pad_to = 20;
    ds = wb_images_open("fashion-mnist", fx->dir, &opt);
    assert_non_null(ds);
    assert_int_equal(ds->shape.height, 20);
    float both[400];
    assert_int_equal(wb_images_get(ds, 0, both, NULL), 0);
    assert_true(both[0] == -1.0f && both[2 * 20 + 1] == -1.0f && both[17 * 20 + 18] == -1.0f);
    for (int p = 0; p < 400; p++) assert_true(both[p] >= -1.0f && both[p] <= 1.0f);
    wb_dataset_free(ds);
}

/* Bilinear on a 2x2 PNG with columns (0, 255): 4 wide gives -1, -0.5, 0.5, 1
 * (half-pixel centres, edges clamped). */
static void test_png_bilinear(void **state) {
    fixture *fx = *state;
    char dir[256], path[512];
    make_subdir(dir, sizeof dir, fx->dir, "png2");
    const uint8_t px[4] = {0, 255, 0, 255};
    path_in(path, sizeof path, dir, "a.png");
    write_png(path, 2, 2, 1, px);
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.resize_to = 4;
    wb_dataset *ds = wb_images_open("png-folder", dir, &opt);
    assert_non_null(ds);
    assert_int_equal(ds->shape.channels, 1);
    float out[16];
    assert_int_equal(wb_images_get(ds, 0, out, NULL), 0);
    const float want[4] = {-1.0f, -0.5f, 0.5f, 1.0f};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) assert_float_equal(out[y * 4 + x], want[x], 1e-6);
    wb_dataset_free(ds);
}

static void test_png_folder(void **state) {
    fixture *fx = *state;
    char dir[256], path[512];
    make_subdir(dir, sizeof dir, fx->dir, "rgb");
    /* 5 wide, 4 high; written in reverse name order to check sorting */
    for (int k = 2; k >= 0; k--) {
        uint8_t hwc[4 * 5 * 3];
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++)
                for (int c = 0; c < 3; c++) hwc[(y * 5 + x) * 3 + c] = (uint8_t)(k * 80 + c * 20 + y * 5 + x);
        hwc[0] = 0;
        hwc[1] = 255;
        char name[32];
        snprintf(name, sizeof name, "img%d.png", k);
        path_in(path, sizeof path, dir, name);
        write_png(path, 5, 4, 3, hwc);
    }
    path_in(path, sizeof path, dir, "notes.txt"); /* ignored */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not an image\n", f);
    fclose(f);

    wb_dataset *ds = wb_images_open("png-folder", dir, NULL);
    assert_non_null(ds);
    assert_string_equal(ds->name, "png-folder");
    assert_int_equal(wb_images_count(ds), 3);
    assert_int_equal(wb_images_n_classes(ds), 1);
    assert_int_equal(ds->shape.channels, 3);
    assert_int_equal(ds->shape.height, 4);
    assert_int_equal(ds->shape.width, 5);
    float out[60];
    for (int k = 0; k < 3; k++) {
        int label = -1;
        assert_int_equal(wb_images_get(ds, k, out, &label), 0);
        assert_int_equal(label, 0);
        assert_true(out[0] == -1.0f);      /* R of pixel (0,0) = 0   */
        assert_true(out[20] == 1.0f);      /* G of pixel (0,0) = 255 */
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 5; x++) {
                    if (y == 0 && x == 0 && c < 2) continue;
                    assert_float_equal(out[c * 20 + y * 5 + x], scaled(k * 80 + c * 20 + y * 5 + x), 1e-6);
                }
    }
    wb_dataset_free(ds);

    /* a gray image of another size: refused without resize_to, naming it */
    uint8_t gray[36];
    memset(gray, 128, sizeof gray);
    path_in(path, sizeof path, dir, "z_gray.png");
    write_png(path, 6, 6, 1, gray);
    assert_null(wb_images_open("png-folder", dir, NULL));
    assert_error_mentions("z_gray.png", "differs");
    /* with resize_to the mix loads; the gray one is replicated to RGB */
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.resize_to = 8;
    ds = wb_images_open("png-folder", dir, &opt);
    assert_non_null(ds);
    assert_int_equal(wb_images_count(ds), 4);
    assert_int_equal(ds->shape.channels, 3);
    float big[3 * 64];
    assert_int_equal(wb_images_get(ds, 3, big, NULL), 0);
    for (int p = 0; p < 3 * 64; p++) assert_float_equal(big[p], scaled(128), 1e-6);
    wb_dataset_free(ds);

    /* a PNG whose header claims more pixels than its bytes can hold:
     * refused before width x height x channels bytes are allocated for it */
    static const uint32_t claims[2] = {16384, 100000};
    static const char *const why[2] = {"header claims 16384x16384 pixels, more than its", "implausible size"};
    for (int k = 0; k < 2; k++) {
        char claim_dir[256];
        make_subdir(claim_dir, sizeof claim_dir, fx->dir, k ? "claim100k" : "claim16k");
        path_in(path, sizeof path, claim_dir, "big.png");
        write_png(path, 6, 6, 1, gray);
        f = fopen(path, "r+b");
        assert_non_null(f);
        uint8_t ihdr[17]; /* "IHDR" + 13 bytes of data, then the CRC */
        assert_int_equal(fseek(f, 12, SEEK_SET), 0);
        assert_int_equal(fread(ihdr, 1, sizeof ihdr, f), sizeof ihdr);
        put_be32(ihdr + 4, claims[k]);
        put_be32(ihdr + 8, claims[k]);
        uint8_t crc[4];
        put_be32(crc, crc32_buf(ihdr, sizeof ihdr));
        assert_int_equal(fseek(f, 12, SEEK_SET), 0);
        assert_int_equal(fwrite(ihdr, 1, sizeof ihdr, f), sizeof ihdr);
        assert_int_equal(fwrite(crc, 1, 4, f), 4);
        assert_int_equal(fclose(f), 0);
        assert_null(wb_images_open("png-folder", claim_dir, NULL));
        assert_error_mentions("big.png", why[k]);
    }

    /* empty folder */
    char empty[256];
    make_subdir(empty, sizeof empty, fx->dir, "empty");
    assert_null(wb_images_open("png-folder", empty, NULL));
    assert_error_mentions(empty, "no .png");
}

/* ---- CIFAR ------------------------------------------------------------------------------ */

static void test_cifar10(void **state) {
    fixture *fx = *state;
    write_cifar10(fx->dir);
    wb_dataset *ds = wb_images_open("cifar10", fx->dir, NULL);
    assert_non_null(ds);
    assert_string_equal(ds->name, "cifar10-train");
    assert_int_equal(wb_images_count(ds), 10);
    assert_int_equal(wb_images_n_classes(ds), 10);
    assert_int_equal(ds->shape.channels, 3);
    assert_int_equal(ds->shape.height, 32);
    assert_int_equal(ds->dim, 3072);
    float *img = malloc(3072 * sizeof *img);
    assert_non_null(img);
    for (int r = 0; r < 10; r++) {
        int label;
        assert_int_equal(wb_images_get(ds, r, img, &label), 0);
        assert_int_equal(label, r % 10);
        assert_true(img[0] == -1.0f && img[1] == 1.0f);
        assert_float_equal(img[500], scaled(r), 1e-6);              /* R plane */
        assert_float_equal(img[1024 + 500], scaled(100 + r), 1e-6); /* G plane */
        assert_float_equal(img[2048 + 500], scaled(200 + r), 1e-6); /* B plane */
    }
    wb_dataset_free(ds);

    /* grayscale: BT.601 luma of (r, 100 + r, 200 + r) */
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.split = "test";
    opt.channels = 1;
    ds = wb_images_open("cifar10", fx->dir, &opt);
    assert_non_null(ds);
    assert_string_equal(ds->name, "cifar10-test");
    assert_int_equal(wb_images_count(ds), 3);
    assert_int_equal(ds->shape.channels, 1);
    assert_int_equal(ds->dim, 1024);
    assert_int_equal(wb_images_get(ds, 1, img, NULL), 0);
    double y = 0.299 * 51 + 0.587 * 151 + 0.114 * 251;
    assert_float_equal(img[700], y / 127.5 - 1.0, 1e-5);
    wb_dataset_free(ds);
    free(img);
}

static void test_cifar100(void **state) {
    fixture *fx = *state;
    write_cifar_file(fx->dir, "train.bin", 0, 30, 1, 0);
    write_cifar_file(fx->dir, "test.bin", 0, 4, 1, 0);
    wb_dataset *fine = wb_images_open("cifar100", fx->dir, NULL);
    assert_non_null(fine);
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.cifar100_coarse = 1;
    wb_dataset *coarse = wb_images_open("cifar100", fx->dir, &opt);
    assert_non_null(coarse);
    assert_int_equal(wb_images_n_classes(fine), 100);
    assert_int_equal(wb_images_n_classes(coarse), 20);
    assert_int_equal(wb_images_count(fine), 30);
    float *img = malloc(3072 * sizeof *img);
    assert_non_null(img);
    for (int r = 0; r < 30; r++) {
        assert_int_equal(wb_images_label(fine, r), r * 7 % 100);
        assert_int_equal(wb_images_label(coarse, r), r % 20);
        assert_int_equal(wb_images_get(fine, r, img, NULL), 0);
        assert_float_equal(img[2048 + 9], scaled(200 + r), 1e-6); /* 2 label bytes skipped */
    }
    free(img);
    wb_dataset_free(fine);
    wb_dataset_free(coarse);

    /* fine label 21 is record 3 (3·7); coarse filter uses the coarse ids */
    const int inc[] = {21};
    opt.cifar100_coarse = 0;
    opt.include = inc;
    opt.n_include = 1;
    fine = wb_images_open("cifar100", fx->dir, &opt);
    assert_non_null(fine);
    assert_int_equal(wb_images_count(fine), 1);
    wb_dataset_free(fine);
    opt.cifar100_coarse = 1; /* 21 is not a coarse label */
    assert_null(wb_images_open("cifar100", fx->dir, &opt));

    opt.n_include = 0;
    opt.split = "test";
    coarse = wb_images_open("cifar100", fx->dir, &opt);
    assert_non_null(coarse);
    assert_int_equal(wb_images_count(coarse), 4);
    wb_dataset_free(coarse);
}

/* ---- channels, flips, sampling -------------------------------------------------------------- */

static void test_gray_to_rgb(void **state) {
    fixture *fx = *state;
    write_good_idx(fx->dir);
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.channels = 3;
    opt.pad_to = 32;
    wb_dataset *ds = wb_images_open("fashion-mnist", fx->dir, &opt);
    assert_non_null(ds);
    assert_int_equal(ds->shape.channels, 3);
    assert_int_equal(ds->shape.out_channels, 3);
    assert_int_equal(ds->dim, 3 * 1024);
    float *img = malloc(3 * 1024 * sizeof *img);
    assert_non_null(img);
    assert_int_equal(wb_images_get(ds, 7, img, NULL), 0);
    for (int p = 0; p < 1024; p++) {
        assert_true(img[p] == img[1024 + p]);
        assert_true(img[p] == img[2048 + p]);
    }
    assert_float_equal(img[5 * 32 + 9], scaled(idx_pixel(7, 3 * 28 + 7)), 1e-6);
    free(img);
    wb_dataset_free(ds);
}

static void test_flips(void **state) {
    fixture *fx = *state;
    write_good_idx(fx->dir);
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.max_images = 1; /* one image: every draw is it or its mirror */
    opt.flip = 1;
    wb_dataset *ds = wb_images_open("fashion-mnist", fx->dir, &opt);
    assert_non_null(ds);
    float orig[784], mirror[784];
    assert_int_equal(wb_images_get(ds, 0, orig, NULL), 0);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) mirror[y * 28 + x] = orig[y * 28 + 27 - x];
    assert_true(memcmp(orig, mirror, sizeof orig) != 0);

    enum { N = 64 };
    float *a = malloc(N * 784 * sizeof *a), *b = malloc(N * 784 * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    wb_rng rng;
    wb_rng_init(&rng, 7, 0);
    assert_int_equal(ds->sample(ds, &rng, N, a), 0);
    int n_orig = 0, n_mirror = 0;
    for (int i = 0; i < N; i++) {
        if (memcmp(a + i * 784, orig, sizeof orig) == 0) n_orig++;
        else if (memcmp(a + i * 784, mirror, sizeof mirror) == 0) n_mirror++;
        else fail_msg("sample %d is neither the image nor its mirror", i);
    }
    assert_true(n_orig > 10 && n_mirror > 10);
    /* same seed, same draws */
    wb_rng_init(&rng, 7, 0);
    assert_int_equal(ds->sample(ds, &rng, N, b), 0);
    assert_memory_equal(a, b, N * 784 * sizeof *a);
    /* another seed, another flip pattern */
    wb_rng_init(&rng, 8, 0);
    assert_int_equal(ds->sample(ds, &rng, N, b), 0);
    assert_true(memcmp(a, b, N * 784 * sizeof *a) != 0);
    wb_dataset_free(ds);

    opt.flip = 0;
    ds = wb_images_open("fashion-mnist", fx->dir, &opt);
    assert_non_null(ds);
    wb_rng_init(&rng, 7, 0);
    assert_int_equal(ds->sample(ds, &rng, N, a), 0);
    for (int i = 0; i < N; i++) assert_memory_equal(a + i * 784, orig, sizeof orig);
    wb_dataset_free(ds);
    free(a);
    free(b);
}

static void test_sampling(void **state) {
    fixture *fx = *state;
    write_good_idx(fx->dir);
    wb_dataset *ds = wb_images_open("fashion-mnist", fx->dir, NULL);
    assert_non_null(ds);
    enum { N = 400 };
    float *x = malloc((size_t)N * 784 * sizeof *x), *y = malloc((size_t)N * 784 * sizeof *y), img[784];
    int labels[N], seen[N_TRAIN] = {0};
    assert_non_null(x);
    assert_non_null(y);
    wb_rng rng;
    wb_rng_init(&rng, 3, 1);
    assert_int_equal(wb_images_sample_labeled(ds, &rng, N, x, labels), 0);
    wb_rng_init(&rng, 3, 1);
    assert_int_equal(ds->sample(ds, &rng, N, y), 0); /* same draws without labels */
    assert_memory_equal(x, y, (size_t)N * 784 * sizeof *x);
    for (int i = 0; i < N; i++) {
        /* image i of the set is recognisable by pixel 2 = (31 i + 6) mod 256 */
        int which = -1;
        for (int k = 0; k < N_TRAIN; k++)
            if (x[(size_t)i * 784 + 2] == scaled(idx_pixel(k, 2))) which = k;
        assert_true(which >= 0);
        assert_int_equal(labels[i], which % 10);
        assert_int_equal(wb_images_get(ds, which, img, NULL), 0);
        assert_memory_equal(x + (size_t)i * 784, img, sizeof img);
        seen[which]++;
    }
    for (int k = 0; k < N_TRAIN; k++) assert_true(seen[k] > 5); /* expected 20 each */
    assert_int_equal(ds->sample(ds, &rng, 0, x), 0);
    free(x);
    free(y);
    wb_dataset_free(ds);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_idx_errors(void **state) {
    fixture *fx = *state;
    char dir[256], path[512];

    make_subdir(dir, sizeof dir, fx->dir, "missing");
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-images-idx3-ubyte.gz", "cannot open");

    make_subdir(dir, sizeof dir, fx->dir, "magic");
    write_idx(dir, "train", 0x804, N_TRAIN, N_TRAIN, N_TRAIN);
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-images-idx3-ubyte.gz", "bad magic");

    make_subdir(dir, sizeof dir, fx->dir, "short");
    write_idx(dir, "train", 0x803, N_TRAIN, 3, N_TRAIN);
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-images-idx3-ubyte.gz: truncated", "header says 20 images of 28x28, file has 2352 bytes");

    make_subdir(dir, sizeof dir, fx->dir, "long");
    write_idx(dir, "train", 0x803, 3, N_TRAIN, 3);
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-images-idx3-ubyte.gz", "trailing");

    make_subdir(dir, sizeof dir, fx->dir, "mismatch");
    write_idx(dir, "train", 0x803, N_TRAIN, N_TRAIN, N_TRAIN - 1);
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-labels-idx1-ubyte.gz", "19 labels");

    /* a gzip stream cut in the middle (a partial download) */
    make_subdir(dir, sizeof dir, fx->dir, "cut");
    write_idx(dir, "train", 0x803, N_TRAIN, N_TRAIN, N_TRAIN);
    path_in(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-images-idx3-ubyte.gz", "truncated");

    /* cut inside the 8-byte CRC trailer: every pixel is there, but zlib
     * only says "unexpected end of file" through gzerror (fuzz finding:
     * such a file was accepted unchecked) */
    make_subdir(dir, sizeof dir, fx->dir, "cut_trailer");
    write_idx(dir, "train", 0x803, N_TRAIN, N_TRAIN, N_TRAIN);
    path_in(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 6), 0);
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-labels-idx1-ubyte.gz", "truncated gzip");

    /* a header that claims far more than the file holds: refused or found
     * short without allocating what it claims (2^26 images of 4096x4096 is
     * 2^50 bytes; 60000 images of 28x28 with 3 present) */
    make_subdir(dir, sizeof dir, fx->dir, "huge_claim");
    {
        uint8_t hdr[16 + 64];
        memset(hdr, 1, sizeof hdr);
        put_be32(hdr, 0x803);
        put_be32(hdr + 4, 1u << 26);
        put_be32(hdr + 8, 4096);
        put_be32(hdr + 12, 4096);
        path_in(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
        write_gz(path, hdr, sizeof hdr);
        uint8_t lb[9] = {0, 0, 8, 1, 0, 0, 0, 1, 0};
        path_in(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
        write_gz(path, lb, sizeof lb);
    }
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-images-idx3-ubyte.gz: implausible header", "67108864 images of 4096x4096");
    make_subdir(dir, sizeof dir, fx->dir, "claims_more");
    write_idx(dir, "train", 0x803, 60000, 3, 60000);
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("truncated: header says 60000 images of 28x28", "file has 2352 bytes of pixels");

    /* the labels header alone missing */
    make_subdir(dir, sizeof dir, fx->dir, "nolabels");
    write_idx(dir, "train", 0x803, N_TRAIN, N_TRAIN, N_TRAIN);
    path_in(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
    assert_int_equal(unlink(path), 0);
    assert_null(wb_images_open("fashion-mnist", dir, NULL));
    assert_error_mentions("train-labels-idx1-ubyte.gz", "cannot open");

    assert_null(wb_images_open("imagenet", fx->dir, NULL));
    assert_error_mentions("unknown image dataset kind 'imagenet'", NULL);

    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.split = "valid";
    assert_null(wb_images_open("mnist", fx->dir, &opt));
    assert_error_mentions("valid", NULL);
    wb_image_options_default(&opt);
    opt.channels = 2;
    assert_null(wb_images_open("mnist", fx->dir, &opt));
    assert_error_mentions("channels", NULL);
}

static void test_cifar_errors(void **state) {
    fixture *fx = *state;
    char dir[256], path[512];

    make_subdir(dir, sizeof dir, fx->dir, "c10");
    write_cifar10(dir);
    path_in(path, sizeof path, dir, "data_batch_3.bin");
    assert_int_equal(unlink(path), 0);
    assert_null(wb_images_open("cifar10", dir, NULL));
    assert_error_mentions("data_batch_3.bin", "cannot open");
    write_cifar_file(dir, "data_batch_3.bin", 4, 2, 0, 5);
    assert_null(wb_images_open("cifar10", dir, NULL));
    assert_error_mentions("data_batch_3.bin", "3073");

    make_subdir(dir, sizeof dir, fx->dir, "c100");
    write_cifar_file(dir, "train.bin", 0, 2, 1, 3073); /* 2·3074 + 3073 bytes */
    assert_null(wb_images_open("cifar100", dir, NULL));
    assert_error_mentions("train.bin", "3074");
    /* a CIFAR-10 file where CIFAR-100 is expected: 3073 is not 3074 */
    write_cifar_file(dir, "test.bin", 0, 2, 0, 0);
    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.split = "test";
    assert_null(wb_images_open("cifar100", dir, &opt));
    assert_error_mentions("test.bin", "3074");
    assert_null(wb_images_open("cifar100", fx->dir, NULL)); /* no train.bin at all */
    assert_error_mentions("train.bin", "cannot open");
}

/* ---- the real Fashion-MNIST, when installed -------------------------------------------------- */

static void test_real_fashion_mnist(void **state) {
    (void)state;
    char path[512];
    path_in(path, sizeof path, REAL_FMNIST, "train-images-idx3-ubyte.gz");
    if (access(path, R_OK) != 0) {
        printf("SKIP: %s not installed (Debian package dataset-fashion-mnist)\n", REAL_FMNIST);
        return;
    }
    wb_dataset *ds = wb_images_open("fashion-mnist", REAL_FMNIST, NULL);
    if (!ds) fail_msg("%s", wb_last_error());
    assert_int_equal(wb_images_count(ds), 60000);
    assert_int_equal(wb_images_n_classes(ds), 10);
    int per_class[10] = {0};
    for (int64_t i = 0; i < 60000; i++) {
        int lab = wb_images_label(ds, i);
        assert_true(lab >= 0 && lab < 10);
        per_class[lab]++;
    }
    for (int k = 0; k < 10; k++) assert_int_equal(per_class[k], 6000);
    enum { N = 256 };
    float *x = malloc((size_t)N * 784 * sizeof *x);
    assert_non_null(x);
    wb_rng rng;
    wb_rng_init(&rng, 1, 0);
    assert_int_equal(ds->sample(ds, &rng, N, x), 0);
    float lo = 2, hi = -2;
    for (size_t i = 0; i < (size_t)N * 784; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    assert_true(lo == -1.0f && hi == 1.0f); /* backgrounds are 0, some pixels 255 */
    free(x);
    wb_dataset_free(ds);

    wb_image_options opt;
    wb_image_options_default(&opt);
    opt.split = "test";
    ds = wb_images_open("fashion-mnist", REAL_FMNIST, &opt);
    if (!ds) fail_msg("%s", wb_last_error());
    assert_int_equal(wb_images_count(ds), 10000);
    wb_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idx_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pad_and_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_bilinear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cifar10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cifar100, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gray_to_rgb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sampling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cifar_errors, setup, teardown),
        cmocka_unit_test(test_real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
