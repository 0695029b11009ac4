/* host/cli/lua_plugins.c — the plugin registry seen from Lua: wb.plugins
 * (every loaded plugin with its parameter specs), wb.plugin_errors (the
 * rejected libraries), wb.divergences, and a divergence's weights and value
 * at given logits (wb.divergence_weights / wb.divergence_value).
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/lua_guard.h"
#include "cli/lua_types.h"

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
    lua_pushstring(L, wb_lua_param_type_name(s->type));
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
    wb_registry *reg = wb_lua_registry(L);
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
    wb_registry *reg = wb_lua_registry(L);
    lua_newtable(L);
    for (int i = 0; i < wb_registry_error_count(reg); i++) {
        lua_pushstring(L, wb_registry_error(reg, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_divergences(lua_State *L) {
    wb_registry *reg = wb_lua_registry(L);
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


static const wb_plugin_desc *divergence_arg(lua_State *L, const char *fn, wb_lua_guard *g, wb_config_owned **cfg) {
    return wb_lua_resolve_spec(L, wb_lua_registry(L), g, fn, "spec", 1, WB_KIND_DIVERGENCE, cfg, NULL);
}

static int l_divergence_weights(lua_State *L) {
    const char *fn = "wb.divergence_weights";
    lua_settop(L, 2);
    wb_lua_guard *g = wb_lua_guard_new(L);
    wb_config_owned *c;
    const wb_plugin_desc *d = divergence_arg(L, fn, g, &c);
    int64_t n;
    float *logit = wb_lua_float_array(L, 2, fn, "logits", &n);
    float *w = lua_newuserdatauv(L, (size_t)(n ? 2 * n : 1) * sizeof(float), 0);
    d->divergence->weights(&c->cfg, n, logit, w, w + n);
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
        for (int64_t i = 0; i < n; i++) {
            lua_pushnumber(L, w[k * n + i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    }
    wb_lua_guard_release(g);
    return 2;
}

static int l_divergence_value(lua_State *L) {
    const char *fn = "wb.divergence_value";
    lua_settop(L, 2);
    wb_lua_guard *g = wb_lua_guard_new(L);
    wb_config_owned *c;
    const wb_plugin_desc *d = divergence_arg(L, fn, g, &c);
    int64_t n;
    float *logit = wb_lua_float_array(L, 2, fn, "logits", &n);
    lua_pushnumber(L, d->divergence->value(&c->cfg, n, logit));
    wb_lua_guard_release(g);
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */
void wb_lua_open_plugins(lua_State *L, int module, int registry) {
    static const luaL_Reg funcs[] = {
        {"plugins", l_plugins},
        {"plugin_errors", l_plugin_errors},
        {"divergences", l_divergences},
        {"divergence_weights", l_divergence_weights},
        {"divergence_value", l_divergence_value},
        {NULL, NULL},
    };
    wb_lua_set_funcs(L, module, registry, funcs);
}
