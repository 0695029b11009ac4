/* host/cli/lua_guard.h — the checked-options layer every wb.core function
 * stands on (host/cli/lua_guard.c): option tables walked with lua_next and
 * checked for unknown keys, wrong types and bounds, with errors naming the
 * function and the key; the engine's option rows (engine/options.h) applied
 * to a config; "guards" that own plugin configurations while a call checks
 * its arguments; plugin specs resolved against the registry; the message
 * handler that adds a traceback. Internal to the binding (host/cli/lua_*.c).
 */
#ifndef WB_LUA_GUARD_H
#define WB_LUA_GUARD_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "core/registry.h"
#include "engine/engine.h"
#include "engine/options.h"

#define REGISTRY_TNAME "wb.registry"
#define GUARD_TNAME "wb.guard"

/* A value's type for messages: "Dataset" for our userdata, else Lua's name. */
const char *wb_lua_type_label(lua_State *L, int idx);

/* ---- checked option tables ------------------------------------------------------ */
typedef enum {
    K_NUMBER,   /* any Lua number                             */
    K_INT,      /* a number with an integral value            */
    K_BOOL,     /* true / false                               */
    K_STRING,   /* a string                                   */
    K_TABLE,    /* a table                                    */
    K_SPEC,     /* a plugin spec: "name" or {"name", k = v}   */
    K_UDATA,    /* userdata of metatable `udata`              */
    K_FUNCTION, /* a function                                 */
} key_kind;

typedef struct key_def {
    const char *name;
    key_kind kind;
    const char *udata; /* K_UDATA: metatable name */
} key_def;

#define N_DEFS(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define WB_LUA_MAX_KEYS 64

/* Every key of the table at idx must be one of defs, with the right type;
 * otherwise a Lua error "fn: unknown key 'k' (known keys: ...)" or
 * "fn: key 'k' expects a number, got string". */
void wb_lua_check_keys(lua_State *L, int idx, const char *fn, const key_def *defs, int n_defs);
/* An optional table argument: nil/none -> 0 (absent), a table -> checked. */
int wb_lua_opt_table(lua_State *L, int arg, const char *fn, const key_def *defs, int n_defs);

/* The keys of a function that takes engine options: `before`, then one per
 * row of `options`, then `after`, into out (at most WB_LUA_MAX_KEYS);
 * returns how many. */
int wb_lua_option_keys(const key_def *before, int n_before, const wb_option_table *options, const key_def *after,
                       int n_after, key_def *out);
/* Applies every row of `options` present in the (checked) table t to config,
 * through the rows' setters (bounds, choices, backends); a failure is a Lua
 * error "fn: key ...". `skip` (NULL-terminated names, or NULL) are left to
 * the caller. */
void wb_lua_apply_options(lua_State *L, int t, const char *fn, const wb_option_table *options, void *config,
                          const char *const *skip);

/* Readers for a table that wb_lua_check_keys already validated (t == 0:
 * absent table, every key takes its default). Strings and userdata are owned
 * by the table, which the caller keeps on the stack while it uses them. */
int wb_lua_has_field(lua_State *L, int t, const char *k);
double wb_lua_get_num(lua_State *L, int t, const char *k, double def);
int64_t wb_lua_get_int(lua_State *L, int t, const char *fn, const char *k, int64_t def, int64_t lo, int64_t hi);
int wb_lua_get_bool(lua_State *L, int t, const char *k, int def);
const char *wb_lua_get_str(lua_State *L, int t, const char *k, const char *def);
void *wb_lua_get_udata(lua_State *L, int t, const char *k);
void *wb_lua_require_udata(lua_State *L, int t, const char *fn, const char *k);

/* The index of `s` in choices, or an error "fn: key 'k' = 's' is not one of a|b|c". */
int wb_lua_choose(lua_State *L, const char *fn, const char *key, const char *s, const char *const *choices, int n);

/* A Lua array of numbers at arg as floats in a scratch userdata (pushed). */
float *wb_lua_float_array(lua_State *L, int arg, const char *fn, const char *what, int64_t *n_out);

/* ---- the registry: every module function carries its box as upvalue 1 --------- */
typedef struct registry_box {
    wb_registry *reg;
} registry_box;
wb_registry *wb_lua_registry(lua_State *L);
int wb_lua_registry_gc(lua_State *L);

/* ---- guards: configurations owned until the engine call returns ---------------- */
#define GUARD_MAX 8
typedef struct wb_lua_guard {
    wb_config_owned *cfg[GUARD_MAX];
    int n;
} wb_lua_guard;

wb_lua_guard *wb_lua_guard_new(lua_State *L); /* pushed */
void wb_lua_guard_release(wb_lua_guard *g);
int wb_lua_guard_gc(lua_State *L);

/* ---- plugin specs ---------------------------------------------------------------- */
const char *wb_lua_param_type_name(wb_param_type t);
/* Resolves the spec at idx ("name" or {"name", key = value, ...}) to a
 * plugin of `kind` and a configuration owned by g. The ratio estimator's
 * "net" key, when the plugin wants a backbone, is left for the caller
 * (*has_net set); every other key must be one of the plugin's parameters. */
const wb_plugin_desc *wb_lua_resolve_spec(lua_State *L, wb_registry *reg, wb_lua_guard *g, const char *fn,
                                          const char *key, int idx, wb_plugin_kind kind, wb_config_owned **cfg_out,
                                          int *has_net);
/* A net spec from field k of table t, or the default net when absent. */
void wb_lua_resolve_netspec(lua_State *L, wb_registry *reg, wb_lua_guard *g, const char *fn, int t, const char *k,
                            const char *def, wb_netspec *out);

/* ---- classes ------------------------------------------------------------------------ */
/* A metatable `tname` with meta functions and, when methods is given, an
 * __index table of them (index: a closure over it for computed fields). */
void wb_lua_new_class(lua_State *L, const char *tname, const luaL_Reg *meta, const luaL_Reg *methods,
                      lua_CFunction index);
/* Sets funcs into the table at `module`, each with the registry box at
 * `registry` as upvalue 1. */
void wb_lua_set_funcs(lua_State *L, int module, int registry, const luaL_Reg *funcs);

#endif
