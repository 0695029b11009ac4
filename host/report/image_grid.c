/* host/report/image_grid.c — a PNG grid of generated images (NCHW floats in
 * [-1, 1]) so that a distillation run's samples can be looked at; declared
 * in plot.h, written through plot.c's atomic PNG writer.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/plot.h"
#include "wb/tensor.h"

#define GRID_MAX_SIDE 16384

static uint8_t to_byte(float v) {
    if (v <= -1.0f) return 0;
    if (v >= 1.0f) return 255;
    return (uint8_t)lrintf((v + 1.0f) * 127.5f);
}

int wb_png_image_grid(const char *path, const float *images, int n, int c, int h, int w, int columns, int scale) {
    if (!path || !path[0] || !images) {
        wb_set_error("image grid: NULL path or images");
        return -1;
    }
    if (n < 1 || (c != 1 && c != 3) || h < 1 || w < 1) {
        wb_set_error("image grid: cannot write %s: need n >= 1, c = 1 or 3, h, w >= 1 (got n %d c %d h %d w %d)",
                     path, n, c, h, w);
        return -1;
    }
    if (scale <= 0) scale = 1;
    if (columns <= 0) {
        columns = (int)ceil(sqrt((double)n));
        if (columns < 1) columns = 1;
    }
    if (columns > n) columns = n;
    const int rows = (n + columns - 1) / columns, g = WB_GRID_GUTTER;
    /* Sizes in 64 bits first: a bad scale must not overflow int. */
    int64_t cw = (int64_t)w * scale, ch = (int64_t)h * scale;
    int64_t W = columns * (cw + g) + g, H = rows * (ch + g) + g;
    if (W > GRID_MAX_SIDE || H > GRID_MAX_SIDE) {
        wb_set_error("image grid: cannot write %s: %lldx%lld pixels exceeds %d a side", path, (long long)W,
                     (long long)H, GRID_MAX_SIDE);
        return -1;
    }
    uint8_t *rgb = malloc((size_t)W * (size_t)H * 3);
    if (!rgb) {
        wb_set_error("image grid: cannot write %s: out of memory", path);
        return -1;
    }
    memset(rgb, 255, (size_t)W * (size_t)H * 3); /* gutters and empty cells stay white */
    const size_t plane = (size_t)h * (size_t)w;
    for (int i = 0; i < n; i++) {
        const float *img = images + (size_t)i * (size_t)c * plane;
        const int64_t x0 = g + (i % columns) * (cw + g), y0 = g + (i / columns) * (ch + g);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t px[3];
                int nan = 0;
                for (int k = 0; k < 3; k++) {
                    float v = img[(size_t)(c == 3 ? k : 0) * plane + (size_t)y * w + x];
                    if (isnan(v)) nan = 1;
                    px[k] = to_byte(v);
                }
                if (nan) { /* magenta: a diverged sample must not pass for a dark one */
                    px[0] = 255;
                    px[1] = 0;
                    px[2] = 255;
                }
                for (int sy = 0; sy < scale; sy++) {
                    uint8_t *row = rgb + ((size_t)(y0 + (int64_t)y * scale + sy) * (size_t)W +
                                          (size_t)(x0 + (int64_t)x * scale)) * 3;
                    for (int sx = 0; sx < scale; sx++) memcpy(row + (size_t)sx * 3, px, 3);
                }
            }
    }
    int rc = wb_png_write_rgb(path, (int)W, (int)H, rgb);
    free(rgb);
    return rc;
}
