/* tests/fuzz/fuzz_idx.c — fuzzes the IDX reader of MNIST / Fashion-MNIST
 * (load_idx in host/engine/images.c, through wb_images_open), gzip and raw.
 *
 * Input: byte 0 = flags, bytes 1..4 = n, the images file's length (little
 * endian, clamped to what is there); then n bytes of the images file
 * ({train,t10k}-images-idx3-ubyte) and the rest, the labels file
 * ({train,t10k}-labels-idx1-ubyte). Flags: bit 0 the test split (t10k);
 * bit 1 / bit 2 gzip the images / labels bytes here before writing them (so
 * mutations of the IDX structure reach the reader through zlib; without it
 * the bytes are written as they are, which may themselves be gzip, corrupt
 * or not); bit 3 write the files without ".gz" (the plain-name fallback);
 * bit 4 kind "mnist" instead of "fashion-mnist"; bits 5..7 the option set
 * (fuzz_images_common.h). Seeds: corpus/fuzz_idx/ (make_corpus.py).
 */
#include "fuzz_util.h"

#include <zlib.h>

#include "fuzz_images_common.h"

static void write_maybe_gz(const char *path, const uint8_t *data, size_t n, int compress) {
    if (!compress) {
        fuzz_write(path, data, n);
        return;
    }
    gzFile g = gzopen(path, "wb1");
    if (!g || (n > 0 && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
        fprintf(stderr, "fuzz_idx: cannot write %s\n", path);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5) return 0;
    uint8_t flags = data[0];
    size_t n_images = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 | (size_t)data[4] << 24;
    data += 5, size -= 5;
    if (n_images > size) n_images = size;
    int test = flags & 1;
    const char *prefix = test ? "t10k" : "train", *ext = flags & 8 ? "" : ".gz";
    char dir[512], path[1024];
    fuzz_fresh_dir(dir, sizeof dir, "idx");
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, ext);
    write_maybe_gz(path, data, n_images, flags & 2);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, ext);
    write_maybe_gz(path, data + n_images, size - n_images, flags & 4);

    wb_image_options opt;
    fuzz_image_options(&opt, flags >> 5, test);
    fuzz_open_images(flags & 16 ? "mnist" : "fashion-mnist", dir, &opt);
    return 0;
}
