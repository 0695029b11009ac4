/* host/cli/lua_guard.c — the checked-options layer of `wb.core` (declared in
 * lua_guard.h), in the manner of Lua's own lauxlib:
 *   - Every table-taking function walks its table with lua_next and rejects
 *     unknown keys and wrong types with an error naming the function and the
 *     key ("wb.distill: unknown key 'stpes'"): a typo must never silently fall
 *     back to a default in a research script.
 *   - The engine's options (engine/options.h) are checked and applied row by
 *     row, so wb.teacher / wb.distill check exactly what the engine takes.
 *   - Plugin specs ("kl", {"sba", lambda = 3}, {"mlp", widths = {64, 64}})
 *     are resolved against the plugin's own parameter specs through the
 *     registry's type- and bounds-checked setters.
 *   - Configurations allocated while a call is still checking its arguments
 *     are owned by a "guard" userdata, so a Lua error half-way leaks nothing.
 *   - Library code: errors are raised as Lua errors, never exit().
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/lua_guard.h"

/* ---- values ----------------------------------------------------------------------- */
/* A value's type for messages: "Dataset" for our userdata, else Lua's name. */
const char *wb_lua_type_label(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TUSERDATA && luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
        /* the string stays alive: the metatable in the registry holds it */
        const char *name = lua_tostring(L, -1);
        lua_pop(L, 1);
        if (name) return strncmp(name, "wb.", 3) == 0 ? name + 3 : name;
    }
    return luaL_typename(L, idx);
}

/* ---- checked option tables ------------------------------------------------------ */
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
            if (!isint) {
                /* "nan", not the C library's "-nan" for 0/0 */
                lua_Number v = lua_tonumber(L, idx);
                luaL_error(L, "%s: key '%s' expects an integer, got %s", fn, d->name,
                           v != v ? "nan" : lua_pushfstring(L, "%f", v));
            }
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
                   wb_lua_type_label(L, idx));
}

void wb_lua_check_keys(lua_State *L, int idx, const char *fn, const key_def *defs, int n_defs) {
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

int wb_lua_opt_table(lua_State *L, int arg, const char *fn, const key_def *defs, int n_defs) {
    if (lua_isnoneornil(L, arg)) return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    wb_lua_check_keys(L, arg, fn, defs, n_defs);
    return 1;
}

/* Readers for a table that check_keys already validated (t == 0: absent
 * table, every key takes its default). */
int wb_lua_has_field(lua_State *L, int t, const char *k) {
    if (!t) return 0;
    int present = lua_getfield(L, t, k) != LUA_TNIL;
    lua_pop(L, 1);
    return present;
}

double wb_lua_get_num(lua_State *L, int t, const char *k, double def) {
    if (!t || lua_getfield(L, t, k) == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int64_t wb_lua_get_int(lua_State *L, int t, const char *fn, const char *k, int64_t def, int64_t lo, int64_t hi) {
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

int wb_lua_get_bool(lua_State *L, int t, const char *k, int def) {
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
const char *wb_lua_get_str(lua_State *L, int t, const char *k, const char *def) {
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
void *wb_lua_get_udata(lua_State *L, int t, const char *k) {
    if (!t) return NULL;
    lua_getfield(L, t, k);
    void *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
}

void *wb_lua_require_udata(lua_State *L, int t, const char *fn, const char *k) {
    void *p = wb_lua_get_udata(L, t, k);
    if (!p) luaL_error(L, "%s: key '%s' is required", fn, k);
    return p;
}

/* ---- the registry userdata --------------------------------------------------------- */
int wb_lua_registry_gc(lua_State *L) {
    registry_box *b = luaL_checkudata(L, 1, REGISTRY_TNAME);
    wb_registry_free(b->reg);
    b->reg = NULL;
    return 0;
}

/* Every module function carries the registry box as upvalue 1. */
wb_registry *wb_lua_registry(lua_State *L) {
    registry_box *b = lua_touserdata(L, lua_upvalueindex(1));
    if (!b || !b->reg) luaL_error(L, "wb.core: the plugin registry is gone (state closing)");
    return b->reg;
}

/* ---- guards: configurations owned until the engine call returns ---------------- */
void wb_lua_guard_release(wb_lua_guard *g) {
    for (int i = 0; i < g->n; i++) {
        wb_config_free(g->cfg[i]);
        g->cfg[i] = NULL;
    }
    g->n = 0;
}

int wb_lua_guard_gc(lua_State *L) {
    wb_lua_guard_release(luaL_checkudata(L, 1, GUARD_TNAME));
    return 0;
}

wb_lua_guard *wb_lua_guard_new(lua_State *L) {
    wb_lua_guard *g = lua_newuserdatauv(L, sizeof *g, 0);
    memset(g, 0, sizeof *g);
    luaL_setmetatable(L, GUARD_TNAME);
    return g;
}

static wb_config_owned *guard_config(lua_State *L, wb_lua_guard *g, const wb_plugin_desc *desc) {
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

const char *wb_lua_param_type_name(wb_param_type t) {
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
                       s->type == WB_PARAM_INT ? "an" : "a", wb_lua_param_type_name(s->type));
        rc = wb_config_set_number(c, key, lua_toboolean(L, vidx) ? 1.0 : 0.0);
        break;
    case LUA_TSTRING: rc = wb_config_set_string(c, key, lua_tostring(L, vidx)); break;
    case LUA_TTABLE: {
        if (s->type != WB_PARAM_INTS)
            luaL_error(L, "%s: %s: parameter '%s' expects %s %s, got table", fn, c->desc->name, key,
                       s->type == WB_PARAM_INT ? "an" : "a", wb_lua_param_type_name(s->type));
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
                   s->type == WB_PARAM_INT ? "an" : "a", wb_lua_param_type_name(s->type), wb_lua_type_label(L, vidx));
    }
    if (rc) luaL_error(L, "%s: %s", fn, wb_last_error());
}

/* Resolves the spec at idx ("name" or {"name", key = value, ...}) to a
 * plugin of `kind` and a configuration owned by g. The ratio estimator's
 * "net" key, when the plugin wants a backbone, is left for the caller
 * (*has_net set); every other key must be one of the plugin's parameters. */
const wb_plugin_desc *wb_lua_resolve_spec(lua_State *L, wb_registry *reg, wb_lua_guard *g, const char *fn, const char *key,
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
                          kind_long_name(kind), wb_lua_type_label(L, idx)),
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
void wb_lua_resolve_netspec(lua_State *L, wb_registry *reg, wb_lua_guard *g, const char *fn, int t, const char *k,
                            const char *def, wb_netspec *out) {
    if (lua_getfield(L, t, k) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushstring(L, def);
    }
    out->desc = wb_lua_resolve_spec(L, reg, g, fn, k, -1, WB_KIND_NET, &out->cfg, NULL);
    lua_pop(L, 1);
}

/* The index of `s` in "a|b|c", or an error listing the choices. */
int wb_lua_choose(lua_State *L, const char *fn, const char *key, const char *s, const char *const *choices, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, choices[i]) == 0) return i;
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? "|" : "", choices[i]);
    return luaL_error(L, "%s: key '%s' = '%s' is not one of %s", fn, key, s, list);
}

/* A Lua array of numbers at arg as floats in a scratch userdata (pushed). */
float *wb_lua_float_array(lua_State *L, int arg, const char *fn, const char *what, int64_t *n_out) {
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

/* ---- the engine's option rows --------------------------------------------------------- */
static key_kind row_kind(const wb_option *o) {
    switch (o->type) {
    case WB_OPT_NUMBER: return K_NUMBER;
    case WB_OPT_INT: return K_INT;
    case WB_OPT_BOOL: return K_BOOL;
    case WB_OPT_STRING:
    case WB_OPT_ENUM:
    case WB_OPT_BACKEND: return K_STRING;
    }
    return K_STRING;
}

int wb_lua_option_keys(const key_def *before, int n_before, const wb_option_table *options, const key_def *after,
                       int n_after, key_def *out) {
    int n = 0;
    for (int i = 0; i < n_before && n < WB_LUA_MAX_KEYS; i++) out[n++] = before[i];
    for (int i = 0; i < options->n && n < WB_LUA_MAX_KEYS; i++)
        out[n++] = (key_def){options->rows[i].name, row_kind(&options->rows[i]), NULL};
    for (int i = 0; i < n_after && n < WB_LUA_MAX_KEYS; i++) out[n++] = after[i];
    return n;
}

static int skipped(const char *name, const char *const *skip) {
    for (int i = 0; skip && skip[i]; i++)
        if (strcmp(name, skip[i]) == 0) return 1;
    return 0;
}

void wb_lua_apply_options(lua_State *L, int t, const char *fn, const wb_option_table *options, void *config,
                          const char *const *skip) {
    t = lua_absindex(L, t);
    for (int i = 0; i < options->n; i++) {
        const wb_option *o = &options->rows[i];
        if (skipped(o->name, skip) || lua_getfield(L, t, o->name) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        int rc = 0;
        switch (o->type) {
        case WB_OPT_NUMBER: rc = wb_option_set_number(o, config, lua_tonumber(L, -1)); break;
        case WB_OPT_INT: rc = wb_option_set_integer(o, config, (int64_t)lua_tointeger(L, -1)); break;
        case WB_OPT_BOOL: rc = wb_option_set_bool(o, config, lua_toboolean(L, -1)); break;
        case WB_OPT_STRING:
        case WB_OPT_ENUM:
        case WB_OPT_BACKEND: rc = wb_option_set_string(o, config, lua_tostring(L, -1)); break;
        }
        /* a string stays owned by the table, which the caller holds */
        lua_pop(L, 1);
        if (rc) luaL_error(L, "%s: %s", fn, wb_last_error());
    }
}

/* ---- classes and functions ------------------------------------------------------------- */
void wb_lua_new_class(lua_State *L, const char *tname, const luaL_Reg *meta, const luaL_Reg *methods,
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

void wb_lua_set_funcs(lua_State *L, int module, int registry, const luaL_Reg *funcs) {
    module = lua_absindex(L, module);
    registry = lua_absindex(L, registry);
    for (; funcs->name; funcs++) {
        lua_pushvalue(L, registry);
        lua_pushcclosure(L, funcs->func, 1);
        lua_setfield(L, module, funcs->name);
    }
}
