/* host/cli/lua_wb.c — luaopen_wb_core: opens the C module `wb.core`, a thin
 * Lua binding over the engine (host/engine), the plugin registry
 * (host/core/registry.h) and the plots (host/report/plot.h).
 * scripts/lua/wb.lua re-exports it as `wb` and adds the Lua-side helpers
 * (args, tables). Split the way Lua's own libraries are, one concern a file:
 *   lua_guard.c    checked option tables, engine option rows, guards, plugin
 *                  specs, the traceback message handler
 *   lua_data.c     Samples and Dataset: wb.samples, wb.data.gmm2d/images
 *   lua_models.c   Teacher and Student: wb.teacher, wb.distill, run directories
 *   lua_eval.c     wb.evaluate, wb.image_metrics
 *   lua_plot.c     wb.scatter, wb.scatter_grid, wb.plot_lines, wb.mkdir
 *   lua_plugins.c  wb.plugins, wb.plugin_errors, wb.divergences, weights/values
 *   lua_wb.c       this file: the registry, the small functions, luaopen
 * Library code: errors are raised as Lua errors, never exit().
 */
#include <lauxlib.h>
#include <lua.h>

#include "cli/lua_guard.h"
#include "cli/lua_types.h"
#include "cli/lua_wb.h"
#include "core/comm.h"
#include "core/registry.h"

/* Where luaopen_wb_core keeps the registry userdata, so a second require
 * (after package.loaded is cleared) reuses it instead of loading twice. */
#define REGISTRY_KEY "wb.core.registry"

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

struct wb_comm *wb_lua_comm(lua_State *L) {
    void *comm = lua_getfield(L, LUA_REGISTRYINDEX, WB_LUA_COMM_KEY) == LUA_TLIGHTUSERDATA ? lua_touserdata(L, -1) : NULL;
    lua_pop(L, 1);
    return comm;
}

/* wb.rank(), wb.world_size(): data parallel (`mpirun -np N workbench run ...`);
 * every rank runs the whole script, rank 0 alone writes (scripts/lua/wb.lua). */
static int l_rank(lua_State *L) {
    lua_pushinteger(L, wb_comm_rank(wb_lua_comm(L)));
    return 1;
}

static int l_world_size(lua_State *L) {
    lua_pushinteger(L, wb_comm_size(wb_lua_comm(L)));
    return 1;
}

/* The message handler of every lua_pcall (host/cli/main.c): the error
 * with a traceback. */
int wb_lua_msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* ---- module ------------------------------------------------------------------------------------ */
int luaopen_wb_core(lua_State *L) {
    static const luaL_Reg guard_meta[] = {{"__gc", wb_lua_guard_gc}, {NULL, NULL}};
    static const luaL_Reg registry_meta[] = {{"__gc", wb_lua_registry_gc}, {NULL, NULL}};
    wb_lua_new_class(L, GUARD_TNAME, guard_meta, NULL, NULL);
    wb_lua_new_class(L, REGISTRY_TNAME, registry_meta, NULL, NULL);

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
    int registry = lua_gettop(L);

    lua_createtable(L, 0, 24);
    int module = lua_gettop(L);
    lua_createtable(L, 0, 2);
    int data = lua_gettop(L);
    wb_lua_open_plugins(L, module, registry);
    wb_lua_open_data(L, module, data, registry);
    wb_lua_open_models(L, module, registry);
    wb_lua_open_eval(L, module, registry);
    wb_lua_open_plot(L, module, registry);
    static const luaL_Reg funcs[] = {
        {"commit", l_commit},
        {"version", l_version},
        {"cli_args", l_cli_args},
        {"rank", l_rank},
        {"world_size", l_world_size},
        {NULL, NULL},
    };
    wb_lua_set_funcs(L, module, registry, funcs);
    lua_setfield(L, module, "data");
    lua_pushvalue(L, module); /* wb.core.render_table, wb.core.write_file (host/cli/lua_table.c) */
    wb_lua_open_table(L);
    lua_pop(L, 1);
    return 1;
}
