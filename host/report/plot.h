/* host/report/plot.h — a small, dependency-free (libpng only) plotting module for
 * researchers' figures: an RGB canvas with primitives and a bitmap font, an
 * atomic PNG writer, and three ready-made figures (two-set scatter, grid of
 * scatter panels, line plot with optional log-y).
 *
 * Conventions:
 *   - Colours are 0xRRGGBB.
 *   - Canvas coordinates: x to the right, y down, (0,0) the top-left pixel.
 *     Every primitive clips to the canvas, so callers never bounds-check.
 *   - Functions that can fail return 0 on success and non-zero (or NULL) on
 *     failure with the reason in wb_last_error(). Only invalid arguments and
 *     I/O (or memory) failures are errors: empty sets, NaN/inf values and
 *     all-equal points are drawn as well as they can be.
 *   - Every PNG is written atomically: to PATH.tmp, then renamed over PATH.
 *     A failed write leaves an existing PATH untouched and no PATH.tmp.
 */
#ifndef WB_PLOT_H
#define WB_PLOT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- PNG ------------------------------------------------------------------ */
/* 8-bit RGB, rows top to bottom, width*3 bytes a row, no padding. */
int wb_png_write_rgb(const char *path, int width, int height, const uint8_t *rgb);

/* ---- canvas ---------------------------------------------------------------- */
#define WB_CANVAS_MAX_DIM 16384

/* Pixels are public so callers can read back or post-process a figure:
 * rgb[(y*w + x)*3 + {0,1,2}]. */
typedef struct wb_canvas {
    int w, h;
    uint8_t *rgb;
} wb_canvas;

/* A white canvas; NULL (with error) for w/h <= 0 or > WB_CANVAS_MAX_DIM. */
wb_canvas *wb_canvas_new(int w, int h);
void wb_canvas_free(wb_canvas *c);
int wb_canvas_write_png(const wb_canvas *c, const char *path);

void wb_canvas_set(wb_canvas *c, int x, int y, uint32_t rgb);
uint32_t wb_canvas_get(const wb_canvas *c, int x, int y); /* 0xffffff outside */
/* dst = alpha*rgb + (1-alpha)*dst, alpha clamped to [0, 1]. */
void wb_canvas_blend(wb_canvas *c, int x, int y, uint32_t rgb, float alpha);

/* Bresenham line, endpoints included; thickness 1..3 (a square brush). */
void wb_canvas_line(wb_canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb, int thickness);
/* Outline and filled axis-aligned rectangles; (x, y) top-left, w*h pixels. */
void wb_canvas_rect(wb_canvas *c, int x, int y, int w, int h, uint32_t rgb);
void wb_canvas_fill_rect(wb_canvas *c, int x, int y, int w, int h, uint32_t rgb);
/* Filled disc centred at (cx, cy) (pixel (x,y) covers [x,x+1)x[y,y+1)),
 * alpha-blended with a one-pixel soft edge, so thousands of overlapping
 * translucent dots show density. */
void wb_canvas_dot(wb_canvas *c, float cx, float cy, float radius, uint32_t rgb, float alpha);

/* Text in the built-in 5x7 font (printable ASCII; any other byte or UTF-8
 * sequence draws '?'). A glyph cell is 6*scale wide; capitals are 7*scale
 * tall with descenders 2*scale below. (x, y) is the top-left of the first
 * capital. scale is clamped to 1..8. Returns the width drawn in pixels. */
#define WB_FONT_ADVANCE 6
#define WB_FONT_CAP_H 7
int wb_canvas_text(wb_canvas *c, int x, int y, const char *s, uint32_t rgb, int scale);
/* The same rotated 90 degrees counter-clockwise (reads bottom to top, as a
 * y-axis label); (x, y) is where the top-left of the first capital lands,
 * i.e. the text occupies x..x+7*scale and runs upward from y. */
int wb_canvas_text_up(wb_canvas *c, int x, int y, const char *s, uint32_t rgb, int scale);
int wb_text_width(const char *s, int scale); /* pixels, no trailing gap */

/* A palette of 20 colours distinguishable on white (Tableau 10, then ten
 * darker/lighter companions); i wraps around. */
#define WB_PALETTE_SIZE 20
uint32_t wb_palette(int i);

/* ---- figures ----------------------------------------------------------------
 * bounds: {xmin, xmax, ymin, ymax} (finite, min < max) or NULL for automatic
 * bounds. Points outside the bounds (and NaN/inf points) are not drawn and
 * are counted in a note ("N outside view").
 */

/* Two point sets, xy interleaved (x0,y0,x1,y1,...): set a (e.g. data, blue)
 * under set b (e.g. student samples, orange), small translucent dots whose
 * size and opacity adapt to n. 480x480. Labels may be NULL (no legend
 * entry). Automatic bounds cover the 0.5%..99.5% quantiles of both sets
 * (so a few exploded samples do not squash the figure), plus a margin. */
int wb_plot_scatter(const char *path, const char *title,
                    const float *xy_a, int n_a, const char *label_a,
                    const float *xy_b, int n_b, const char *label_b,
                    const float *bounds);

typedef struct {
    const char *title; /* may be NULL */
    const float *ref;  /* reference points (xy interleaved), drawn first */
    int n_ref;
    const float *xy;   /* samples (xy interleaved), drawn on top */
    int n;
} wb_scatter_panel;

/* n_panels square panels with shared axes, `columns` a row (<= 0: about
 * square). Automatic bounds come from the reference points of all panels
 * (samples if there are none), so one diverged run cannot squash the rest. */
int wb_plot_scatter_grid(const char *path, int n_panels, const wb_scatter_panel *panels,
                         int columns, const float *bounds);

typedef struct {
    const char *name; /* legend text; NULL: "series <i>" */
    const float *x;   /* NULL: 0, 1, ..., n-1 */
    const float *y;
    int n;
    const float *lo, *hi; /* optional (both or neither, n each): the spread
                             around y (seeds' min and max, an interval) */
} wb_series;

/* Line plot, one palette colour per series (series 10..19 also dashed), a
 * legend (inside, in the emptiest corner, for <= 6 series; to the right
 * otherwise), 1-2-5 ticks. log_y: logarithmic y axis, non-positive values
 * skipped. NaN/inf (or skipped) points break the line; isolated points are
 * drawn as dots. A series with lo/hi gets a translucent band of its colour
 * between them (an error bar at an isolated point). 640x420 plus the
 * outside legend. */
int wb_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  int n_series, const wb_series *series, int log_y);

/* ---- image grid (host/report/image_grid.c) -------------------------------------------
 * images: n NCHW images, c = 1 or 3 channels, values in [-1, 1] (clamped;
 * v ↦ round((v + 1) / 2 · 255)). Grey images are written as RGB. `columns`
 * images a row (<= 0: ceil(sqrt(n))), each scaled up `scale` times by pixel
 * replication (<= 0 means 1), separated and framed by 2-px white gutters;
 * unused cells at the end stay white. NaN pixels are drawn magenta so that
 * a diverged sample is visible rather than black. The PNG is written
 * atomically (wb_png_write_rgb). Image size is limited to 16384 px a side. */
#define WB_GRID_GUTTER 2
int wb_png_image_grid(const char *path, const float *images, int n, int c, int h, int w, int columns,
                      int scale);

#ifdef __cplusplus
}
#endif

#endif /* WB_PLOT_H */
