/* host/cli/lua_models.c — the models of `wb.core`: wb.teacher (a Teacher
 * trained with EDM DSM, or a Gaussian mixture's exact one) and wb.distill (a
 * Student), their userdata and methods, and the run directories they write.
 * Their engine options are checked and applied through the engine's option
 * rows (engine/options.h via lua_guard.c); the keys that are Lua objects
 * (data, teacher, net and plugin specs, on_eval, run) are handled here, and
 * so is wb.core.load_only (wb.arms: a worker loads the setup's runs).
 */
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <zlib.h>

#include "cli/lua_guard.h"
#include "cli/lua_types.h"
#include "cli/lua_wb.h"
#include "core/comm.h"
#include "engine/memory.h"
#include "engine/options.h"
#include "wb/safetensors.h"

/* ---- runs ----------------------------------------------------------------------------------- */
/* Opens run dir `dir` (NULL: no run) into *run; returns the pointer the
 * engine takes. Errors are raised before any engine work starts. */
/* What started a run, for its config.json: the script (path, CRC-32 of its
 * text, so an edited script shows) and the command line's key=value pairs.
 * NULL when no script is known (wb.core used from another host). */
static cJSON *run_origin(lua_State *L) {
    cJSON *origin = NULL;
    if (lua_getfield(L, LUA_REGISTRYINDEX, WB_LUA_SCRIPT_KEY) == LUA_TSTRING) {
        const char *path = lua_tostring(L, -1);
        origin = cJSON_CreateObject();
        cJSON *script = cJSON_AddObjectToObject(origin, "script");
        cJSON_AddStringToObject(script, "path", path);
        FILE *f = fopen(path, "rb");
        if (f) {
            uLong crc = crc32(0L, Z_NULL, 0);
            unsigned char buf[8192];
            size_t got;
            while ((got = fread(buf, 1, sizeof buf, f)) > 0) crc = crc32(crc, buf, (uInt)got);
            fclose(f);
            char hex[16];
            snprintf(hex, sizeof hex, "%08lx", (unsigned long)crc);
            cJSON_AddStringToObject(script, "crc32", hex);
        }
        cJSON *args = cJSON_AddObjectToObject(origin, "args");
        if (lua_getfield(L, LUA_REGISTRYINDEX, WB_LUA_CLI_ARGS_KEY) == LUA_TTABLE) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
                    cJSON_AddStringToObject(args, lua_tostring(L, -2), lua_tostring(L, -1));
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return origin;
}

static wb_run *open_run(lua_State *L, const char *fn, const char *dir, int quiet, wb_run *run) {
    memset(run, 0, sizeof *run);
    if (!dir) return NULL;
    if (wb_run_open(run, dir)) luaL_error(L, "%s: run '%s': %s", fn, dir, wb_last_error());
    run->quiet = quiet;
    run->rank = wb_comm_rank(wb_lua_comm(L)); /* rank 0 alone writes the directory */
    run->origin = run_origin(L);
    return run;
}

/* `workbench run FILE.lua resume=DIR` resumes every run inside DIR (DIR
 * itself included) that does not say resume = false; resume=true (or 1)
 * every run of the script. A run's own `resume` key wins. Called after
 * open_run made the run's directory, so both paths resolve. */
static int cli_resume(lua_State *L, const char *fn, int table, wb_run *run) {
    if (!run || wb_lua_has_field(L, table, "resume")) return -1; /* the key's value stands */
    int applies = 0, top = lua_gettop(L);
    if (lua_getfield(L, LUA_REGISTRYINDEX, WB_LUA_CLI_ARGS_KEY) == LUA_TTABLE &&
        lua_getfield(L, -1, "resume") == LUA_TSTRING) {
        const char *v = lua_tostring(L, -1);
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) applies = 1;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || v[0] == '\0') applies = 0;
        else {
            char *want = realpath(v, NULL), *have = realpath(run->dir, NULL);
            if (!want) {
                free(have);
                lua_settop(L, top);
                wb_run_close(run);
                return luaL_error(L, "%s: resume=%s (command line): %s", fn, v, strerror(errno));
            }
            size_t n = strlen(want);
            applies = have && strncmp(have, want, n) == 0 && (have[n] == '\0' || have[n] == '/' || n == 1);
            free(want);
            free(have);
        }
    }
    lua_settop(L, top);
    return applies;
}

/* ---- load only: where wb.arms loads the shared setup ----------------------------------------- */
/* wb.core.load_only(why) makes every later wb.teacher / wb.distill load its
 * run from a finished checkpoint and never train: a run directory without
 * one, or a call that would train without a run directory, is an error
 * ending in `why` (wb.arms says there which process it is and what to run
 * first); wb.core.load_only(nil) ends it. wb.arms sets it around a
 * worker's setup (the teacher the parent trained is loaded, not trained
 * again by every worker) and for `workbench table FILE.lua`. */
#define LOAD_ONLY_KEY "wb.load_only"

static int l_load_only(lua_State *L) {
    if (!lua_isnoneornil(L, 1)) luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, LOAD_ONLY_KEY);
    return 0;
}

/* The reason load-only is on (a string the registry anchors), or NULL. */
static const char *load_only_reason(lua_State *L) {
    const char *why = lua_getfield(L, LUA_REGISTRYINDEX, LOAD_ONLY_KEY) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    return why;
}

/* Under load-only: the run in `dir` must hold a finished checkpoint (one
 * that will be loaded); with no run directory, the call must not train. */
static void check_loadable(lua_State *L, const char *fn, const char *dir, int trains, const char *why) {
    if (!dir) {
        if (trains)
            luaL_error(L, "%s: this call would train and has no run directory to load it from (give it run = DIR): %s",
                       fn, why);
        return;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) luaL_error(L, "%s: run '%s' has no finished checkpoint to load (%s): %s", fn, dir, wb_last_error(), why);
    const char *training = wb_safetensors_meta(f, "training");
    char state[64];
    snprintf(state, sizeof state, "%s", training ? training : "(none)");
    int complete = training && strcmp(training, "complete") == 0;
    wb_safetensors_close(f);
    if (!complete)
        luaL_error(L, "%s: run '%s' is not finished (its checkpoint says training = %s): %s", fn, dir, state, why);
}

#define TRAINING_KEY "wb.training"

int wb_lua_training(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, TRAINING_KEY);
    int depth = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return depth > 0;
}

static void training_enter(lua_State *L, int delta) {
    lua_getfield(L, LUA_REGISTRYINDEX, TRAINING_KEY);
    lua_Integer depth = lua_tointeger(L, -1) + delta;
    lua_pop(L, 1);
    lua_pushinteger(L, depth);
    lua_setfield(L, LUA_REGISTRYINDEX, TRAINING_KEY);
}

/* ---- Teacher ------------------------------------------------------------------------------- */
/* user values of a Teacher: 1 = its Dataset, 2 = the registry box */
static teacher_ud *check_teacher(lua_State *L, int arg) {
    teacher_ud *t = luaL_checkudata(L, arg, TEACHER_TNAME);
    if (!t->t) luaL_error(L, "Teacher: not trained or already freed");
    return t;
}

static int teacher_gc(lua_State *L) {
    teacher_ud *t = luaL_checkudata(L, 1, TEACHER_TNAME);
    wb_teacher_free(t->t);
    t->t = NULL;
    return 0;
}

static const key_def teacher_sample_keys[] = {
    {"steps", K_INT, NULL},
    {"seed", K_INT, NULL},
};

static int teacher_sample(lua_State *L) {
    teacher_ud *t = check_teacher(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "number of samples must be >= 0");
    int o = wb_lua_opt_table(L, 3, "Teacher:sample", teacher_sample_keys, N_DEFS(teacher_sample_keys)) ? 3 : 0;
    int steps = (int)wb_lua_get_int(L, o, "Teacher:sample", "steps", WB_HEUN_STEPS, 1, 100000);
    uint64_t seed = (uint64_t)wb_lua_get_int(L, o, "Teacher:sample", "seed", 0, 0, INT64_MAX);
    if (wb_memory_check_teacher_sample(t->t, n)) /* before allocating: engine/memory.h */
        luaL_error(L, "Teacher:sample(%I): %s", n, wb_last_error());
    samples_ud *s = wb_lua_samples_push_shaped(L, n, &t->t->shape);
    if (wb_teacher_sample(t->t, n, steps, seed, s->x)) luaL_error(L, "Teacher:sample: %s", wb_last_error());
    return 1;
}

/* teacher:denoise(x, sigma[, labels]): D(x; σ) of the teacher (EDM
 * preconditioning included) for every row of the Samples x; sigma is one
 * number for all rows or an array of one per row; labels (class-conditional
 * teachers, label_dim > 0) an array of one class index per row, 0-based as
 * EDM's, given to the net one-hot. */
static int teacher_denoise(lua_State *L) {
    teacher_ud *t = check_teacher(L, 1);
    samples_ud *x = wb_lua_check_samples(L, 2);
    const wb_net_shape *sh = &t->t->shape;
    int64_t dim = (int64_t)sh->channels * sh->height * sh->width;
    if (x->dim != dim)
        return luaL_error(L, "Teacher:denoise: samples of dim %I, the teacher's data has dim %I", (lua_Integer)x->dim,
                          (lua_Integer)dim);
    int64_t n = x->n;
    float *sigma = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!sigma) return luaL_error(L, "Teacher:denoise: out of memory");
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (lua_isnumber(L, 3)) {
            v = lua_tonumber(L, 3);
        } else {
            if (!lua_istable(L, 3)) {
                free(sigma);
                return luaL_argerror(L, 3, "sigma: a number or an array of one per sample");
            }
            lua_rawgeti(L, 3, (lua_Integer)i + 1);
            int ok = lua_isnumber(L, -1);
            v = lua_tonumber(L, -1);
            lua_pop(L, 1);
            if (!ok) {
                free(sigma);
                return luaL_error(L, "Teacher:denoise: sigma[%I] is not a number (want %I of them)", (lua_Integer)i + 1,
                                  (lua_Integer)n);
            }
        }
        if (!(v > 0) || !isfinite(v)) {
            free(sigma);
            return luaL_error(L, "Teacher:denoise: sigma must be > 0 and finite (row %I: %f)", (lua_Integer)i + 1, v);
        }
        sigma[i] = (float)v;
    }
    /* labels: one class per row → one-hot (n, label_dim) */
    float *onehot = NULL;
    if (!lua_isnoneornil(L, 4)) {
        int k = sh->label_dim;
        if (k <= 0) {
            free(sigma);
            return luaL_argerror(L, 4, "labels: this teacher is not class-conditional (label_dim 0)");
        }
        if (!lua_istable(L, 4)) {
            free(sigma);
            return luaL_argerror(L, 4, "labels: an array of one class index (0-based) per sample");
        }
        onehot = calloc((size_t)(n > 0 ? n : 1) * (size_t)k, sizeof(float));
        if (!onehot) {
            free(sigma);
            return luaL_error(L, "Teacher:denoise: out of memory");
        }
        for (int64_t i = 0; i < n; i++) {
            lua_rawgeti(L, 4, (lua_Integer)i + 1);
            int ok = 0;
            lua_Integer c = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok || c < 0 || c >= k) {
                free(sigma);
                free(onehot);
                return luaL_error(L, "Teacher:denoise: labels[%I] must be a class index in 0..%d (want %I of them)",
                                  (lua_Integer)i + 1, k - 1, (lua_Integer)n);
            }
            onehot[i * k + c] = 1.0f;
        }
    }
    samples_ud *out = wb_lua_samples_push_shaped(L, n, sh);
    wb_graph *g = wb_graph_new(t->t->be);
    int rc = -1;
    if (g) {
        wb_graph_set_grad(g, 0);
        int64_t xs[4] = {n, sh->channels, sh->height, sh->width};
        int image = sh->height > 1 || sh->width > 1;
        if (!image) xs[1] = dim;
        wb_tensor *d = NULL;
        wb_tensor *xt = wb_from_host(g, image ? 4 : 2, xs, x->x), *st = wb_from_host(g, 1, &n, sigma);
        int64_t ls[2] = {n, sh->label_dim};
        wb_tensor *lt = onehot ? wb_from_host(g, 2, ls, onehot) : NULL;
        if (xt && st && (!onehot || lt) && !wb_teacher_denoise_labels(t->t, g, xt, st, lt, &d) && d)
            rc = wb_to_host(d, out->x);
        wb_graph_free(g);
    }
    free(sigma);
    free(onehot);
    if (rc) return luaL_error(L, "Teacher:denoise: %s", wb_last_error());
    return 1;
}

static int teacher_index(lua_State *L) {
    teacher_ud *t = check_teacher(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL) return 1;
    if (strcmp(k, "exact") == 0) lua_pushboolean(L, t->exact);
    else if (strcmp(k, "dim") == 0) lua_pushinteger(L, (lua_Integer)t->dim);
    else if (strcmp(k, "train_seconds") == 0) lua_pushnumber(L, t->t->train_seconds);
    else if (strcmp(k, "final_loss") == 0) lua_pushnumber(L, t->t->final_loss);
    else if (strcmp(k, "data") == 0) lua_getiuservalue(L, 1, 1);
    else if (strcmp(k, "run") == 0 && t->run[0]) lua_pushstring(L, t->run);
    else lua_pushnil(L);
    return 1;
}

static int teacher_tostring(lua_State *L) {
    teacher_ud *t = check_teacher(L, 1);
    lua_pushfstring(L, "Teacher(%s, dim %I)", t->exact ? "exact" : "trained", (lua_Integer)t->dim);
    return 1;
}

/* wb.teacher's keys besides the engine's rows (wb_teacher_options) */
static const key_def teacher_objects[] = {
    {"data", K_UDATA, DATASET_TNAME},
    {"exact", K_BOOL, NULL},
    {"net", K_SPEC, NULL},
};
static const key_def teacher_after[] = {{"run", K_STRING, NULL}};

static int l_teacher(lua_State *L) {
    const char *fn = "wb.teacher";
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    key_def keys[WB_LUA_MAX_KEYS];
    int n_keys = wb_lua_option_keys(teacher_objects, N_DEFS(teacher_objects), &wb_teacher_options, teacher_after,
                                    N_DEFS(teacher_after), keys);
    wb_lua_check_keys(L, 1, fn, keys, n_keys);
    wb_registry *reg = wb_lua_registry(L);
    dataset_ud *data = wb_lua_require_udata(L, 1, fn, "data");
    int exact = wb_lua_get_bool(L, 1, "exact", 0);
    if (exact) {
        /* an analytic teacher is not trained: a training key would be ignored */
        for (int i = 2; i < n_keys; i++) {
            const char *k = keys[i].name;
            if (strcmp(k, "run") && strcmp(k, "quiet") && strcmp(k, "backend") && wb_lua_has_field(L, 1, k))
                luaL_error(L, "%s: key '%s' does not apply to an exact teacher (exact = true)", fn, k);
        }
    }
    wb_lua_guard *g = wb_lua_guard_new(L); /* index 2 */
    wb_netspec spec = {0};
    wb_teacher_config cfg;
    wb_teacher_config_default(&cfg);
    if (!exact) wb_lua_resolve_netspec(L, reg, g, fn, 1, "net", "mlp", &spec);
    /* init: a checkpoint to start from; backend resolved once, here */
    wb_lua_apply_options(L, 1, fn, &wb_teacher_options, &cfg, NULL);
    /* a configuration that cannot fit fails here, before anything is allocated */
    if (!exact && wb_memory_check_teacher_train(data->ds, &spec, &cfg)) luaL_error(L, "%s: %s", fn, wb_last_error());
    const char *dir = wb_lua_get_str(L, 1, "run", NULL);
    int quiet = cfg.quiet;
    const char *load_only = load_only_reason(L);
    if (load_only) check_loadable(L, fn, dir, !exact && cfg.steps > 0, load_only);

    teacher_ud *ud = lua_newuserdatauv(L, sizeof *ud, 2);
    memset(ud, 0, sizeof *ud);
    luaL_setmetatable(L, TEACHER_TNAME);
    lua_getfield(L, 1, "data");
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setiuservalue(L, -2, 2);
    if (dir) snprintf(ud->run, sizeof ud->run, "%s", dir);

    wb_run run;
    wb_run *runp = open_run(L, fn, dir, quiet, &run);
    int resume = cli_resume(L, fn, 1, runp);
    if (resume >= 0) cfg.resume = resume;
    if (load_only && runp) cfg.resume = 1; /* finished (checked above): loaded */
    training_enter(L, 1);
    cfg.comm = wb_lua_comm(L); /* data parallel over the launcher's ranks */
    wb_teacher *t = exact ? wb_teacher_exact(data->ds, cfg.backend) : wb_teacher_train(data->ds, &spec, &cfg, runp);
    training_enter(L, -1);
    char err[1024] = "";
    if (!t) snprintf(err, sizeof err, "%s", wb_last_error());
    if (runp) wb_run_close(runp);
    wb_lua_guard_release(g);
    if (!t) luaL_error(L, "%s: %s", fn, err);
    ud->t = t;
    ud->dim = data->ds->dim;
    ud->exact = exact;
    return 1;
}

/* ---- Student ------------------------------------------------------------------------------- */
/* user values of a Student: 1 = Teacher, 2 = Dataset, 3 = registry box */
static student_ud *check_student(lua_State *L, int arg) {
    student_ud *s = luaL_checkudata(L, arg, STUDENT_TNAME);
    if (!s->s) luaL_error(L, "Student: not trained or already freed");
    return s;
}

static int student_gc(lua_State *L) {
    student_ud *s = luaL_checkudata(L, 1, STUDENT_TNAME);
    wb_student_free(s->s);
    s->s = NULL;
    return 0;
}

static const key_def student_sample_keys[] = {
    {"seed", K_INT, NULL},
    {"ema", K_BOOL, NULL},
};

static int student_sample(lua_State *L) {
    student_ud *s = check_student(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "number of samples must be >= 0");
    int o = wb_lua_opt_table(L, 3, "Student:sample", student_sample_keys, N_DEFS(student_sample_keys)) ? 3 : 0;
    uint64_t seed = (uint64_t)wb_lua_get_int(L, o, "Student:sample", "seed", 0, 0, INT64_MAX);
    int ema = wb_lua_get_bool(L, o, "ema", 1);
    if (wb_memory_check_student_sample(s->s, n)) luaL_error(L, "Student:sample(%I): %s", n, wb_last_error());
    samples_ud *out = wb_lua_samples_push_shaped(L, n, &s->s->shape);
    if (wb_student_sample(s->s, n, seed, ema, out->x)) luaL_error(L, "Student:sample: %s", wb_last_error());
    return 1;
}

/* The training curves, one entry per logged step: a fresh table of arrays
 * {step = {...}, mmd = {...}, value = {...}, ratio_loss, fake_loss, ratio_acc}
 * plus the mid-run evaluations (on_eval) {eval_step = {...}, eval = {...}}
 * (NaN where a quantity was not measured). */
static void push_student_log(lua_State *L, const wb_student *s) {
    const char *names[] = {"step", "mmd", "value", "ratio_loss", "fake_loss", "ratio_acc", "eval_step", "eval"};
    const float *arrs[] = {s->log_step, s->log_mmd, s->log_value, s->log_ratio_loss, s->log_fake_loss, s->log_ratio_acc,
                           s->eval_step, s->eval_value};
    lua_createtable(L, 0, 8);
    for (int k = 0; k < 8; k++) {
        int n = k < 6 ? s->n_log : s->n_eval;
        lua_createtable(L, n, 0);
        for (int i = 0; i < n && arrs[k]; i++) {
            if (k == 0 || k == 6) lua_pushinteger(L, (lua_Integer)arrs[k][i]);
            else lua_pushnumber(L, arrs[k][i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, names[k]);
    }
}

static int student_index(lua_State *L) {
    student_ud *s = check_student(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL) return 1;
    if (strcmp(k, "divergence") == 0) lua_pushstring(L, s->divergence);
    else if (strcmp(k, "ratio") == 0) lua_pushstring(L, s->ratio);
    else if (strcmp(k, "run") == 0 && s->run[0]) lua_pushstring(L, s->run);
    else if (strcmp(k, "dim") == 0) lua_pushinteger(L, (lua_Integer)s->dim);
    else if (strcmp(k, "steps") == 0) lua_pushinteger(L, (lua_Integer)s->s->steps_done);
    else if (strcmp(k, "train_seconds") == 0) lua_pushnumber(L, s->s->train_seconds);
    else if (strcmp(k, "teacher") == 0) lua_getiuservalue(L, 1, 1);
    else if (strcmp(k, "data") == 0) lua_getiuservalue(L, 1, 2);
    else if (strcmp(k, "log") == 0) push_student_log(L, s->s);
    else lua_pushnil(L);
    return 1;
}

static int student_tostring(lua_State *L) {
    student_ud *s = check_student(L, 1);
    lua_pushfstring(L, "Student(%s, %s, %I steps)", s->divergence, s->ratio, (lua_Integer)s->s->steps_done);
    return 1;
}

/* wb.distill's keys besides the engine's rows (wb_distill_options) */
static const key_def distill_objects[] = {
    {"teacher", K_UDATA, TEACHER_TNAME}, {"data", K_UDATA, DATASET_TNAME}, {"divergence", K_SPEC, NULL},
    {"ratio", K_SPEC, NULL},             {"net", K_SPEC, NULL},
};
static const key_def distill_after[] = {
    {"on_eval", K_FUNCTION, NULL},
    {"run", K_STRING, NULL},
};
/* wb.distill's on_eval: the script's function is called with the Student
 * being trained (the userdata wb.distill will return, pointing at the live
 * student only for the duration of the call) and the step; it returns a
 * number (recorded) or nil. */
typedef struct eval_ctx {
    lua_State *L;
    int fn_ref, ud_ref;
    student_ud *ud;
} eval_ctx;

static int lua_on_eval(void *user, wb_student *s, int64_t step, double *value) {
    eval_ctx *e = user;
    lua_State *L = e->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, wb_lua_msghandler);
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->fn_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->ud_ref);
    lua_pushinteger(L, (lua_Integer)step);
    e->ud->s = s;
    e->ud->training = 1;
    int status = lua_pcall(L, 2, 1, top + 1);
    e->ud->s = NULL; /* wb.distill sets it for good when training succeeds */
    e->ud->training = 0;
    int rc = 0;
    if (status != LUA_OK) {
        wb_set_error("on_eval: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
        rc = -1;
    } else if (lua_isnil(L, -1)) {
        *value = NAN;
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        *value = lua_tonumber(L, -1);
    } else {
        wb_set_error("on_eval must return a number or nil, got %s", luaL_typename(L, -1));
        rc = -1;
    }
    lua_settop(L, top);
    return rc;
}

static int l_distill(lua_State *L) {
    const char *fn = "wb.distill";
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    key_def keys[WB_LUA_MAX_KEYS];
    int n_keys = wb_lua_option_keys(distill_objects, N_DEFS(distill_objects), &wb_distill_options, distill_after,
                                    N_DEFS(distill_after), keys);
    wb_lua_check_keys(L, 1, fn, keys, n_keys);
    wb_registry *reg = wb_lua_registry(L);
    teacher_ud *teacher = wb_lua_require_udata(L, 1, fn, "teacher");
    dataset_ud *data = wb_lua_require_udata(L, 1, fn, "data");
    if (!teacher->t) luaL_error(L, "%s: key 'teacher' holds a teacher that was never trained", fn);
    wb_lua_guard *g = wb_lua_guard_new(L); /* index 2 */

    wb_distill_config cfg;
    wb_distill_config_default(&cfg);
    /* divergence: default reverse KL (DMD) */
    if (lua_getfield(L, 1, "divergence") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "kl");
    }
    cfg.divergence = wb_lua_resolve_spec(L, reg, g, fn, "divergence", -1, WB_KIND_DIVERGENCE, &cfg.divergence_cfg, NULL);
    lua_pop(L, 1);
    /* ratio estimator: default a classifier on an MLP backbone */
    if (lua_getfield(L, 1, "ratio") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "classifier");
    }
    int ratio_idx = lua_gettop(L);
    int has_net = 0;
    cfg.ratio = wb_lua_resolve_spec(L, reg, g, fn, "ratio", ratio_idx, WB_KIND_RATIO, &cfg.ratio_cfg, &has_net);
    if (cfg.ratio->ratio->wants_backbone) {
        if (has_net) wb_lua_resolve_netspec(L, reg, g, fn, ratio_idx, "net", "mlp", &cfg.ratio_net);
        else {
            lua_pushliteral(L, "mlp");
            cfg.ratio_net.desc = wb_lua_resolve_spec(L, reg, g, fn, "ratio.net", -1, WB_KIND_NET, &cfg.ratio_net.cfg, NULL);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1); /* ratio spec */
    /* The generator (and fake score) copy a trained teacher's net; only an
     * exact teacher leaves the architecture to choose. */
    if (teacher->t->net) {
        if (wb_lua_has_field(L, 1, "net"))
            luaL_error(L, "%s: key 'net' applies to an exact teacher only (the generator copies the trained teacher's net)", fn);
    } else {
        wb_lua_resolve_netspec(L, reg, g, fn, 1, "net", "mlp", &cfg.gen_net);
    }

    wb_lua_apply_options(L, 1, fn, &wb_distill_options, &cfg, NULL);
    const char *dir = wb_lua_get_str(L, 1, "run", NULL);
    int quiet = cfg.quiet;
    if ((cfg.eval_every > 0) != wb_lua_has_field(L, 1, "on_eval"))
        luaL_error(L, "%s: keys 'eval_every' (> 0) and 'on_eval' go together", fn);
    if (wb_memory_check_distill(teacher->t, data->ds, &cfg)) luaL_error(L, "%s: %s", fn, wb_last_error());
    const char *load_only = load_only_reason(L);
    if (load_only) check_loadable(L, fn, dir, cfg.steps > 0, load_only);

    student_ud *ud = lua_newuserdatauv(L, sizeof *ud, 3);
    memset(ud, 0, sizeof *ud);
    luaL_setmetatable(L, STUDENT_TNAME);
    lua_getfield(L, 1, "teacher");
    lua_setiuservalue(L, -2, 1);
    lua_getfield(L, 1, "data");
    lua_setiuservalue(L, -2, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setiuservalue(L, -2, 3);
    snprintf(ud->divergence, sizeof ud->divergence, "%s", cfg.divergence->name);
    snprintf(ud->ratio, sizeof ud->ratio, "%s", cfg.ratio->name);
    if (dir) snprintf(ud->run, sizeof ud->run, "%s", dir);

    ud->dim = data->ds->dim;
    eval_ctx ectx = {L, LUA_NOREF, LUA_NOREF, ud};
    if (cfg.eval_every > 0) {
        lua_pushvalue(L, -1);
        ectx.ud_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_getfield(L, 1, "on_eval");
        ectx.fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        cfg.on_eval = lua_on_eval;
        cfg.eval_user = &ectx;
    }

    wb_run run;
    wb_run *runp = open_run(L, fn, dir, quiet, &run);
    int resume = cli_resume(L, fn, 1, runp);
    if (resume >= 0) cfg.resume = resume;
    if (load_only && runp) cfg.resume = 1; /* finished (checked above): loaded */
    training_enter(L, 1);
    cfg.comm = wb_lua_comm(L);
    wb_student *s = wb_distill(teacher->t, data->ds, &cfg, runp);
    training_enter(L, -1);
    luaL_unref(L, LUA_REGISTRYINDEX, ectx.fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ectx.ud_ref);
    char err[1024] = "";
    if (!s) snprintf(err, sizeof err, "%s", wb_last_error());
    if (runp) wb_run_close(runp);
    wb_lua_guard_release(g);
    if (!s) luaL_error(L, "%s: %s", fn, err);
    ud->s = s;
    ud->dim = data->ds->dim;
    return 1;
}

/* ---- wb.checkpoint_info(path) ------------------------------------------------------------- */
/* A JSON value as a Lua value (objects as tables, arrays as sequences). */
static void push_json(lua_State *L, const cJSON *j) {
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        lua_newtable(L);
        int i = 1;
        for (const cJSON *c = j->child; c; c = c->next) {
            push_json(L, c);
            if (cJSON_IsArray(j)) lua_rawseti(L, -2, i++);
            else lua_setfield(L, -2, c->string);
        }
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        if (v == (double)(lua_Integer)v) lua_pushinteger(L, (lua_Integer)v);
        else lua_pushnumber(L, v);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else {
        lua_pushnil(L);
    }
}

/* What a checkpoint says about itself: { meta = {key = value, ...} for the
 * metadata keys the workbench and its converters write, net = the net spec
 * of a converted file ({"unet", channels = ...}, from unet_spec), precond }. */
static int l_checkpoint_info(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    wb_st_file *f = wb_safetensors_open(path);
    if (!f) return luaL_error(L, "wb.checkpoint_info: %s", wb_last_error());
    static const char *const keys[] = {"kind", "net", "precond", "unet_spec", "net_resolved", "data_shape",
                                       "converted_from", "source_sha256", "commit", "divergence", "steps", "format"};
    lua_newtable(L);
    lua_newtable(L);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = wb_safetensors_meta(f, keys[i]);
        if (v) {
            lua_pushstring(L, v);
            lua_setfield(L, -2, keys[i]);
        }
    }
    lua_setfield(L, -2, "meta");
    const char *precond = wb_safetensors_meta(f, "precond");
    lua_pushstring(L, precond ? precond : "edm");
    lua_setfield(L, -2, "precond");
    const char *spec = wb_safetensors_meta(f, "unet_spec"), *net = wb_safetensors_meta(f, "net");
    cJSON *j = spec ? cJSON_Parse(spec) : NULL;
    if (j && cJSON_IsObject(j)) {
        push_json(L, j);
        lua_pushstring(L, net ? net : "unet");
        lua_rawseti(L, -2, 1);
        lua_setfield(L, -2, "net");
    }
    cJSON_Delete(j);
    wb_safetensors_close(f);
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */
void wb_lua_open_models(lua_State *L, int module, int registry) {
    static const luaL_Reg teacher_meta[] = {{"__gc", teacher_gc}, {"__tostring", teacher_tostring}, {NULL, NULL}};
    static const luaL_Reg teacher_methods[] = {{"sample", teacher_sample}, {"denoise", teacher_denoise}, {NULL, NULL}};
    static const luaL_Reg student_meta[] = {{"__gc", student_gc}, {"__tostring", student_tostring}, {NULL, NULL}};
    static const luaL_Reg student_methods[] = {{"sample", student_sample}, {NULL, NULL}};
    wb_lua_new_class(L, TEACHER_TNAME, teacher_meta, teacher_methods, teacher_index);
    wb_lua_new_class(L, STUDENT_TNAME, student_meta, student_methods, student_index);

    static const luaL_Reg funcs[] = {{"teacher", l_teacher}, {"distill", l_distill},
                                     {"checkpoint_info", l_checkpoint_info}, {"load_only", l_load_only},
                                     {NULL, NULL}};
    wb_lua_set_funcs(L, module, registry, funcs);
}
