/* tests/test_safetensors.c — checkpoints: bit-exact round trips, every kind
 * of bad file rejected with a message naming the file (and the key) while the
 * target parameters stay untouched, atomic saves that never damage an
 * existing checkpoint, and a cross-check of the format against an
 * independent pure-Python reader/writer (struct + json + torch.frombuffer)
 * where /usr/bin/python3 has torch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fault_inject.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "wb/safetensors.h"
#include "wb/backend.h"
#include "wb/tensor.h"

#ifndef WB_TEST_PYTHON
#define WB_TEST_PYTHON ""
#endif

static char g_dir[64];

/* ---- helpers ----------------------------------------------------------------- */

static const char *tpath(const char *name) {
    static char buf[8][256];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 256, "%s/%s", g_dir, name);
    return p;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void spit(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static uint64_t rd_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void wr_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A file with the given raw header text and buffer. */
static void write_raw(const char *path, const char *header, size_t hlen, const void *data,
                      size_t dlen) {
    unsigned char *b = malloc(8 + hlen + dlen + 1);
    assert_non_null(b);
    wr_u64(b, hlen);
    memcpy(b + 8, header, hlen);
    if (dlen) memcpy(b + 8 + hlen, data, dlen);
    spit(path, b, 8 + hlen + dlen);
    free(b);
}

/* Copy src to dst with its JSON header edited by fn (same buffer). */
static void patch_header(const char *src, const char *dst, void (*fn)(cJSON *root)) {
    size_t n;
    unsigned char *b = slurp(src, &n);
    uint64_t hlen = rd_u64(b);
    char *h = malloc(hlen + 1);
    assert_non_null(h);
    memcpy(h, b + 8, hlen);
    h[hlen] = '\0';
    cJSON *root = cJSON_Parse(h);
    assert_non_null(root);
    fn(root);
    char *nh = cJSON_PrintUnformatted(root);
    assert_non_null(nh);
    write_raw(dst, nh, strlen(nh), b + 8 + hlen, n - 8 - hlen);
    cJSON_free(nh);
    cJSON_Delete(root);
    free(h);
    free(b);
}

/* gen: a tiny MLP; disc: a 4-d weight and a scalar-ish bias. */
static wb_params *make_gen(uint64_t seed) {
    wb_params *ps = wb_params_new(wb_backend_cpu());
    assert_non_null(ps);
    assert_non_null(wb_params_add(ps, "fc0.weight", 2, (int64_t[]){4, 2}, WB_INIT_NORMAL, 1.0f));
    assert_non_null(wb_params_add(ps, "fc0.bias", 1, (int64_t[]){4}, WB_INIT_NORMAL, 1.0f));
    assert_non_null(wb_params_add(ps, "fc1.weight", 2, (int64_t[]){3, 4}, WB_INIT_NORMAL, 1.0f));
    wb_rng rng;
    wb_rng_init(&rng, seed, 0);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    return ps;
}

static wb_params *make_disc(uint64_t seed) {
    wb_params *ps = wb_params_new(wb_backend_cpu());
    assert_non_null(ps);
    assert_non_null(wb_params_add(ps, "w", 4, (int64_t[]){2, 3, 2, 2}, WB_INIT_NORMAL, 1.0f));
    assert_non_null(wb_params_add(ps, "b", 1, (int64_t[]){1}, WB_INIT_NORMAL, 1.0f));
    wb_rng rng;
    wb_rng_init(&rng, seed, 1);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    return ps;
}

/* Every value of the store, downloaded in declaration order. */
static float *snapshot(wb_params *ps, size_t *bytes) {
    size_t total = 0;
    for (int i = 0; i < wb_params_count(ps); i++) total += (size_t)wb_params_at(ps, i)->numel;
    float *v = malloc(total * sizeof(float) + 1);
    assert_non_null(v);
    size_t at = 0;
    for (int i = 0; i < wb_params_count(ps); i++) {
        const wb_tensor *t = wb_params_at(ps, i);
        t->backend->download(v + at, t->data, (size_t)t->numel * sizeof(float));
        at += (size_t)t->numel;
    }
    *bytes = total * sizeof(float);
    return v;
}

static void assert_same_values(wb_params *a, wb_params *b) {
    size_t na, nb;
    float *va = snapshot(a, &na), *vb = snapshot(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(va, vb, na); /* bitwise, so NaN payloads and -0 count */
    free(va);
    free(vb);
}

/* Fixtures shared by most tests: a saved reference file and target stores
 * whose values must survive every failed load. */
typedef struct {
    wb_params *gen, *disc;     /* source of ref.safetensors */
    wb_params *tgen, *tdisc;   /* load targets              */
    float *tgen0, *tdisc0;     /* their values before       */
    size_t tgen0_n, tdisc0_n;
    const char *ref;
} fx;

static const char *const META[] = {"step", "100", "config", "{\"lr\": 1e-4}"};

static int fx_setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->gen = make_gen(1);
    f->disc = make_disc(2);
    /* Values that a lossy path would change: NaN with payload, -0, inf, a
     * denormal. */
    const uint32_t special[4] = {0x7fc12345u, 0x80000000u, 0x7f800000u, 0x00000001u};
    wb_tensor *bias = wb_params_find(f->gen, "fc0.bias");
    bias->backend->upload(bias->data, special, sizeof special);
    f->ref = strdup(tpath("ref.safetensors"));
    wb_named_params st[2] = {{"gen.", f->gen}, {"disc.", f->disc}};
    if (wb_safetensors_save(f->ref, st, 2, META, 2)) return -1;
    f->tgen = make_gen(11);
    f->tdisc = make_disc(12);
    f->tgen0 = snapshot(f->tgen, &f->tgen0_n);
    f->tdisc0 = snapshot(f->tdisc, &f->tdisc0_n);
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    fx *f = *state;
    wb_params_free(f->gen);
    wb_params_free(f->disc);
    wb_params_free(f->tgen);
    wb_params_free(f->tdisc);
    free(f->tgen0);
    free(f->tdisc0);
    free((char *)f->ref);
    free(f);
    return 0;
}

static void assert_targets_untouched(fx *f) {
    size_t n;
    float *v = snapshot(f->tgen, &n);
    assert_int_equal(n, f->tgen0_n);
    assert_memory_equal(v, f->tgen0, n);
    free(v);
    v = snapshot(f->tdisc, &n);
    assert_int_equal(n, f->tdisc0_n);
    assert_memory_equal(v, f->tdisc0, n);
    free(v);
}

/* Load `path` into the targets expecting failure; the message must contain
 * the path and every one of the NULL-terminated needles. */
static void expect_load_fail(fx *f, const char *path, int allow_extra, ...) {
    wb_named_params st[2] = {{"gen.", f->tgen}, {"disc.", f->tdisc}};
    wb_clear_error();
    int rc = wb_safetensors_load(path, st, 2, allow_extra);
    const char *msg = wb_last_error();
    if (rc == 0) fail_msg("load of %s succeeded, expected an error", path);
    if (!strstr(msg, path)) fail_msg("error does not name the file: %s", msg);
    va_list ap;
    va_start(ap, allow_extra);
    for (const char *s; (s = va_arg(ap, const char *));)
        if (!strstr(msg, s)) fail_msg("error lacks '%s': %s", s, msg);
    va_end(ap);
    assert_targets_untouched(f);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_round_trip(void **state) {
    fx *f = *state;
    wb_params *g2 = make_gen(21), *d2 = make_disc(22);
    wb_named_params st[2] = {{"gen.", g2}, {"disc.", d2}};
    assert_int_equal(wb_safetensors_load(f->ref, st, 2, 0), 0);
    assert_same_values(f->gen, g2);
    assert_same_values(f->disc, d2);
    /* Stores in the other order load the same. */
    wb_params *g3 = make_gen(31), *d3 = make_disc(32);
    wb_named_params st3[2] = {{"disc.", d3}, {"gen.", g3}};
    assert_int_equal(wb_safetensors_load(f->ref, st3, 2, 0), 0);
    assert_same_values(f->gen, g3);
    assert_same_values(f->disc, d3);
    wb_params_free(g2);
    wb_params_free(d2);
    wb_params_free(g3);
    wb_params_free(d3);
    assert_false(wb_fault_tmp_left(tpath("ref.safetensors")));
}

static void test_header_layout(void **state) {
    fx *f = *state;
    size_t n;
    unsigned char *b = slurp(f->ref, &n);
    uint64_t hlen = rd_u64(b);
    assert_int_equal(hlen % 8, 0);
    assert_true(8 + hlen <= n);
    char *h = malloc(hlen + 1);
    memcpy(h, b + 8, hlen);
    h[hlen] = '\0';
    cJSON *root = cJSON_Parse(h);
    assert_non_null(root);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "step")->valuestring, "100");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "config")->valuestring,
                        "{\"lr\": 1e-4}");
    /* Offsets tile the buffer exactly, 4 bytes per float. */
    const char *keys[] = {"gen.fc0.weight", "gen.fc0.bias", "gen.fc1.weight", "disc.w", "disc.b"};
    const int numel[] = {8, 4, 12, 24, 1};
    double total = 0;
    for (int i = 0; i < 5; i++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
        assert_non_null(e);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, "F32");
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        double b0 = cJSON_GetArrayItem(o, 0)->valuedouble, b1 = cJSON_GetArrayItem(o, 1)->valuedouble;
        assert_true(b1 - b0 == 4.0 * numel[i]);
        total += b1 - b0;
    }
    assert_true(total == (double)(n - 8 - hlen));
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "disc.w"), "shape");
    assert_int_equal(cJSON_GetArraySize(sh), 4);
    assert_int_equal(cJSON_GetArrayItem(sh, 1)->valueint, 3);
    cJSON_Delete(root);
    free(h);
    free(b);
}

static void test_truncated(void **state) {
    fx *f = *state;
    size_t n;
    unsigned char *b = slurp(f->ref, &n);
    uint64_t hlen = rd_u64(b);
    const size_t cuts[] = {0, 3, 7, 8, 8 + hlen / 2, 8 + hlen - 1, 8 + hlen, 8 + hlen + 5,
                           n - 4, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *p = tpath("trunc.safetensors");
        spit(p, b, cuts[i]);
        expect_load_fail(f, p, 0, "truncated", NULL);
    }
    free(b);
}

static void test_header_too_long(void **state) {
    fx *f = *state;
    size_t n;
    unsigned char *b = slurp(f->ref, &n);
    const char *p = tpath("long.safetensors");
    wr_u64(b, (uint64_t)1 << 40);
    spit(p, b, n);
    expect_load_fail(f, p, 0, "truncated", "header says 1099511627776 bytes", NULL);
    wr_u64(b, UINT64_MAX); /* must not overflow the size check */
    spit(p, b, n);
    expect_load_fail(f, p, 0, "truncated", NULL);
    free(b);

    /* A header over the 100 MB limit in a file that is big enough (sparse). */
    int fd = open(p, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    unsigned char len8[8];
    wr_u64(len8, 150u * 1000 * 1000);
    assert_int_equal(write(fd, len8, 8), 8);
    assert_int_equal(ftruncate(fd, 200 * 1000 * 1000), 0);
    close(fd);
    expect_load_fail(f, p, 0, "limit", NULL);
    unlink(p);
}

static void test_corrupt_json(void **state) {
    fx *f = *state;
    size_t n;
    unsigned char *b = slurp(f->ref, &n);
    uint64_t hlen = rd_u64(b);
    const char *p = tpath("corrupt.safetensors");

    unsigned char *c = malloc(n);
    memcpy(c, b, n);
    c[8 + hlen / 2] = '}'; /* somewhere inside a key or a value */
    c[8 + hlen / 2 + 1] = '"';
    spit(p, c, n);
    expect_load_fail(f, p, 0, NULL);

    memcpy(c, b, n);
    c[8] = '['; /* an unbalanced array */
    spit(p, c, n);
    expect_load_fail(f, p, 0, "JSON", NULL);

    memcpy(c, b, n);
    c[8 + hlen - 1] = 'x'; /* garbage after the object, in the padding */
    spit(p, c, n);
    expect_load_fail(f, p, 0, "JSON", NULL);

    memcpy(c, b, n);
    c[8 + hlen - 1] = '\0'; /* an embedded NUL must not hide the rest */
    c[8 + hlen - 2] = 'x';
    spit(p, c, n);
    expect_load_fail(f, p, 0, NULL);

    write_raw(p, "[1, 2]  ", 8, NULL, 0); /* JSON, but not an object */
    expect_load_fail(f, p, 0, "object", NULL);
    write_raw(p, "", 0, NULL, 0); /* empty header */
    expect_load_fail(f, p, 0, NULL);
    {
        const char *h = "{\"__metadata__\": {\"a\": 1}}";
        write_raw(p, h, strlen(h), NULL, 0);
    }
    expect_load_fail(f, p, 0, "__metadata__", NULL);
    free(c);
    free(b);
}

static void set_bias_f16(cJSON *root) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "gen.fc0.bias");
    cJSON_ReplaceItemInObjectCaseSensitive(e, "dtype", cJSON_CreateString("F16"));
}
static void drop_dtype(cJSON *root) {
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "disc.b"), "dtype");
}

static void test_wrong_dtype(void **state) {
    fx *f = *state;
    const char *p = tpath("dtype.safetensors");
    patch_header(f->ref, p, set_bias_f16);
    expect_load_fail(f, p, 0, "'gen.fc0.bias'", "F16", NULL);
    patch_header(f->ref, p, drop_dtype);
    expect_load_fail(f, p, 0, "'disc.b'", "dtype", NULL);
}

static void set_shape(cJSON *root, const char *key, const int *dims, int n) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(root, key);
    cJSON_ReplaceItemInObjectCaseSensitive(e, "shape", cJSON_CreateIntArray(dims, n));
}
static void shape_transposed(cJSON *root) { set_shape(root, "gen.fc0.weight", (int[]){2, 4}, 2); }
static void shape_flat(cJSON *root) { set_shape(root, "gen.fc0.weight", (int[]){8}, 1); }
static void shape_bigger(cJSON *root) { set_shape(root, "gen.fc1.weight", (int[]){3, 4, 1}, 3); }
static void shape_negative(cJSON *root) { set_shape(root, "disc.w", (int[]){-2, 3, 2, 2}, 4); }
static void shape_string(cJSON *root) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "disc.b");
    cJSON_ReplaceItemInObjectCaseSensitive(e, "shape", cJSON_CreateString("[1]"));
}

static void test_wrong_shape(void **state) {
    fx *f = *state;
    const char *p = tpath("shape.safetensors");
    patch_header(f->ref, p, shape_transposed);
    expect_load_fail(f, p, 0, "key 'gen.fc0.weight': shape [2,4] in file, [4,2] expected", NULL);
    patch_header(f->ref, p, shape_flat);
    expect_load_fail(f, p, 0, "'gen.fc0.weight'", "[8]", "[4,2]", NULL);
    patch_header(f->ref, p, shape_bigger);
    expect_load_fail(f, p, 0, "'gen.fc1.weight'", "[3,4,1]", NULL);
    patch_header(f->ref, p, shape_negative);
    expect_load_fail(f, p, 0, "'disc.w'", "shape", NULL);
    patch_header(f->ref, p, shape_string);
    expect_load_fail(f, p, 0, "'disc.b'", "shape", NULL);
}

static void set_offsets(cJSON *root, const char *key, double b, double e) {
    cJSON *x = cJSON_GetObjectItemCaseSensitive(root, key);
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(b));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(e));
    cJSON_ReplaceItemInObjectCaseSensitive(x, "data_offsets", a);
}
static void off_past_end(cJSON *root) { set_offsets(root, "disc.b", 1000, 1004); }
static void off_short(cJSON *root) { set_offsets(root, "gen.fc0.bias", 0, 12); }
static void off_reversed(cJSON *root) { set_offsets(root, "gen.fc0.bias", 16, 0); }
static void off_fraction(cJSON *root) { set_offsets(root, "gen.fc0.bias", 0.5, 16.5); }
static void off_missing(cJSON *root) {
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "disc.w"),
                                            "data_offsets");
}

static void test_bad_offsets(void **state) {
    fx *f = *state;
    const char *p = tpath("offsets.safetensors");
    patch_header(f->ref, p, off_past_end);
    expect_load_fail(f, p, 0, "'disc.b'", NULL);
    patch_header(f->ref, p, off_short);
    expect_load_fail(f, p, 0, "'gen.fc0.bias'", "12 bytes", NULL);
    patch_header(f->ref, p, off_reversed);
    expect_load_fail(f, p, 0, "'gen.fc0.bias'", NULL);
    patch_header(f->ref, p, off_fraction);
    expect_load_fail(f, p, 0, "'gen.fc0.bias'", NULL);
    patch_header(f->ref, p, off_missing);
    expect_load_fail(f, p, 0, "'disc.w'", "data_offsets", NULL);
}

static void drop_fc1(cJSON *root) { cJSON_DeleteItemFromObjectCaseSensitive(root, "gen.fc1.weight"); }

/* Refused at open (issue 10, defect 9): a tensor name twice (the first
 * used to win), overlapping data_offsets; empty tensors overlap nothing. */
static void test_duplicates_and_overlaps(void **state) {
    (void)state;
    const char *p = tpath("dup.safetensors");
    const float data[3] = {1, 2, 3};
    const char *dup = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    write_raw(p, dup, strlen(dup), data, 8);
    assert_null(wb_safetensors_open(p));
    assert_non_null(strstr(wb_last_error(), "key 'a' appears twice"));
    const char *overlap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    write_raw(p, overlap, strlen(overlap), data, 12);
    assert_null(wb_safetensors_open(p));
    assert_non_null(strstr(wb_last_error(), "'a' [0,8] and 'b' [4,12]: data_offsets overlap"));
    const char *fine = "{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    write_raw(p, fine, strlen(fine), data, 12);
    wb_st_file *f = wb_safetensors_open(p);
    assert_non_null(f);
    float b[2];
    assert_int_equal(wb_safetensors_read(f, "b", WB_ST_F32, b, 2), 0);
    assert_true(b[0] == 2.0f && b[1] == 3.0f);
    wb_safetensors_close(f);
}

static void test_missing_key(void **state) {
    fx *f = *state;
    const char *p = tpath("missing.safetensors");
    patch_header(f->ref, p, drop_fc1);
    expect_load_fail(f, p, 0, "'gen.fc1.weight'", "missing", NULL);
    expect_load_fail(f, p, 1, "'gen.fc1.weight'", "missing", NULL); /* allow_extra is no excuse */
    /* A prefix that is not in the file: every key is missing. */
    wb_named_params st[1] = {{"student.", f->tgen}};
    assert_int_not_equal(wb_safetensors_load(f->ref, st, 1, 1), 0);
    assert_non_null(strstr(wb_last_error(), "'student.fc0.weight'"));
    assert_targets_untouched(f);
}

static void add_extra(cJSON *root) {
    cJSON *e = cJSON_AddObjectToObject(root, "gen.extra");
    cJSON_AddStringToObject(e, "dtype", "BF16"); /* extra keys are never type-checked */
    cJSON *s = cJSON_AddArrayToObject(e, "shape");
    cJSON_AddItemToArray(s, cJSON_CreateNumber(2));
    cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(o, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(o, cJSON_CreateNumber(4));
}

static void test_extra_key(void **state) {
    fx *f = *state;
    const char *p = tpath("extra.safetensors");
    patch_header(f->ref, p, add_extra);
    expect_load_fail(f, p, 0, "'gen.extra'", NULL);
    /* allow_extra: loads, and the values are the reference's. */
    wb_params *g2 = make_gen(41), *d2 = make_disc(42);
    wb_named_params st[2] = {{"gen.", g2}, {"disc.", d2}};
    assert_int_equal(wb_safetensors_load(p, st, 2, 1), 0);
    assert_same_values(f->gen, g2);
    assert_same_values(f->disc, d2);
    /* One store out of a two-store file: the other store's keys are extra. */
    wb_params *g3 = make_gen(51);
    wb_named_params one[1] = {{"gen.", g3}};
    assert_int_not_equal(wb_safetensors_load(f->ref, one, 1, 0), 0);
    assert_non_null(strstr(wb_last_error(), "'disc."));
    assert_int_equal(wb_safetensors_load(f->ref, one, 1, 1), 0);
    assert_same_values(f->gen, g3);
    wb_params_free(g2);
    wb_params_free(d2);
    wb_params_free(g3);
}

static void test_missing_file(void **state) {
    fx *f = *state;
    expect_load_fail(f, tpath("nope.safetensors"), 0, NULL);
    expect_load_fail(f, g_dir, 0, "regular file", NULL); /* a directory */
}

static void test_atomic_save(void **state) {
    fx *f = *state;
    wb_named_params st[2] = {{"gen.", f->gen}, {"disc.", f->disc}};

    /* A path in a directory that does not exist: error, nothing created. */
    const char *bad = tpath("no/such/dir/x.safetensors");
    wb_clear_error();
    assert_int_not_equal(wb_safetensors_save(bad, st, 2, NULL, 0), 0);
    assert_non_null(strstr(wb_last_error(), bad));
    assert_false(exists(tpath("no")));

    /* An existing checkpoint at the target... */
    const char *target = tpath("atomic.safetensors");
    assert_int_equal(wb_safetensors_save(target, st, 2, META, 2), 0);
    size_t n0;
    unsigned char *orig = slurp(target, &n0);
    wb_named_params other[1] = {{"x.", f->tgen}};

    /* ...survives a save that fails before writing (duplicate names)... */
    wb_named_params dup[2] = {{"gen.", f->gen}, {"gen.", f->gen}};
    assert_int_not_equal(wb_safetensors_save(target, dup, 2, NULL, 0), 0);
    assert_non_null(strstr(wb_last_error(), "gen.fc0.weight"));
    /* ...one whose temporary file cannot be created (no free descriptor)... */
    struct rlimit fds;
    assert_int_equal(wb_fault_fds_block(&fds), 0);
    int rc_create = wb_safetensors_save(target, other, 1, NULL, 0);
    wb_fault_fds_restore(&fds);
    assert_int_not_equal(rc_create, 0);
    /* ...and one that fails halfway through writing (file size limit). */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64; /* past the length, inside the header */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = wb_safetensors_save(target, other, 1, NULL, 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_not_equal(rc, 0);
    assert_false(wb_fault_tmp_left(target)); /* cleaned up */

    size_t n1;
    unsigned char *now = slurp(target, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(orig, now, n0);
    free(now);

    /* A successful save replaces it completely and leaves no temporary. */
    assert_int_equal(wb_safetensors_save(target, other, 1, NULL, 0), 0);
    assert_false(wb_fault_tmp_left(target));
    wb_params *g2 = make_gen(61);
    wb_named_params back[1] = {{"x.", g2}};
    assert_int_equal(wb_safetensors_load(target, back, 1, 0), 0);
    assert_same_values(f->tgen, g2);
    wb_params_free(g2);
    free(orig);
}

static void test_empty_and_edge(void **state) {
    (void)state;
    /* No stores at all: a valid file with only metadata. */
    const char *p = tpath("empty.safetensors");
    assert_int_equal(wb_safetensors_save(p, NULL, 0, META, 2), 0);
    assert_int_equal(wb_safetensors_load(p, NULL, 0, 0), 0);
    /* Bad arguments are errors, not crashes. */
    assert_int_not_equal(wb_safetensors_save(NULL, NULL, 0, NULL, 0), 0);
    assert_int_not_equal(wb_safetensors_save(p, NULL, 0, NULL, 1), 0);
    const char *nullv[] = {"k", NULL};
    assert_int_not_equal(wb_safetensors_save(p, NULL, 0, nullv, 1), 0);
    const char *dupm[] = {"k", "1", "k", "2"};
    assert_int_not_equal(wb_safetensors_save(p, NULL, 0, dupm, 2), 0);
    assert_int_not_equal(wb_safetensors_load(NULL, NULL, 0, 0), 0);
    /* The failed saves above left the good file alone. */
    assert_int_equal(wb_safetensors_load(p, NULL, 0, 0), 0);
}

/* ---- named host arrays (core/safetensors.h): F64 and F32 ------------------- */

/* A 3 x 4 F64 matrix (with values a float cannot hold), an F32 vector and
 * metadata, written with wb_safetensors_save_arrays. */
static double g_f64[12];
static float g_f32[5];
static void write_arrays(const char *p) {
    for (int i = 0; i < 12; i++) g_f64[i] = 1.0 / 3.0 * (i - 5) + 1e-17 * i;
    g_f64[7] = -0.0;
    for (int i = 0; i < 5; i++) g_f32[i] = 0.1f * (float)i - 2.0f;
    wb_st_array a[2] = {{.name = "stats.cov", .dtype = WB_ST_F64, .ndim = 2, .shape = {3, 4}, .data = g_f64},
                        {.name = "v", .dtype = WB_ST_F32, .ndim = 1, .shape = {5}, .data = g_f32}};
    const char *meta[] = {"format", "test", "n", "12"};
    if (wb_safetensors_save_arrays(p, a, 2, meta, 2)) fail_msg("%s", wb_last_error());
}

static void test_arrays_round_trip(void **state) {
    (void)state;
    const char *p = tpath("arrays.safetensors");
    write_arrays(p);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(exists(tmp));
    /* the on-disk format: dtype F64, 8 bytes an element, 8-aligned buffer */
    size_t n;
    unsigned char *b = slurp(p, &n);
    uint64_t hlen = rd_u64(b);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(n, 8 + hlen + 12 * 8 + 5 * 4);
    char *h = malloc(hlen + 1);
    memcpy(h, b + 8, hlen);
    h[hlen] = '\0';
    cJSON *root = cJSON_Parse(h);
    assert_non_null(root);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "stats.cov");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, "F64");
    assert_memory_equal(b + 8 + hlen, g_f64, sizeof g_f64);
    cJSON_Delete(root);
    free(h);
    free(b);

    wb_st_file *f = wb_safetensors_open(p);
    if (!f) fail_msg("%s", wb_last_error());
    assert_string_equal(wb_safetensors_meta(f, "format"), "test");
    assert_string_equal(wb_safetensors_meta(f, "n"), "12");
    assert_null(wb_safetensors_meta(f, "nope"));
    int nd = 0;
    int64_t sh[WB_MAX_DIMS];
    assert_int_equal(wb_safetensors_shape(f, "stats.cov", WB_ST_F64, &nd, sh), 0);
    assert_int_equal(nd, 2);
    assert_int_equal(sh[0], 3);
    assert_int_equal(sh[1], 4);
    double d[12];
    float v[5];
    assert_int_equal(wb_safetensors_read(f, "stats.cov", WB_ST_F64, d, 12), 0);
    assert_memory_equal(d, g_f64, sizeof d); /* bit for bit, -0.0 included */
    assert_int_equal(wb_safetensors_read(f, "v", WB_ST_F32, v, 5), 0);
    assert_memory_equal(v, g_f32, sizeof v);
    /* a wrong element count or a missing key is an error naming file and key */
    wb_clear_error();
    assert_int_not_equal(wb_safetensors_read(f, "stats.cov", WB_ST_F64, d, 11), 0);
    assert_non_null(strstr(wb_last_error(), p));
    assert_non_null(strstr(wb_last_error(), "'stats.cov'"));
    assert_int_not_equal(wb_safetensors_shape(f, "absent", WB_ST_F64, &nd, sh), 0);
    assert_non_null(strstr(wb_last_error(), "'absent'"));
    assert_non_null(strstr(wb_last_error(), "missing"));
    wb_safetensors_close(f);

    /* A parameter store reads the F32 entry of the same file. */
    wb_params *ps = wb_params_new(wb_backend_cpu());
    wb_tensor *t = wb_params_add(ps, "v", 1, (int64_t[]){5}, WB_INIT_ZEROS, 0.0f);
    assert_non_null(t);
    wb_rng rng;
    wb_rng_init(&rng, 1, 0);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    wb_named_params st[1] = {{"", ps}};
    if (wb_safetensors_load(p, st, 1, 1)) fail_msg("%s", wb_last_error());
    float back[5];
    t->backend->download(back, t->data, sizeof back);
    assert_memory_equal(back, g_f32, sizeof back);
    wb_params_free(ps);

    /* bad arguments: no name, unknown dtype, duplicate names; nothing written */
    const char *q = tpath("bad_arrays.safetensors");
    wb_st_array bad[2] = {{.name = NULL, .dtype = WB_ST_F64, .ndim = 1, .shape = {1}, .data = g_f64},
                          {.name = "x", .dtype = (wb_st_dtype)7, .ndim = 1, .shape = {1}, .data = g_f64}};
    assert_int_not_equal(wb_safetensors_save_arrays(q, bad, 1, NULL, 0), 0);
    assert_int_not_equal(wb_safetensors_save_arrays(q, bad + 1, 1, NULL, 0), 0);
    wb_st_array dup[2] = {{.name = "x", .dtype = WB_ST_F64, .ndim = 1, .shape = {1}, .data = g_f64},
                          {.name = "x", .dtype = WB_ST_F64, .ndim = 1, .shape = {1}, .data = g_f64}};
    assert_int_not_equal(wb_safetensors_save_arrays(q, dup, 2, NULL, 0), 0);
    assert_non_null(strstr(wb_last_error(), "'x'"));
    assert_false(exists(q));
}

static void test_arrays_wrong_dtype(void **state) {
    (void)state;
    const char *p = tpath("dtype_arrays.safetensors");
    write_arrays(p);
    wb_st_file *f = wb_safetensors_open(p);
    assert_non_null(f);
    double d[12];
    float v[12];
    int nd;
    int64_t sh[WB_MAX_DIMS];
    /* F64 asked as F32 and the other way round: refused, nothing read */
    wb_clear_error();
    assert_int_not_equal(wb_safetensors_read(f, "stats.cov", WB_ST_F32, v, 12), 0);
    assert_non_null(strstr(wb_last_error(), p));
    assert_non_null(strstr(wb_last_error(), "dtype F64 in file, F32 expected"));
    assert_int_not_equal(wb_safetensors_shape(f, "v", WB_ST_F64, &nd, sh), 0);
    assert_non_null(strstr(wb_last_error(), "dtype F32 in file, F64 expected"));
    assert_int_not_equal(wb_safetensors_read(f, "v", WB_ST_F64, d, 5), 0);
    wb_safetensors_close(f);
    /* a parameter store (F32) cannot load an F64 tensor */
    wb_params *ps = wb_params_new(wb_backend_cpu());
    assert_non_null(wb_params_add(ps, "cov", 2, (int64_t[]){3, 4}, WB_INIT_ZEROS, 0.0f));
    wb_rng rng;
    wb_rng_init(&rng, 1, 0);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    wb_named_params st[1] = {{"stats.", ps}};
    assert_int_not_equal(wb_safetensors_load(p, st, 1, 1), 0);
    assert_non_null(strstr(wb_last_error(), "F64"));
    wb_params_free(ps);
}

static void test_arrays_truncated(void **state) {
    (void)state;
    const char *p = tpath("trunc_src.safetensors"), *q = tpath("trunc_arrays.safetensors");
    write_arrays(p);
    size_t n;
    unsigned char *b = slurp(p, &n);
    uint64_t hlen = rd_u64(b);
    /* inside the length, the header, the F64 data and the last F32 element */
    const size_t cuts[] = {0, 5, 8, 8 + hlen / 2, 8 + hlen, 8 + hlen + 50, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit(q, b, cuts[i]);
        wb_clear_error();
        wb_st_file *f = wb_safetensors_open(q);
        int failed = !f;
        if (f) {
            double d[12];
            float v[5];
            failed = wb_safetensors_read(f, "stats.cov", WB_ST_F64, d, 12) || wb_safetensors_read(f, "v", WB_ST_F32, v, 5);
            wb_safetensors_close(f);
        }
        if (!failed) fail_msg("a file cut at %zu of %zu bytes was read", cuts[i], n);
        if (!strstr(wb_last_error(), q)) fail_msg("error does not name the file: %s", wb_last_error());
        if (!strstr(wb_last_error(), "truncated")) fail_msg("error does not say truncated: %s", wb_last_error());
    }
    free(b);
}

/* ---- independent reader/writer: pure Python + torch ------------------------ */

static const char PY_SCRIPT[] =
    "import json, struct, sys, torch\n"
    "mode, path = sys.argv[1], sys.argv[2]\n"
    "if mode == 'read':\n"
    "    raw = open(path, 'rb').read()\n"
    "    (n,) = struct.unpack('<Q', raw[:8])\n"
    "    hdr = json.loads(raw[8:8 + n].decode('utf-8'))\n"
    "    buf = bytearray(raw[8 + n:])\n"
    "    for k, v in sorted(hdr.get('__metadata__', {}).items()):\n"
    "        print('M|%s|%s' % (k, v))\n"
    "    for k, e in hdr.items():\n"
    "        if k == '__metadata__':\n"
    "            continue\n"
    "        assert e['dtype'] == 'F32', e\n"
    "        b, end = e['data_offsets']\n"
    "        t = torch.frombuffer(buf[b:end], dtype=torch.float32).reshape(e['shape'])\n"
    "        vals = ','.join(repr(float(x)) for x in t.flatten().tolist())\n"
    "        print('T|%s|%s|%s' % (k, ','.join(str(d) for d in t.shape), vals))\n"
    "else:\n"
    "    # Deliberately unlike ours: indented JSON, no padding, reversed order.\n"
    "    ts = {'gen.fc1.weight': torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25,\n"
    "          'gen.fc0.bias': torch.tensor([-1.5, 0.0, 2.0, 1e-3]),\n"
    "          'gen.fc0.weight': -torch.arange(8, dtype=torch.float32).reshape(4, 2)}\n"
    "    hdr, data = {'__metadata__': {'format': 'pt'}}, b''\n"
    "    for k, t in ts.items():\n"
    "        bts = struct.pack('<%df' % t.numel(), *t.flatten().tolist())\n"
    "        hdr[k] = {'dtype': 'F32', 'shape': list(t.shape),\n"
    "                  'data_offsets': [len(data), len(data) + len(bts)]}\n"
    "        data += bts\n"
    "    h = json.dumps(hdr, indent=1).encode('utf-8')\n"
    "    if len(h) % 8 == 0:\n"
    "        h += b' '\n"
    "    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + data)\n";

static int have_torch(void) {
    if (!WB_TEST_PYTHON[0]) return 0;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torch' >/dev/null 2>&1", WB_TEST_PYTHON);
    return system(cmd) == 0;
}

static void test_python_cross_check(void **state) {
    fx *f = *state;
    if (!have_torch()) {
        print_message("SKIP python cross-check: no torch in '%s'\n", WB_TEST_PYTHON);
        skip();
    }
    const char *script = tpath("st_check.py");
    spit(script, PY_SCRIPT, sizeof PY_SCRIPT - 1);

    /* C writes (ref.safetensors from the fixture), Python reads. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' read '%s'", WB_TEST_PYTHON, script, f->ref);
    FILE *pp = popen(cmd, "r");
    assert_non_null(pp);
    char line[16384];
    int n_tensors = 0, n_meta = 0;
    while (fgets(line, sizeof line, pp)) {
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL, *kind = strtok_r(line, "|", &save), *key = strtok_r(NULL, "|", &save);
        assert_non_null(kind);
        assert_non_null(key);
        if (kind[0] == 'M') {
            char *val = save; /* the rest, may contain '|' in principle */
            if (!strcmp(key, "step")) assert_string_equal(val, "100");
            else if (!strcmp(key, "config")) assert_string_equal(val, "{\"lr\": 1e-4}");
            else fail_msg("unexpected metadata %s", key);
            n_meta++;
            continue;
        }
        char *shape = strtok_r(NULL, "|", &save), *vals = strtok_r(NULL, "|", &save);
        assert_non_null(shape);
        wb_params *ps = !strncmp(key, "gen.", 4) ? f->gen : f->disc;
        const wb_tensor *t = wb_params_find(ps, strchr(key, '.') + 1);
        assert_non_null(t);
        char want[64] = "";
        for (int d = 0; d < t->ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), d ? ",%lld" : "%lld",
                     (long long)t->shape[d]);
        assert_string_equal(shape, want);
        float *host = malloc((size_t)t->numel * sizeof(float));
        t->backend->download(host, t->data, (size_t)t->numel * sizeof(float));
        char *vsave = NULL, *tok = strtok_r(vals, ",", &vsave);
        for (int64_t i = 0; i < t->numel; i++, tok = strtok_r(NULL, ",", &vsave)) {
            assert_non_null(tok);
            float v = (float)strtod(tok, NULL);
            if (isnan(host[i])) assert_true(isnan(v));
            else if (host[i] != v || signbit(host[i]) != signbit(v))
                fail_msg("%s[%lld]: C %.9g, python %s", key, (long long)i, host[i], tok);
        }
        assert_null(tok);
        free(host);
        n_tensors++;
    }
    assert_int_equal(pclose(pp), 0);
    assert_int_equal(n_tensors, 5);
    assert_int_equal(n_meta, 2);

    /* Python writes, C reads. */
    const char *pyfile = tpath("from_python.safetensors");
    snprintf(cmd, sizeof cmd, "'%s' '%s' write '%s'", WB_TEST_PYTHON, script, pyfile);
    assert_int_equal(system(cmd), 0);
    wb_params *g = make_gen(71);
    wb_named_params st[1] = {{"gen.", g}};
    if (wb_safetensors_load(pyfile, st, 1, 0)) fail_msg("%s", wb_last_error());
    float w0[8], b0[4], w1[12];
    const wb_tensor *t;
    t = wb_params_find(g, "fc0.weight");
    t->backend->download(w0, t->data, sizeof w0);
    t = wb_params_find(g, "fc0.bias");
    t->backend->download(b0, t->data, sizeof b0);
    t = wb_params_find(g, "fc1.weight");
    t->backend->download(w1, t->data, sizeof w1);
    for (int i = 0; i < 8; i++) assert_true(w0[i] == -(float)i);
    const float bb[4] = {-1.5f, 0.0f, 2.0f, 1e-3f};
    assert_memory_equal(b0, bb, sizeof bb);
    for (int i = 0; i < 12; i++) assert_true(w1[i] == 0.25f * (float)i);
    wb_params_free(g);
}

/* ---- main ------------------------------------------------------------------ */

/* The scratch directory holds only plain files by the end of the run. */
static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        remove(p);
    }
    closedir(d);
    rmdir(dir);
}


/* Keys from a file are shown with every byte that is not printable ASCII or
 * well-formed UTF-8 as \xNN, and a backslash as \\ (issue 10: raw bytes of
 * a checkpoint's keys were echoed into messages): a hostile file cannot put
 * terminal controls or invalid UTF-8 into an error, while a UTF-8 key
 * (sigma) stays readable. */
static void assert_no_raw_bytes(const char *msg) {
    for (const unsigned char *c = (const unsigned char *)msg; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == 0xff || *c == 0xfe || *c == 0xc0) fail_msg("raw byte 0x%02x in: %s", *c, msg);
}

static void test_keys_escaped_in_messages(void **state) {
    (void)state;
    const char *p = tpath("hostile_key.safetensors");
    const char *hdr = "{\"k\xff\xfe\x1b[2J\x07\\\\\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                      "\"\xcf\x83.w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
                      "\"d\": {\"dtype\": \"F\x1b\xc0\", \"shape\": [1], \"data_offsets\": [8, 12]}}";
    const float data[3] = {1, 2, 3};
    write_raw(p, hdr, strlen(hdr), data, sizeof data);
    wb_st_file *sf = wb_safetensors_open(p);
    assert_non_null(sf);
    int ndim;
    int64_t shape[WB_MAX_DIMS];
    assert_int_equal(wb_safetensors_shape(sf, "k\xff\xfe\x1b[2J\x07\\", WB_ST_F64, &ndim, shape), -1);
    if (!strstr(wb_last_error(), "key 'k\\xff\\xfe\\x1b[2J\\x07\\\\': dtype F32 in file, F64 expected"))
        fail_msg("key not escaped: %s", wb_last_error());
    assert_no_raw_bytes(wb_last_error());
    /* the dtype string from the file is escaped too */
    assert_int_equal(wb_safetensors_shape(sf, "d", WB_ST_F32, &ndim, shape), -1);
    if (!strstr(wb_last_error(), "key 'd': dtype F\\x1b\\xc0 in file, F32 expected"))
        fail_msg("dtype not escaped: %s", wb_last_error());
    assert_no_raw_bytes(wb_last_error());
    /* a well-formed UTF-8 key is shown as it is */
    assert_int_equal(wb_safetensors_shape(sf, "\xcf\x83.w", WB_ST_F64, &ndim, shape), -1);
    if (!strstr(wb_last_error(), "key '\xcf\x83.w': dtype F32 in file, F64 expected"))
        fail_msg("UTF-8 key shown wrong: %s", wb_last_error());
    wb_safetensors_close(sf);
    /* loading a store of sigma.w alone: the first key it did not ask for is
     * named, escaped */
    wb_params *one = wb_params_new(wb_backend_cpu());
    assert_non_null(wb_params_add(one, "\xcf\x83.w", 1, (int64_t[]){1}, WB_INIT_ZEROS, 0.0f));
    wb_rng rng;
    wb_rng_init(&rng, 1, 0);
    assert_int_equal(wb_params_finalize(one, &rng), 0);
    wb_named_params st = {"", one};
    assert_int_equal(wb_safetensors_load(p, &st, 1, 0), -1);
    if (!strstr(wb_last_error(), "unexpected key 'k\\xff\\xfe\\x1b[2J\\x07\\\\' in file"))
        fail_msg("unexpected key not escaped: %s", wb_last_error());
    assert_no_raw_bytes(wb_last_error());
    assert_int_equal(wb_safetensors_load(p, &st, 1, 1), 0); /* allow_extra: the others are ignored */
    wb_params_free(one);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/wb_test_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_header_layout, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_header_too_long, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_json, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_dtype, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_shape, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_offsets, fx_setup, fx_teardown),
        cmocka_unit_test(test_duplicates_and_overlaps),
        cmocka_unit_test_setup_teardown(test_missing_key, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_extra_key, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_atomic_save, fx_setup, fx_teardown),
        cmocka_unit_test(test_empty_and_edge),
        cmocka_unit_test(test_arrays_round_trip),
        cmocka_unit_test(test_arrays_wrong_dtype),
        cmocka_unit_test(test_arrays_truncated),
        cmocka_unit_test_setup_teardown(test_python_cross_check, fx_setup, fx_teardown),
        cmocka_unit_test(test_keys_escaped_in_messages),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rm_dir(g_dir);
    return rc;
}
