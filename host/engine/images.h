/* host/engine/images.h — image datasets (Fashion-MNIST / MNIST gzip IDX, CIFAR-10
 * and CIFAR-100 binary, a folder of PNG files) as wb_dataset.
 *
 * Images are kept in memory as uint8 (C, H, W) planes and converted when
 * drawn: NCHW float32 scaled to [-1, 1] (x / 127.5 - 1, the EDM convention),
 * with the channel conversion, resize and padding chosen in the options.
 * ds->sample(ds, rng, n, out) draws n images uniformly with replacement from
 * the kept set and, when flips are on, mirrors each horizontally with
 * probability 1/2; all of it is deterministic in rng.
 *
 * Expected files under `path` (a directory):
 *   fashion-mnist, mnist  {train,t10k}-images-idx3-ubyte.gz and
 *                         {train,t10k}-labels-idx1-ubyte.gz (the name without
 *                         .gz is tried when the .gz is absent)
 *   cifar10               data_batch_1..5.bin (train), test_batch.bin (test):
 *                         records of 1 label byte + 3072 pixel bytes
 *                         (R, G, B planes of 32x32)
 *   cifar100              train.bin, test.bin: records of coarse label byte,
 *                         fine label byte + 3072 pixel bytes
 *   png-folder            every *.png in the directory (sorted by name),
 *                         8-bit gray or RGB (libpng converts other formats);
 *                         all labels 0
 *
 * Errors: NULL / non-zero with a message in wb_last_error() naming the file
 * and what is wrong.
 */
#ifndef WB_IMAGES_H
#define WB_IMAGES_H

#include <stdint.h>

#include "engine/engine.h"

typedef enum { WB_RESIZE_NEAREST = 0, WB_RESIZE_BILINEAR = 1 } wb_resize_mode;

typedef struct wb_image_options {
    const char *split;      /* "train" (also when NULL) or "test"; ignored by png-folder   */
    const int *include;     /* keep only these labels (n_include > 0), else all            */
    int n_include;
    const int *exclude;     /* then drop these labels                                      */
    int n_exclude;
    int resize_to;          /* > 0: resize to resize_to x resize_to (before padding)       */
    wb_resize_mode resize;  /* how resize_to resamples                                     */
    int pad_to;             /* > 0: centre in pad_to x pad_to, border = -1 (pixel 0)       */
    int channels;           /* 0: as stored; 1 or 3: convert (gray -> RGB replicates,
                               RGB -> gray is BT.601 luma)                                 */
    int flip;               /* sample(): horizontal flip with probability 1/2              */
    int64_t max_images;     /* 0: all; else the first max_images kept after filtering     */
    int cifar100_coarse;    /* cifar100: the 20 coarse labels instead of the 100 fine ones */
} wb_image_options;

/* train split, no filtering, native size and channels, no flips, all images. */
void wb_image_options_default(wb_image_options *opt);

/* kind: "fashion-mnist" | "mnist" | "cifar10" | "cifar100" | "png-folder".
 * opt may be NULL (defaults). ds->name is "<kind>-<split>" ("png-folder"). */
wb_dataset *wb_images_open(const char *kind, const char *path, const wb_image_options *opt);

/* 1 when ds came from wb_images_open (the accessors below need that). */
int wb_images_is(const wb_dataset *ds);
/* Images kept after filtering and max_images; -1 if ds is not an image set. */
int64_t wb_images_count(const wb_dataset *ds);
/* Size of the label space (10, 100 or 20 coarse, 1 for png-folder), not the
 * number of labels present after filtering; -1 if ds is not an image set. */
int wb_images_n_classes(const wb_dataset *ds);
/* Label of kept image index, or -1 (error set) when out of range. */
int wb_images_label(const wb_dataset *ds, int64_t index);
/* Kept image index converted to ds->dim floats (never flipped); label may
 * be NULL. */
int wb_images_get(const wb_dataset *ds, int64_t index, float *out, int *label);
/* ds->sample with the drawn images' labels (labels may be NULL); the same
 * draws as ds->sample for the same rng state. */
int wb_images_sample_labeled(wb_dataset *ds, wb_rng *rng, int64_t n, float *out, int *labels);

#endif
