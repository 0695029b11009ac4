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
 *   lua_proc.c     child processes for wb.arms: spawn, wait, kill, cpu_count
 *   lua_wb.c       this file: the registry, the small functions (commit,
 *                  version, cli_args, command, script_path, crc32,
 *                  deterministic, done, arms_called), luaopen
 * Library code: errors are raised as Lua errors, never exit().
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <zlib.h>

#include "cli/lua_guard.h"
#include "cli/lua_types.h"
#include "cli/lua_wb.h"
#include "core/comm.h"
#include "core/registry.h"
#include "wb/cpu.h"

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

/* "run" or "table": what the host was asked (WB_LUA_COMMAND_KEY). */
static int l_command(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, WB_LUA_COMMAND_KEY) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushliteral(L, "run");
    }
    return 1;
}

/* The script's path as the command line gave it (nil outside the host). */
static int l_script_path(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, WB_LUA_SCRIPT_KEY) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    return 1;
}

/* CRC-32 of a string as 8 hex digits (what config.json records of a script). */
static int l_crc32(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    uLong crc = crc32(0L, Z_NULL, 0);
    while (len > 0) { /* crc32 takes a uInt length */
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, (const Bytef *)s, chunk);
        s += chunk;
        len -= chunk;
    }
    char hex[16];
    snprintf(hex, sizeof hex, "%08lx", (unsigned long)crc);
    lua_pushstring(L, hex);
    return 1;
}

/* wb.core.deterministic([on]): with a boolean, turns the CPU backend's
 * thread-count-independent mode on or off for the rest of the process
 * (wb/cpu.h; before the first GEMM for a whole run); returns the mode. */
static int l_deterministic(lua_State *L) {
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TBOOLEAN);
        wb_cpu_set_deterministic(lua_toboolean(L, 1));
    }
    lua_pushboolean(L, wb_cpu_deterministic());
    return 1;
}

/* The sentinel's identity: the address of this byte, as a light userdata. */
static const char done_sentinel = 0;
#define ARMS_CALLED_KEY "wb.arms.called"

static int l_done(lua_State *L) {
    lua_pushlightuserdata(L, (void *)&done_sentinel);
    return lua_error(L);
}

int wb_lua_is_done(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == (void *)&done_sentinel;
}

static int l_arms_called(lua_State *L) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, ARMS_CALLED_KEY);
    return 0;
}

int wb_lua_arms_called(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, ARMS_CALLED_KEY);
    int called = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return called;
}

/* The message handler of every lua_pcall (host/cli/main.c): the error
 * with a traceback (wb.core.done()'s sentinel passes untouched). */
int wb_lua_msghandler(lua_State *L) {
    if (wb_lua_is_done(L, 1)) return 1;
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
    wb_lua_open_proc(L, module, registry);
    static const luaL_Reg funcs[] = {
        {"commit", l_commit},
        {"version", l_version},
        {"cli_args", l_cli_args},
        {"rank", l_rank},
        {"world_size", l_world_size},
        {"command", l_command},
        {"script_path", l_script_path},
        {"crc32", l_crc32},
        {"deterministic", l_deterministic},
        {"done", l_done},
        {"arms_called", l_arms_called},
        {NULL, NULL},
    };
    wb_lua_set_funcs(L, module, registry, funcs);
    lua_setfield(L, module, "data");
    lua_pushvalue(L, module); /* wb.core.render_table, wb.core.write_file (host/cli/lua_table.c) */
    wb_lua_open_table(L);
    lua_pop(L, 1);
    return 1;
}
