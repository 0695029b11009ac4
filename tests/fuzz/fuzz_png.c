/* tests/fuzz/fuzz_png.c — fuzzes the PNG-folder reader (load_png_folder in
 * host/engine/images.c, through wb_images_open("png-folder", ...)): libpng's
 * simplified API under our size checks, the mixed-size resize, the channel
 * merge of gray and colour files.
 *
 * Input: byte 0 = the option set (fuzz_images_common.h; bit 3 also names
 * the files in upper case, *.PNG); the rest is cut at every "WBNEXT" into
 * at most four files a.png .. d.png of one folder (corrupt ones included:
 * one bad file fails the whole folder, naming it). Seeds: corpus/fuzz_png/
 * (make_corpus.py; png.dict has the chunk names).
 */
#include "fuzz_util.h"

#include "fuzz_images_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    fuzz_part parts[4];
    size_t n = fuzz_split(data + 1, size - 1, "WBNEXT", 6, parts, 4);
    char dir[512], path[1024];
    fuzz_fresh_dir(dir, sizeof dir, "png");
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%c.%s", dir, (char)('a' + i), flags & 8 ? "PNG" : "png");
        fuzz_write(path, parts[i].data, parts[i].size);
    }
    wb_image_options opt;
    fuzz_image_options(&opt, flags, 0);
    fuzz_open_images("png-folder", dir, &opt);
    return 0;
}
