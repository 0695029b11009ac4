/* tests/test_lua_images.c — wb.data.images end to end: runs the built
 * `workbench` binary on small scripts in a temporary folder that also holds
 * a tiny generated CIFAR-10 set (five data_batch_N.bin files of 4 records:
 * the loader reads all five train batches). Checks the Dataset fields, the
 * option checking, deterministic sampling, that wb.teacher / wb.distill take
 * an image set with the flattening mlp, and that wb.evaluate refuses one
 * clearly. When /usr/share/datasets/fashion-mnist exists it is opened too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wb_test_util.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

#define CIFAR_BATCHES 5
#define CIFAR_PER_BATCH 4
#define CIFAR_RECORDS (CIFAR_BATCHES * CIFAR_PER_BATCH)

static char g_dir[256]; /* the temporary folder every script runs in */

typedef wb_test_result result;

/* Runs `workbench run s.lua` inside g_dir with stdout and stderr captured. */
static result run_script(const char *script) { return wb_test_run_script(g_dir, script, NULL, NULL); }

/* A script that must fail with exit 1 and an error containing n1 (and n2). */
static void expect_error(const char *script, const char *n1, const char *n2) {
    result r = run_script(script);
    WB_EXPECT_STATUS(r, 1);
    WB_EXPECT_IN(r.err, "workbench: s.lua:", r);
    WB_EXPECT_IN(r.err, n1, r);
    if (n2) WB_EXPECT_IN(r.err, n2, r);
    wb_test_result_free(&r);
}

/* ---- the tiny CIFAR-10 set -------------------------------------------------------- */
/* Record k (0-based over all batches) has label k % 3 and pixel j of its
 * 3072 bytes = (7k + j) mod 256, so a script can predict any value. */
static int write_cifar(const char *dir) {
    if (mkdir(dir, 0777) != 0) return -1;
    unsigned char rec[1 + 3072];
    for (int b = 0; b < CIFAR_BATCHES; b++) {
        char path[600]; /* dir is a path under g_dir (256) */
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b + 1);
        FILE *f = fopen(path, "wb");
        if (!f) return -1;
        for (int i = 0; i < CIFAR_PER_BATCH; i++) {
            int k = b * CIFAR_PER_BATCH + i;
            rec[0] = (unsigned char)(k % 3);
            for (int j = 0; j < 3072; j++) rec[1 + j] = (unsigned char)((7 * k + j) & 255);
            if (fwrite(rec, 1, sizeof rec, f) != sizeof rec) {
                fclose(f);
                return -1;
            }
        }
        if (fclose(f) != 0) return -1;
    }
    return 0;
}

static int setup(void **state) {
    (void)state;
    if (wb_test_mkdtemp(g_dir, sizeof g_dir, "/tmp/wb_test_lua_images_XXXXXX")) return -1;
    char path[512];
    snprintf(path, sizeof path, "%s/cifar", g_dir);
    if (write_cifar(path)) return -1;
    snprintf(path, sizeof path, "%s/empty", g_dir);
    return mkdir(path, 0777);
}

static int teardown(void **state) {
    (void)state;
    return wb_test_rm_rf(g_dir);
}

/* ---- fields, options, images -------------------------------------------------------- */
static void test_cifar_fields(void **state) {
    (void)state;
    /* labels are k % 3: 7 records of label 0, 7 of label 1 among 20 */
    result r = run_script(
        "local wb = require 'wb'\n"
        "local d = wb.data.images{kind = 'cifar10', path = 'cifar', include = {0, 1}}\n"
        "print(d.name, d.count, d.n_classes, d.channels, d.height, d.width, d.dim)\n"
        /* image 2 is record 1 (label 1); its first byte is 7 */
        "local im, lab = d:image(2)\n"
        "print(#im, im:dim(), lab, im:shape())\n"
        "assert(math.abs(im:get(1, 1) - (7 / 127.5 - 1)) < 1e-6)\n"
        "assert(math.abs(im:get(1, 3072) - ((7 + 3071) % 256 / 127.5 - 1)) < 1e-6)\n"
        /* resize then pad: 3x32x32 -> 16x16 -> centred in 20x20, border -1 */
        "local p = wb.data.images{kind = 'cifar10', path = 'cifar', include = {0, 1}, resize_to = 16,\n"
        "  resize = 'nearest', pad_to = 20, split = 'train'}\n"
        "print(p.count, p.channels, p.height, p.width, p.dim)\n"
        "local pi = p:image(1)\n"
        "assert(pi:get(1, 1) == -1 and pi:get(1, 400) == -1, 'padding is -1')\n"
        /* row 2, column 3 (0-based) is the image's first row, second pixel */
        "assert(pi:get(1, 2 * 20 + 3 + 1) > -1, 'image inside the border')\n"
        /* gray, first 5 kept, exclusion */
        "local g = wb.data.images{kind = 'cifar10', path = 'cifar', channels = 1, max_images = 5, exclude = {2},\n"
        "  flip = true}\n"
        "print(g.count, g.channels, g.dim, tostring(g))\n"
        "local ok, err = pcall(d.image, d, 15)\n"
        "print(ok, err)\n");
    WB_EXPECT_STATUS(r, 0);
    /* the name carries the class filter: caches and tables key on it */
    WB_EXPECT_IN(r.out, "cifar10-train-c0.1\t14\t10\t3\t32\t32\t3072\n", r);
    WB_EXPECT_IN(r.out, "1\t3072\t1\t3\t32\t32\n", r);
    WB_EXPECT_IN(r.out, "14\t3\t20\t20\t1200\n", r);
    WB_EXPECT_IN(r.out, "5\t1\t1024\tDataset(cifar10-train-x2-max5, 5 images of 1x32x32)\n", r);
    WB_EXPECT_IN(r.out, "false\tDataset:image: index 15 out of range 1..14\n", r);
    wb_test_result_free(&r);
}

static void test_cifar_sampling(void **state) {
    (void)state;
    result r = run_script("local wb = require 'wb'\n"
                          "local d = wb.data.images{kind = 'cifar10', path = 'cifar', include = {0, 1}, pad_to = 36,\n"
                          "  flip = true}\n"
                          "local a, la = d:sample(6, 3)\n"
                          "local b, lb = d:sample(6, 3)\n"
                          "local c = d:sample(6, 4)\n"
                          "print(#a, a:dim(), a:shape())\n"
                          "local same, differ = true, false\n"
                          "for i = 1, 6 do\n"
                          "  assert(la[i] == lb[i] and (la[i] == 0 or la[i] == 1), 'labels ' .. tostring(la[i]))\n"
                          "  for j = 1, a:dim() do\n"
                          "    local v = a:get(i, j)\n"
                          "    assert(v >= -1 and v <= 1, 'in [-1, 1]')\n"
                          "    if v ~= b:get(i, j) then same = false end\n"
                          "    if v ~= c:get(i, j) then differ = true end\n"
                          "  end\n"
                          "end\n"
                          "print(same, differ)\n");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "6\t3888\t3\t36\t36\ntrue\ttrue\n", r);
    wb_test_result_free(&r);
}

/* ---- teacher, distill, evaluate ---------------------------------------------------------- */
static void test_cifar_teacher_distill(void **state) {
    (void)state;
    result r = run_script(
        "local wb = require 'wb'\n"
        "local ds = wb.data.images{kind = 'cifar10', path = 'cifar', include = {0, 1}, resize_to = 8,\n"
        "  pad_to = 10}\n"
        "local t = wb.teacher{data = ds, net = {'mlp', widths = {32}}, steps = 3, batch = 4, quiet = true}\n"
        "local ts = t:sample(3, {steps = 2, seed = 1})\n"
        "print('teacher', #ts, ts:dim(), ts:shape())\n"
        "local s = wb.distill{teacher = t, data = ds, divergence = 'kl',\n"
        "  ratio = {'classifier', net = {'mlp', widths = {16}}}, steps = 2, batch = 4, run = 'runs/img',\n"
        "  quiet = true}\n"
        "local x = s:sample(5, {seed = 2})\n"
        "print('student', #x, x:dim(), x:shape())\n"
        "for i = 1, #x do for j = 1, x:dim() do\n"
        "  local v = x:get(i, j)\n"
        "  assert(v == v and v > -math.huge and v < math.huge, 'finite')\n"
        "end end\n"
        "for i = 1, #ts do for j = 1, ts:dim() do\n"
        "  local v = ts:get(i, j)\n"
        "  assert(v == v and v > -math.huge and v < math.huge, 'finite')\n"
        "end end\n"
        "print(s.steps, s.run, s.data.name)\n"
        "local ok, err = pcall(wb.evaluate, x, ds)\n"
        "print(ok, err)\n");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "teacher\t3\t300\t3\t10\t10\n", r);
    WB_EXPECT_IN(r.out, "student\t5\t300\t3\t10\t10\n", r);
    WB_EXPECT_IN(r.out, "2\truns/img\tcifar10-train-c0.1\n", r);
    WB_EXPECT_IN(r.out, "false\twb.evaluate: dataset 'cifar10-train-c0.1' is an image set: image metrics come from "
                     "FID-style features",
              r);
    wb_test_result_free(&r);
    char dir[512];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/runs/img", g_dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

/* ratio_init = "teacher": the score-free paper's classifier (the encoder
 * half of the teacher's UNet) starts from the teacher's encoder weights —
 * how many tensors were copied is recorded (the encoder, not the scalar
 * head); a backbone that shares nothing with the teacher is an error
 * saying so. */
static void test_ratio_init_from_teacher(void **state) {
    (void)state;
    result r = run_script(
        "local wb = require 'wb'\n"
        "local ds = wb.data.images{kind = 'cifar10', path = 'cifar', resize_to = 8}\n"
        "local net = {'unet', channels = 8, multipliers = {1, 2}, attn_resolutions = {1}}\n"
        "local t = wb.teacher{data = ds, net = net, steps = 2, batch = 4, quiet = true}\n"
        "local enc = {'unet', channels = 8, multipliers = {1, 2}, attn_resolutions = {1}, encoder_only = true}\n"
        "local s = wb.distill{teacher = t, data = ds, divergence = 'dijs', ratio = {'classifier', net = enc},\n"
        "  ratio_init = 'teacher', steps = 1, batch = 4, run = 'runs/ri', quiet = true}\n"
        "print('ok', s.steps)\n"
        "local ok, err = pcall(wb.distill, {teacher = t, data = ds, divergence = 'dijs',\n"
        "  ratio = {'classifier', net = {'mlp', widths = {16}}}, ratio_init = 'teacher', steps = 1, batch = 4,\n"
        "  quiet = true})\n"
        "print(ok, err)\n");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "ok\t1\n", r);
    WB_EXPECT_IN(r.out, "false\t", r);
    WB_EXPECT_IN(r.out, "ratio_init = \"teacher\": the mlp backbone shares no weight", r);
    wb_test_result_free(&r);
    char path[512];
    snprintf(path, sizeof path, "%s/runs/ri/config.json", g_dir);
    char *text = wb_test_slurp(path);
    assert_non_null(text);
    const char *k = strstr(text, "\"ratio_init_tensors\":");
    if (!strstr(text, "\"ratio_init\":\t\"teacher\"") || !k) fail_msg("config.json:\n%s", text);
    int copied = 0, total = 0;
    if (sscanf(k, "\"ratio_init_tensors\":\t\"%d of %d\"", &copied, &total) != 2) fail_msg("config.json:\n%s", text);
    print_message("classifier: %d of %d tensors from the teacher\n", copied, total);
    free(text);
    assert_true(copied > 0 && copied < total); /* the encoder, not the scalar head */
}

/* ---- run directories: the grid option, the resolved architecture ------------------------- */
/* grid = N puts N images in samples.png (a PNG N/8 rows high), grid = 0
 * writes none and removes an older run's; config.json records the
 * architecture a preset resolved to next to the params it was given. */
static int png_size(const char *path, unsigned *w, unsigned *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char b[24];
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    if (got != sizeof b) return -1;
    *w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
    *h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
    return 0;
}

static void test_grid_and_resolved_architecture(void **state) {
    (void)state;
    result r = run_script(
        "local wb = require 'wb'\n"
        "local ds = wb.data.images{kind = 'cifar10', path = 'cifar', resize_to = 8}\n"
        "local net = {'unet', channels = 8, multipliers = {1, 2}, attn_resolutions = {1}}\n"
        "local t = wb.teacher{data = ds, net = net, steps = 1, batch = 2, quiet = true, run = 'runs/g4', grid = 4}\n"
        "wb.teacher{data = ds, net = net, steps = 1, batch = 2, quiet = true, run = 'runs/g4', grid = 0}\n"
        "wb.teacher{data = ds, net = net, steps = 1, batch = 2, quiet = true, run = 'runs/g16', grid = 16}\n"
        "local s = wb.distill{teacher = t, data = ds, divergence = 'dijs', steps = 1, batch = 2, quiet = true,\n"
        "  ratio = {'classifier', net = {'unet', preset = 'tiny', encoder_only = true}}, run = 'runs/d0', grid = 0}\n"
        "print('ok')\n"
        "local ok, err = pcall(wb.teacher, {data = ds, net = net, steps = 1, grid = -1})\n"
        "print(ok, err)\n"
        "local edm = {'unet', channels = 8, multipliers = {1, 2}, attn_resolutions = {1}, embedding_convention = 'edm'}\n"
        "local ok2, err2 = pcall(wb.teacher, {data = ds, net = edm, steps = 0, init = 'runs/g16/checkpoint.safetensors'})\n"
        "print('edm', ok2, err2)\n"
        "local again = wb.teacher{data = ds, net = net, steps = 0, init = 'runs/g16/checkpoint.safetensors', quiet = true}\n"
        "print('same net loads', again ~= nil)\n");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "ok\n", r);
    WB_EXPECT_IN(r.out, "false\t", r);
    WB_EXPECT_IN(r.out, "'grid'", r);
    /* the checkpoint records its net's embedding; another one is refused, saying which */
    WB_EXPECT_IN(r.out, "edm\tfalse\t", r);
    WB_EXPECT_IN(r.out, "embedding_convention = \"workbench-1.0\", this one \"edm\"", r);
    WB_EXPECT_IN(r.out, "same net loads\ttrue\n", r);
    wb_test_result_free(&r);
    char path[600];
    struct stat st;
    unsigned w = 0, h = 0;
    snprintf(path, sizeof path, "%s/runs/g4/samples.png", g_dir);
    assert_int_equal(stat(path, &st), -1); /* the grid = 0 re-run removed the grid = 4 figure */
    snprintf(path, sizeof path, "%s/runs/g16/samples.png", g_dir);
    assert_int_equal(png_size(path, &w, &h), 0);
    print_message("grid = 16 on 8x8 images: samples.png %ux%u\n", w, h);
    assert_true(w > h && h > 0); /* 8 per row: two rows */
    snprintf(path, sizeof path, "%s/runs/d0/samples.png", g_dir);
    assert_int_equal(stat(path, &st), -1);
    snprintf(path, sizeof path, "%s/runs/d0/config.json", g_dir);
    char *text = wb_test_slurp(path);
    assert_non_null(text);
    /* the tiny preset's architecture, not the parameter defaults */
    const char *res = strstr(text, "\"resolved\":");
    if (!res || !strstr(res, "\"channels\":\t32") || !strstr(res, "\"encoder_only\":\ttrue"))
        fail_msg("config.json has no resolved tiny architecture:\n%s", text);
    free(text);
    snprintf(path, sizeof path, "%s/runs/g16/config.json", g_dir);
    text = wb_test_slurp(path);
    assert_non_null(text);
    if (!strstr(text, "\"resolved\":") || !strstr(text, "\"channels\":\t8")) fail_msg("config.json:\n%s", text);
    free(text);
}

/* ---- errors ------------------------------------------------------------------------------- */
#define IMG "local wb = require 'wb'\n"

static void test_errors(void **state) {
    (void)state;
    expect_error(IMG "wb.data.images{kind = 'svhn', path = 'cifar'}\n",
                 "s.lua:2: wb.data.images: key 'kind' = 'svhn' is not one of", "cifar10");
    expect_error(IMG "wb.data.images{path = 'cifar'}\n", "wb.data.images: key 'kind' is required", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10'}\n", "wb.data.images: key 'path' is required for kind 'cifar10'",
                 NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'no/such/dir'}\n",
                 "wb.data.images: path 'no/such/dir' (kind 'cifar10'): No such file or directory", NULL);
    /* a directory without the files: the loader names the file it missed */
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'empty'}\n", "wb.data.images: empty/data_batch_1.bin",
                 "cannot open");
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', include = 0}\n",
                 "wb.data.images: key 'include' expects a table, got number", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', include = {0, 'a'}}\n",
                 "wb.data.images: key 'include' expects a list of integer labels, element 2 is string", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', exclude = {}}\n",
                 "wb.data.images: key 'exclude' expects a list of 1..1000 labels", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', include = {10}}\n",
                 "wb.data.images: cifar: include label 10 outside 0..9", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', pad_to = 'big'}\n",
                 "wb.data.images: key 'pad_to' expects an integer, got string", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', pad_to = 16}\n",
                 "wb.data.images: cifar: pad_to 16 is smaller than the 32x32 image", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', channels = 2}\n",
                 "wb.data.images: key 'channels' = 2 is not one of 1|3", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', resize = 'cubic', resize_to = 8}\n",
                 "wb.data.images: key 'resize' = 'cubic' is not one of nearest|bilinear", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', labels = 'coarse'}\n",
                 "wb.data.images: key 'labels' applies to kind 'cifar100' only", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', split = 'val'}\n",
                 "wb.data.images: key 'split' = 'val' is not one of train|test", NULL);
    expect_error(IMG "wb.data.images{kind = 'cifar10', path = 'cifar', pad = 40}\n",
                 "wb.data.images: unknown key 'pad'", "known keys:");
    expect_error(IMG "wb.data.gmm2d{}:image(1)\n", "Dataset:image: dataset 'gmm2d-ring8' is not an image set", NULL);
    /* backend: checked and resolved once; cpu works, another name is an error naming the key */
    expect_error(IMG "local d = wb.data.images{kind = 'cifar10', path = 'cifar'}\n"
                     "wb.image_metrics(d:sample(8, 1), d, {classifier_steps = 2, cache = 'c', quiet = true,\n"
                     "  backend = 'tpu'})\n",
                 "s.lua:3: wb.image_metrics: key 'backend' = 'tpu' is not one of cpu|cuda|cuda-emu|auto", NULL);
    result r = run_script(IMG "local d = wb.data.images{kind = 'cifar10', path = 'cifar'}\n"
                              "local m = wb.image_metrics(d:sample(8, 1), d, {classifier_steps = 2, cache = 'c',\n"
                              "  quiet = true, backend = 'cpu'})\n"
                              "print(math.type(m.classes_covered), type(m.fid))\n");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "integer\tnumber\n", r);
    wb_test_result_free(&r);
    /* Inception weights that are not there / not safetensors: named, with the key */
    expect_error(IMG "local d = wb.data.images{kind = 'cifar10', path = 'cifar'}\n"
                     "wb.image_metrics(d:sample(8, 1), d, {classifier_steps = 2, cache = 'c', quiet = true,\n"
                     "  inception = 'no/pt_inception.safetensors'})\n",
                 "wb.image_metrics: key 'inception': cannot read 'no/pt_inception.safetensors'", NULL);
    expect_error(IMG "local d = wb.data.images{kind = 'cifar10', path = 'cifar'}\n"
                     "wb.image_metrics(d:sample(8, 1), d, {classifier_steps = 2, cache = 'c', quiet = true,\n"
                     "  inception = 'cifar/data_batch_1.bin'})\n",
                 "wb.image_metrics: key 'inception':", "cifar/data_batch_1.bin");
}

/* ---- Fashion-MNIST, when the machine has it ------------------------------------------------ */
static void test_fashion_mnist(void **state) {
    (void)state;
    struct stat st;
    if (stat(FASHION_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) {
        print_message("SKIP: %s not present\n", FASHION_DIR);
        skip();
    }
    result r = run_script("local wb = require 'wb'\n"
                          "local d = wb.data.images{kind = 'fashion-mnist', include = {0}, max_images = 100}\n"
                          "print(d.name, d.count, d.channels, d.height, d.width, d.dim, d.n_classes)\n"
                          "local _, labels = d:sample(50, 1)\n"
                          "for i = 1, 50 do assert(labels[i] == 0) end\n"
                          "local p = wb.data.images{kind = 'fashion-mnist', path = '" FASHION_DIR "',\n"
                          "  include = {0}, max_images = 100, pad_to = 32}\n"
                          "print(p.count, p.channels, p.height, p.width, p.dim)\n");
    WB_EXPECT_STATUS(r, 0);
    WB_EXPECT_IN(r.out, "fashion-mnist-train-c0-max100\t100\t1\t28\t28\t784\t10\n100\t1\t32\t32\t1024\n", r);
    wb_test_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar_fields),
        cmocka_unit_test(test_cifar_sampling),
        cmocka_unit_test(test_cifar_teacher_distill),
        cmocka_unit_test(test_ratio_init_from_teacher),
        cmocka_unit_test(test_grid_and_resolved_architecture),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
