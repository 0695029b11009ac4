/* host/cli/lua_data.c — data in `wb.core`: the Samples matrix (what every
 * sampler returns and every metric and plot takes), the Dataset userdata, and
 * the functions that make them: wb.samples, wb.data.gmm2d, wb.data.images.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/lua_guard.h"
#include "cli/lua_types.h"
#include "engine/images.h"
#include "engine/memory.h"

/* ---- Samples: an n × dim float matrix ------------------------------------------------- */
samples_ud *wb_lua_samples_push(lua_State *L, int64_t n, int64_t dim) {
    if (n < 0 || dim < 1 || (uint64_t)n > (SIZE_MAX - sizeof(samples_ud)) / sizeof(float) / (uint64_t)dim)
        luaL_error(L, "wb: cannot hold %I samples of dimension %I", (lua_Integer)n, (lua_Integer)dim);
    samples_ud *s = lua_newuserdatauv(L, sizeof *s + (size_t)n * (size_t)dim * sizeof(float), 0);
    s->n = n;
    s->dim = dim;
    /* a vector until told otherwise; dims beyond int stay flat (c = 0) */
    s->c = dim <= INT_MAX ? (int)dim : 0;
    s->h = s->w = 1;
    luaL_setmetatable(L, SAMPLES_TNAME);
    return s;
}

/* Samples shaped like data of geometry `shape` (which must match dim). */
samples_ud *wb_lua_samples_push_shaped(lua_State *L, int64_t n, const wb_net_shape *shape) {
    int64_t dim = (int64_t)shape->channels * shape->height * shape->width;
    samples_ud *s = wb_lua_samples_push(L, n, dim);
    s->c = shape->channels;
    s->h = shape->height;
    s->w = shape->width;
    return s;
}

samples_ud *wb_lua_check_samples(lua_State *L, int arg) { return luaL_checkudata(L, arg, SAMPLES_TNAME); }

static int64_t check_index(lua_State *L, int arg, int64_t n, const char *what) {
    lua_Integer i = luaL_checkinteger(L, arg);
    if (i < 1 || i > n) luaL_error(L, "Samples: %s index %I out of range 1..%I", what, i, (lua_Integer)n);
    return (int64_t)i - 1;
}

static int samples_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)wb_lua_check_samples(L, 1)->n);
    return 1;
}

static int samples_n(lua_State *L) { return samples_len(L); }

static int samples_dim(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)wb_lua_check_samples(L, 1)->dim);
    return 1;
}

/* s:shape() -> C, H, W of each row (D, 1, 1 for vectors) */
static int samples_shape(lua_State *L) {
    samples_ud *s = wb_lua_check_samples(L, 1);
    lua_pushinteger(L, s->c);
    lua_pushinteger(L, s->h);
    lua_pushinteger(L, s->w);
    return 3;
}

static int samples_get(lua_State *L) {
    samples_ud *s = wb_lua_check_samples(L, 1);
    int64_t i = check_index(L, 2, s->n, "row");
    int64_t j = check_index(L, 3, s->dim, "column");
    lua_pushnumber(L, s->x[i * s->dim + j]);
    return 1;
}

static void push_row(lua_State *L, const samples_ud *s, int64_t i) {
    lua_createtable(L, (int)s->dim, 0);
    for (int64_t j = 0; j < s->dim; j++) {
        lua_pushnumber(L, s->x[i * s->dim + j]);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
}

static int samples_row(lua_State *L) {
    samples_ud *s = wb_lua_check_samples(L, 1);
    push_row(L, s, check_index(L, 2, s->n, "row"));
    return 1;
}

static int samples_totable(lua_State *L) {
    samples_ud *s = wb_lua_check_samples(L, 1);
    lua_createtable(L, s->n > INT_MAX ? INT_MAX : (int)s->n, 0);
    for (int64_t i = 0; i < s->n; i++) {
        push_row(L, s, i);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int samples_tostring(lua_State *L) {
    samples_ud *s = wb_lua_check_samples(L, 1);
    lua_pushfstring(L, "Samples(%I x %I)", (lua_Integer)s->n, (lua_Integer)s->dim);
    return 1;
}

/* wb.samples(rows): Samples from an array of equal-length arrays of numbers. */
static int l_samples(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n < 1) luaL_error(L, "wb.samples: expects a non-empty array of rows");
    lua_rawgeti(L, 1, 1);
    if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "wb.samples: row 1 is a %s, not an array", luaL_typename(L, -1));
    lua_Integer dim = (lua_Integer)lua_rawlen(L, -1);
    lua_pop(L, 1);
    if (dim < 1) luaL_error(L, "wb.samples: row 1 is empty");
    samples_ud *s = wb_lua_samples_push(L, n, dim);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TTABLE) luaL_error(L, "wb.samples: row %I is not an array", i);
        if ((lua_Integer)lua_rawlen(L, -1) != dim)
            luaL_error(L, "wb.samples: row %I has %I values, row 1 has %I", i, (lua_Integer)lua_rawlen(L, -1), dim);
        for (lua_Integer j = 1; j <= dim; j++) {
            lua_rawgeti(L, -1, j);
            int isnum = 0;
            lua_Number v = lua_tonumberx(L, -1, &isnum);
            if (!isnum || lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "wb.samples: row %I, column %I is a %s, not a number", i, j, luaL_typename(L, -1));
            s->x[(i - 1) * dim + (j - 1)] = (float)v;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return 1;
}

/* ---- Dataset --------------------------------------------------------------------------- */

wb_dataset *wb_lua_check_dataset(lua_State *L, int arg) {
    dataset_ud *d = luaL_checkudata(L, arg, DATASET_TNAME);
    if (!d->ds) luaL_error(L, "Dataset: already freed");
    return d->ds;
}

static int dataset_gc(lua_State *L) {
    dataset_ud *d = luaL_checkudata(L, 1, DATASET_TNAME);
    wb_dataset_free(d->ds);
    d->ds = NULL;
    return 0;
}

/* n samples of ds drawn with `seed` on RNG stream 0 — the same numbers
 * ds:sample(n, seed) returns, so wb.evaluate's reference is reproducible
 * from Lua. */
samples_ud *wb_lua_dataset_draw(lua_State *L, wb_dataset *ds, int64_t n, uint64_t seed, const char *fn) {
    samples_ud *s = wb_lua_samples_push_shaped(L, n, &ds->shape);
    wb_rng rng;
    wb_rng_init(&rng, seed, 0);
    if (ds->sample(ds, &rng, n, s->x)) luaL_error(L, "%s: sampling %s failed: %s", fn, ds->name, wb_last_error());
    return s;
}

/* ds:sample(n, seed) -> Samples; an image set also returns the drawn
 * images' labels (an array of n integers), from the same draws. */
static int dataset_sample(lua_State *L) {
    wb_dataset *ds = wb_lua_check_dataset(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    lua_Integer seed = luaL_optinteger(L, 3, 0);
    luaL_argcheck(L, n >= 0, 2, "number of samples must be >= 0");
    luaL_argcheck(L, seed >= 0, 3, "seed must be >= 0");
    if (wb_memory_check_samples(n, ds->dim)) /* the guard: engine/memory.h */
        return luaL_error(L, "Dataset:sample(%I): %s", n, wb_last_error());
    if (!wb_images_is(ds)) {
        wb_lua_dataset_draw(L, ds, n, (uint64_t)seed, "Dataset:sample");
        return 1;
    }
    samples_ud *s = wb_lua_samples_push_shaped(L, n, &ds->shape);
    /* scratch owned by Lua, so a failed draw leaks nothing; samples_push
     * already bounded n so that this size cannot overflow */
    int *labels = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(int), 0);
    wb_rng rng;
    wb_rng_init(&rng, (uint64_t)seed, 0);
    if (wb_images_sample_labeled(ds, &rng, n, s->x, labels))
        luaL_error(L, "Dataset:sample: sampling %s failed: %s", ds->name, wb_last_error());
    lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushinteger(L, labels[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_remove(L, -2); /* the scratch */
    return 2;
}

/* ds:image(i) -> Samples (1 x C·H·W), label: the i-th kept image (1-based,
 * never flipped), for looking at a data set one picture at a time. */
static int dataset_image(lua_State *L) {
    wb_dataset *ds = wb_lua_check_dataset(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (!wb_images_is(ds)) luaL_error(L, "Dataset:image: dataset '%s' is not an image set", ds->name);
    int64_t count = wb_images_count(ds);
    if (i < 1 || i > count)
        luaL_error(L, "Dataset:image: index %I out of range 1..%I", i, (lua_Integer)count);
    samples_ud *s = wb_lua_samples_push_shaped(L, 1, &ds->shape);
    int label = 0;
    if (wb_images_get(ds, (int64_t)i - 1, s->x, &label)) luaL_error(L, "Dataset:image: %s", wb_last_error());
    lua_pushinteger(L, label);
    return 2;
}

static int dataset_index(lua_State *L) {
    wb_dataset *ds = wb_lua_check_dataset(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL) return 1; /* a method */
    if (strcmp(k, "name") == 0) lua_pushstring(L, ds->name);
    else if (strcmp(k, "dim") == 0) lua_pushinteger(L, (lua_Integer)ds->dim);
    else if (strcmp(k, "n_modes") == 0 && ds->gmm) lua_pushinteger(L, ds->gmm->n_modes);
    else if (strcmp(k, "channels") == 0) lua_pushinteger(L, ds->shape.channels);
    else if (strcmp(k, "height") == 0) lua_pushinteger(L, ds->shape.height);
    else if (strcmp(k, "width") == 0) lua_pushinteger(L, ds->shape.width);
    else if (strcmp(k, "count") == 0 && wb_images_is(ds)) lua_pushinteger(L, (lua_Integer)wb_images_count(ds));
    else if (strcmp(k, "n_classes") == 0 && wb_images_is(ds)) lua_pushinteger(L, wb_images_n_classes(ds));
    else lua_pushnil(L);
    return 1;
}

static int dataset_tostring(lua_State *L) {
    wb_dataset *ds = wb_lua_check_dataset(L, 1);
    if (wb_images_is(ds))
        lua_pushfstring(L, "Dataset(%s, %I images of %dx%dx%d)", ds->name, (lua_Integer)wb_images_count(ds),
                        ds->shape.channels, ds->shape.height, ds->shape.width);
    else lua_pushfstring(L, "Dataset(%s, dim %I)", ds->name, (lua_Integer)ds->dim);
    return 1;
}

static const key_def gmm2d_keys[] = {
    {"preset", K_STRING, NULL},
    {"scale", K_NUMBER, NULL},
    {"std", K_NUMBER, NULL},
};

static int l_gmm2d(lua_State *L) {
    const char *fn = "wb.data.gmm2d";
    int t = wb_lua_opt_table(L, 1, fn, gmm2d_keys, N_DEFS(gmm2d_keys)) ? 1 : 0;
    const char *preset = wb_lua_get_str(L, t, "preset", "ring8");
    double scale = wb_lua_get_num(L, t, "scale", 1.0);
    double std = wb_lua_get_num(L, t, "std", 0.05);
    dataset_ud *d = lua_newuserdatauv(L, sizeof *d, 0);
    d->ds = NULL;
    luaL_setmetatable(L, DATASET_TNAME);
    d->ds = wb_gmm2d_new(preset, scale, std);
    if (!d->ds) luaL_error(L, "%s: %s", fn, wb_last_error());
    return 1;
}
/* ---- image datasets ----------------------------------------------------------------------- */
#define WB_FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

static const key_def images_keys[] = {
    {"kind", K_STRING, NULL},     {"path", K_STRING, NULL},      {"split", K_STRING, NULL},
    {"include", K_TABLE, NULL},   {"exclude", K_TABLE, NULL},    {"pad_to", K_INT, NULL},
    {"resize_to", K_INT, NULL},   {"resize", K_STRING, NULL},    {"channels", K_INT, NULL},
    {"flip", K_BOOL, NULL},       {"max_images", K_INT, NULL},   {"labels", K_STRING, NULL},
};

/* The integer list at field k of table t as an int array in a scratch
 * userdata left on the stack (so an error later frees it); *n = 0 when the
 * key is absent. The label range is checked by wb_images_open, which knows
 * the data set's number of classes. */
static const int *get_label_list(lua_State *L, int t, const char *fn, const char *k, int *n) {
    *n = 0;
    if (lua_getfield(L, t, k) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    int li = lua_gettop(L);
    lua_Unsigned len = lua_rawlen(L, li);
    /* an empty include would silently mean "every label" */
    if (len < 1 || len > 1000) luaL_error(L, "%s: key '%s' expects a list of 1..1000 labels", fn, k);
    lua_Integer entries = 0;
    lua_pushnil(L);
    while (lua_next(L, li)) {
        entries++;
        lua_pop(L, 1);
    }
    if ((lua_Unsigned)entries != len) luaL_error(L, "%s: key '%s' expects a list of labels, not a table with other keys", fn, k);
    int *v = lua_newuserdatauv(L, (size_t)len * sizeof *v, 0);
    for (lua_Unsigned i = 1; i <= len; i++) {
        lua_rawgeti(L, li, (lua_Integer)i);
        int isint = 0;
        lua_Integer x = lua_tointegerx(L, -1, &isint);
        if (lua_type(L, -1) != LUA_TNUMBER || !isint || x < INT_MIN || x > INT_MAX)
            luaL_error(L, "%s: key '%s' expects a list of integer labels, element %d is %s", fn, k, (int)i,
                       lua_type(L, -1) == LUA_TNUMBER ? lua_pushfstring(L, "%f", lua_tonumber(L, -1))
                                                      : luaL_typename(L, -1));
        v[i - 1] = (int)x;
        lua_pop(L, 1);
    }
    lua_remove(L, li); /* the scratch stays, the list is still held by t */
    *n = (int)len;
    return v;
}

/* wb.data.images{kind, path, ...}: an image data set as a Dataset, the same
 * type wb.data.gmm2d returns, so wb.teacher / wb.distill take it as is. */
static int l_images(lua_State *L) {
    const char *fn = "wb.data.images";
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    wb_lua_check_keys(L, 1, fn, images_keys, N_DEFS(images_keys));
    static const char *const kinds[] = {"fashion-mnist", "mnist", "cifar10", "cifar100", "png-folder"};
    if (!wb_lua_has_field(L, 1, "kind")) luaL_error(L, "%s: key 'kind' is required (fashion-mnist|mnist|cifar10|cifar100|png-folder)", fn);
    int kind_i = wb_lua_choose(L, fn, "kind", wb_lua_get_str(L, 1, "kind", NULL), kinds, N_DEFS(kinds));
    const char *kind = kinds[kind_i];
    /* only Fashion-MNIST has a conventional location on our machines */
    const char *path = wb_lua_get_str(L, 1, "path", kind_i == 0 ? WB_FASHION_MNIST_DEFAULT_DIR : NULL);
    if (!path) luaL_error(L, "%s: key 'path' is required for kind '%s' (the directory holding its files)", fn, kind);

    wb_image_options opt;
    wb_image_options_default(&opt);
    if (wb_lua_has_field(L, 1, "split")) {
        static const char *const splits[] = {"train", "test"};
        opt.split = splits[wb_lua_choose(L, fn, "split", wb_lua_get_str(L, 1, "split", "train"), splits, 2)];
        if (kind_i == 4) luaL_error(L, "%s: key 'split' does not apply to kind 'png-folder' (every *.png is read)", fn);
    }
    if (wb_lua_has_field(L, 1, "resize")) {
        static const char *const modes[] = {"nearest", "bilinear"};
        static const wb_resize_mode mv[] = {WB_RESIZE_NEAREST, WB_RESIZE_BILINEAR};
        opt.resize = mv[wb_lua_choose(L, fn, "resize", wb_lua_get_str(L, 1, "resize", "bilinear"), modes, 2)];
        if (!wb_lua_has_field(L, 1, "resize_to")) luaL_error(L, "%s: key 'resize' needs 'resize_to'", fn);
    }
    if (wb_lua_has_field(L, 1, "labels")) {
        static const char *const lk[] = {"fine", "coarse"};
        opt.cifar100_coarse = wb_lua_choose(L, fn, "labels", wb_lua_get_str(L, 1, "labels", "fine"), lk, 2) == 1;
        if (kind_i != 3) luaL_error(L, "%s: key 'labels' applies to kind 'cifar100' only", fn);
    }
    opt.resize_to = (int)wb_lua_get_int(L, 1, fn, "resize_to", 0, 1, 4096);
    opt.pad_to = (int)wb_lua_get_int(L, 1, fn, "pad_to", 0, 1, 4096);
    opt.channels = (int)wb_lua_get_int(L, 1, fn, "channels", 0, 1, 3);
    if (opt.channels == 2) luaL_error(L, "%s: key 'channels' = 2 is not one of 1|3", fn);
    opt.flip = wb_lua_get_bool(L, 1, "flip", 0);
    opt.max_images = wb_lua_get_int(L, 1, fn, "max_images", 0, 1, INT64_MAX);
    opt.include = get_label_list(L, 1, fn, "include", &opt.n_include);
    opt.exclude = get_label_list(L, 1, fn, "exclude", &opt.n_exclude);

    /* Say "no such directory" here rather than let the loader report the
     * first file it misses, which hides that the whole path is wrong. */
    struct stat st;
    if (stat(path, &st) != 0)
        luaL_error(L, "%s: path '%s' (kind '%s'): %s", fn, path, kind, strerror(errno));
    if (!S_ISDIR(st.st_mode)) luaL_error(L, "%s: path '%s' (kind '%s') is not a directory", fn, path, kind);

    dataset_ud *d = lua_newuserdatauv(L, sizeof *d, 0);
    d->ds = NULL;
    luaL_setmetatable(L, DATASET_TNAME);
    d->ds = wb_images_open(kind, path, &opt);
    if (!d->ds) luaL_error(L, "%s: %s", fn, wb_last_error());
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */
void wb_lua_open_data(lua_State *L, int module, int data, int registry) {
    static const luaL_Reg samples_meta[] = {{"__len", samples_len}, {"__tostring", samples_tostring}, {NULL, NULL}};
    static const luaL_Reg samples_methods[] = {{"get", samples_get}, {"row", samples_row}, {"totable", samples_totable},
                                               {"n", samples_n},     {"dim", samples_dim}, {"shape", samples_shape},
                                               {NULL, NULL}};
    static const luaL_Reg dataset_meta[] = {{"__gc", dataset_gc}, {"__tostring", dataset_tostring}, {NULL, NULL}};
    static const luaL_Reg dataset_methods[] = {{"sample", dataset_sample}, {"image", dataset_image}, {NULL, NULL}};
    wb_lua_new_class(L, SAMPLES_TNAME, samples_meta, samples_methods, NULL);
    wb_lua_new_class(L, DATASET_TNAME, dataset_meta, dataset_methods, dataset_index);

    static const luaL_Reg funcs[] = {{"samples", l_samples}, {NULL, NULL}};
    static const luaL_Reg data_funcs[] = {{"gmm2d", l_gmm2d}, {"images", l_images}, {NULL, NULL}};
    wb_lua_set_funcs(L, module, registry, funcs);
    wb_lua_set_funcs(L, data, registry, data_funcs);
}
