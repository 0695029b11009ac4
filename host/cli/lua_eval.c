/* host/cli/lua_eval.c — evaluation from Lua: wb.evaluate (mode coverage and
 * MMD of gmm2d samples) and wb.image_metrics (FID-style metrics of images,
 * with the feature classifiers and Inception networks a state has opened
 * cached in the Lua registry). Where samples come from and where results go
 * is the engine's (engine/evaluate.h): this file only reads the arguments.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/lua_guard.h"
#include "cli/lua_types.h"
#include "cli/lua_wb.h"
#include "core/comm.h"
#include "engine/evaluate.h"
#include "engine/feature_net.h"
#include "engine/images.h"
#include "engine/inception.h"
#include "engine/metrics.h"
#include "engine/options.h"

/* ---- evaluation ------------------------------------------------------------------------------- */
static const key_def evaluate_keys[] = {
    {"reference_n", K_INT, NULL},
    {"seed", K_INT, NULL},
    {"n", K_INT, NULL},
    {"sample_seed", K_INT, NULL},
};

static void push_metrics(lua_State *L, const wb_result *kv, int n) {
    for (int i = 0; i < n; i++) {
        if (kv[i].integer) lua_pushinteger(L, (lua_Integer)kv[i].value);
        else lua_pushnumber(L, kv[i].value);
        lua_setfield(L, -2, kv[i].key);
    }
}

/* Argument 1 as a sample source when it is a (trained) Student or Teacher;
 * 0 when it is neither. A Student inside wb.distill's on_eval has no run for
 * results: its scores are not final. */
static int source_arg(lua_State *L, wb_sample_source *src, student_ud **student) {
    memset(src, 0, sizeof *src);
    student_ud *s = luaL_testudata(L, 1, STUDENT_TNAME);
    teacher_ud *t = luaL_testudata(L, 1, TEACHER_TNAME);
    if (s && s->s) {
        src->student = s->s;
        src->run = s->training ? NULL : s->run;
        if (student) *student = s;
        return 1;
    }
    if (t && t->t) {
        src->teacher = t->t;
        src->run = t->run;
        return 1;
    }
    return 0;
}

/* n samples of src with seed, as pushed Samples. */
static samples_ud *draw(lua_State *L, const char *fn, const wb_sample_source *src, int64_t n, uint64_t seed) {
    samples_ud *x = wb_lua_samples_push_shaped(L, n, wb_sample_source_shape(src));
    if (wb_draw_samples(src, n, seed, x->x)) luaL_error(L, "%s: %s", fn, wb_last_error());
    return x;
}

static void record(lua_State *L, const char *fn, const wb_sample_source *src, const wb_result *kv, int n) {
    if (wb_comm_rank(wb_lua_comm(L)) == 0 && wb_record_results(src->run, kv, n)) /* rank 0 writes */
        luaL_error(L, "%s: %s", fn, wb_last_error());
}

/* wb.evaluate(x, dataset[, opts]): x is Samples, or a Student / Teacher from
 * which opts.n (4096) samples are drawn with opts.sample_seed (0; a teacher
 * samples with WB_HEUN_STEPS = 18 Heun steps). A Student's result also names its divergence
 * and ratio estimator. */
static int l_evaluate(lua_State *L) {
    const char *fn = "wb.evaluate";
    lua_settop(L, 3);
    wb_dataset *ds = wb_lua_check_dataset(L, 2);
    int o = wb_lua_opt_table(L, 3, fn, evaluate_keys, N_DEFS(evaluate_keys)) ? 3 : 0;
    int64_t n_ref = wb_lua_get_int(L, o, fn, "reference_n", 4096, 1, INT32_MAX);
    uint64_t seed = (uint64_t)wb_lua_get_int(L, o, fn, "seed", 1, 0, INT64_MAX);
    int64_t n_model = wb_lua_get_int(L, o, fn, "n", 4096, 1, INT32_MAX);
    uint64_t sample_seed = (uint64_t)wb_lua_get_int(L, o, fn, "sample_seed", 0, 0, INT64_MAX);
    /* Mode coverage and MMD in pixel space say little about images; their
     * metrics need features from a trained network (wb.image_metrics). */
    if (wb_images_is(ds))
        luaL_error(L,
                   "%s: dataset '%s' is an image set: image metrics come from FID-style features; use "
                   "wb.image_metrics (wb.evaluate covers gmm2d datasets only)",
                   fn, ds->name);
    if (!ds->gmm) luaL_error(L, "%s: dataset '%s' is not an analytic 2-D mixture (gmm2d); no metrics for it", fn, ds->name);

    samples_ud *x = luaL_testudata(L, 1, SAMPLES_TNAME);
    student_ud *student = NULL;
    wb_sample_source src = {0}; /* given Samples: no run */
    if (!x) {
        if (!source_arg(L, &src, &student))
            luaL_error(L, "%s: argument 1 expects Samples, a Student or a Teacher, got %s", fn, wb_lua_type_label(L, 1));
        x = draw(L, fn, &src, n_model, sample_seed);
    } else if (wb_lua_has_field(L, o, "n") || wb_lua_has_field(L, o, "sample_seed")) {
        luaL_error(L, "%s: keys 'n' and 'sample_seed' apply to a Student or Teacher, not to Samples", fn);
    }
    if (x->dim != ds->dim)
        luaL_error(L, "%s: samples have dimension %I, dataset '%s' has %I", fn, (lua_Integer)x->dim, ds->name,
                   (lua_Integer)ds->dim);
    if (x->n < 1) luaL_error(L, "%s: no samples", fn);
    samples_ud *ref = wb_lua_dataset_draw(L, ds, n_ref, seed, fn);
    wb_gmm_metrics m;
    if (wb_eval_gmm(ds->gmm, x->x, x->n, ref->x, ref->n, &m)) luaL_error(L, "%s: %s", fn, wb_last_error());
    /* the combined MMD, then each bandwidth's (mmd_bw005 … mmd_bw1) */
    wb_result kv[5 + WB_MMD_BANDWIDTHS] = {
        {"modes", m.modes_covered, 1}, {"n_modes", m.n_modes, 1}, {"tv", m.mode_tv, 0},
        {"quality", m.quality, 0},     {"mmd", m.mmd, 0},
    };
    for (int h = 0; h < WB_MMD_BANDWIDTHS; h++) kv[5 + h] = (wb_result){wb_mmd_key(h), m.mmd_bw[h], 0};
    record(L, fn, &src, kv, N_DEFS(kv));
    lua_createtable(L, 0, N_DEFS(kv) + 2);
    push_metrics(L, kv, N_DEFS(kv));
    if (student) {
        /* so a list of results is directly a table with a method column */
        lua_pushstring(L, student->divergence);
        lua_setfield(L, -2, "divergence");
        lua_pushstring(L, student->ratio);
        lua_setfield(L, -2, "ratio");
    }
    return 1;
}

/* ---- image metrics (FID-style, host/engine/feature_net.h) ------------------------------------------- */
/* Feature classifiers opened in this lua_State, in a registry table keyed by
 * their id ("<dataset>-<H>x<W>-s<seed>-n<steps>"): opening one (even from the
 * disk cache) is not free, and a script scores many students against the
 * same data set. Each is a FeatureNet userdata whose __gc frees it. */
#define FEATURE_NETS_KEY "wb.core.feature_nets"

typedef struct feature_net_ud {
    wb_feature_net *fn;
} feature_net_ud;

static int feature_net_gc(lua_State *L) {
    feature_net_ud *u = luaL_checkudata(L, 1, FEATURE_NET_TNAME);
    wb_feature_net_free(u->fn);
    u->fn = NULL;
    return 0;
}

static wb_feature_net *cached_feature_net(lua_State *L, const char *fn_name, wb_dataset *ds, const char *cache,
                                          int steps, uint64_t seed, int quiet, const wb_backend *be) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, FEATURE_NETS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, FEATURE_NETS_KEY);
    }
    /* channels are part of the key: a channels = 1 view of a set has the
     * same name and size as the RGB one; so is the backend it runs on */
    lua_pushfstring(L, "%s-%dx%dx%d-s%I-n%d-%s", ds->name, ds->shape.channels, ds->shape.height, ds->shape.width,
                    (lua_Integer)seed, steps, wb_backend_name(be));
    lua_pushvalue(L, -1);
    if (lua_gettable(L, -3) == LUA_TUSERDATA) {
        feature_net_ud *u = lua_touserdata(L, -1);
        lua_pop(L, 3);
        if (u->fn) return u->fn; /* the table keeps it alive */
        luaL_error(L, "%s: cached feature net already freed", fn_name);
    }
    lua_pop(L, 1);
    /* the userdata exists before the net, so a Lua error cannot leak it */
    feature_net_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->fn = NULL;
    luaL_setmetatable(L, FEATURE_NET_TNAME);
    u->fn = wb_feature_net_open(ds, cache, steps, seed, quiet, be);
    if (!u->fn) luaL_error(L, "%s: %s", fn_name, wb_last_error());
    lua_settable(L, -3); /* table[key] = userdata */
    lua_pop(L, 1);
    return u->fn;
}

/* Inception networks loaded by wb.image_metrics{inception = PATH}, one per
 * path and backend, kept in a registry table for the life of the state (loading and
 * folding ~24M weights is not free, and a sweep scores many students). */
#define INCEPTIONS_KEY "wb.core.inceptions"

typedef struct inception_ud {
    wb_inception *m;
    char id[160]; /* the weights' name in cache file names: base name and size */
} inception_ud;

static int inception_gc(lua_State *L) {
    inception_ud *u = luaL_checkudata(L, 1, INCEPTION_TNAME);
    wb_inception_free(u->m);
    u->m = NULL;
    return 0;
}

static inception_ud *cached_inception(lua_State *L, const char *fn_name, const char *path, const wb_backend *be) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, INCEPTIONS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, INCEPTIONS_KEY);
    }
    const char *key = lua_pushfstring(L, "%s|%s", wb_backend_name(be), path); /* held until the end */
    if (lua_getfield(L, -2, key) == LUA_TUSERDATA) {
        inception_ud *u = lua_touserdata(L, -1);
        lua_pop(L, 3);
        return u; /* the table keeps it alive */
    }
    lua_pop(L, 1);
    struct stat st;
    if (stat(path, &st) != 0)
        luaL_error(L, "%s: key 'inception': cannot read '%s': %s (the FID Inception-v3 weights as safetensors, "
                   "torchvision state-dict names; see docs/lua.md)", fn_name, path, strerror(errno));
    inception_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->m = NULL;
    luaL_setmetatable(L, INCEPTION_TNAME);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(u->id, sizeof u->id, "%.*s-%lld", 120, base, (long long)st.st_size);
    for (char *c = u->id; *c; c++)
        if (*c == ' ' || *c == '/') *c = '_';
    u->m = wb_inception_load(path, be);
    if (!u->m) luaL_error(L, "%s: key 'inception': %s", fn_name, wb_last_error());
    lua_setfield(L, -3, key); /* the table keeps it alive */
    lua_pop(L, 2);
    return u;
}

static const key_def image_metrics_keys[] = {
    {"n", K_INT, NULL},           {"cache", K_STRING, NULL}, {"classifier_steps", K_INT, NULL},
    {"seed", K_INT, NULL},        {"sample_seed", K_INT, NULL}, {"quiet", K_BOOL, NULL},
    {"inception", K_STRING, NULL}, {"backend", K_STRING, NULL},
};

/* wb.image_metrics(x, dataset[, opts]): x is Samples (the first opts.n rows,
 * all by default) or a Student / Teacher from which opts.n (1000) samples
 * are drawn with opts.sample_seed (a teacher with WB_HEUN_STEPS = 18 Heun steps). The
 * classifier is trained on `dataset` (opts.classifier_steps, opts.seed) or
 * loaded from opts.cache, which also holds the reference statistics. */
static int l_image_metrics(lua_State *L) {
    const char *fn = "wb.image_metrics";
    lua_settop(L, 3);
    wb_dataset *ds = wb_lua_check_dataset(L, 2);
    int o = wb_lua_opt_table(L, 3, fn, image_metrics_keys, N_DEFS(image_metrics_keys)) ? 3 : 0;
    if (!wb_images_is(ds))
        luaL_error(L, "%s: dataset '%s' is not an image set (use wb.evaluate for gmm2d data)", fn, ds->name);
    const char *cache = wb_lua_get_str(L, o, "cache", "cache");
    int steps = (int)wb_lua_get_int(L, o, fn, "classifier_steps", 1500, 1, 10000000);
    uint64_t seed = (uint64_t)wb_lua_get_int(L, o, fn, "seed", 0, 0, INT64_MAX);
    uint64_t sample_seed = (uint64_t)wb_lua_get_int(L, o, fn, "sample_seed", 0, 0, INT64_MAX);
    int quiet = wb_lua_get_bool(L, o, "quiet", 0);
    /* where the feature net and Inception run: resolved once (absent: $WB_BACKEND, else cpu) */
    const wb_backend *be = wb_option_backend(wb_lua_get_str(L, o, "backend", NULL));
    if (!be) luaL_error(L, "%s: %s", fn, wb_last_error());
    int64_t n = wb_lua_get_int(L, o, fn, "n", 1000, 4, INT32_MAX / 16);

    samples_ud *x = luaL_testudata(L, 1, SAMPLES_TNAME);
    wb_sample_source src = {0}; /* given Samples: no run */
    if (!x) {
        if (!source_arg(L, &src, NULL))
            luaL_error(L, "%s: argument 1 expects Samples, a Student or a Teacher, got %s", fn, wb_lua_type_label(L, 1));
        x = draw(L, fn, &src, n, sample_seed);
    } else {
        if (wb_lua_has_field(L, o, "sample_seed"))
            luaL_error(L, "%s: key 'sample_seed' applies to a Student or Teacher, not to Samples", fn);
        if (!wb_lua_has_field(L, o, "n")) n = x->n;
        if (n > x->n)
            luaL_error(L, "%s: key 'n' = %I but the Samples have only %I rows", fn, (lua_Integer)n,
                       (lua_Integer)x->n);
        if (n < 4) luaL_error(L, "%s: %I samples; need at least 4", fn, (lua_Integer)n);
    }
    if (x->dim != ds->dim)
        luaL_error(L, "%s: samples have dimension %I, dataset '%s' has %I (%dx%dx%d)", fn, (lua_Integer)x->dim,
                   ds->name, (lua_Integer)ds->dim, ds->shape.channels, ds->shape.height, ds->shape.width);
    wb_feature_net *net = cached_feature_net(L, fn, ds, cache, steps, seed, quiet, be);
    const char *inception_path = wb_lua_get_str(L, o, "inception", NULL);
    inception_ud *inc = inception_path && *inception_path ? cached_inception(L, fn, inception_path, be) : NULL;
    wb_image_metrics_out m;
    if (wb_image_metrics(net, x->x, n, ds, cache, inc ? inc->m : NULL, inc ? inc->id : NULL, &m))
        luaL_error(L, "%s: %s", fn, wb_last_error());
    double acc = wb_feature_net_accuracy(net, ds, n);
    if (isnan(acc)) luaL_error(L, "%s: %s", fn, wb_last_error());
    const wb_result kv[] = {
        {"fid", m.fid, 0},
        {"precision", m.precision, 0},
        {"recall", m.recall, 0},
        {"is", m.is_mean, 0},
        {"is_std", m.is_std, 0},
        {"classes_covered", m.classes_covered, 1},
        {"n_classes", m.n_classes, 1},
        {"entropy", m.entropy, 0},
        {"classifier_accuracy", acc, 0},
        {"fid_inception", m.fid_inception, 0},
        {"precision_inception", m.precision_inception, 0},
        {"recall_inception", m.recall_inception, 0},
    };
    /* without Inception weights its three entries are left out, not NaN */
    record(L, fn, &src, kv, inc ? N_DEFS(kv) : N_DEFS(kv) - 3);
    lua_createtable(L, 0, 10);
    push_metrics(L, kv, inc ? N_DEFS(kv) : N_DEFS(kv) - 3);
    lua_pushboolean(L, m.collapsed);
    lua_setfield(L, -2, "collapsed");
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */
void wb_lua_open_eval(lua_State *L, int module, int registry) {
    static const luaL_Reg feature_net_meta[] = {{"__gc", feature_net_gc}, {NULL, NULL}};
    static const luaL_Reg inception_meta[] = {{"__gc", inception_gc}, {NULL, NULL}};
    wb_lua_new_class(L, FEATURE_NET_TNAME, feature_net_meta, NULL, NULL);
    wb_lua_new_class(L, INCEPTION_TNAME, inception_meta, NULL, NULL);

    static const luaL_Reg funcs[] = {{"evaluate", l_evaluate}, {"image_metrics", l_image_metrics}, {NULL, NULL}};
    wb_lua_set_funcs(L, module, registry, funcs);
}
