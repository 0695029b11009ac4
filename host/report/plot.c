/* host/report/plot.c — the plotting module of libwb (see plot.h): an atomic libpng
 * writer, an RGB canvas with clipped primitives and the built-in 5x7 font,
 * and the figures researchers look at: two-set scatter, a grid of scatter
 * panels (teacher + one panel per divergence), and line plots (training
 * curves, divergence weight functions) with linear or log y.
 *
 * Design notes:
 *   - Everything is clipped in double precision before it is rasterised, so
 *     huge or non-finite coordinates never overflow an int or loop for long.
 *   - Degenerate data (no points, NaN, all-equal) is widened into a usable
 *     axis range instead of failing: a figure of a broken run is still a
 *     figure. Only bad arguments and I/O/memory failures are errors.
 *   - No mutable globals: every figure builds its own canvas.
 */
#include "report/plot.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/atomic_file.h"
#include "report/font5x7.h"
#include "wb/tensor.h"

/* ======================================================================== */
/* PNG writer                                                                */
/* ======================================================================== */

typedef struct {
    char msg[256];
} png_err_ctx;

static void png_err_fn(png_structp png, png_const_charp msg) {
    png_err_ctx *ctx = png_get_error_ptr(png);
    if (ctx) snprintf(ctx->msg, sizeof ctx->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

/* libpng warnings (e.g. about IHDR limits) precede a real error, which we
 * report; printing them to stderr from a library would only be noise. */
static void png_warn_fn(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void write_rows(png_structp png, int w, int h, const uint8_t *rgb) {
    for (int y = 0; y < h; y++) png_write_row(png, rgb + (size_t)y * (size_t)w * 3);
}

/* Encodes into an open stream. Kept separate from the caller so that nothing
 * the caller owns is live across setjmp; the only locals here are set before
 * setjmp and not modified after it, so no volatile is needed. */
static int png_encode(FILE *fp, int w, int h, const uint8_t *rgb, png_err_ctx *ctx) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_err_fn, png_warn_fn);
    if (!png) {
        snprintf(ctx->msg, sizeof ctx->msg, "libpng: cannot create write struct");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(ctx->msg, sizeof ctx->msg, "libpng: cannot create info struct");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    write_rows(png, w, h, rgb);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int wb_png_write_rgb(const char *path, int width, int height, const uint8_t *rgb) {
    if (!path || !path[0]) {
        wb_set_error("png: NULL or empty path");
        return -1;
    }
    if (width <= 0 || height <= 0) {
        wb_set_error("png: cannot write %s: invalid size %dx%d", path, width, height);
        return -1;
    }
    if (!rgb) {
        wb_set_error("png: cannot write %s: NULL pixel buffer", path);
        return -1;
    }
    wb_atomic_file af;
    if (wb_atomic_open(&af, path)) {
        wb_set_error("png: cannot write %s", wb_last_error());
        return -1;
    }
    png_err_ctx ctx;
    ctx.msg[0] = 0;
    errno = 0;
    if (png_encode(af.f, width, height, rgb, &ctx) != 0) {
        int e = errno;
        if (ctx.msg[0] && e)
            wb_set_error("png: cannot write %s: %s (%s)", path, ctx.msg, strerror(e));
        else if (ctx.msg[0])
            wb_set_error("png: cannot write %s: %s", path, ctx.msg);
        else
            wb_set_error("png: cannot write %s: %s", path, strerror(e ? e : EIO));
        wb_atomic_abort(&af);
        return -1;
    }
    if (wb_atomic_commit(&af)) {
        wb_set_error("png: cannot write %s", wb_last_error());
        return -1;
    }
    return 0;
}

/* ======================================================================== */
/* canvas primitives                                                         */
/* ======================================================================== */

/* A clip rectangle [x0, x1) x [y0, y1). */
typedef struct {
    int x0, y0, x1, y1;
} irect;

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static irect canvas_rect(const wb_canvas *c) { return (irect){0, 0, c->w, c->h}; }

wb_canvas *wb_canvas_new(int w, int h) {
    if (w <= 0 || h <= 0 || w > WB_CANVAS_MAX_DIM || h > WB_CANVAS_MAX_DIM) {
        wb_set_error("canvas: invalid size %dx%d (1..%d each)", w, h, WB_CANVAS_MAX_DIM);
        return NULL;
    }
    wb_canvas *c = malloc(sizeof *c);
    size_t bytes = (size_t)w * (size_t)h * 3;
    uint8_t *px = malloc(bytes);
    if (!c || !px) {
        free(c);
        free(px);
        wb_set_error("canvas: out of memory for %dx%d", w, h);
        return NULL;
    }
    memset(px, 0xff, bytes);
    c->w = w;
    c->h = h;
    c->rgb = px;
    return c;
}

void wb_canvas_free(wb_canvas *c) {
    if (!c) return;
    free(c->rgb);
    free(c);
}

int wb_canvas_write_png(const wb_canvas *c, const char *path) {
    if (!c) {
        wb_set_error("png: cannot write %s: NULL canvas", path ? path : "(null)");
        return -1;
    }
    return wb_png_write_rgb(path, c->w, c->h, c->rgb);
}

static void put_clip(wb_canvas *c, const irect *r, int x, int y, uint32_t rgb) {
    if (x < r->x0 || y < r->y0 || x >= r->x1 || y >= r->y1) return;
    uint8_t *p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = (uint8_t)(rgb >> 16);
    p[1] = (uint8_t)(rgb >> 8);
    p[2] = (uint8_t)rgb;
}

static void blend_clip(wb_canvas *c, const irect *r, int x, int y, uint32_t rgb, float a) {
    if (x < r->x0 || y < r->y0 || x >= r->x1 || y >= r->y1) return;
    if (!(a > 0.0f)) return; /* also rejects NaN */
    if (a > 1.0f) a = 1.0f;
    uint8_t *p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    const uint8_t s[3] = {(uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb};
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)(a * (float)s[k] + (1.0f - a) * (float)p[k] + 0.5f);
}

void wb_canvas_set(wb_canvas *c, int x, int y, uint32_t rgb) {
    if (!c) return;
    irect r = canvas_rect(c);
    put_clip(c, &r, x, y, rgb);
}

uint32_t wb_canvas_get(const wb_canvas *c, int x, int y) {
    if (!c || x < 0 || y < 0 || x >= c->w || y >= c->h) return 0xffffff;
    const uint8_t *p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

void wb_canvas_blend(wb_canvas *c, int x, int y, uint32_t rgb, float alpha) {
    if (!c) return;
    irect r = canvas_rect(c);
    blend_clip(c, &r, x, y, rgb, alpha);
}

static void fill_clip(wb_canvas *c, const irect *r, int x, int y, int w, int h, uint32_t rgb) {
    /* Intersect in 64 bits: x + w may overflow an int for silly inputs. */
    long long xa = x > r->x0 ? x : r->x0, ya = y > r->y0 ? y : r->y0;
    long long xb = (long long)x + w < r->x1 ? (long long)x + w : r->x1;
    long long yb = (long long)y + h < r->y1 ? (long long)y + h : r->y1;
    for (long long yy = ya; yy < yb; yy++)
        for (long long xx = xa; xx < xb; xx++) put_clip(c, r, (int)xx, (int)yy, rgb);
}

void wb_canvas_fill_rect(wb_canvas *c, int x, int y, int w, int h, uint32_t rgb) {
    if (!c || w <= 0 || h <= 0) return;
    irect r = canvas_rect(c);
    fill_clip(c, &r, x, y, w, h, rgb);
}

void wb_canvas_rect(wb_canvas *c, int x, int y, int w, int h, uint32_t rgb) {
    if (!c || w <= 0 || h <= 0) return;
    irect r = canvas_rect(c);
    fill_clip(c, &r, x, y, w, 1, rgb);
    fill_clip(c, &r, x, (int)((long long)y + h - 1), w, 1, rgb);
    fill_clip(c, &r, x, y, 1, h, rgb);
    fill_clip(c, &r, (int)((long long)x + w - 1), y, 1, h, rgb);
}

/* Liang-Barsky: clip segment (x0,y0)-(x1,y1) to [xa,xb]x[ya,yb]; 0 if none
 * of it is inside. */
static int clip_segment(double *x0, double *y0, double *x1, double *y1, double xa, double ya, double xb,
                        double yb) {
    if (!(isfinite(*x0) && isfinite(*y0) && isfinite(*x1) && isfinite(*y1))) return 0;
    double dx = *x1 - *x0, dy = *y1 - *y0;
    double p[4] = {-dx, dx, -dy, dy};
    double q[4] = {*x0 - xa, xb - *x0, *y0 - ya, yb - *y0};
    double t0 = 0.0, t1 = 1.0;
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0.0) {
            if (q[i] < 0.0) return 0;
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0.0) {
            if (t > t1) return 0;
            if (t > t0) t0 = t;
        } else {
            if (t < t0) return 0;
            if (t < t1) t1 = t;
        }
    }
    double nx0 = *x0 + t0 * dx, ny0 = *y0 + t0 * dy;
    double nx1 = *x0 + t1 * dx, ny1 = *y0 + t1 * dy;
    *x0 = nx0;
    *y0 = ny0;
    *x1 = nx1;
    *y1 = ny1;
    return 1;
}

/* A square brush of side `thick` (1..3) anchored so odd sizes are centred. */
static void brush(wb_canvas *c, const irect *r, int x, int y, uint32_t rgb, int thick) {
    int lo = -(thick - 1) / 2, hi = thick / 2;
    for (int dy = lo; dy <= hi; dy++)
        for (int dx = lo; dx <= hi; dx++) put_clip(c, r, x + dx, y + dy, rgb);
}

/* Dash pattern for the second palette round: 7 pixels on, 4 off. The phase
 * carries across segments so a polyline's dashes stay regular. */
#define DASH_ON 7
#define DASH_PERIOD 11

static void raster_line(wb_canvas *c, const irect *r, int x0, int y0, int x1, int y1, uint32_t rgb, int thick,
                        int *dash) {
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        int on = 1;
        if (dash) {
            on = *dash < DASH_ON;
            *dash = (*dash + 1) % DASH_PERIOD;
        }
        if (on) brush(c, r, x0, y0, rgb, thick);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/* A segment in continuous pixel coordinates (pixel (x,y) covers
 * [x,x+1)x[y,y+1)), clipped to r before rasterising. */
static void segment(wb_canvas *c, const irect *r, double x0, double y0, double x1, double y1, uint32_t rgb,
                    int thick, int *dash) {
    if (!clip_segment(&x0, &y0, &x1, &y1, r->x0, r->y0, r->x1 - 1e-6, r->y1 - 1e-6)) return;
    raster_line(c, r, (int)floor(x0), (int)floor(y0), (int)floor(x1), (int)floor(y1), rgb, thick, dash);
}

void wb_canvas_line(wb_canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb, int thickness) {
    if (!c) return;
    irect r = canvas_rect(c);
    thickness = clampi(thickness, 1, 3);
    /* Clip to the canvas grown by the brush so a thick line along an edge
     * keeps its inner half; pixel centres keep integer endpoints exact. */
    double ax = x0 + 0.5, ay = y0 + 0.5, bx = x1 + 0.5, by = y1 + 0.5;
    if (!clip_segment(&ax, &ay, &bx, &by, -2.0, -2.0, c->w + 2.0, c->h + 2.0)) return;
    raster_line(c, &r, (int)floor(ax), (int)floor(ay), (int)floor(bx), (int)floor(by), rgb, thickness, NULL);
}

static void dot_clip(wb_canvas *c, const irect *r, double cx, double cy, double rad, uint32_t rgb, float alpha) {
    if (!(isfinite(cx) && isfinite(cy) && rad > 0.0 && alpha > 0.0f)) return;
    if (rad > 4096.0) rad = 4096.0;
    if (cx + rad + 1 < r->x0 || cx - rad - 1 > r->x1 || cy + rad + 1 < r->y0 || cy - rad - 1 > r->y1) return;
    int xa = clampi((int)floor(cx - rad - 1), r->x0, r->x1), xb = clampi((int)ceil(cx + rad + 1), r->x0, r->x1);
    int ya = clampi((int)floor(cy - rad - 1), r->y0, r->y1), yb = clampi((int)ceil(cy + rad + 1), r->y0, r->y1);
    for (int y = ya; y < yb; y++) {
        for (int x = xa; x < xb; x++) {
            double ddx = x + 0.5 - cx, ddy = y + 0.5 - cy;
            /* Coverage ramps over one pixel at the rim: cheap anti-aliasing
             * that keeps small dots round. */
            double cov = rad + 0.5 - sqrt(ddx * ddx + ddy * ddy);
            if (cov <= 0.0) continue;
            if (cov > 1.0) cov = 1.0;
            blend_clip(c, r, x, y, rgb, alpha * (float)cov);
        }
    }
}

void wb_canvas_dot(wb_canvas *c, float cx, float cy, float radius, uint32_t rgb, float alpha) {
    if (!c) return;
    irect r = canvas_rect(c);
    dot_clip(c, &r, cx, cy, radius, rgb, alpha);
}

/* ======================================================================== */
/* text                                                                      */
/* ======================================================================== */

/* Next glyph index of a UTF-8 string, advancing *p; -1 at the end. Bytes
 * outside printable ASCII (a whole UTF-8 sequence counts once) become '?'. */
static int next_glyph(const unsigned char **p) {
    unsigned char ch = **p;
    if (!ch) return -1;
    (*p)++;
    if (ch >= 0x80) {
        while ((**p & 0xc0) == 0x80) (*p)++;
        return '?' - WB_FONT_FIRST;
    }
    if (ch == '\t') return ' ' - WB_FONT_FIRST;
    if (ch < WB_FONT_FIRST || ch > WB_FONT_LAST) return '?' - WB_FONT_FIRST;
    return ch - WB_FONT_FIRST;
}

static int glyph_count(const char *s) {
    if (!s) return 0;
    const unsigned char *p = (const unsigned char *)s;
    int n = 0;
    while (next_glyph(&p) >= 0) n++;
    return n;
}

int wb_text_width(const char *s, int scale) {
    scale = clampi(scale, 1, 8);
    int n = glyph_count(s);
    return n ? n * WB_FONT_ADVANCE * scale - scale : 0;
}

/* up == 0: left to right; up != 0: rotated 90 degrees counter-clockwise. */
static int draw_text(wb_canvas *c, int x, int y, const char *s, uint32_t rgb, int scale, int up) {
    if (!c || !s) return 0;
    scale = clampi(scale, 1, 8);
    irect r = canvas_rect(c);
    const unsigned char *p = (const unsigned char *)s;
    int pen = 0, g;
    while ((g = next_glyph(&p)) >= 0) {
        for (int row = 0; row < WB_FONT_ROWS; row++) {
            for (int col = 0; col < WB_FONT_COLS; col++) {
                if (wb_font5x7[g][row][col] != '#') continue;
                int u = pen + col * scale, v = row * scale;
                if (up)
                    fill_clip(c, &r, x + v, y - u - scale + 1, scale, scale, rgb);
                else
                    fill_clip(c, &r, x + u, y + v, scale, scale, rgb);
            }
        }
        pen += WB_FONT_ADVANCE * scale;
    }
    return pen ? pen - scale : 0;
}

int wb_canvas_text(wb_canvas *c, int x, int y, const char *s, uint32_t rgb, int scale) {
    return draw_text(c, x, y, s, rgb, scale, 0);
}

int wb_canvas_text_up(wb_canvas *c, int x, int y, const char *s, uint32_t rgb, int scale) {
    return draw_text(c, x, y, s, rgb, scale, 1);
}

/* Copies s into buf as plain printable ASCII that fits max_w pixels at the
 * given scale, ending in ".." when cut. Returns buf. */
static const char *fit_text(const char *s, int max_w, int scale, char *buf, size_t cap) {
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    int g;
    while (n + 1 < cap && (g = next_glyph(&p)) >= 0) buf[n++] = (char)(g + WB_FONT_FIRST);
    buf[n] = 0;
    int max_chars = (max_w + scale) / (WB_FONT_ADVANCE * scale);
    if (max_chars < 0) max_chars = 0;
    if ((int)n > max_chars) {
        n = (size_t)max_chars;
        buf[n] = 0;
        if (n >= 3) buf[n - 1] = buf[n - 2] = '.';
    }
    return buf;
}

/* ======================================================================== */
/* palette and style                                                         */
/* ======================================================================== */

static const uint32_t PALETTE[WB_PALETTE_SIZE] = {
    /* Tableau 10 */
    0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf,
    /* companions: black, dark and light tints that stay apart from the above */
    0x000000, 0x393b79, 0x637939, 0xb5891b, 0x843c39, 0x7b4173, 0x6baed6, 0xfd8d3c, 0x74c476, 0x9e9ac8};

uint32_t wb_palette(int i) {
    int k = i % WB_PALETTE_SIZE;
    return PALETTE[k < 0 ? k + WB_PALETTE_SIZE : k];
}

#define COL_BG 0xffffffu
#define COL_GRID 0xebebebu
#define COL_FRAME 0x404040u
#define COL_TEXT 0x202020u
#define COL_NOTE 0x707070u
#define COL_LEGEND_BORDER 0xbbbbbbu
#define COL_SET_A 0x3b6ea8u /* reference / data: muted blue */
#define COL_SET_B 0xe4572eu /* samples / student: orange-red */

/* ======================================================================== */
/* axes: ranges, ticks, labels                                               */
/* ======================================================================== */

/* Makes [lo, hi] a usable axis range: non-finite (no data) becomes [-1, 1],
 * an empty or tiny span (all points equal) is widened around its value,
 * otherwise a margin of pad*span is added on each side. */
static void fix_range(double *lo, double *hi, double pad) {
    if (!isfinite(*lo) || !isfinite(*hi) || *lo > *hi) {
        *lo = -1.0;
        *hi = 1.0;
        return;
    }
    double span = *hi - *lo;
    double mag = fmax(fabs(*lo), fabs(*hi));
    /* floats carry ~7 digits: below that the "range" is rounding noise. */
    if (span <= mag * 1e-6) {
        double d = mag > 0.0 ? mag * 0.1 : 1.0;
        *lo -= d;
        *hi += d;
        return;
    }
    *lo -= span * pad;
    *hi += span * pad;
}

#define MAX_TICKS 48
#define TICK_LABEL_CAP 24

typedef struct {
    int n;
    double pos[MAX_TICKS]; /* in axis space (log10 for a log axis) */
    char lab[MAX_TICKS][TICK_LABEL_CAP];
} ticks;

/* "1.5e+07" -> "1.5e7", "2e-05" -> "2e-5": shorter labels in a small font. */
static void tidy_exponent(char *s) {
    char *e = strchr(s, 'e');
    if (!e) return;
    char *src = e + 1, *dst = e + 1;
    if (*src == '+') src++;
    else if (*src == '-') *dst++ = *src++;
    while (*src == '0' && src[1]) src++;
    memmove(dst, src, strlen(src) + 1);
}

/* Labels for evenly spaced ticks: fixed decimals from the step (so 0.0 0.5
 * 1.0 line up), %g for very large or very fine scales. */
static void label_linear(ticks *t, double step) {
    double maxabs = 0.0;
    for (int i = 0; i < t->n; i++) maxabs = fmax(maxabs, fabs(t->pos[i]));
    int sci = maxabs >= 1e5 || step < 1e-4;
    int dec = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    int prec = maxabs > 0.0 ? (int)floor(log10(maxabs)) - (int)floor(log10(step)) + 1 : 1;
    dec = clampi(dec, 0, 9);
    prec = clampi(prec, 1, 9);
    for (int i = 0; i < t->n; i++) {
        double v = t->pos[i];
        if (fabs(v) < step * 1e-6) v = 0.0; /* no "-0.0" */
        if (sci) {
            snprintf(t->lab[i], TICK_LABEL_CAP, "%.*g", prec, v);
            tidy_exponent(t->lab[i]);
        } else {
            snprintf(t->lab[i], TICK_LABEL_CAP, "%.*f", dec, v);
        }
    }
}

/* Ticks at multiples of a 1-2-5 step, about `target` of them in [lo, hi].
 * Returns the step (0 when none). */
static double nice_ticks(double lo, double hi, int target, ticks *t) {
    t->n = 0;
    if (target < 1) target = 1;
    double raw = (hi - lo) / target;
    if (!(raw > 0.0) || !isfinite(raw)) return 0.0;
    double mag = pow(10.0, floor(log10(raw)));
    double norm = raw / mag;
    double step = (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * mag;
    double k = ceil(lo / step - 1e-9);
    for (; t->n < MAX_TICKS; k += 1.0) {
        double v = k * step; /* k*step, not accumulation: no drift */
        if (v > hi + step * 1e-9) break;
        t->pos[t->n++] = v;
    }
    label_linear(t, step);
    return step;
}

static void label_log(ticks *t, int i, double v) {
    snprintf(t->lab[i], TICK_LABEL_CAP, (v >= 1e-3 && v < 1e5) ? "%.6g" : "%.3g", v);
    tidy_exponent(t->lab[i]);
}

/* Ticks on mantissas m (of n_m) times powers of ten within [lo10, hi10],
 * every `stride`-th decade. */
static void log_set(double lo10, double hi10, const int *m, int n_m, int stride, ticks *t) {
    t->n = 0;
    int e0 = (int)floor(lo10), e1 = (int)ceil(hi10);
    for (int e = e0; e <= e1; e++) {
        if (stride > 1 && ((e % stride) + stride) % stride != 0) continue;
        for (int j = 0; j < n_m && t->n < MAX_TICKS; j++) {
            double v = m[j] * pow(10.0, e);
            double a = log10(v);
            if (a < lo10 - 1e-9 || a > hi10 + 1e-9) continue;
            t->pos[t->n] = a;
            label_log(t, t->n, v);
            t->n++;
        }
    }
}

/* Log-axis ticks for [lo10, hi10] (log10 units) on an axis of `px` pixels
 * whose labels need `min_gap` pixels apart: decades when there are at least
 * 4, else the sparsest of 1-2-5 and 1..9 that fits and gives at least 3,
 * else the best seen, else plain 1-2-5 steps in value space (a narrow range
 * inside one decade). */
static void log_ticks(double lo10, double hi10, double px, double min_gap, int target, ticks *t) {
    static const int M1[] = {1}, M125[] = {1, 2, 5}, M19[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    double px_per_dec = px / (hi10 - lo10);
    double gap_dec = min_gap / px_per_dec; /* decades needed between labels */
    int ndec = (int)(floor(hi10) - ceil(lo10)) + 1;
    int stride = (int)ceil(fmax(gap_dec, (double)ndec / target));
    if (stride < 1) stride = 1;
    ticks best;
    log_set(lo10, hi10, M1, 1, stride, t);
    if (t->n >= 4) return;
    best = *t;
    if (gap_dec <= log10(2.5)) { /* 2..5 is the narrowest 1-2-5 gap */
        log_set(lo10, hi10, M125, 3, 1, t);
        if (t->n >= 3) return;
        if (t->n > best.n) best = *t;
    }
    if (gap_dec <= log10(10.0 / 9.0)) {
        log_set(lo10, hi10, M19, 9, 1, t);
        if (t->n >= 3) return;
        if (t->n > best.n) best = *t;
    }
    if (best.n >= 2) {
        *t = best;
        return;
    }
    /* Within one decade: linear ticks in value space, placed at log10. */
    ticks lin;
    nice_ticks(pow(10.0, lo10), pow(10.0, hi10), 4, &lin);
    t->n = 0;
    for (int i = 0; i < lin.n; i++) {
        if (!(lin.pos[i] > 0.0)) continue;
        t->pos[t->n] = log10(lin.pos[i]);
        memcpy(t->lab[t->n], lin.lab[i], TICK_LABEL_CAP);
        t->n++;
    }
}

static int max_label_width(const ticks *t) {
    int w = 0;
    for (int i = 0; i < t->n; i++) {
        int lw = wb_text_width(t->lab[i], 1);
        if (lw > w) w = lw;
    }
    return w;
}

/* x ticks: as many as fit without labels touching (>= 10 px apart). */
static void x_ticks(double lo, double hi, int px, ticks *t) {
    for (int target = clampi(px / 70, 2, 10); target >= 1; target--) {
        double step = nice_ticks(lo, hi, target, t);
        if (step <= 0.0) return;
        double step_px = step / (hi - lo) * px;
        if (step_px >= max_label_width(t) + 10 || target == 1) return;
    }
}

static void y_ticks(double lo, double hi, int px, int log_y, ticks *t) {
    if (log_y)
        log_ticks(lo, hi, px, WB_FONT_CAP_H + 12, clampi(px / 45, 2, 10), t);
    else
        nice_ticks(lo, hi, clampi(px / 45, 2, 10), t);
}

/* ======================================================================== */
/* frames (one plot area with its axes) and legends                          */
/* ======================================================================== */

typedef struct {
    irect area;               /* plot area in pixels */
    double xlo, xhi, ylo, yhi; /* axis space (log10 y when log_y) */
    int log_y;
} frame;

static double map_x(const frame *f, double ax) {
    return f->area.x0 + (ax - f->xlo) / (f->xhi - f->xlo) * (f->area.x1 - f->area.x0);
}
static double map_y(const frame *f, double ay) {
    return f->area.y1 - (ay - f->ylo) / (f->yhi - f->ylo) * (f->area.y1 - f->area.y0);
}

/* Pixel column/row of a tick at continuous position m on [lo, hi): ticks that
 * land on the far edge (within half a pixel) are pulled inside. -1: none. */
static int tick_px(double m, int lo, int hi) {
    if (!(m >= lo - 0.5 && m <= hi + 0.5)) return -1;
    return clampi((int)floor(m), lo, hi - 1);
}

static void draw_grid(wb_canvas *c, const frame *f, const ticks *tx, const ticks *ty) {
    const irect *a = &f->area;
    for (int i = 0; i < tx->n; i++) {
        int x = tick_px(map_x(f, tx->pos[i]), a->x0, a->x1);
        if (x >= 0) fill_clip(c, a, x, a->y0, 1, a->y1 - a->y0, COL_GRID);
    }
    for (int i = 0; i < ty->n; i++) {
        int y = tick_px(map_y(f, ty->pos[i]), a->y0, a->y1);
        if (y >= 0) fill_clip(c, a, a->x0, y, a->x1 - a->x0, 1, COL_GRID);
    }
}

/* Frame just outside the plot area (so it never hides data), outward tick
 * marks, and labels where asked. */
static void draw_axes(wb_canvas *c, const frame *f, const ticks *tx, const ticks *ty, int label_x, int label_y) {
    const irect *a = &f->area;
    wb_canvas_rect(c, a->x0 - 1, a->y0 - 1, a->x1 - a->x0 + 2, a->y1 - a->y0 + 2, COL_FRAME);
    for (int i = 0; i < tx->n; i++) {
        int x = tick_px(map_x(f, tx->pos[i]), a->x0, a->x1);
        if (x < 0) continue;
        wb_canvas_fill_rect(c, x, a->y1 + 1, 1, 4, COL_FRAME);
        if (label_x) wb_canvas_text(c, x - wb_text_width(tx->lab[i], 1) / 2, a->y1 + 8, tx->lab[i], COL_TEXT, 1);
    }
    for (int i = 0; i < ty->n; i++) {
        int y = tick_px(map_y(f, ty->pos[i]), a->y0, a->y1);
        if (y < 0) continue;
        wb_canvas_fill_rect(c, a->x0 - 5, y, 4, 1, COL_FRAME);
        if (label_y)
            wb_canvas_text(c, a->x0 - 8 - wb_text_width(ty->lab[i], 1), y - WB_FONT_CAP_H / 2, ty->lab[i], COL_TEXT, 1);
    }
}

enum { LEG_DOT, LEG_LINE, LEG_DASH, LEG_NOTE };

typedef struct {
    const char *text;
    uint32_t color;
    int kind;
} leg_item;

#define LEG_ROW 13
#define LEG_PAD 6
#define LEG_SWATCH 20
#define LEG_TEXT_MAX 48 /* characters shown per legend entry */

static void legend_size(const leg_item *it, int n, int *w, int *h) {
    int tw = 0;
    for (int i = 0; i < n; i++) {
        int g = glyph_count(it[i].text);
        if (g > LEG_TEXT_MAX) g = LEG_TEXT_MAX;
        int lw = g ? g * WB_FONT_ADVANCE - 1 : 0;
        if (it[i].kind != LEG_NOTE) lw += LEG_SWATCH + 6;
        if (lw > tw) tw = lw;
    }
    *w = n ? 2 * LEG_PAD + tw : 0;
    *h = n ? 2 * LEG_PAD + n * LEG_ROW - (LEG_ROW - 9) : 0;
}

static void legend_draw(wb_canvas *c, int x, int y, const leg_item *it, int n) {
    int w, h;
    legend_size(it, n, &w, &h);
    if (!n) return;
    wb_canvas_fill_rect(c, x, y, w, h, COL_BG);
    wb_canvas_rect(c, x, y, w, h, COL_LEGEND_BORDER);
    irect r = canvas_rect(c);
    for (int i = 0; i < n; i++) {
        int ty = y + LEG_PAD + i * LEG_ROW; /* top of the capitals */
        int tx = x + LEG_PAD;
        double mid = ty + WB_FONT_CAP_H / 2.0;
        if (it[i].kind == LEG_DOT) {
            dot_clip(c, &r, tx + LEG_SWATCH / 2.0, mid, 3.5, it[i].color, 1.0f);
        } else if (it[i].kind == LEG_LINE || it[i].kind == LEG_DASH) {
            int phase = 0;
            segment(c, &r, tx, mid, tx + LEG_SWATCH, mid, it[i].color, 2, it[i].kind == LEG_DASH ? &phase : NULL);
        }
        if (it[i].kind != LEG_NOTE) tx += LEG_SWATCH + 6;
        char buf[LEG_TEXT_MAX + 1];
        fit_text(it[i].text, LEG_TEXT_MAX * WB_FONT_ADVANCE, 1, buf, sizeof buf);
        wb_canvas_text(c, tx, ty, buf, it[i].kind == LEG_NOTE ? COL_NOTE : COL_TEXT, 1);
    }
}

/* Pixels in the rectangle that are data (not background or grid). */
static long data_pixels(const wb_canvas *c, int x, int y, int w, int h) {
    long n = 0;
    for (int yy = y; yy < y + h; yy++)
        for (int xx = x; xx < x + w; xx++) {
            uint32_t p = wb_canvas_get(c, xx, yy);
            if (p != COL_BG && p != COL_GRID) n++;
        }
    return n;
}

/* Puts a w*h legend in the corner of the plot area that hides the least
 * data (drawn data already on the canvas); ties prefer top-right. */
static void legend_place(const wb_canvas *c, const frame *f, int w, int h, int *x, int *y) {
    const irect *a = &f->area;
    const int in = 6;
    int cx[4] = {a->x1 - in - w, a->x0 + in, a->x1 - in - w, a->x0 + in};
    int cy[4] = {a->y0 + in, a->y0 + in, a->y1 - in - h, a->y1 - in - h};
    long best = -1;
    for (int k = 0; k < 4; k++) {
        long s = data_pixels(c, cx[k], cy[k], w, h);
        if (best < 0 || s < best) {
            best = s;
            *x = cx[k];
            *y = cy[k];
        }
    }
}

/* Title centred on cx: 2x when it fits max_w, else 1x, cut with "..". */
static void draw_title(wb_canvas *c, const char *title, int cx, int y, int max_w) {
    if (!title || !title[0]) return;
    char buf[256];
    int scale = wb_text_width(title, 2) <= max_w ? 2 : 1;
    fit_text(title, max_w, scale, buf, sizeof buf);
    wb_canvas_text(c, cx - wb_text_width(buf, scale) / 2, y, buf, COL_TEXT, scale);
}

/* ======================================================================== */
/* scatter figures                                                           */
/* ======================================================================== */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int point_ok(const float *xy, int i) { return isfinite(xy[2 * i]) && isfinite(xy[2 * i + 1]); }

/* [q, 1-q] quantile range of coordinate `coord` over the finite points of
 * several sets; NaN bounds when there are none. Falls back to min/max when
 * there is no memory for sorting (a figure, not an error). */
static void quantile_range(const float *const *sets, const int *ns, int nsets, int coord, double q, double *lo,
                           double *hi) {
    size_t m = 0;
    for (int s = 0; s < nsets; s++)
        for (int i = 0; i < ns[s]; i++) m += (size_t)point_ok(sets[s], i);
    *lo = *hi = NAN;
    if (!m) return;
    double *v = q > 0.0 ? malloc(m * sizeof *v) : NULL;
    if (!v) {
        double a = INFINITY, b = -INFINITY;
        for (int s = 0; s < nsets; s++)
            for (int i = 0; i < ns[s]; i++)
                if (point_ok(sets[s], i)) {
                    a = fmin(a, sets[s][2 * i + coord]);
                    b = fmax(b, sets[s][2 * i + coord]);
                }
        *lo = a;
        *hi = b;
        return;
    }
    size_t k = 0;
    for (int s = 0; s < nsets; s++)
        for (int i = 0; i < ns[s]; i++)
            if (point_ok(sets[s], i)) v[k++] = sets[s][2 * i + coord];
    qsort(v, m, sizeof *v, cmp_double);
    size_t cut = (size_t)floor(q * (double)(m - 1));
    *lo = v[cut];
    *hi = v[m - 1 - cut];
    free(v);
}

/* Automatic scatter bounds: robust quantile range plus a margin. When the
 * two spans are comparable (ratio <= 3, as for 2-D toy distributions) both
 * axes get the same span so circles stay circles. */
static void auto_bounds(const float *const *sets, const int *ns, int nsets, double b[4]) {
    quantile_range(sets, ns, nsets, 0, 0.005, &b[0], &b[1]);
    quantile_range(sets, ns, nsets, 1, 0.005, &b[2], &b[3]);
    fix_range(&b[0], &b[1], 0.08);
    fix_range(&b[2], &b[3], 0.08);
    double sx = b[1] - b[0], sy = b[3] - b[2];
    double big = fmax(sx, sy), small = fmin(sx, sy);
    if (small > 0.0 && big / small <= 3.0) {
        double mx = 0.5 * (b[0] + b[1]), my = 0.5 * (b[2] + b[3]);
        b[0] = mx - big / 2;
        b[1] = mx + big / 2;
        b[2] = my - big / 2;
        b[3] = my + big / 2;
    }
}

static int check_bounds(const char *path, const float *bounds, double b[4]) {
    for (int k = 0; k < 4; k++) b[k] = bounds[k];
    if (!(isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3]) && b[0] < b[1] && b[2] < b[3])) {
        wb_set_error("plot %s: invalid bounds {%g, %g, %g, %g} (want finite xmin < xmax, ymin < ymax)", path, b[0],
                     b[1], b[2], b[3]);
        return -1;
    }
    return 0;
}

static int check_set(const char *path, const char *what, const float *xy, int n) {
    if (n < 0) {
        wb_set_error("plot %s: %s: negative count %d", path, what, n);
        return -1;
    }
    if (n > 0 && !xy) {
        wb_set_error("plot %s: %s: NULL points for n = %d", path, what, n);
        return -1;
    }
    return 0;
}

/* Dot radius and opacity by point count and panel size: dense clouds need
 * small faint dots to show density, a few hundred points need visible ones. */
static void dot_style(int n, int panel_px, double *rad, float *alpha) {
    double r = n <= 300 ? 2.6 : n <= 3000 ? 1.9 : n <= 30000 ? 1.3 : 1.0;
    float a = n <= 300 ? 0.75f : n <= 3000 ? 0.45f : n <= 30000 ? 0.25f : 0.15f;
    double s = panel_px / 400.0;
    s = s < 0.6 ? 0.6 : s > 1.2 ? 1.2 : s;
    *rad = r * s;
    *alpha = a;
}

/* Draws the finite in-bounds points; returns how many were not drawn. */
static long draw_points(wb_canvas *c, const frame *f, const float *xy, int n, uint32_t color) {
    double rad;
    float alpha;
    dot_style(n, f->area.x1 - f->area.x0, &rad, &alpha);
    long skipped = 0;
    for (int i = 0; i < n; i++) {
        double x = xy[2 * i], y = xy[2 * i + 1];
        if (!(x >= f->xlo && x <= f->xhi && y >= f->ylo && y <= f->yhi)) { /* NaN fails too */
            skipped++;
            continue;
        }
        dot_clip(c, &f->area, map_x(f, x), map_y(f, y), rad, color, alpha);
    }
    return skipped;
}

static int write_and_free(wb_canvas *c, const char *path) {
    int rc = wb_canvas_write_png(c, path);
    wb_canvas_free(c);
    return rc;
}

int wb_plot_scatter(const char *path, const char *title, const float *xy_a, int n_a, const char *label_a,
                    const float *xy_b, int n_b, const char *label_b, const float *bounds) {
    if (!path || !path[0]) {
        wb_set_error("plot: NULL or empty path");
        return -1;
    }
    if (check_set(path, "set a", xy_a, n_a) || check_set(path, "set b", xy_b, n_b)) return -1;
    double b[4];
    if (bounds) {
        if (check_bounds(path, bounds, b)) return -1;
    } else {
        const float *sets[2] = {xy_a, xy_b};
        int ns[2] = {n_a, n_b};
        auto_bounds(sets, ns, 2, b);
    }

    const int W = 480, H = 480;
    int top = (title && title[0]) ? 36 : 14, bottom = 26, right = 16;
    frame f = {.xlo = b[0], .xhi = b[1], .ylo = b[2], .yhi = b[3], .log_y = 0};
    ticks tx, ty;
    y_ticks(f.ylo, f.yhi, H - top - bottom, 0, &ty);
    int left = 16 + max_label_width(&ty);
    x_ticks(f.xlo, f.xhi, W - left - right, &tx);
    f.area = (irect){left, top, W - right, H - bottom};

    wb_canvas *c = wb_canvas_new(W, H);
    if (!c) return -1;
    draw_grid(c, &f, &tx, &ty);
    long out = draw_points(c, &f, xy_a, n_a, COL_SET_A) + draw_points(c, &f, xy_b, n_b, COL_SET_B);
    draw_axes(c, &f, &tx, &ty, 1, 1);

    leg_item items[3];
    int ni = 0;
    if (label_a && label_a[0]) items[ni++] = (leg_item){label_a, COL_SET_A, LEG_DOT};
    if (label_b && label_b[0]) items[ni++] = (leg_item){label_b, COL_SET_B, LEG_DOT};
    char note[64];
    if (out > 0) {
        snprintf(note, sizeof note, "%ld outside view", out);
        items[ni++] = (leg_item){note, COL_NOTE, LEG_NOTE};
    }
    if (ni) {
        int lw, lh, lx, ly;
        legend_size(items, ni, &lw, &lh);
        legend_place(c, &f, lw, lh, &lx, &ly);
        legend_draw(c, lx, ly, items, ni);
    }
    draw_title(c, title, W / 2, 10, W - 20);
    return write_and_free(c, path);
}

int wb_plot_scatter_grid(const char *path, int n_panels, const wb_scatter_panel *panels, int columns,
                         const float *bounds) {
    if (!path || !path[0]) {
        wb_set_error("plot: NULL or empty path");
        return -1;
    }
    if (n_panels < 0 || (n_panels > 0 && !panels)) {
        wb_set_error("plot %s: invalid panels (n_panels = %d, panels %s)", path, n_panels, panels ? "set" : "NULL");
        return -1;
    }
    for (int i = 0; i < n_panels; i++)
        if (check_set(path, "panel reference", panels[i].ref, panels[i].n_ref) ||
            check_set(path, "panel samples", panels[i].xy, panels[i].n))
            return -1;
    if (n_panels == 0) {
        wb_canvas *c = wb_canvas_new(240, 60);
        if (!c) return -1;
        wb_canvas_text(c, 12, 26, "(no panels)", COL_NOTE, 1);
        return write_and_free(c, path);
    }

    double b[4];
    if (bounds) {
        if (check_bounds(path, bounds, b)) return -1;
    } else {
        /* Shared axes from the reference points, so one diverged run cannot
         * squash every other panel; samples only if there are no refs. */
        const float **sets = malloc((size_t)n_panels * sizeof *sets);
        int *ns = malloc((size_t)n_panels * sizeof *ns);
        if (!sets || !ns) {
            free(sets);
            free(ns);
            wb_set_error("plot %s: out of memory", path);
            return -1;
        }
        long total_ref = 0;
        for (int i = 0; i < n_panels; i++) total_ref += panels[i].n_ref;
        for (int i = 0; i < n_panels; i++) {
            sets[i] = total_ref ? panels[i].ref : panels[i].xy;
            ns[i] = total_ref ? panels[i].n_ref : panels[i].n;
        }
        auto_bounds(sets, ns, n_panels, b);
        free(sets);
        free(ns);
    }

    int cols = columns > 0 ? columns : (int)ceil(sqrt((double)n_panels));
    if (cols > n_panels) cols = n_panels;
    int rows = (n_panels + cols - 1) / cols;
    const int P = 200, gap = 14, title_h = 14, legend_h = 22, bottom = 24;
    ticks tx, ty;
    y_ticks(b[2], b[3], P, 0, &ty);
    x_ticks(b[0], b[1], P, &tx);
    int left = 14 + max_label_width(&ty);
    int right = 12 + (tx.n ? wb_text_width(tx.lab[tx.n - 1], 1) / 2 : 0);
    long W = left + (long)cols * P + (long)(cols - 1) * gap + right;
    long H = legend_h + (long)rows * (title_h + P) + (long)(rows - 1) * gap + bottom;
    if (W > WB_CANVAS_MAX_DIM || H > WB_CANVAS_MAX_DIM) {
        wb_set_error("plot %s: %d panels in %d columns need %ldx%ld pixels (max %d)", path, n_panels, cols, W, H,
                     WB_CANVAS_MAX_DIM);
        return -1;
    }
    wb_canvas *c = wb_canvas_new((int)W, (int)H);
    if (!c) return -1;

    /* One legend for the whole figure, top left. */
    const leg_item key[2] = {{"reference", COL_SET_A, LEG_DOT}, {"samples", COL_SET_B, LEG_DOT}};
    {
        irect r = canvas_rect(c);
        int x = left;
        for (int k = 0; k < 2; k++) {
            dot_clip(c, &r, x + 4, 8 + WB_FONT_CAP_H / 2.0, 3.5, key[k].color, 1.0f);
            x += 12 + wb_canvas_text(c, x + 12, 8, key[k].text, COL_TEXT, 1) + 16;
        }
    }

    for (int i = 0; i < n_panels; i++) {
        int col = i % cols, row = i / cols;
        int x0 = left + col * (P + gap), y0 = legend_h + row * (title_h + P + gap) + title_h;
        frame f = {.area = {x0, y0, x0 + P, y0 + P}, .xlo = b[0], .xhi = b[1], .ylo = b[2], .yhi = b[3]};
        draw_grid(c, &f, &tx, &ty);
        long out = draw_points(c, &f, panels[i].ref, panels[i].n_ref, COL_SET_A);
        out += draw_points(c, &f, panels[i].xy, panels[i].n, COL_SET_B);
        /* Shared axes: numbers only on the left column and on panels with
         * nothing below them. */
        draw_axes(c, &f, &tx, &ty, i + cols >= n_panels, col == 0);
        char buf[64];
        fit_text(panels[i].title, P, 1, buf, sizeof buf);
        wb_canvas_text(c, x0 + P / 2 - wb_text_width(buf, 1) / 2, y0 - title_h + 2, buf, COL_TEXT, 1);
        if (out > 0) {
            snprintf(buf, sizeof buf, "%ld outside", out);
            int w = wb_text_width(buf, 1);
            wb_canvas_fill_rect(c, x0 + P - w - 6, y0 + P - 13, w + 4, 11, COL_BG);
            wb_canvas_text(c, x0 + P - w - 4, y0 + P - 11, buf, COL_NOTE, 1);
        }
    }
    return write_and_free(c, path);
}

/* ======================================================================== */
/* line plots                                                                */
/* ======================================================================== */

static double series_x(const wb_series *s, int i) { return s->x ? (double)s->x[i] : (double)i; }

/* A point is drawable when finite (and positive on a log axis). */
static int series_ok(const wb_series *s, int i, int log_y) {
    double x = series_x(s, i), y = s->y[i];
    return isfinite(x) && isfinite(y) && (!log_y || y > 0.0);
}

/* Point i's band in axis space (lo ≤ hi), or 0 when it has none to draw. */
static int band_at(const wb_series *s, int i, int log_y, double *lo, double *hi) {
    if (!s->lo || !s->hi || !series_ok(s, i, log_y)) return 0;
    double a = s->lo[i], b = s->hi[i];
    if (!isfinite(a) || !isfinite(b) || (log_y && (a <= 0.0 || b <= 0.0))) return 0;
    if (log_y) a = log10(a), b = log10(b);
    *lo = fmin(a, b);
    *hi = fmax(a, b);
    return 1;
}

/* The band of one series: between neighbouring points with a band, every
 * pixel column from one to the next is filled between the interpolated lo
 * and hi (each column once, so the alpha is even); a point with a band and
 * no neighbour with one gets a vertical error bar. */
static void draw_band(wb_canvas *c, const frame *f, const wb_series *se, int log_y, uint32_t col) {
    const float alpha = 0.16f;
    for (int i = 0; i < se->n; i++) {
        double lo0, hi0, lo1, hi1;
        if (!band_at(se, i, log_y, &lo0, &hi0)) continue;
        int next = i + 1 < se->n && band_at(se, i + 1, log_y, &lo1, &hi1);
        int prev = i > 0 && band_at(se, i - 1, log_y, &lo1, &hi1);
        double px0 = map_x(f, series_x(se, i));
        if (!next) {
            if (!prev) {
                double ya = map_y(f, hi0), yb = map_y(f, lo0);
                segment(c, &f->area, px0, ya, px0, yb, col, 1, NULL);
                segment(c, &f->area, px0 - 3, ya, px0 + 3, ya, col, 1, NULL);
                segment(c, &f->area, px0 - 3, yb, px0 + 3, yb, col, 1, NULL);
            }
            continue;
        }
        band_at(se, i + 1, log_y, &lo1, &hi1);
        double px1 = map_x(f, series_x(se, i + 1));
        if (px1 < px0) continue; /* x not increasing: no band for this stretch */
        int x_first = (int)ceil(px0), x_end = (int)ceil(px1);
        if (!(i + 2 < se->n && band_at(se, i + 2, log_y, &(double){0}, &(double){0}))) x_end = (int)floor(px1) + 1;
        for (int x = x_first; x < x_end; x++) {
            double t = px1 > px0 ? ((double)x - px0) / (px1 - px0) : 0.0;
            double ytop = map_y(f, hi0 + t * (hi1 - hi0)), ybot = map_y(f, lo0 + t * (lo1 - lo0));
            for (int y = (int)ceil(ytop); y <= (int)floor(ybot); y++) blend_clip(c, &f->area, x, y, col, alpha);
        }
    }
}

int wb_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel, int n_series,
                  const wb_series *series, int log_y) {
    if (!path || !path[0]) {
        wb_set_error("plot: NULL or empty path");
        return -1;
    }
    if (n_series < 0 || (n_series > 0 && !series)) {
        wb_set_error("plot %s: invalid series (n_series = %d, series %s)", path, n_series, series ? "set" : "NULL");
        return -1;
    }
    for (int s = 0; s < n_series; s++) {
        if (series[s].n < 0 || (series[s].n > 0 && !series[s].y)) {
            wb_set_error("plot %s: series %d: invalid points (n = %d, y %s)", path, s, series[s].n,
                         series[s].y ? "set" : "NULL");
            return -1;
        }
    }

    /* Data ranges in axis space. */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            if (!series_ok(&series[s], i, log_y)) continue;
            double x = series_x(&series[s], i), y = log_y ? log10(series[s].y[i]) : series[s].y[i];
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
            ylo = fmin(ylo, y);
            yhi = fmax(yhi, y);
            double blo, bhi;
            if (band_at(&series[s], i, log_y, &blo, &bhi)) {
                ylo = fmin(ylo, blo);
                yhi = fmax(yhi, bhi);
            }
        }
    fix_range(&xlo, &xhi, 0.02);
    fix_range(&ylo, &yhi, 0.05);

    /* Legend entries (names may be NULL). */
    leg_item *items = n_series ? malloc((size_t)n_series * sizeof *items) : NULL;
    char(*names)[24] = n_series ? malloc((size_t)n_series * sizeof *names) : NULL;
    if (n_series && (!items || !names)) {
        free(items);
        free(names);
        wb_set_error("plot %s: out of memory", path);
        return -1;
    }
    for (int s = 0; s < n_series; s++) {
        const char *name = series[s].name;
        if (!name || !name[0]) {
            snprintf(names[s], sizeof names[s], "series %d", s);
            name = names[s];
        }
        /* Colours 10..19 are the weaker half of the palette; dashes keep
         * those series apart from the first ten (past 20 it alternates). */
        int second_half = (s % WB_PALETTE_SIZE) >= WB_PALETTE_SIZE / 2;
        int odd_round = (s / WB_PALETTE_SIZE) % 2;
        items[s] = (leg_item){name, wb_palette(s), second_half != odd_round ? LEG_DASH : LEG_LINE};
    }
    int lw = 0, lh = 0;
    legend_size(items, n_series, &lw, &lh);
    int outside = n_series > 6;

    int top = (title && title[0]) ? 36 : 14;
    int bottom = 28 + ((xlabel && xlabel[0]) ? 16 : 0);
    int W = 640 + (outside ? lw + 14 : 0);
    int H = 420;
    if (outside && top + lh + bottom + 4 > H) H = top + lh + bottom + 4;
    if (H > WB_CANVAS_MAX_DIM) H = WB_CANVAS_MAX_DIM;
    frame f = {.xlo = xlo, .xhi = xhi, .ylo = ylo, .yhi = yhi, .log_y = log_y};
    ticks tx, ty;
    y_ticks(ylo, yhi, H - top - bottom, log_y, &ty);
    int left = 16 + max_label_width(&ty) + ((ylabel && ylabel[0]) ? 16 : 0);
    int right = outside ? lw + 28 : 18;
    x_ticks(xlo, xhi, W - left - right, &tx);
    f.area = (irect){left, top, W - right, H - bottom};

    wb_canvas *c = wb_canvas_new(W, H);
    if (!c) {
        free(items);
        free(names);
        return -1;
    }
    draw_grid(c, &f, &tx, &ty);
    for (int s = 0; s < n_series; s++) draw_band(c, &f, &series[s], log_y, wb_palette(s)); /* under every line */
    for (int s = 0; s < n_series; s++) {
        const wb_series *se = &series[s];
        uint32_t col = wb_palette(s);
        int phase = 0, *dash = items[s].kind == LEG_DASH ? &phase : NULL;
        for (int i = 0; i < se->n; i++) {
            if (!series_ok(se, i, log_y)) continue;
            double px = map_x(&f, series_x(se, i));
            double py = map_y(&f, log_y ? log10(se->y[i]) : se->y[i]);
            int prev = i > 0 && series_ok(se, i - 1, log_y);
            int next = i + 1 < se->n && series_ok(se, i + 1, log_y);
            if (next) {
                double qx = map_x(&f, series_x(se, i + 1));
                double qy = map_y(&f, log_y ? log10(se->y[i + 1]) : se->y[i + 1]);
                segment(c, &f.area, px, py, qx, qy, col, 2, dash);
            } else if (!prev) {
                dot_clip(c, &f.area, px, py, 2.2, col, 1.0f); /* isolated point */
            }
        }
    }
    draw_axes(c, &f, &tx, &ty, 1, 1);
    int pw = f.area.x1 - f.area.x0, ph = f.area.y1 - f.area.y0;
    char buf[256];
    if (xlabel && xlabel[0]) {
        fit_text(xlabel, pw, 1, buf, sizeof buf);
        wb_canvas_text(c, f.area.x0 + pw / 2 - wb_text_width(buf, 1) / 2, f.area.y1 + 24, buf, COL_TEXT, 1);
    }
    if (ylabel && ylabel[0]) {
        fit_text(ylabel, ph, 1, buf, sizeof buf);
        wb_canvas_text_up(c, 6, f.area.y0 + ph / 2 + wb_text_width(buf, 1) / 2, buf, COL_TEXT, 1);
    }
    if (n_series) {
        int lx = f.area.x1 + 14, ly = f.area.y0;
        if (!outside) legend_place(c, &f, lw, lh, &lx, &ly);
        legend_draw(c, lx, ly, items, n_series);
    }
    draw_title(c, title, f.area.x0 + pw / 2, 10, W - 20);
    free(items);
    free(names);
    return write_and_free(c, path);
}
