/* host/cli/lua_wb.c — the C module `wb.core`: a thin Lua binding over the engine
 * (host/engine/engine.h), the plugin registry (host/core/registry.h) and the plotting
 * module (host/report/plot.h). scripts/lua/wb.lua re-exports it as `wb` and adds the
 * Lua-side helpers (args, tables).
 *
 * Conventions, following Lua's own liolib.c:
 *   - Every table-taking function walks its table with lua_next and rejects
 *     unknown keys and wrong types with an error naming the function and the
 *     key ("wb.distill: unknown key 'stpes'"): a typo must never silently fall
 *     back to a default in a research script.
 *   - Plugin specs ("kl", {"sba", lambda = 3}, {"mlp", widths = {64, 64}})
 *     are resolved against the plugin's own parameter specs through the
 *     registry's type- and bounds-checked setters.
 *   - Engine objects are full userdata with __gc; objects that point into
 *     others keep them alive through user values (a teacher holds its
 *     dataset, a student its teacher and dataset, all hold the registry whose
 *     libraries their code lives in).
 *   - Configurations allocated while a call is still checking its arguments
 *     are owned by a "guard" userdata, so a Lua error half-way leaks nothing.
 *   - Library code: errors are raised as Lua errors, never exit().
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <zlib.h>

#include "engine/engine.h"
#include "engine/feature_net.h"
#include "engine/images.h"
#include "cli/lua_wb.h"
#include "engine/inception.h"
#include "report/plot.h"
#include "core/registry.h"

/* ---- metatable names ----------------------------------------------------------- */
#define REGISTRY_TNAME "wb.registry"
#define GUARD_TNAME "wb.guard"
#define SAMPLES_TNAME "wb.Samples"
#define DATASET_TNAME "wb.Dataset"
#define TEACHER_TNAME "wb.Teacher"
#define STUDENT_TNAME "wb.Student"
#define FEATURE_NET_TNAME "wb.FeatureNet"
#define INCEPTION_TNAME "wb.Inception"

/* Where luaopen_wb_core keeps the registry userdata, so a second require
 * (after package.loaded is cleared) reuses it instead of loading twice. */
#define REGISTRY_KEY "wb.core.registry"

/* A value's type for messages: "Dataset" for our userdata, else Lua's name. */
static const char *type_label(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TUSERDATA && luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
        /* the string stays alive: the metatable in the registry holds it */
        const char *name = lua_tostring(L, -1);
        lua_pop(L, 1);
        if (name) return strncmp(name, "wb.", 3) == 0 ? name + 3 : name;
    }
    return luaL_typename(L, idx);
}

/* ---- checked option tables ------------------------------------------------------ */
typedef enum {
    K_NUMBER,  /* any Lua number                             */
    K_INT,     /* a number with an integral value            */
    K_BOOL,    /* true / false                               */
    K_STRING,  /* a string                                   */
    K_TABLE,   /* a table                                    */
    K_SPEC,    /* a plugin spec: "name" or {"name", k = v}   */
    K_UDATA,   /* userdata of metatable `udata`              */
    K_FUNCTION, /* a function                                 */
} key_kind;

typedef struct key_def {
    const char *name;
    key_kind kind;
    const char *udata; /* K_UDATA: metatable name */
} key_def;

static const char *kind_text(const key_def *d) {
    switch (d->kind) {
    case K_NUMBER: return "a number";
    case K_INT: return "an integer";
    case K_BOOL: return "a boolean";
    case K_STRING: return "a string";
    case K_TABLE: return "a table";
    case K_SPEC: return "a plugin name or a {name, key = value} table";
    case K_UDATA: return d->udata + 3; /* "wb.Teacher" -> "Teacher" */
    case K_FUNCTION: return "a function";
    }
    return "?";
}

static void check_value(lua_State *L, int idx, const char *fn, const key_def *d) {
    int t = lua_type(L, idx);
    int ok = 0;
    switch (d->kind) {
    case K_NUMBER: ok = t == LUA_TNUMBER; break;
    case K_INT:
        if (t == LUA_TNUMBER) {
            int isint = 0;
            lua_tointegerx(L, idx, &isint);
            if (!isint)
                luaL_error(L, "%s: key '%s' expects an integer, got %s", fn, d->name,
                           lua_pushfstring(L, "%f", lua_tonumber(L, idx)));
            ok = 1;
        }
        break;
    case K_BOOL: ok = t == LUA_TBOOLEAN; break;
    case K_STRING: ok = t == LUA_TSTRING; break;
    case K_TABLE: ok = t == LUA_TTABLE; break;
    case K_SPEC: ok = t == LUA_TSTRING || t == LUA_TTABLE; break;
    case K_UDATA: ok = luaL_testudata(L, idx, d->udata) != NULL; break;
    case K_FUNCTION: ok = t == LUA_TFUNCTION; break;
    }
    if (!ok)
        luaL_error(L, "%s: key '%s' expects %s%s, got %s", fn, d->name, d->kind == K_UDATA ? "a " : "", kind_text(d),
                   type_label(L, idx));
}

/* Every key of the table at idx must be one of defs, with the right type. */
static void check_keys(lua_State *L, int idx, const char *fn, const key_def *defs, int n_defs) {
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: option keys must be names, got a %s key", fn, luaL_typename(L, -2));
        const char *key = lua_tostring(L, -2);
        const key_def *d = NULL;
        for (int i = 0; i < n_defs && !d; i++)
            if (strcmp(defs[i].name, key) == 0) d = &defs[i];
        if (!d) {
            char known[1024] = "";
            size_t used = 0;
            for (int i = 0; i < n_defs && used < sizeof known; i++)
                used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", defs[i].name);
            luaL_error(L, "%s: unknown key '%s' (known keys: %s)", fn, key, known);
        }
        check_value(L, -1, fn, d);
        lua_pop(L, 1);
    }
}

/* An optional table argument: nil/none -> 0 (absent), a table -> checked. */
static int opt_table_arg(lua_State *L, int arg, const char *fn, const key_def *defs, int n_defs) {
    if (lua_isnoneornil(L, arg)) return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    check_keys(L, arg, fn, defs, n_defs);
    return 1;
}

#define N_DEFS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Readers for a table that check_keys already validated (t == 0: absent
 * table, every key takes its default). */
static int has_field(lua_State *L, int t, const char *k) {
    if (!t) return 0;
    int present = lua_getfield(L, t, k) != LUA_TNIL;
    lua_pop(L, 1);
    return present;
}

static double get_num(lua_State *L, int t, const char *k, double def) {
    if (!t || lua_getfield(L, t, k) == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int64_t get_int(lua_State *L, int t, const char *fn, const char *k, int64_t def, int64_t lo, int64_t hi) {
    if (!t || lua_getfield(L, t, k) == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    lua_Integer v = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (v < lo) luaL_error(L, "%s: key '%s' = %I is below its minimum %I", fn, k, v, (lua_Integer)lo);
    if (v > hi) luaL_error(L, "%s: key '%s' = %I is above its maximum %I", fn, k, v, (lua_Integer)hi);
    return (int64_t)v;
}

static int get_bool(lua_State *L, int t, const char *k, int def) {
    if (!t || lua_getfield(L, t, k) == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* The returned string is owned by the table, which the caller keeps on the
 * stack for as long as it uses the pointer. */
static const char *get_str(lua_State *L, int t, const char *k, const char *def) {
    if (!t || lua_getfield(L, t, k) == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    const char *v = lua_tostring(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Userdata field (already type-checked); NULL when absent. The value is
 * owned by the table. */
static void *get_udata(lua_State *L, int t, const char *k) {
    if (!t) return NULL;
    lua_getfield(L, t, k);
    void *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
}

static void *require_udata(lua_State *L, int t, const char *fn, const char *k) {
    void *p = get_udata(L, t, k);
    if (!p) luaL_error(L, "%s: key '%s' is required", fn, k);
    return p;
}

/* ---- the registry userdata --------------------------------------------------------- */
typedef struct registry_box {
    wb_registry *reg;
} registry_box;

static int registry_gc(lua_State *L) {
    registry_box *b = luaL_checkudata(L, 1, REGISTRY_TNAME);
    wb_registry_free(b->reg);
    b->reg = NULL;
    return 0;
}

/* Every module function carries the registry box as upvalue 1. */
static wb_registry *get_registry(lua_State *L) {
    registry_box *b = lua_touserdata(L, lua_upvalueindex(1));
    if (!b || !b->reg) luaL_error(L, "wb.core: the plugin registry is gone (state closing)");
    return b->reg;
}

/* ---- guards: configurations owned until the engine call returns ---------------- */
#define GUARD_MAX 8
typedef struct guard {
    wb_config_owned *cfg[GUARD_MAX];
    int n;
} guard;

static void guard_release(guard *g) {
    for (int i = 0; i < g->n; i++) {
        wb_config_free(g->cfg[i]);
        g->cfg[i] = NULL;
    }
    g->n = 0;
}

static int guard_gc(lua_State *L) {
    guard_release(luaL_checkudata(L, 1, GUARD_TNAME));
    return 0;
}

static guard *guard_new(lua_State *L) {
    guard *g = lua_newuserdatauv(L, sizeof *g, 0);
    memset(g, 0, sizeof *g);
    luaL_setmetatable(L, GUARD_TNAME);
    return g;
}

static wb_config_owned *guard_config(lua_State *L, guard *g, const wb_plugin_desc *desc) {
    if (g->n == GUARD_MAX) luaL_error(L, "wb.core: too many plugin configurations in one call");
    wb_config_owned *c = wb_config_new(desc);
    if (!c) luaL_error(L, "wb.core: out of memory");
    g->cfg[g->n++] = c;
    return c;
}

/* ---- plugin specs --------------------------------------------------------------------- */
static const char *kind_long_name(wb_plugin_kind kind) {
    switch (kind) {
    case WB_KIND_DIVERGENCE: return "divergence";
    case WB_KIND_RATIO: return "ratio estimator";
    case WB_KIND_NET: return "net";
    }
    return "plugin";
}

static const wb_plugin_desc *find_plugin(lua_State *L, wb_registry *reg, const char *fn, wb_plugin_kind kind,
                                         const char *name) {
    const wb_plugin_info *info = wb_registry_find(reg, kind, name);
    if (info) return info->desc;
    char loaded[1024] = "";
    size_t used = 0;
    int n = 0;
    for (int i = 0; i < wb_registry_count(reg) && used < sizeof loaded; i++) {
        const wb_plugin_desc *d = wb_registry_at(reg, i)->desc;
        if (d->kind == kind) used += (size_t)snprintf(loaded + used, sizeof loaded - used, "%s%s", n++ ? ", " : "", d->name);
    }
    return luaL_error(L, "%s: unknown %s '%s' (loaded: %s)", fn, kind_long_name(kind), name,
                      n ? loaded : "none; check WB_PLUGIN_PATH"),
           NULL;
}

static const char *param_type_name(wb_param_type t) {
    switch (t) {
    case WB_PARAM_NUMBER: return "number";
    case WB_PARAM_INT: return "integer";
    case WB_PARAM_BOOL: return "boolean";
    case WB_PARAM_STRING: return "string";
    case WB_PARAM_INTS: return "integers";
    }
    return "?";
}

/* One plugin parameter from the Lua value at vidx, through the registry's
 * checked setters (which name the plugin and the key on failure). */
static void set_param(lua_State *L, const char *fn, wb_config_owned *c, const char *key, int vidx) {
    const wb_param_spec *s = wb_config_spec(c, key);
    if (!s) luaL_error(L, "%s: %s", fn, wb_last_error());
    int rc = 0;
    switch (lua_type(L, vidx)) {
    case LUA_TNUMBER:
        /* the setter would read a number as a boolean; a typo'd type is an error here */
        if (s->type == WB_PARAM_BOOL)
            luaL_error(L, "%s: %s: parameter '%s' expects a boolean, got number", fn, c->desc->name, key);
        rc = wb_config_set_number(c, key, lua_tonumber(L, vidx));
        break;
    case LUA_TBOOLEAN:
        if (s->type != WB_PARAM_BOOL)
            luaL_error(L, "%s: %s: parameter '%s' expects %s %s, got boolean", fn, c->desc->name, key,
                       s->type == WB_PARAM_INT ? "an" : "a", param_type_name(s->type));
        rc = wb_config_set_number(c, key, lua_toboolean(L, vidx) ? 1.0 : 0.0);
        break;
    case LUA_TSTRING: rc = wb_config_set_string(c, key, lua_tostring(L, vidx)); break;
    case LUA_TTABLE: {
        if (s->type != WB_PARAM_INTS)
            luaL_error(L, "%s: %s: parameter '%s' expects %s %s, got table", fn, c->desc->name, key,
                       s->type == WB_PARAM_INT ? "an" : "a", param_type_name(s->type));
        int64_t v[WB_MAX_INTS];
        lua_Unsigned n = lua_rawlen(L, vidx);
        if (n < 1 || n > WB_MAX_INTS)
            luaL_error(L, "%s: %s: parameter '%s' takes 1..%d integers, got %d", fn, c->desc->name, key,
                       WB_MAX_INTS, (int)(n > INT_MAX ? INT_MAX : n));
        for (lua_Unsigned i = 1; i <= n; i++) {
            lua_rawgeti(L, vidx, (lua_Integer)i);
            int isint = 0;
            lua_Integer x = lua_tointegerx(L, -1, &isint);
            if (!isint || lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "%s: %s: parameter '%s' expects a list of integers, element %d is %s", fn,
                           c->desc->name, key, (int)i,
                           lua_type(L, -1) == LUA_TNUMBER ? lua_pushfstring(L, "%f", lua_tonumber(L, -1))
                                                          : luaL_typename(L, -1));
            v[i - 1] = (int64_t)x;
            lua_pop(L, 1);
        }
        rc = wb_config_set_ints(c, key, v, (int)n);
        break;
    }
    default:
        luaL_error(L, "%s: %s: parameter '%s' expects %s %s, got %s", fn, c->desc->name, key,
                   s->type == WB_PARAM_INT ? "an" : "a", param_type_name(s->type), type_label(L, vidx));
    }
    if (rc) luaL_error(L, "%s: %s", fn, wb_last_error());
}

/* Resolves the spec at idx ("name" or {"name", key = value, ...}) to a
 * plugin of `kind` and a configuration owned by g. The ratio estimator's
 * "net" key, when the plugin wants a backbone, is left for the caller
 * (*has_net set); every other key must be one of the plugin's parameters. */
static const wb_plugin_desc *resolve_spec(lua_State *L, wb_registry *reg, guard *g, const char *fn, const char *key,
                                          int idx, wb_plugin_kind kind, wb_config_owned **cfg_out, int *has_net) {
    idx = lua_absindex(L, idx);
    if (has_net) *has_net = 0;
    const char *name;
    if (lua_type(L, idx) == LUA_TSTRING) {
        name = lua_tostring(L, idx);
    } else if (lua_type(L, idx) == LUA_TTABLE) {
        lua_rawgeti(L, idx, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: key '%s': the first element of a plugin spec must be the %s name (a string), got %s",
                       fn, key, kind_long_name(kind), luaL_typename(L, -1));
        name = lua_tostring(L, -1); /* owned by the spec table */
        lua_pop(L, 1);
    } else {
        return luaL_error(L, "%s: key '%s' expects a %s name or a {name, key = value} table, got %s", fn, key,
                          kind_long_name(kind), type_label(L, idx)),
               NULL;
    }
    const wb_plugin_desc *desc = find_plugin(L, reg, fn, kind, name);
    wb_config_owned *c = guard_config(L, g, desc);
    if (lua_type(L, idx) == LUA_TTABLE) {
        int host_net = kind == WB_KIND_RATIO && desc->ratio->wants_backbone;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) == LUA_TNUMBER && lua_tointeger(L, -2) == 1 && lua_isinteger(L, -2)) {
                lua_pop(L, 1);
                continue;
            }
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "%s: key '%s': %s '%s' takes named parameters only, got a %s key", fn, key,
                           kind_long_name(kind), desc->name, luaL_typename(L, -2));
            const char *pk = lua_tostring(L, -2);
            if (host_net && strcmp(pk, "net") == 0) {
                if (has_net) *has_net = 1;
            } else {
                set_param(L, fn, c, pk, -1);
            }
            lua_pop(L, 1);
        }
    }
    *cfg_out = c;
    return desc;
}

/* A net spec from field k of table t, or the default net when absent. */
static void resolve_netspec(lua_State *L, wb_registry *reg, guard *g, const char *fn, int t, const char *k,
                            const char *def, wb_netspec *out) {
    if (lua_getfield(L, t, k) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushstring(L, def);
    }
    out->desc = resolve_spec(L, reg, g, fn, k, -1, WB_KIND_NET, &out->cfg, NULL);
    lua_pop(L, 1);
}

/* ---- Samples: an n × dim float matrix ------------------------------------------------- */
/* Each row is one sample flattened; (c, h, w) records the geometry it came
 * from (an image's C, H, W; a vector's D, 1, 1) so image rows can be shown
 * as images again without the caller restating their shape. */
typedef struct samples_ud {
    int64_t n, dim;
    int c, h, w; /* c * h * w == dim */
    float x[];   /* row-major */
} samples_ud;

static samples_ud *samples_push(lua_State *L, int64_t n, int64_t dim) {
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
static samples_ud *samples_push_shaped(lua_State *L, int64_t n, const wb_net_shape *shape) {
    int64_t dim = (int64_t)shape->channels * shape->height * shape->width;
    samples_ud *s = samples_push(L, n, dim);
    s->c = shape->channels;
    s->h = shape->height;
    s->w = shape->width;
    return s;
}

static samples_ud *check_samples(lua_State *L, int arg) { return luaL_checkudata(L, arg, SAMPLES_TNAME); }

static int64_t check_index(lua_State *L, int arg, int64_t n, const char *what) {
    lua_Integer i = luaL_checkinteger(L, arg);
    if (i < 1 || i > n) luaL_error(L, "Samples: %s index %I out of range 1..%I", what, i, (lua_Integer)n);
    return (int64_t)i - 1;
}

static int samples_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)check_samples(L, 1)->n);
    return 1;
}

static int samples_n(lua_State *L) { return samples_len(L); }

static int samples_dim(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)check_samples(L, 1)->dim);
    return 1;
}

/* s:shape() -> C, H, W of each row (D, 1, 1 for vectors) */
static int samples_shape(lua_State *L) {
    samples_ud *s = check_samples(L, 1);
    lua_pushinteger(L, s->c);
    lua_pushinteger(L, s->h);
    lua_pushinteger(L, s->w);
    return 3;
}

static int samples_get(lua_State *L) {
    samples_ud *s = check_samples(L, 1);
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
    samples_ud *s = check_samples(L, 1);
    push_row(L, s, check_index(L, 2, s->n, "row"));
    return 1;
}

static int samples_totable(lua_State *L) {
    samples_ud *s = check_samples(L, 1);
    lua_createtable(L, s->n > INT_MAX ? INT_MAX : (int)s->n, 0);
    for (int64_t i = 0; i < s->n; i++) {
        push_row(L, s, i);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int samples_tostring(lua_State *L) {
    samples_ud *s = check_samples(L, 1);
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
    samples_ud *s = samples_push(L, n, dim);
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
typedef struct dataset_ud {
    wb_dataset *ds;
} dataset_ud;

static wb_dataset *check_dataset(lua_State *L, int arg) {
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
static samples_ud *dataset_draw(lua_State *L, wb_dataset *ds, int64_t n, uint64_t seed, const char *fn) {
    samples_ud *s = samples_push_shaped(L, n, &ds->shape);
    wb_rng rng;
    wb_rng_init(&rng, seed, 0);
    if (ds->sample(ds, &rng, n, s->x)) luaL_error(L, "%s: sampling %s failed: %s", fn, ds->name, wb_last_error());
    return s;
}

/* ds:sample(n, seed) -> Samples; an image set also returns the drawn
 * images' labels (an array of n integers), from the same draws. */
static int dataset_sample(lua_State *L) {
    wb_dataset *ds = check_dataset(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    lua_Integer seed = luaL_optinteger(L, 3, 0);
    luaL_argcheck(L, n >= 0, 2, "number of samples must be >= 0");
    luaL_argcheck(L, seed >= 0, 3, "seed must be >= 0");
    if (!wb_images_is(ds)) {
        dataset_draw(L, ds, n, (uint64_t)seed, "Dataset:sample");
        return 1;
    }
    samples_ud *s = samples_push_shaped(L, n, &ds->shape);
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
    wb_dataset *ds = check_dataset(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (!wb_images_is(ds)) luaL_error(L, "Dataset:image: dataset '%s' is not an image set", ds->name);
    int64_t count = wb_images_count(ds);
    if (i < 1 || i > count)
        luaL_error(L, "Dataset:image: index %I out of range 1..%I", i, (lua_Integer)count);
    samples_ud *s = samples_push_shaped(L, 1, &ds->shape);
    int label = 0;
    if (wb_images_get(ds, (int64_t)i - 1, s->x, &label)) luaL_error(L, "Dataset:image: %s", wb_last_error());
    lua_pushinteger(L, label);
    return 2;
}

static int dataset_index(lua_State *L) {
    wb_dataset *ds = check_dataset(L, 1);
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
    wb_dataset *ds = check_dataset(L, 1);
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
    int t = opt_table_arg(L, 1, fn, gmm2d_keys, N_DEFS(gmm2d_keys)) ? 1 : 0;
    const char *preset = get_str(L, t, "preset", "ring8");
    double scale = get_num(L, t, "scale", 1.0);
    double std = get_num(L, t, "std", 0.05);
    dataset_ud *d = lua_newuserdatauv(L, sizeof *d, 0);
    d->ds = NULL;
    luaL_setmetatable(L, DATASET_TNAME);
    d->ds = wb_gmm2d_new(preset, scale, std);
    if (!d->ds) luaL_error(L, "%s: %s", fn, wb_last_error());
    return 1;
}

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
    run->origin = run_origin(L);
    return run;
}

/* ---- Teacher ------------------------------------------------------------------------------- */
typedef struct teacher_ud {
    wb_teacher *t;
    int64_t dim;
    int exact;
    char run[1024]; /* run directory ("" = none): where evaluations record results.json */
} teacher_ud;

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
    int o = opt_table_arg(L, 3, "Teacher:sample", teacher_sample_keys, N_DEFS(teacher_sample_keys)) ? 3 : 0;
    int steps = (int)get_int(L, o, "Teacher:sample", "steps", WB_HEUN_STEPS, 1, 100000);
    uint64_t seed = (uint64_t)get_int(L, o, "Teacher:sample", "seed", 0, 0, INT64_MAX);
    samples_ud *s = samples_push_shaped(L, n, &t->t->shape);
    if (wb_teacher_sample(t->t, n, steps, seed, s->x)) luaL_error(L, "Teacher:sample: %s", wb_last_error());
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

static const key_def teacher_keys[] = {
    {"data", K_UDATA, DATASET_TNAME}, {"exact", K_BOOL, NULL},        {"net", K_SPEC, NULL},
    {"steps", K_INT, NULL},           {"batch", K_INT, NULL},         {"lr", K_NUMBER, NULL},
    {"ema", K_NUMBER, NULL},          {"seed", K_INT, NULL},          {"p_mean", K_NUMBER, NULL},
    {"p_std", K_NUMBER, NULL},        {"single_sigma", K_NUMBER, NULL}, {"log_every", K_INT, NULL},
    {"init", K_STRING, NULL},
    {"run", K_STRING, NULL},          {"quiet", K_BOOL, NULL},
};

static int l_teacher(lua_State *L) {
    const char *fn = "wb.teacher";
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    check_keys(L, 1, fn, teacher_keys, N_DEFS(teacher_keys));
    wb_registry *reg = get_registry(L);
    dataset_ud *data = require_udata(L, 1, fn, "data");
    int exact = get_bool(L, 1, "exact", 0);
    if (exact) {
        /* an analytic teacher is not trained: a training key would be ignored */
        for (int i = 2; i < N_DEFS(teacher_keys); i++) {
            const char *k = teacher_keys[i].name;
            if (strcmp(k, "run") && strcmp(k, "quiet") && has_field(L, 1, k))
                luaL_error(L, "%s: key '%s' does not apply to an exact teacher (exact = true)", fn, k);
        }
    }
    guard *g = guard_new(L); /* index 2 */
    wb_netspec spec = {0};
    wb_teacher_config cfg;
    wb_teacher_config_default(&cfg);
    if (!exact) {
        resolve_netspec(L, reg, g, fn, 1, "net", "mlp", &spec);
        cfg.steps = get_int(L, 1, fn, "steps", cfg.steps, 0, INT64_MAX);
        cfg.batch = get_int(L, 1, fn, "batch", cfg.batch, 1, INT32_MAX);
        cfg.lr = (float)get_num(L, 1, "lr", cfg.lr);
        cfg.ema_decay = (float)get_num(L, 1, "ema", cfg.ema_decay);
        cfg.seed = (uint64_t)get_int(L, 1, fn, "seed", (int64_t)cfg.seed, 0, INT64_MAX);
        cfg.p_mean = (float)get_num(L, 1, "p_mean", cfg.p_mean);
        cfg.p_std = (float)get_num(L, 1, "p_std", cfg.p_std);
        cfg.single_sigma = (float)get_num(L, 1, "single_sigma", cfg.single_sigma);
        cfg.log_every = (int)get_int(L, 1, fn, "log_every", cfg.log_every, 0, INT32_MAX);
        cfg.init = get_str(L, 1, "init", NULL); /* a checkpoint to start from */
    }
    const char *dir = get_str(L, 1, "run", NULL);
    int quiet = get_bool(L, 1, "quiet", 0);
    cfg.quiet = quiet;

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
    wb_teacher *t = exact ? wb_teacher_exact(data->ds, NULL) : wb_teacher_train(data->ds, &spec, &cfg, runp);
    char err[1024] = "";
    if (!t) snprintf(err, sizeof err, "%s", wb_last_error());
    if (runp) wb_run_close(runp);
    guard_release(g);
    if (!t) luaL_error(L, "%s: %s", fn, err);
    ud->t = t;
    ud->dim = data->ds->dim;
    ud->exact = exact;
    return 1;
}

/* ---- Student ------------------------------------------------------------------------------- */
typedef struct student_ud {
    wb_student *s;
    int64_t dim;
    char divergence[64];
    char ratio[64];
    char run[1024];
    int training; /* inside wb.distill's on_eval: scores are not final, so none go to results.json */
} student_ud;

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
    int o = opt_table_arg(L, 3, "Student:sample", student_sample_keys, N_DEFS(student_sample_keys)) ? 3 : 0;
    uint64_t seed = (uint64_t)get_int(L, o, "Student:sample", "seed", 0, 0, INT64_MAX);
    int ema = get_bool(L, o, "ema", 1);
    samples_ud *out = samples_push_shaped(L, n, &s->s->shape);
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

static const key_def distill_keys[] = {
    {"teacher", K_UDATA, TEACHER_TNAME},
    {"data", K_UDATA, DATASET_TNAME},
    {"divergence", K_SPEC, NULL},
    {"ratio", K_SPEC, NULL},
    {"net", K_SPEC, NULL},
    {"steps", K_INT, NULL},
    {"batch", K_INT, NULL},
    {"lr", K_NUMBER, NULL},
    {"lr_fake", K_NUMBER, NULL},
    {"lr_ratio", K_NUMBER, NULL},
    {"beta1", K_NUMBER, NULL},
    {"fake_updates", K_INT, NULL},
    {"ratio_updates", K_INT, NULL},
    {"sigma_init", K_NUMBER, NULL},
    {"time_weight", K_STRING, NULL},
    {"sigma_fixed", K_NUMBER, NULL},
    {"t_min", K_NUMBER, NULL},
    {"t_max", K_NUMBER, NULL},
    {"gan_weight", K_NUMBER, NULL},
    {"normalize_bins", K_BOOL, NULL},
    {"normalize_batch", K_BOOL, NULL},
    {"logit_clamp", K_NUMBER, NULL},
    {"ema", K_NUMBER, NULL},
    {"init", K_STRING, NULL},
    {"seed", K_INT, NULL},
    {"log_every", K_INT, NULL},
    {"eval_samples", K_INT, NULL},
    {"eval_every", K_INT, NULL},
    {"on_eval", K_FUNCTION, NULL},
    {"ratio_init", K_STRING, NULL},
    {"run", K_STRING, NULL},
    {"quiet", K_BOOL, NULL},
};

/* The index of `s` in "a|b|c", or an error listing the choices. */
static int choose(lua_State *L, const char *fn, const char *key, const char *s, const char *const *choices, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, choices[i]) == 0) return i;
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? "|" : "", choices[i]);
    return luaL_error(L, "%s: key '%s' = '%s' is not one of %s", fn, key, s, list);
}

int wb_lua_msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

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
    check_keys(L, 1, fn, distill_keys, N_DEFS(distill_keys));
    wb_registry *reg = get_registry(L);
    teacher_ud *teacher = require_udata(L, 1, fn, "teacher");
    dataset_ud *data = require_udata(L, 1, fn, "data");
    if (!teacher->t) luaL_error(L, "%s: key 'teacher' holds a teacher that was never trained", fn);
    guard *g = guard_new(L); /* index 2 */

    wb_distill_config cfg;
    wb_distill_config_default(&cfg);
    /* divergence: default reverse KL (DMD) */
    if (lua_getfield(L, 1, "divergence") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "kl");
    }
    cfg.divergence = resolve_spec(L, reg, g, fn, "divergence", -1, WB_KIND_DIVERGENCE, &cfg.divergence_cfg, NULL);
    lua_pop(L, 1);
    /* ratio estimator: default a classifier on an MLP backbone */
    if (lua_getfield(L, 1, "ratio") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "classifier");
    }
    int ratio_idx = lua_gettop(L);
    int has_net = 0;
    cfg.ratio = resolve_spec(L, reg, g, fn, "ratio", ratio_idx, WB_KIND_RATIO, &cfg.ratio_cfg, &has_net);
    if (cfg.ratio->ratio->wants_backbone) {
        if (has_net) resolve_netspec(L, reg, g, fn, ratio_idx, "net", "mlp", &cfg.ratio_net);
        else {
            lua_pushliteral(L, "mlp");
            cfg.ratio_net.desc = resolve_spec(L, reg, g, fn, "ratio.net", -1, WB_KIND_NET, &cfg.ratio_net.cfg, NULL);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1); /* ratio spec */
    /* The generator (and fake score) copy a trained teacher's net; only an
     * exact teacher leaves the architecture to choose. */
    if (teacher->t->net) {
        if (has_field(L, 1, "net"))
            luaL_error(L, "%s: key 'net' applies to an exact teacher only (the generator copies the trained teacher's net)", fn);
    } else {
        resolve_netspec(L, reg, g, fn, 1, "net", "mlp", &cfg.gen_net);
    }

    cfg.steps = get_int(L, 1, fn, "steps", cfg.steps, 0, INT64_MAX);
    cfg.batch = get_int(L, 1, fn, "batch", cfg.batch, 1, INT32_MAX);
    cfg.lr_gen = (float)get_num(L, 1, "lr", cfg.lr_gen);
    cfg.lr_fake = (float)get_num(L, 1, "lr_fake", cfg.lr_fake);
    cfg.lr_ratio = (float)get_num(L, 1, "lr_ratio", cfg.lr_ratio);
    cfg.beta1 = (float)get_num(L, 1, "beta1", cfg.beta1);
    cfg.fake_updates = (int)get_int(L, 1, fn, "fake_updates", cfg.fake_updates, 0, 1000000);
    cfg.ratio_updates = (int)get_int(L, 1, fn, "ratio_updates", cfg.ratio_updates, 0, 1000000);
    cfg.sigma_init = (float)get_num(L, 1, "sigma_init", cfg.sigma_init);
    if (has_field(L, 1, "time_weight")) {
        static const char *const tw[] = {"auto", "dmd", "sigma2", "none"};
        static const wb_time_weight tv[] = {WB_TIME_AUTO, WB_TIME_DMD, WB_TIME_SIGMA2, WB_TIME_NONE};
        cfg.time_weight = tv[choose(L, fn, "time_weight", get_str(L, 1, "time_weight", "auto"), tw, 4)];
    }
    cfg.sigma_fixed = (float)get_num(L, 1, "sigma_fixed", cfg.sigma_fixed);
    cfg.t_min = (float)get_num(L, 1, "t_min", cfg.t_min);
    cfg.t_max = (float)get_num(L, 1, "t_max", cfg.t_max);
    cfg.gan_weight = (float)get_num(L, 1, "gan_weight", cfg.gan_weight);
    cfg.normalize_bins = get_bool(L, 1, "normalize_bins", cfg.normalize_bins);
    cfg.normalize_batch = get_bool(L, 1, "normalize_batch", cfg.normalize_batch);
    cfg.logit_clamp = (float)get_num(L, 1, "logit_clamp", cfg.logit_clamp);
    cfg.ema_decay = (float)get_num(L, 1, "ema", cfg.ema_decay);
    if (has_field(L, 1, "init")) {
        static const char *const in[] = {"teacher", "none"};
        cfg.init_from_teacher = choose(L, fn, "init", get_str(L, 1, "init", "teacher"), in, 2) == 0;
    }
    if (has_field(L, 1, "ratio_init")) {
        static const char *const ri[] = {"random", "teacher"};
        cfg.ratio_init_from_teacher = choose(L, fn, "ratio_init", get_str(L, 1, "ratio_init", "random"), ri, 2) == 1;
    }
    cfg.seed = (uint64_t)get_int(L, 1, fn, "seed", (int64_t)cfg.seed, 0, INT64_MAX);
    cfg.log_every = (int)get_int(L, 1, fn, "log_every", cfg.log_every, 0, INT32_MAX);
    cfg.eval_samples = get_int(L, 1, fn, "eval_samples", cfg.eval_samples, 0, INT64_MAX);
    cfg.eval_every = get_int(L, 1, fn, "eval_every", 0, 0, INT64_MAX);
    const char *dir = get_str(L, 1, "run", NULL);
    int quiet = get_bool(L, 1, "quiet", 0);
    cfg.quiet = quiet;
    if ((cfg.eval_every > 0) != has_field(L, 1, "on_eval"))
        luaL_error(L, "%s: keys 'eval_every' (> 0) and 'on_eval' go together", fn);

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
    wb_student *s = wb_distill(teacher->t, data->ds, &cfg, runp);
    luaL_unref(L, LUA_REGISTRYINDEX, ectx.fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ectx.ud_ref);
    char err[1024] = "";
    if (!s) snprintf(err, sizeof err, "%s", wb_last_error());
    if (runp) wb_run_close(runp);
    guard_release(g);
    if (!s) luaL_error(L, "%s: %s", fn, err);
    ud->s = s;
    ud->dim = data->ds->dim;
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
    check_keys(L, 1, fn, images_keys, N_DEFS(images_keys));
    static const char *const kinds[] = {"fashion-mnist", "mnist", "cifar10", "cifar100", "png-folder"};
    if (!has_field(L, 1, "kind")) luaL_error(L, "%s: key 'kind' is required (fashion-mnist|mnist|cifar10|cifar100|png-folder)", fn);
    int kind_i = choose(L, fn, "kind", get_str(L, 1, "kind", NULL), kinds, N_DEFS(kinds));
    const char *kind = kinds[kind_i];
    /* only Fashion-MNIST has a conventional location on our machines */
    const char *path = get_str(L, 1, "path", kind_i == 0 ? WB_FASHION_MNIST_DEFAULT_DIR : NULL);
    if (!path) luaL_error(L, "%s: key 'path' is required for kind '%s' (the directory holding its files)", fn, kind);

    wb_image_options opt;
    wb_image_options_default(&opt);
    if (has_field(L, 1, "split")) {
        static const char *const splits[] = {"train", "test"};
        opt.split = splits[choose(L, fn, "split", get_str(L, 1, "split", "train"), splits, 2)];
        if (kind_i == 4) luaL_error(L, "%s: key 'split' does not apply to kind 'png-folder' (every *.png is read)", fn);
    }
    if (has_field(L, 1, "resize")) {
        static const char *const modes[] = {"nearest", "bilinear"};
        static const wb_resize_mode mv[] = {WB_RESIZE_NEAREST, WB_RESIZE_BILINEAR};
        opt.resize = mv[choose(L, fn, "resize", get_str(L, 1, "resize", "bilinear"), modes, 2)];
        if (!has_field(L, 1, "resize_to")) luaL_error(L, "%s: key 'resize' needs 'resize_to'", fn);
    }
    if (has_field(L, 1, "labels")) {
        static const char *const lk[] = {"fine", "coarse"};
        opt.cifar100_coarse = choose(L, fn, "labels", get_str(L, 1, "labels", "fine"), lk, 2) == 1;
        if (kind_i != 3) luaL_error(L, "%s: key 'labels' applies to kind 'cifar100' only", fn);
    }
    opt.resize_to = (int)get_int(L, 1, fn, "resize_to", 0, 1, 4096);
    opt.pad_to = (int)get_int(L, 1, fn, "pad_to", 0, 1, 4096);
    opt.channels = (int)get_int(L, 1, fn, "channels", 0, 1, 3);
    if (opt.channels == 2) luaL_error(L, "%s: key 'channels' = 2 is not one of 1|3", fn);
    opt.flip = get_bool(L, 1, "flip", 0);
    opt.max_images = get_int(L, 1, fn, "max_images", 0, 1, INT64_MAX);
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

/* ---- plugins ----------------------------------------------------------------------------------- */
/* "64,64" -> {64, 64} */
static void push_ints_string(lua_State *L, const char *s) {
    lua_newtable(L);
    lua_Integer i = 0;
    while (s && *s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s) break;
        lua_pushinteger(L, (lua_Integer)v);
        lua_rawseti(L, -2, ++i);
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
}

/* Bounds of INT parameters come back as integers when they are exactly
 * representable, so scripts can print them without a ".0". */
static void push_bound(lua_State *L, double v, int integral) {
    if (integral && v >= -9.0e15 && v <= 9.0e15 && v == floor(v)) lua_pushinteger(L, (lua_Integer)v);
    else lua_pushnumber(L, v);
}

static void push_param(lua_State *L, const wb_param_spec *s) {
    lua_createtable(L, 0, 7);
    lua_pushstring(L, s->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, param_type_name(s->type));
    lua_setfield(L, -2, "type");
    switch (s->type) {
    case WB_PARAM_NUMBER: lua_pushnumber(L, s->def); break;
    case WB_PARAM_INT: push_bound(L, s->def, 1); break;
    case WB_PARAM_BOOL: lua_pushboolean(L, s->def != 0.0); break;
    case WB_PARAM_STRING: lua_pushstring(L, s->def_str ? s->def_str : ""); break;
    case WB_PARAM_INTS: push_ints_string(L, s->def_str); break;
    }
    lua_setfield(L, -2, "default");
    if (s->type == WB_PARAM_NUMBER || s->type == WB_PARAM_INT || s->type == WB_PARAM_INTS) {
        push_bound(L, s->min, s->type != WB_PARAM_NUMBER);
        lua_setfield(L, -2, "min");
        push_bound(L, s->max, s->type != WB_PARAM_NUMBER);
        lua_setfield(L, -2, "max");
    }
    if (s->type == WB_PARAM_STRING && s->choices) {
        lua_newtable(L);
        lua_Integer i = 0;
        const char *p = s->choices;
        while (*p) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            lua_pushlstring(L, p, n);
            lua_rawseti(L, -2, ++i);
            p += n + (bar ? 1 : 0);
        }
        lua_setfield(L, -2, "choices");
    }
    lua_pushstring(L, s->doc ? s->doc : "");
    lua_setfield(L, -2, "doc");
}

static int l_plugins(lua_State *L) {
    wb_registry *reg = get_registry(L);
    int filter = 0;
    if (!lua_isnoneornil(L, 1)) {
        static const char *const kinds[] = {"divergence", "ratio", "net", NULL};
        filter = luaL_checkoption(L, 1, NULL, kinds) + 1; /* WB_KIND_* values are 1, 2, 3 */
    }
    lua_newtable(L);
    lua_Integer out = 0;
    for (int i = 0; i < wb_registry_count(reg); i++) {
        const wb_plugin_info *info = wb_registry_at(reg, i);
        const wb_plugin_desc *d = info->desc;
        if (filter && (int)d->kind != filter) continue;
        lua_createtable(L, 0, 7);
        lua_pushstring(L, d->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, wb_kind_name(d->kind));
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, d->version);
        lua_setfield(L, -2, "version");
        lua_pushstring(L, info->path);
        lua_setfield(L, -2, "path");
        lua_pushstring(L, d->doc ? d->doc : "");
        lua_setfield(L, -2, "doc");
        lua_pushstring(L, d->family); /* the descriptor's family; NULL (none declared): nil */
        lua_setfield(L, -2, "family");
        lua_createtable(L, d->n_params, 0);
        for (int p = 0; p < d->n_params; p++) {
            push_param(L, &d->params[p]);
            lua_rawseti(L, -2, p + 1);
        }
        lua_setfield(L, -2, "params");
        if (d->kind == WB_KIND_DIVERGENCE) {
            lua_pushboolean(L, d->divergence->score_free);
            lua_setfield(L, -2, "score_free");
        }
        lua_rawseti(L, -2, ++out);
    }
    return 1;
}

static int l_plugin_errors(lua_State *L) {
    wb_registry *reg = get_registry(L);
    lua_newtable(L);
    for (int i = 0; i < wb_registry_error_count(reg); i++) {
        lua_pushstring(L, wb_registry_error(reg, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_divergences(lua_State *L) {
    wb_registry *reg = get_registry(L);
    lua_newtable(L);
    lua_Integer out = 0;
    for (int i = 0; i < wb_registry_count(reg); i++) {
        const wb_plugin_desc *d = wb_registry_at(reg, i)->desc;
        if (d->kind != WB_KIND_DIVERGENCE) continue;
        lua_pushstring(L, d->name);
        lua_rawseti(L, -2, ++out);
    }
    return 1;
}

/* A Lua array of numbers at arg as floats in a scratch userdata (pushed). */
static float *check_float_array(lua_State *L, int arg, const char *fn, const char *what, int64_t *n_out) {
    arg = lua_absindex(L, arg);
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, arg);
    float *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(float), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, arg, i);
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "%s: %s[%I] is a %s, not a number", fn, what, i, luaL_typename(L, -1));
        v[i - 1] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    *n_out = n;
    return v;
}

static const wb_plugin_desc *divergence_arg(lua_State *L, const char *fn, guard *g, wb_config_owned **cfg) {
    return resolve_spec(L, get_registry(L), g, fn, "spec", 1, WB_KIND_DIVERGENCE, cfg, NULL);
}

static int l_divergence_weights(lua_State *L) {
    const char *fn = "wb.divergence_weights";
    lua_settop(L, 2);
    guard *g = guard_new(L);
    wb_config_owned *c;
    const wb_plugin_desc *d = divergence_arg(L, fn, g, &c);
    int64_t n;
    float *logit = check_float_array(L, 2, fn, "logits", &n);
    float *w = lua_newuserdatauv(L, (size_t)(n ? 2 * n : 1) * sizeof(float), 0);
    d->divergence->weights(&c->cfg, n, logit, w, w + n);
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
        for (int64_t i = 0; i < n; i++) {
            lua_pushnumber(L, w[k * n + i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    }
    guard_release(g);
    return 2;
}

static int l_divergence_value(lua_State *L) {
    const char *fn = "wb.divergence_value";
    lua_settop(L, 2);
    guard *g = guard_new(L);
    wb_config_owned *c;
    const wb_plugin_desc *d = divergence_arg(L, fn, g, &c);
    int64_t n;
    float *logit = check_float_array(L, 2, fn, "logits", &n);
    lua_pushnumber(L, d->divergence->value(&c->cfg, n, logit));
    guard_release(g);
    return 1;
}

/* ---- evaluation ------------------------------------------------------------------------------- */
static const key_def evaluate_keys[] = {
    {"reference_n", K_INT, NULL},
    {"seed", K_INT, NULL},
    {"n", K_INT, NULL},
    {"sample_seed", K_INT, NULL},
};

/* One number of an evaluation's result: pushed into the Lua table and, for a
 * Student / Teacher with a run directory, recorded in results.json. */
typedef struct metric_kv {
    const char *key;
    double value;
    int integer; /* pushed as a Lua integer (counts) */
} metric_kv;

static void push_metrics(lua_State *L, const metric_kv *kv, int n) {
    for (int i = 0; i < n; i++) {
        if (kv[i].integer) lua_pushinteger(L, (lua_Integer)kv[i].value);
        else lua_pushnumber(L, kv[i].value);
        lua_setfield(L, -2, kv[i].key);
    }
}

/* Final metrics belong to the run they describe, so `workbench table` can
 * build a paper table from run directories alone (no script re-run). */
static void record_results(lua_State *L, const char *fn, const char *run, const metric_kv *kv, int n) {
    if (!run || !run[0]) return;
    const char *keys[16];
    double values[16];
    luaL_argcheck(L, n <= 16, 1, "too many metrics");
    for (int i = 0; i < n; i++) keys[i] = kv[i].key, values[i] = kv[i].value;
    if (wb_run_merge_results(run, keys, values, n))
        luaL_error(L, "%s: results of run '%s': %s", fn, run, wb_last_error());
}

/* wb.evaluate(x, dataset[, opts]): x is Samples, or a Student / Teacher from
 * which opts.n (4096) samples are drawn with opts.sample_seed (0; a teacher
 * samples with WB_HEUN_STEPS = 18 Heun steps). A Student's result also names its divergence
 * and ratio estimator. */
static int l_evaluate(lua_State *L) {
    const char *fn = "wb.evaluate";
    lua_settop(L, 3);
    wb_dataset *ds = check_dataset(L, 2);
    int o = opt_table_arg(L, 3, fn, evaluate_keys, N_DEFS(evaluate_keys)) ? 3 : 0;
    int64_t n_ref = get_int(L, o, fn, "reference_n", 4096, 1, INT32_MAX);
    uint64_t seed = (uint64_t)get_int(L, o, fn, "seed", 1, 0, INT64_MAX);
    int64_t n_model = get_int(L, o, fn, "n", 4096, 1, INT32_MAX);
    uint64_t sample_seed = (uint64_t)get_int(L, o, fn, "sample_seed", 0, 0, INT64_MAX);
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
    const char *run = NULL; /* the Student's / Teacher's run directory */
    if (!x) {
        student_ud *s = luaL_testudata(L, 1, STUDENT_TNAME);
        teacher_ud *t = luaL_testudata(L, 1, TEACHER_TNAME);
        if (s && s->s) {
            student = s;
            run = s->training ? NULL : s->run;
            x = samples_push_shaped(L, n_model, &s->s->shape);
            if (wb_student_sample(s->s, n_model, sample_seed, 1, x->x)) luaL_error(L, "%s: %s", fn, wb_last_error());
        } else if (t && t->t) {
            run = t->run;
            x = samples_push_shaped(L, n_model, &t->t->shape);
            if (wb_teacher_sample(t->t, n_model, WB_HEUN_STEPS, sample_seed, x->x)) luaL_error(L, "%s: %s", fn, wb_last_error());
        } else {
            luaL_error(L, "%s: argument 1 expects Samples, a Student or a Teacher, got %s", fn, type_label(L, 1));
        }
    } else if (has_field(L, o, "n") || has_field(L, o, "sample_seed")) {
        luaL_error(L, "%s: keys 'n' and 'sample_seed' apply to a Student or Teacher, not to Samples", fn);
    }
    if (x->dim != ds->dim)
        luaL_error(L, "%s: samples have dimension %I, dataset '%s' has %I", fn, (lua_Integer)x->dim, ds->name,
                   (lua_Integer)ds->dim);
    if (x->n < 1) luaL_error(L, "%s: no samples", fn);
    samples_ud *ref = dataset_draw(L, ds, n_ref, seed, fn);
    wb_gmm_metrics m;
    if (wb_eval_gmm(ds->gmm, x->x, x->n, ref->x, ref->n, &m)) luaL_error(L, "%s: %s", fn, wb_last_error());
    const metric_kv kv[] = {
        {"modes", m.modes_covered, 1}, {"n_modes", m.n_modes, 1}, {"tv", m.mode_tv, 0},
        {"quality", m.quality, 0},     {"mmd", m.mmd, 0},
    };
    record_results(L, fn, run, kv, N_DEFS(kv));
    lua_createtable(L, 0, 7);
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
                                          int steps, uint64_t seed, int quiet) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, FEATURE_NETS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, FEATURE_NETS_KEY);
    }
    /* channels are part of the key: a channels = 1 view of a set has the
     * same name and size as the RGB one */
    lua_pushfstring(L, "%s-%dx%dx%d-s%I-n%d", ds->name, ds->shape.channels, ds->shape.height, ds->shape.width,
                    (lua_Integer)seed, steps);
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
    u->fn = wb_feature_net_open(ds, cache, steps, seed, quiet, NULL);
    if (!u->fn) luaL_error(L, "%s: %s", fn_name, wb_last_error());
    lua_settable(L, -3); /* table[key] = userdata */
    lua_pop(L, 1);
    return u->fn;
}

/* Inception networks loaded by wb.image_metrics{inception = PATH}, one per
 * path, kept in a registry table for the life of the state (loading and
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

static inception_ud *cached_inception(lua_State *L, const char *fn_name, const char *path) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, INCEPTIONS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, INCEPTIONS_KEY);
    }
    if (lua_getfield(L, -1, path) == LUA_TUSERDATA) {
        inception_ud *u = lua_touserdata(L, -1);
        lua_pop(L, 2);
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
    u->m = wb_inception_load(path, NULL);
    if (!u->m) luaL_error(L, "%s: key 'inception': %s", fn_name, wb_last_error());
    lua_setfield(L, -2, path); /* the table keeps it alive */
    lua_pop(L, 1);
    return u;
}

static const key_def image_metrics_keys[] = {
    {"n", K_INT, NULL},           {"cache", K_STRING, NULL}, {"classifier_steps", K_INT, NULL},
    {"seed", K_INT, NULL},        {"sample_seed", K_INT, NULL}, {"quiet", K_BOOL, NULL},
    {"inception", K_STRING, NULL},
};

/* wb.image_metrics(x, dataset[, opts]): x is Samples (the first opts.n rows,
 * all by default) or a Student / Teacher from which opts.n (1000) samples
 * are drawn with opts.sample_seed (a teacher with WB_HEUN_STEPS = 18 Heun steps). The
 * classifier is trained on `dataset` (opts.classifier_steps, opts.seed) or
 * loaded from opts.cache, which also holds the reference statistics. */
static int l_image_metrics(lua_State *L) {
    const char *fn = "wb.image_metrics";
    lua_settop(L, 3);
    wb_dataset *ds = check_dataset(L, 2);
    int o = opt_table_arg(L, 3, fn, image_metrics_keys, N_DEFS(image_metrics_keys)) ? 3 : 0;
    if (!wb_images_is(ds))
        luaL_error(L, "%s: dataset '%s' is not an image set (use wb.evaluate for gmm2d data)", fn, ds->name);
    const char *cache = get_str(L, o, "cache", "cache");
    int steps = (int)get_int(L, o, fn, "classifier_steps", 1500, 1, 10000000);
    uint64_t seed = (uint64_t)get_int(L, o, fn, "seed", 0, 0, INT64_MAX);
    uint64_t sample_seed = (uint64_t)get_int(L, o, fn, "sample_seed", 0, 0, INT64_MAX);
    int quiet = get_bool(L, o, "quiet", 0);
    int64_t n = get_int(L, o, fn, "n", 1000, 4, INT32_MAX / 16);

    samples_ud *x = luaL_testudata(L, 1, SAMPLES_TNAME);
    const char *run = NULL; /* the Student's / Teacher's run directory */
    if (!x) {
        student_ud *s = luaL_testudata(L, 1, STUDENT_TNAME);
        teacher_ud *t = luaL_testudata(L, 1, TEACHER_TNAME);
        if (s && s->s) {
            run = s->training ? NULL : s->run;
            x = samples_push_shaped(L, n, &s->s->shape);
            if (wb_student_sample(s->s, n, sample_seed, 1, x->x)) luaL_error(L, "%s: %s", fn, wb_last_error());
        } else if (t && t->t) {
            run = t->run;
            x = samples_push_shaped(L, n, &t->t->shape);
            if (wb_teacher_sample(t->t, n, WB_HEUN_STEPS, sample_seed, x->x)) luaL_error(L, "%s: %s", fn, wb_last_error());
        } else {
            luaL_error(L, "%s: argument 1 expects Samples, a Student or a Teacher, got %s", fn, type_label(L, 1));
        }
    } else {
        if (has_field(L, o, "sample_seed"))
            luaL_error(L, "%s: key 'sample_seed' applies to a Student or Teacher, not to Samples", fn);
        if (!has_field(L, o, "n")) n = x->n;
        if (n > x->n)
            luaL_error(L, "%s: key 'n' = %I but the Samples have only %I rows", fn, (lua_Integer)n,
                       (lua_Integer)x->n);
        if (n < 4) luaL_error(L, "%s: %I samples; need at least 4", fn, (lua_Integer)n);
    }
    if (x->dim != ds->dim)
        luaL_error(L, "%s: samples have dimension %I, dataset '%s' has %I (%dx%dx%d)", fn, (lua_Integer)x->dim,
                   ds->name, (lua_Integer)ds->dim, ds->shape.channels, ds->shape.height, ds->shape.width);
    wb_feature_net *net = cached_feature_net(L, fn, ds, cache, steps, seed, quiet);
    const char *inception_path = get_str(L, o, "inception", NULL);
    inception_ud *inc = inception_path && *inception_path ? cached_inception(L, fn, inception_path) : NULL;
    wb_image_metrics_out m;
    if (wb_image_metrics(net, x->x, n, ds, cache, inc ? inc->m : NULL, inc ? inc->id : NULL, &m))
        luaL_error(L, "%s: %s", fn, wb_last_error());
    double acc = wb_feature_net_accuracy(net, ds, n);
    if (isnan(acc)) luaL_error(L, "%s: %s", fn, wb_last_error());
    const metric_kv kv[] = {
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
    record_results(L, fn, run, kv, inc ? N_DEFS(kv) : N_DEFS(kv) - 3);
    lua_createtable(L, 0, 10);
    push_metrics(L, kv, inc ? N_DEFS(kv) : N_DEFS(kv) - 3);
    lua_pushboolean(L, m.collapsed);
    lua_setfield(L, -2, "collapsed");
    return 1;
}

/* ---- directories ------------------------------------------------------------------------------ */
static int l_mkdir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    if (wb_mkdir_p(path)) luaL_error(L, "wb.mkdir: cannot create '%s': %s", path, strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
}

/* The folder a figure goes into, created so plotting "figs/x.png" just works. */
static void make_parent_dir(lua_State *L, const char *fn, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return;
    lua_pushlstring(L, path, (size_t)(slash - path));
    const char *dir = lua_tostring(L, -1);
    if (wb_mkdir_p(dir)) luaL_error(L, "%s: cannot create '%s': %s", fn, dir, strerror(errno));
    lua_pop(L, 1);
}

/* ---- plots ------------------------------------------------------------------------------------ */
/* {xmin, xmax, ymin, ymax} at index t into b[4]; returns b or NULL when absent. */
static const float *get_bounds(lua_State *L, int t, const char *fn, float *b) {
    if (!t || lua_getfield(L, t, "bounds") == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return NULL;
    }
    int bi = lua_gettop(L);
    if (lua_rawlen(L, bi) != 4) luaL_error(L, "%s: key 'bounds' expects {xmin, xmax, ymin, ymax}", fn);
    for (int i = 0; i < 4; i++) {
        lua_rawgeti(L, bi, i + 1);
        if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: bounds[%d] is a %s, not a number", fn, i + 1, luaL_typename(L, -1));
        b[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!(b[0] < b[1]) || !(b[2] < b[3]) || !isfinite(b[0]) || !isfinite(b[1]) || !isfinite(b[2]) || !isfinite(b[3]))
        luaL_error(L, "%s: key 'bounds' needs finite xmin < xmax and ymin < ymax", fn);
    return b;
}

static int points_count(lua_State *L, const char *fn, const char *what, const samples_ud *s) {
    if (s->dim != 2) luaL_error(L, "%s: %s have dimension %I; only 2-D samples can be scattered", fn, what, (lua_Integer)s->dim);
    if (s->n > INT_MAX) luaL_error(L, "%s: too many %s", fn, what);
    return (int)s->n;
}

static const key_def scatter_keys[] = {
    {"reference", K_UDATA, SAMPLES_TNAME}, {"title", K_STRING, NULL}, {"bounds", K_TABLE, NULL},
    {"label", K_STRING, NULL},             {"reference_label", K_STRING, NULL},
};

static int l_scatter(lua_State *L) {
    const char *fn = "wb.scatter";
    const char *path = luaL_checkstring(L, 1);
    samples_ud *s = check_samples(L, 2);
    int o = opt_table_arg(L, 3, fn, scatter_keys, N_DEFS(scatter_keys)) ? 3 : 0;
    samples_ud *ref = get_udata(L, o, "reference");
    float b[4];
    const float *bounds = get_bounds(L, o, fn, b);
    int n = points_count(L, fn, "samples", s);
    int n_ref = ref ? points_count(L, fn, "reference samples", ref) : 0;
    make_parent_dir(L, fn, path);
    if (wb_plot_scatter(path, get_str(L, o, "title", NULL), ref ? ref->x : NULL, n_ref,
                        ref ? get_str(L, o, "reference_label", "reference") : NULL, s->x, n,
                        get_str(L, o, "label", "samples"), bounds))
        luaL_error(L, "%s: %s", fn, wb_last_error());
    return 0;
}

static const key_def grid_keys[] = {
    {"columns", K_INT, NULL},
    {"bounds", K_TABLE, NULL},
};
static const key_def panel_keys[] = {
    {"title", K_STRING, NULL},
    {"samples", K_UDATA, SAMPLES_TNAME},
    {"reference", K_UDATA, SAMPLES_TNAME},
};

static int l_scatter_grid(lua_State *L) {
    const char *fn = "wb.scatter_grid";
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int o = opt_table_arg(L, 3, fn, grid_keys, N_DEFS(grid_keys)) ? 3 : 0;
    lua_settop(L, 3);
    int columns = (int)get_int(L, o, fn, "columns", 5, 0, 1000);
    float b[4];
    const float *bounds = get_bounds(L, o, fn, b);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    if (n < 1 || n > 10000) luaL_error(L, "%s: expects 1..10000 panels, got %I", fn, n);
    wb_scatter_panel *panels = lua_newuserdatauv(L, (size_t)n * sizeof *panels, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        char pfn[64];
        snprintf(pfn, sizeof pfn, "%s: panel %lld", fn, (long long)i);
        if (lua_rawgeti(L, 2, i) != LUA_TTABLE) luaL_error(L, "%s is a %s, not a table", pfn, luaL_typename(L, -1));
        int p = lua_gettop(L);
        check_keys(L, p, pfn, panel_keys, N_DEFS(panel_keys));
        samples_ud *s = require_udata(L, p, pfn, "samples");
        samples_ud *ref = get_udata(L, p, "reference");
        panels[i - 1] = (wb_scatter_panel){
            .title = get_str(L, p, "title", NULL), /* owned by the panel table, held by arg 2 */
            .ref = ref ? ref->x : NULL,
            .n_ref = ref ? points_count(L, pfn, "reference samples", ref) : 0,
            .xy = s->x,
            .n = points_count(L, pfn, "samples", s),
        };
        lua_pop(L, 1);
    }
    make_parent_dir(L, fn, path);
    if (wb_plot_scatter_grid(path, (int)n, panels, columns, bounds)) luaL_error(L, "%s: %s", fn, wb_last_error());
    return 0;
}

static const key_def lines_keys[] = {
    {"title", K_STRING, NULL}, {"xlabel", K_STRING, NULL}, {"ylabel", K_STRING, NULL},
    {"log_y", K_BOOL, NULL},   {"series", K_TABLE, NULL},
};
static const key_def series_keys[] = {
    {"name", K_STRING, NULL},
    {"x", K_TABLE, NULL},
    {"y", K_TABLE, NULL},
};

static int l_plot_lines(lua_State *L) {
    const char *fn = "wb.plot_lines";
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    check_keys(L, 2, fn, lines_keys, N_DEFS(lines_keys));
    if (lua_getfield(L, 2, "series") != LUA_TTABLE) luaL_error(L, "%s: key 'series' is required", fn);
    int st = lua_gettop(L); /* 3 */
    lua_Integer n = (lua_Integer)lua_rawlen(L, st);
    if (n < 1 || n > 1000) luaL_error(L, "%s: expects 1..1000 series, got %I", fn, n);
    wb_series *series = lua_newuserdatauv(L, (size_t)n * sizeof *series, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        char sfn[64];
        snprintf(sfn, sizeof sfn, "%s: series %lld", fn, (long long)i);
        if (lua_rawgeti(L, st, i) != LUA_TTABLE) luaL_error(L, "%s is a %s, not a table", sfn, luaL_typename(L, -1));
        int si = lua_gettop(L);
        check_keys(L, si, sfn, series_keys, N_DEFS(series_keys));
        if (lua_getfield(L, si, "y") != LUA_TTABLE) luaL_error(L, "%s: key 'y' is required", sfn);
        int64_t ny, nx = -1;
        /* Each float copy replaces its Lua array on the stack and stays there
         * until the plot is drawn; the series table itself is held by arg 2. */
        const float *y = check_float_array(L, -1, sfn, "y", &ny);
        lua_replace(L, -2);
        const float *x = NULL;
        if (lua_getfield(L, si, "x") != LUA_TNIL) {
            x = check_float_array(L, -1, sfn, "x", &nx);
            lua_replace(L, -2);
        } else {
            lua_pop(L, 1);
        }
        if (x && nx != ny) luaL_error(L, "%s: x has %I values, y has %I", sfn, (lua_Integer)nx, (lua_Integer)ny);
        if (ny > INT_MAX) luaL_error(L, "%s: too many points", sfn);
        series[i - 1] = (wb_series){.name = get_str(L, si, "name", NULL), .x = x, .y = y, .n = (int)ny};
        lua_remove(L, si);
        luaL_checkstack(L, 4, "too many series");
    }
    make_parent_dir(L, fn, path);
    if (wb_plot_lines(path, get_str(L, 2, "title", NULL), get_str(L, 2, "xlabel", NULL), get_str(L, 2, "ylabel", NULL),
                      (int)n, series, get_bool(L, 2, "log_y", 0)))
        luaL_error(L, "%s: %s", fn, wb_last_error());
    return 0;
}

/* ---- small things ------------------------------------------------------------------------------ */
static int l_commit(lua_State *L) {
    lua_pushstring(L, wb_build_commit());
    return 1;
}

static int l_version(lua_State *L) {
    lua_pushstring(L, wb_build_version());
    return 1;
}

/* A fresh copy each call, so a script cannot change what the next caller sees. */
static int l_cli_args(lua_State *L) {
    lua_newtable(L);
    if (lua_getfield(L, LUA_REGISTRYINDEX, WB_LUA_CLI_ARGS_KEY) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -5);
        }
    }
    lua_pop(L, 1);
    return 1;
}

/* ---- module ------------------------------------------------------------------------------------ */
static void new_class(lua_State *L, const char *tname, const luaL_Reg *meta, const luaL_Reg *methods,
                      lua_CFunction index) {
    luaL_newmetatable(L, tname);
    luaL_setfuncs(L, meta, 0);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        if (index) {
            /* fields computed on access; methods looked up first */
            lua_pushcclosure(L, index, 1);
        }
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

int luaopen_wb_core(lua_State *L) {
    static const luaL_Reg guard_meta[] = {{"__gc", guard_gc}, {NULL, NULL}};
    static const luaL_Reg registry_meta[] = {{"__gc", registry_gc}, {NULL, NULL}};
    static const luaL_Reg samples_meta[] = {{"__len", samples_len}, {"__tostring", samples_tostring}, {NULL, NULL}};
    static const luaL_Reg samples_methods[] = {{"get", samples_get}, {"row", samples_row}, {"totable", samples_totable},
                                               {"n", samples_n},     {"dim", samples_dim}, {"shape", samples_shape},
                                               {NULL, NULL}};
    static const luaL_Reg dataset_meta[] = {{"__gc", dataset_gc}, {"__tostring", dataset_tostring}, {NULL, NULL}};
    static const luaL_Reg dataset_methods[] = {{"sample", dataset_sample}, {"image", dataset_image}, {NULL, NULL}};
    static const luaL_Reg teacher_meta[] = {{"__gc", teacher_gc}, {"__tostring", teacher_tostring}, {NULL, NULL}};
    static const luaL_Reg teacher_methods[] = {{"sample", teacher_sample}, {NULL, NULL}};
    static const luaL_Reg student_meta[] = {{"__gc", student_gc}, {"__tostring", student_tostring}, {NULL, NULL}};
    static const luaL_Reg student_methods[] = {{"sample", student_sample}, {NULL, NULL}};
    static const luaL_Reg feature_net_meta[] = {{"__gc", feature_net_gc}, {NULL, NULL}};
    static const luaL_Reg inception_meta[] = {{"__gc", inception_gc}, {NULL, NULL}};

    new_class(L, GUARD_TNAME, guard_meta, NULL, NULL);
    new_class(L, REGISTRY_TNAME, registry_meta, NULL, NULL);
    new_class(L, SAMPLES_TNAME, samples_meta, samples_methods, NULL);
    new_class(L, DATASET_TNAME, dataset_meta, dataset_methods, dataset_index);
    new_class(L, TEACHER_TNAME, teacher_meta, teacher_methods, teacher_index);
    new_class(L, STUDENT_TNAME, student_meta, student_methods, student_index);
    new_class(L, FEATURE_NET_TNAME, feature_net_meta, NULL, NULL);
    new_class(L, INCEPTION_TNAME, inception_meta, NULL, NULL);

    /* One registry per lua_State. Created before any engine object, so at
     * lua_close (finalizers run in reverse order of creation) it is freed,
     * and its libraries unloaded, after every object whose code lives there. */
    if (lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        registry_box *b = lua_newuserdatauv(L, sizeof *b, 0);
        b->reg = NULL;
        luaL_setmetatable(L, REGISTRY_TNAME);
        b->reg = wb_registry_new();
        if (!b->reg) return luaL_error(L, "wb.core: out of memory");
        wb_registry_discover(b->reg);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
    }
    int reg_idx = lua_gettop(L);

    static const luaL_Reg funcs[] = {
        {"plugins", l_plugins},
        {"plugin_errors", l_plugin_errors},
        {"divergences", l_divergences},
        {"divergence_weights", l_divergence_weights},
        {"divergence_value", l_divergence_value},
        {"teacher", l_teacher},
        {"distill", l_distill},
        {"evaluate", l_evaluate},
        {"image_metrics", l_image_metrics},
        {"samples", l_samples},
        {"scatter", l_scatter},
        {"scatter_grid", l_scatter_grid},
        {"plot_lines", l_plot_lines},
        {"mkdir", l_mkdir},
        {"commit", l_commit},
        {"version", l_version},
        {"cli_args", l_cli_args},
        {NULL, NULL},
    };
    luaL_newlibtable(L, funcs);
    lua_pushvalue(L, reg_idx);
    luaL_setfuncs(L, funcs, 1);

    static const luaL_Reg data_funcs[] = {{"gmm2d", l_gmm2d}, {"images", l_images}, {NULL, NULL}};
    luaL_newlibtable(L, data_funcs);
    lua_pushvalue(L, reg_idx);
    luaL_setfuncs(L, data_funcs, 1);
    lua_setfield(L, -2, "data");
    return 1;
}
