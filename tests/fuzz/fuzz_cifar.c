/* tests/fuzz/fuzz_cifar.c — fuzzes the CIFAR-10 / CIFAR-100 binary reader
 * (load_cifar in host/engine/images.c, through wb_images_open).
 *
 * Input: byte 0 = flags, the rest = the bytes of one batch file. Flags bits
 * 0..1 pick the set: 0 CIFAR-10 test (test_batch.bin), 1 CIFAR-10 train
 * (the bytes written to data_batch_1..5.bin; bit 2 leaves data_batch_5 out),
 * 2 CIFAR-100 (train.bin, or test.bin with bit 2) fine labels, 3 the same
 * with coarse labels; bits 5..7 the option set (fuzz_images_common.h).
 * Records are 1 (CIFAR-10) or 2 (CIFAR-100) label bytes + 3072 pixels.
 * Seeds: corpus/fuzz_cifar/ (make_corpus.py).
 */
#include "fuzz_util.h"

#include "fuzz_images_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    data++, size--;
    int set = flags & 3, alt = (flags >> 2) & 1;
    char dir[512], path[1024];
    fuzz_fresh_dir(dir, sizeof dir, "cifar");
    wb_image_options opt;
    const char *kind;
    if (set == 0) {
        kind = "cifar10";
        snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        fuzz_write(path, data, size);
        fuzz_image_options(&opt, flags >> 5, 1);
    } else if (set == 1) {
        kind = "cifar10";
        for (int b = 1; b <= (alt ? 4 : 5); b++) {
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
            fuzz_write(path, data, size);
        }
        fuzz_image_options(&opt, flags >> 5, 0);
    } else {
        kind = "cifar100";
        snprintf(path, sizeof path, "%s/%s.bin", dir, alt ? "test" : "train");
        fuzz_write(path, data, size);
        fuzz_image_options(&opt, flags >> 5, alt);
        opt.cifar100_coarse = set == 3;
    }
    fuzz_open_images(kind, dir, &opt);
    return 0;
}
