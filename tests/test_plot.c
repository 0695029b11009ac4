/* tests/test_plot.c — the plotting module (host/report/plot.c): PNG round trip
 * through libpng's reader, canvas primitives and the font table, the three
 * figures on normal and degenerate input (empty sets, NaN, identical points,
 * log axes with non-positive values), argument errors, and the atomic write
 * contract (a failed write names the path, leaves no PATH.tmp and never
 * damages an existing PATH). Every test works in its own mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fault_inject.h"

#include "report/plot.h"
#include "wb/tensor.h"

/* ---- helpers ---------------------------------------------------------------- */

typedef struct {
    char dir[64];
} fixture;

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/wb_test_plot_XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static void rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int teardown(void **state) {
    fixture *fx = *state;
    rm_rf(fx->dir);
    free(fx);
    return 0;
}

static void path_in(void **state, const char *name, char *out, size_t cap) {
    fixture *fx = *state;
    snprintf(out, cap, "%s/%s", fx->dir, name);
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Entries in the fixture directory (so a leftover PATH.tmp shows up). */
static int dir_entries(void **state) {
    fixture *fx = *state;
    DIR *d = opendir(fx->dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Reads a PNG as 8-bit RGB with libpng's simplified API; NULL if invalid. */
static uint8_t *read_png(const char *path, int *w, int *h) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    img.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        free(buf);
        png_image_free(&img);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

static uint32_t px(const uint8_t *rgb, int w, int x, int y) {
    const uint8_t *p = rgb + ((size_t)y * w + x) * 3;
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

static long non_white(const uint8_t *rgb, int w, int h) {
    long n = 0;
    for (long i = 0; i < (long)w * h; i++) n += px(rgb, w, (int)(i % w), (int)(i / w)) != 0xffffff;
    return n;
}

/* Pixels "close to" a colour (dots are blended, so allow a tolerance in
 * hue: red-dominant orange for samples, blue-dominant for the reference). */
static long orangeish(const uint8_t *rgb, int w, int h) {
    long n = 0;
    for (long i = 0; i < (long)w * h; i++) {
        const uint8_t *p = rgb + i * 3;
        n += p[0] > 200 && p[2] < 170 && p[0] > p[2] + 60;
    }
    return n;
}

static long blueish(const uint8_t *rgb, int w, int h) {
    long n = 0;
    for (long i = 0; i < (long)w * h; i++) {
        const uint8_t *p = rgb + i * 3;
        n += p[2] > p[0] + 40 && p[2] > 120;
    }
    return n;
}

/* Checks that path is a valid PNG of the given size (w/h <= 0: any) that is
 * not blank and left no PATH.tmp behind; returns the pixels. */
static uint8_t *expect_png(const char *path, int want_w, int want_h, int *w, int *h) {
    assert_false(wb_fault_tmp_left(path));
    uint8_t *rgb = read_png(path, w, h);
    assert_non_null(rgb);
    if (want_w > 0) assert_int_equal(*w, want_w);
    if (want_h > 0) assert_int_equal(*h, want_h);
    assert_true(non_white(rgb, *w, *h) > 100);
    return rgb;
}

/* Deterministic pseudo-normal points (sum of uniforms; no libwb RNG needed). */
static void blob(float *xy, int n, float cx, float cy, float s, unsigned seed) {
    unsigned st = seed * 2654435761u + 1u;
    for (int i = 0; i < 2 * n; i++) {
        float acc = 0.0f;
        for (int k = 0; k < 4; k++) {
            st = st * 1664525u + 1013904223u;
            acc += (float)(st >> 8) / 16777216.0f - 0.5f;
        }
        xy[i] = (i % 2 ? cy : cx) + s * acc;
    }
}

/* ---- PNG writer ----------------------------------------------------------- */

static void test_png_roundtrip(void **state) {
    char path[256];
    path_in(state, "known.png", path, sizeof path);
    wb_canvas *c = wb_canvas_new(37, 23);
    assert_non_null(c);
    wb_canvas_set(c, 0, 0, 0xff0000);
    wb_canvas_set(c, 36, 0, 0x00ff00);
    wb_canvas_set(c, 0, 22, 0x0000ff);
    wb_canvas_set(c, 36, 22, 0x123456);
    wb_canvas_fill_rect(c, 10, 5, 4, 3, 0x808080);
    assert_int_equal(wb_canvas_write_png(c, path), 0);
    wb_canvas_free(c);

    int w, h;
    uint8_t *rgb = read_png(path, &w, &h);
    assert_non_null(rgb);
    assert_int_equal(w, 37);
    assert_int_equal(h, 23);
    assert_int_equal(px(rgb, w, 0, 0), 0xff0000);
    assert_int_equal(px(rgb, w, 36, 0), 0x00ff00);
    assert_int_equal(px(rgb, w, 0, 22), 0x0000ff);
    assert_int_equal(px(rgb, w, 36, 22), 0x123456);
    assert_int_equal(px(rgb, w, 10, 5), 0x808080);
    assert_int_equal(px(rgb, w, 13, 7), 0x808080);
    assert_int_equal(px(rgb, w, 14, 7), 0xffffff);
    assert_int_equal(px(rgb, w, 18, 11), 0xffffff);
    free(rgb);
    assert_int_equal(dir_entries(state), 1); /* no known.png.tmp */

    /* Overwriting an existing file replaces it. */
    uint8_t small[2 * 1 * 3] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(wb_png_write_rgb(path, 2, 1, small), 0);
    rgb = read_png(path, &w, &h);
    assert_non_null(rgb);
    assert_int_equal(w, 2);
    assert_int_equal(h, 1);
    assert_int_equal(px(rgb, w, 1, 0), 0x040506);
    free(rgb);
    assert_int_equal(dir_entries(state), 1);
}

static void test_png_bad_args(void **state) {
    char path[256];
    path_in(state, "bad.png", path, sizeof path);
    uint8_t one[3] = {0, 0, 0};
    assert_int_not_equal(wb_png_write_rgb(NULL, 1, 1, one), 0);
    assert_int_not_equal(wb_png_write_rgb("", 1, 1, one), 0);
    assert_int_not_equal(wb_png_write_rgb(path, 0, 1, one), 0);
    assert_non_null(strstr(wb_last_error(), path));
    assert_int_not_equal(wb_png_write_rgb(path, 1, -3, one), 0);
    assert_int_not_equal(wb_png_write_rgb(path, 1, 1, NULL), 0);
    assert_int_not_equal(wb_canvas_write_png(NULL, path), 0);
    assert_int_equal(dir_entries(state), 0);
}

static void test_png_missing_dir(void **state) {
    char path[256];
    path_in(state, "no/such/dir/fig.png", path, sizeof path);
    uint8_t one[3] = {0, 0, 0};
    assert_int_not_equal(wb_png_write_rgb(path, 1, 1, one), 0);
    assert_non_null(strstr(wb_last_error(), path));
    assert_non_null(strstr(wb_last_error(), strerror(ENOENT)));
    assert_int_equal(dir_entries(state), 0);
    /* The figure functions report the same way. */
    assert_int_not_equal(wb_plot_scatter(path, "t", NULL, 0, NULL, NULL, 0, NULL, NULL), 0);
    assert_non_null(strstr(wb_last_error(), path));
    assert_int_equal(dir_entries(state), 0);
}

/* libpng rejects images wider than its user limit (1e6) via png_error, i.e.
 * through the longjmp path: the error must come back cleanly. */
static void test_png_libpng_error(void **state) {
    char path[256];
    path_in(state, "wide.png", path, sizeof path);
    const int w = 2000001;
    uint8_t *row = calloc((size_t)w * 3, 1);
    assert_non_null(row);
    assert_int_not_equal(wb_png_write_rgb(path, w, 1, row), 0);
    free(row);
    assert_non_null(strstr(wb_last_error(), path));
    assert_int_equal(dir_entries(state), 0);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* A write that fails (here: its temporary file cannot be created, no file
 * descriptor being free — reliable even when the tests run as root) must
 * leave the existing PATH byte-for-byte intact. */
static void test_png_failed_write_keeps_existing(void **state) {
    char path[256];
    path_in(state, "keep.png", path, sizeof path);
    uint8_t img[4 * 4 * 3];
    memset(img, 0x40, sizeof img);
    assert_int_equal(wb_png_write_rgb(path, 4, 4, img), 0);
    size_t n0, n1;
    uint8_t *before = slurp(path, &n0);
    assert_non_null(before);

    struct rlimit fds;
    assert_int_equal(wb_fault_fds_block(&fds), 0);
    memset(img, 0x99, sizeof img);
    int rc = wb_png_write_rgb(path, 4, 4, img);
    wb_fault_fds_restore(&fds);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(wb_last_error(), path));
    assert_false(wb_fault_tmp_left(path));
    uint8_t *after = slurp(path, &n1);
    assert_non_null(after);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    int w, h;
    uint8_t *rgb = read_png(path, &w, &h);
    assert_non_null(rgb);
    assert_int_equal(px(rgb, w, 2, 2), 0x404040);
    free(rgb);
    free(before);
    free(after);
}

/* A failed final rename (PATH is a non-empty directory) removes PATH.tmp. */
static void test_png_failed_rename_cleans_up(void **state) {
    char path[256], inner[300];
    path_in(state, "isdir.png", path, sizeof path);
    snprintf(inner, sizeof inner, "%s/x", path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(mkdir(inner, 0700), 0);
    uint8_t img[3] = {1, 2, 3};
    assert_int_not_equal(wb_png_write_rgb(path, 1, 1, img), 0);
    assert_non_null(strstr(wb_last_error(), path));
    assert_non_null(strstr(wb_last_error(), "rename"));
    assert_false(wb_fault_tmp_left(path));
    assert_true(exists(inner));
}

/* ---- canvas ------------------------------------------------------------------ */

static void test_canvas_primitives(void **state) {
    (void)state;
    assert_null(wb_canvas_new(0, 10));
    assert_null(wb_canvas_new(10, -1));
    assert_null(wb_canvas_new(WB_CANVAS_MAX_DIM + 1, 1));

    wb_canvas *c = wb_canvas_new(64, 48);
    assert_non_null(c);
    assert_int_equal(wb_canvas_get(c, 5, 5), 0xffffff);
    assert_int_equal(wb_canvas_get(c, -1, 5), 0xffffff); /* outside reads white */

    /* Lines include both endpoints. */
    wb_canvas_line(c, 2, 3, 20, 9, 0x000000, 1);
    assert_int_equal(wb_canvas_get(c, 2, 3), 0);
    assert_int_equal(wb_canvas_get(c, 20, 9), 0);
    assert_int_equal(wb_canvas_get(c, 11, 6), 0);
    wb_canvas_line(c, 5, 40, 5, 40, 0xff0000, 1); /* a single point */
    assert_int_equal(wb_canvas_get(c, 5, 40), 0xff0000);
    wb_canvas_line(c, 30, 20, 40, 20, 0x00ff00, 2); /* thickness 2 */
    assert_int_equal(wb_canvas_get(c, 35, 20), 0x00ff00);
    assert_int_equal(wb_canvas_get(c, 35, 21), 0x00ff00);
    /* Far outside: clipped, no crash, no long loop; crosses the canvas. */
    wb_canvas_line(c, -2000000000, 30, 2000000000, 30, 0x0000ff, 3);
    assert_int_equal(wb_canvas_get(c, 0, 30), 0x0000ff);
    assert_int_equal(wb_canvas_get(c, 63, 30), 0x0000ff);
    wb_canvas_set(c, 1000, 1000, 0); /* ignored */

    /* Alpha blending: half-opaque black over white is mid-grey. */
    wb_canvas_blend(c, 60, 2, 0x000000, 0.5f);
    uint32_t g = wb_canvas_get(c, 60, 2);
    assert_in_range(g >> 16, 126, 129);
    wb_canvas_blend(c, 61, 2, 0x000000, NAN); /* ignored */
    assert_int_equal(wb_canvas_get(c, 61, 2), 0xffffff);

    /* A dot covers its centre fully at alpha 1; translucent dots stack. */
    wb_canvas_dot(c, 50.5f, 40.5f, 3.0f, 0xff0000, 1.0f);
    assert_int_equal(wb_canvas_get(c, 50, 40), 0xff0000);
    assert_int_equal(wb_canvas_get(c, 50, 46), 0xffffff);
    wb_canvas_dot(c, 40.5f, 40.5f, 2.0f, 0x000000, 0.3f);
    uint32_t once = wb_canvas_get(c, 40, 40);
    wb_canvas_dot(c, 40.5f, 40.5f, 2.0f, 0x000000, 0.3f);
    assert_true((wb_canvas_get(c, 40, 40) >> 16) < (once >> 16));
    wb_canvas_dot(c, NAN, 3.0f, 2.0f, 0, 1.0f);   /* ignored */
    wb_canvas_dot(c, 1e30f, 3.0f, 1e30f, 0, 1.0f); /* clipped, bounded */

    /* Rectangles: outline vs fill. */
    wb_canvas_rect(c, 20, 30, 6, 5, 0x112233);
    assert_int_equal(wb_canvas_get(c, 20, 30), 0x112233);
    assert_int_equal(wb_canvas_get(c, 25, 34), 0x112233);
    assert_int_equal(wb_canvas_get(c, 22, 32), 0xffffff);
    wb_canvas_fill_rect(c, 20, 30, 6, 5, 0x112233);
    assert_int_equal(wb_canvas_get(c, 22, 32), 0x112233);
    wb_canvas_free(c);

    assert_int_equal(wb_palette(0), wb_palette(WB_PALETTE_SIZE));
    assert_int_equal(wb_palette(-1), wb_palette(WB_PALETTE_SIZE - 1));
}

/* Every printable glyph other than space draws something, and no two glyphs
 * are identical (catches table slips such as a duplicated row set). */
static void test_font_table(void **state) {
    (void)state;
    enum { N = 95, CW = 5, CH = 9 };
    static uint8_t bits[N][CH][CW];
    wb_canvas *c = wb_canvas_new(8, 12);
    assert_non_null(c);
    for (int ch = 32; ch <= 126; ch++) {
        wb_canvas_fill_rect(c, 0, 0, 8, 12, 0xffffff);
        char s[2] = {(char)ch, 0};
        assert_int_equal(wb_canvas_text(c, 0, 0, s, 0x000000, 1), 5);
        int on = 0;
        for (int y = 0; y < CH; y++)
            for (int x = 0; x < CW; x++) {
                bits[ch - 32][y][x] = wb_canvas_get(c, x, y) == 0;
                on += bits[ch - 32][y][x];
            }
        for (int y = 0; y < 12; y++) assert_int_equal(wb_canvas_get(c, 5, y), 0xffffff); /* gap column */
        if (ch == ' ')
            assert_int_equal(on, 0);
        else
            assert_true(on > 0);
    }
    for (int a = 0; a < N; a++)
        for (int b = a + 1; b < N; b++) assert_true(memcmp(bits[a], bits[b], sizeof bits[a]) != 0);
    wb_canvas_free(c);

    assert_int_equal(wb_text_width("", 1), 0);
    assert_int_equal(wb_text_width(NULL, 1), 0);
    assert_int_equal(wb_text_width("abc", 1), 17);
    assert_int_equal(wb_text_width("abc", 2), 34);
    assert_int_equal(wb_text_width("\xcf\x83=1", 1), 17); /* UTF-8 sigma: one '?' */

    /* Scaled and rotated text land where documented. */
    c = wb_canvas_new(40, 40);
    assert_non_null(c);
    wb_canvas_text(c, 2, 2, "|", 0, 2); /* '|' is column 2, rows 0..6 */
    assert_int_equal(wb_canvas_get(c, 2 + 4, 2), 0);
    assert_int_equal(wb_canvas_get(c, 2 + 5, 2 + 13), 0);
    assert_int_equal(wb_canvas_get(c, 2 + 4, 2 + 14), 0xffffff);
    wb_canvas_fill_rect(c, 0, 0, 40, 40, 0xffffff);
    wb_canvas_text_up(c, 10, 30, "-", 0, 1); /* '-' is row 3, columns 0..4 */
    for (int k = 0; k < 5; k++) assert_int_equal(wb_canvas_get(c, 13, 30 - k), 0);
    assert_int_equal(wb_canvas_get(c, 13, 25), 0xffffff);
    wb_canvas_free(c);
}

/* ---- figures ------------------------------------------------------------------ */

static void test_scatter(void **state) {
    char path[256];
    path_in(state, "scatter.png", path, sizeof path);
    enum { N = 2000 };
    float *a = malloc(2 * N * sizeof *a), *b = malloc(2 * N * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    blob(a, N, -2.0f, 1.0f, 2.0f, 1);
    blob(b, N, 2.0f, -1.0f, 2.0f, 2);
    assert_int_equal(wb_plot_scatter(path, "data vs student", a, N, "data", b, N, "student", NULL), 0);
    int w, h;
    uint8_t *rgb = expect_png(path, 480, 480, &w, &h);
    assert_true(orangeish(rgb, w, h) > 500);
    assert_true(blueish(rgb, w, h) > 500);
    free(rgb);

    /* Fixed bounds that exclude set b: only blue remains (plus the legend). */
    const float bounds[4] = {-6.0f, 0.0f, -2.0f, 4.0f};
    assert_int_equal(wb_plot_scatter(path, NULL, a, N, NULL, b, N, NULL, bounds), 0);
    rgb = expect_png(path, 480, 480, &w, &h);
    assert_true(blueish(rgb, w, h) > 500);
    free(rgb);

    /* Invalid arguments. */
    const float bad[4] = {1.0f, 1.0f, 0.0f, 1.0f};
    assert_int_not_equal(wb_plot_scatter(path, "t", a, N, "a", b, N, "b", bad), 0);
    const float nanb[4] = {0.0f, 1.0f, NAN, 1.0f};
    assert_int_not_equal(wb_plot_scatter(path, "t", a, N, "a", b, N, "b", nanb), 0);
    assert_int_not_equal(wb_plot_scatter(path, "t", a, -1, "a", b, N, "b", NULL), 0);
    assert_int_not_equal(wb_plot_scatter(path, "t", NULL, 3, "a", b, N, "b", NULL), 0);
    assert_int_not_equal(wb_plot_scatter(NULL, "t", a, N, "a", b, N, "b", NULL), 0);
    assert_int_equal(dir_entries(state), 1);
    free(a);
    free(b);
}

static void test_scatter_degenerate(void **state) {
    char path[256];
    path_in(state, "degenerate.png", path, sizeof path);
    int w, h;
    uint8_t *rgb;

    /* No points at all: still a framed, labelled figure. */
    assert_int_equal(wb_plot_scatter(path, "empty", NULL, 0, "data", NULL, 0, "student", NULL), 0);
    free(expect_png(path, 480, 480, &w, &h));

    /* All points identical (zero range on both axes). */
    float same[2 * 50];
    for (int i = 0; i < 100; i++) same[i] = 3.25f;
    assert_int_equal(wb_plot_scatter(path, "same", same, 50, "a", same, 50, "b", NULL), 0);
    rgb = expect_png(path, 480, 480, &w, &h);
    assert_true(orangeish(rgb, w, h) > 10);
    free(rgb);

    /* NaN and inf everywhere, and a mix of finite and non-finite. */
    float bad[8] = {NAN, NAN, INFINITY, 1.0f, 2.0f, -INFINITY, NAN, 0.0f};
    assert_int_equal(wb_plot_scatter(path, "nan", bad, 4, "a", bad, 4, "b", NULL), 0);
    free(expect_png(path, 480, 480, &w, &h));
    float mix[8] = {NAN, 0.0f, 1.0f, 2.0f, 1.5f, 2.5f, 0.0f, NAN};
    assert_int_equal(wb_plot_scatter(path, "mix", mix, 4, "a", mix, 4, "b", NULL), 0);
    free(expect_png(path, 480, 480, &w, &h));

    /* Exploded samples do not crash or squash (values near FLT_MAX). */
    float huge[6] = {3e38f, -3e38f, 0.0f, 0.0f, 1.0f, 1.0f};
    assert_int_equal(wb_plot_scatter(path, "huge", same, 50, "a", huge, 3, "b", NULL), 0);
    free(expect_png(path, 480, 480, &w, &h));
    assert_int_equal(dir_entries(state), 1);
}

static void test_scatter_grid(void **state) {
    char path[256];
    path_in(state, "grid.png", path, sizeof path);
    enum { N = 500, P = 15 };
    float *ref = malloc(2 * N * sizeof *ref), *s = malloc((size_t)P * 2 * N * sizeof *s);
    assert_non_null(ref);
    assert_non_null(s);
    blob(ref, N, 0.0f, 0.0f, 3.0f, 7);
    wb_scatter_panel panels[P];
    char titles[P][32];
    for (int i = 0; i < P; i++) {
        blob(s + 2 * N * i, N, 0.2f * i, 0.0f, 1.0f + 0.3f * i, 100 + i);
        snprintf(titles[i], sizeof titles[i], i ? "divergence %d" : "teacher", i);
        panels[i] = (wb_scatter_panel){titles[i], ref, N, s + 2 * N * i, N};
    }
    panels[3].n = 0;             /* a run that produced nothing */
    panels[4].title = NULL;      /* untitled */
    s[2 * N * 5] = NAN;          /* a NaN sample */
    s[2 * N * 6 + 1] = 1e30f;    /* an exploded sample */
    assert_int_equal(wb_plot_scatter_grid(path, P, panels, 5, NULL), 0);
    int w, h;
    uint8_t *rgb = expect_png(path, 0, 0, &w, &h);
    assert_true(w >= 5 * 200 && w < 5 * 200 + 300); /* 5 columns */
    assert_true(h >= 3 * 200 && h < 3 * 200 + 200); /* 3 rows */
    assert_true(orangeish(rgb, w, h) > 1000);
    assert_true(blueish(rgb, w, h) > 1000);
    free(rgb);

    /* Automatic columns, explicit bounds, no reference points at all. */
    for (int i = 0; i < P; i++) panels[i].n_ref = 0;
    const float bounds[4] = {-5.0f, 5.0f, -5.0f, 5.0f};
    assert_int_equal(wb_plot_scatter_grid(path, P, panels, 0, bounds), 0);
    free(expect_png(path, 0, 0, &w, &h));
    assert_int_equal(wb_plot_scatter_grid(path, 1, panels, 7, NULL), 0);
    free(expect_png(path, 0, 0, &w, &h));

    /* Zero panels: a valid (small) PNG; bad arguments: errors. */
    assert_int_equal(wb_plot_scatter_grid(path, 0, NULL, 5, NULL), 0);
    rgb = read_png(path, &w, &h);
    assert_non_null(rgb);
    free(rgb);
    assert_int_not_equal(wb_plot_scatter_grid(path, -1, panels, 5, NULL), 0);
    assert_int_not_equal(wb_plot_scatter_grid(path, 2, NULL, 5, NULL), 0);
    panels[1].n = -4;
    assert_int_not_equal(wb_plot_scatter_grid(path, P, panels, 5, NULL), 0);
    assert_int_equal(dir_entries(state), 1);
    free(ref);
    free(s);
}

static void test_lines(void **state) {
    char path[256];
    path_in(state, "lines.png", path, sizeof path);
    enum { T = 1000 };
    static float x[T], y0[T], y1[T], y2[T];
    for (int i = 0; i < T; i++) {
        x[i] = (float)i;
        y0[i] = 2.0f * expf(-i / 200.0f) + 0.05f;
        y1[i] = (i % 97 == 0) ? NAN : 1.0f / (1.0f + i);    /* gaps */
        y2[i] = (i > 400 && i < 450) ? -1.0f : 0.5f + 0.001f * i; /* non-positive run */
    }
    wb_series s[3] = {{"loss", x, y0, T, NULL, NULL}, {"grad norm", x, y1, T, NULL, NULL}, {NULL, NULL, y2, T, NULL, NULL}};
    assert_int_equal(wb_plot_lines(path, "training", "step", "value", 3, s, 0), 0);
    int w, h;
    uint8_t *rgb = expect_png(path, 640, 420, &w, &h);
    free(rgb);
    assert_int_equal(wb_plot_lines(path, "training (log)", "step", "value", 3, s, 1), 0);
    free(expect_png(path, 640, 420, &w, &h));

    /* 14 divergence weight functions over l in [-10, 10]: the legend moves
     * outside, so the figure is wider; palette colours are all present. */
    enum { L = 201, D = 14 };
    static float l[L], wl[D][L];
    wb_series ws[D];
    char names[D][16];
    for (int i = 0; i < L; i++) l[i] = -10.0f + 0.1f * i;
    for (int d = 0; d < D; d++) {
        for (int i = 0; i < L; i++) wl[d][i] = expf((d - 6) * 0.1f * l[i]);
        snprintf(names[d], sizeof names[d], "div %d", d);
        ws[d] = (wb_series){names[d], l, wl[d], L, NULL, NULL};
    }
    assert_int_equal(wb_plot_lines(path, "w(l)", "l", "w", D, ws, 1), 0);
    rgb = expect_png(path, 0, 420, &w, &h);
    assert_true(w > 640);
    for (int d = 0; d < D; d++) {
        long hits = 0;
        for (long i = 0; i < (long)w * h; i++) hits += px(rgb, w, (int)(i % w), (int)(i / w)) == wb_palette(d);
        assert_true(hits > 20);
    }
    free(rgb);
    assert_int_equal(dir_entries(state), 1);
}

/* Pixels of rgb within 2 per channel of colour c. */
static long count_near(const uint8_t *rgb, int w, int h, uint32_t c) {
    long n = 0;
    for (long i = 0; i < (long)w * h; i++) {
        uint32_t p = px(rgb, w, (int)(i % w), (int)(i / w));
        int ok = 1;
        for (int k = 0; k < 24; k += 8) ok &= abs((int)((p >> k) & 255) - (int)((c >> k) & 255)) <= 2;
        n += ok;
    }
    return n;
}

/* A band (lo/hi, seeds' spread) is a translucent fill of the series colour
 * under its line; without lo/hi there is none; at an isolated point it is an
 * error bar. */
static void test_lines_band(void **state) {
    char path[256];
    path_in(state, "lines_band.png", path, sizeof path);
    enum { N = 11 };
    float x[N], y[N], lo[N], hi[N];
    for (int i = 0; i < N; i++) x[i] = (float)i, y[i] = 1.0f, lo[i] = 0.5f, hi[i] = 1.5f + 0.05f * i;
    uint32_t c = wb_palette(0), tint = 0;
    for (int k = 0; k < 24; k += 8) {
        float v = 0.16f * (float)((c >> k) & 255) + 0.84f * 255.0f + 0.5f;
        tint |= (uint32_t)v << k;
    }
    int w, h;
    wb_series plain = {"mean", x, y, N, NULL, NULL}, band = {"mean", x, y, N, lo, hi};
    assert_int_equal(wb_plot_lines(path, "no band", NULL, NULL, 1, &plain, 0), 0);
    uint8_t *rgb = expect_png(path, 640, 420, &w, &h);
    assert_int_equal(count_near(rgb, w, h, tint), 0);
    free(rgb);
    assert_int_equal(wb_plot_lines(path, "band", NULL, NULL, 1, &band, 0), 0);
    rgb = expect_png(path, 640, 420, &w, &h);
    long filled = count_near(rgb, w, h, tint);
    assert_true(filled > 20000); /* most of the plot area lies between lo and hi */
    free(rgb);
    assert_int_equal(wb_plot_lines(path, "band, log", NULL, NULL, 1, &band, 1), 0);
    free(expect_png(path, 640, 420, &w, &h));
    /* one point: an error bar of the series colour, no fill */
    wb_series one = {"one", x, y, 1, lo, hi};
    assert_int_equal(wb_plot_lines(path, "bar", NULL, NULL, 1, &one, 0), 0);
    rgb = expect_png(path, 640, 420, &w, &h);
    assert_int_equal(count_near(rgb, w, h, tint), 0);
    assert_true(count_near(rgb, w, h, c) > 100);
    free(rgb);
}

static void test_lines_degenerate(void **state) {
    char path[256];
    path_in(state, "lines_degenerate.png", path, sizeof path);
    int w, h;
    float nan3[3] = {NAN, NAN, NAN}, same[3] = {2.0f, 2.0f, 2.0f}, neg[3] = {-1.0f, 0.0f, -5.0f};
    float one[1] = {0.5f}, iso[5] = {1.0f, NAN, 2.0f, NAN, 3.0f};

    assert_int_equal(wb_plot_lines(path, "no series", "x", "y", 0, NULL, 0), 0);
    free(expect_png(path, 640, 420, &w, &h));
    wb_series s[6] = {{"empty", NULL, NULL, 0, NULL, NULL},  {"nan", NULL, nan3, 3, NULL, NULL},
                      {"const", NULL, same, 3, NULL, NULL},  {"neg", NULL, neg, 3, NULL, NULL},
                      {"single", NULL, one, 1, NULL, NULL},  {"isolated", NULL, iso, 5, NULL, NULL}};
    for (int log_y = 0; log_y <= 1; log_y++) {
        for (int k = 0; k < 6; k++) {
            assert_int_equal(wb_plot_lines(path, "one", NULL, NULL, 1, &s[k], log_y), 0);
            free(expect_png(path, 640, 420, &w, &h));
        }
        assert_int_equal(wb_plot_lines(path, NULL, NULL, NULL, 6, s, log_y), 0);
        free(expect_png(path, 640, 420, &w, &h));
    }
    /* x all equal, y varying; x with NaN. */
    float xs[3] = {1.0f, 1.0f, 1.0f}, xn[3] = {NAN, 1.0f, 2.0f}, yv[3] = {1.0f, 2.0f, 3.0f};
    wb_series t[2] = {{"vertical", xs, yv, 3, NULL, NULL}, {"x nan", xn, yv, 3, NULL, NULL}};
    assert_int_equal(wb_plot_lines(path, "x", NULL, NULL, 2, t, 0), 0);
    free(expect_png(path, 640, 420, &w, &h));

    /* Invalid arguments. */
    wb_series bad = {"bad", NULL, NULL, 2, NULL, NULL};
    assert_int_not_equal(wb_plot_lines(path, "t", NULL, NULL, 1, &bad, 0), 0);
    bad.n = -1;
    assert_int_not_equal(wb_plot_lines(path, "t", NULL, NULL, 1, &bad, 0), 0);
    assert_int_not_equal(wb_plot_lines(path, "t", NULL, NULL, -1, s, 0), 0);
    assert_int_not_equal(wb_plot_lines(path, "t", NULL, NULL, 2, NULL, 0), 0);
    assert_int_not_equal(wb_plot_lines(NULL, "t", NULL, NULL, 1, s, 0), 0);
    assert_int_equal(dir_entries(state), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_png_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_missing_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_libpng_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_failed_write_keeps_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_failed_rename_cleans_up, setup, teardown),
        cmocka_unit_test(test_canvas_primitives),
        cmocka_unit_test(test_font_table),
        cmocka_unit_test_setup_teardown(test_scatter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scatter_degenerate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scatter_grid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_degenerate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_band, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
