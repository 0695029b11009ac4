/* tests/fuzz/fuzz_images_common.h — what the three image-set targets
 * (fuzz_idx.c, fuzz_cifar.c, fuzz_png.c) do once a folder is written: open
 * it with one of eight option sets (picked by the input's first byte), and
 * when it opens, read the first and last image, draw three labelled
 * samples, and free it. Include after fuzz_util.h.
 */
#ifndef WB_FUZZ_IMAGES_COMMON_H
#define WB_FUZZ_IMAGES_COMMON_H

#include "engine/images.h"
#include "wb/tensor.h"

/* Option set v (0..7) over the defaults: resizes up and down, padding,
 * channel conversion, flips, label filters, max_images. */
static inline void fuzz_image_options(wb_image_options *opt, unsigned v, int test_split) {
    static const int include[] = {1, 3}, exclude[] = {0};
    wb_image_options_default(opt);
    opt->split = test_split ? "test" : "train";
    switch (v & 7) {
    case 1: opt->resize_to = 8; break;
    case 2: opt->resize_to = 5, opt->resize = WB_RESIZE_NEAREST, opt->pad_to = 9; break;
    case 3: opt->channels = 3, opt->flip = 1; break;
    case 4: opt->include = include, opt->n_include = 2, opt->channels = 1; break;
    case 5: opt->exclude = exclude, opt->n_exclude = 1, opt->max_images = 2; break;
    case 6: opt->pad_to = 2; break; /* smaller than most images: refused */
    case 7: opt->resize_to = 1, opt->cifar100_coarse = 1; break;
    default: break;
    }
}

static inline void fuzz_open_images(const char *kind, const char *dir, const wb_image_options *opt) {
    wb_dataset *ds = wb_images_open(kind, dir, opt);
    fuzz_note(kind, !ds);
    if (!ds) return;
    int64_t count = wb_images_count(ds);
    float *img = malloc((size_t)ds->dim * 3 * sizeof *img);
    if (!img) abort();
    int label = -1, labels[3];
    wb_images_get(ds, 0, img, &label);
    wb_images_get(ds, count - 1, img, &label);
    wb_images_get(ds, count, img, &label); /* out of range: refused */
    wb_rng rng;
    wb_rng_init(&rng, 7, 0);
    wb_images_sample_labeled(ds, &rng, 3, img, labels);
    free(img);
    wb_dataset_free(ds);
}

#endif
