/* host/cli/lua_wb.h — the Lua binding of the workbench engine: the C module
 * `wb.core` (scripts/lua/wb.lua builds the researcher-facing `wb` module on
 * top of it), plus the few build facts the `workbench` executable needs but
 * only libwb is compiled with (version, commit, Lua module folders).
 */
#ifndef WB_LUA_WB_H
#define WB_LUA_WB_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opens `wb.core`: discovers the plugins (one registry per lua_State, freed
 * with the state) and returns the module table. Register it with
 * package.preload["wb.core"]; it raises Lua errors, never exits. */
int luaopen_wb_core(lua_State *L);
/* Adds render_table and write_file (host/cli/lua_table.c) to the wb.core
 * table on the top of the stack; returns 0. */
int wb_lua_open_table(lua_State *L);

/* lua.c's message handler: turns any error object into a message and
 * appends a traceback, so the user sees where in the script it happened
 * (the host runs scripts under it; wb.distill runs on_eval under it). */
int wb_lua_msghandler(lua_State *L);
/* Whether the engine is training (wb.teacher / wb.distill running): a stop
 * request is then the engine's to honour at the end of its step, with a
 * checkpoint; outside training the host's hook raises it as a Lua error. */
int wb_lua_training(lua_State *L);

/* The host stores the command-line key=value pairs (a table of strings) in
 * the Lua registry under this key before running a script;
 * wb.core.cli_args() returns a copy of it (an empty table when unset). */
#define WB_LUA_CLI_ARGS_KEY "wb.cli_args"
/* ... and the script's path under this key (a string); runs record it, with
 * a CRC-32 of the file and the key=value pairs, in their config.json. */
#define WB_LUA_SCRIPT_KEY "wb.script"
/* ... and what it was asked to do under this key: "run" (`workbench run
 * FILE.lua`) or "table" (`workbench table FILE.lua`: wb.arms reads every
 * arm's result instead of running it); wb.core.command() returns it. */
#define WB_LUA_COMMAND_KEY "wb.command"

/* wb.core.done() ends the script early with success: it raises this
 * sentinel, which the message handler passes through untouched and the host
 * takes for a normal end (exit 0). wb.arms raises it in a worker (arm=NAME)
 * once its arm's result is written, and after a Slurm submission, so the
 * script's report code runs only where every result is there. */
int wb_lua_is_done(lua_State *L, int idx);
/* Whether the script called wb.arms (wb.core.arms_called() records it): the
 * host refuses the arms' command-line keys (jobs, slurm, arm, ntasks) and
 * `workbench table FILE.lua` for a script that never did. */
int wb_lua_arms_called(lua_State *L);

/* ... and the process's communicator (host/core/comm.h) as a light
 * userdata under this key; absent: one rank. */
#define WB_LUA_COMM_KEY "wb.comm"
struct wb_comm;
/* The communicator the host stored, or NULL (one rank). */
struct wb_comm *wb_lua_comm(lua_State *L);

#include "core/buildinfo.h" /* wb_build_version(), wb_build_commit(), ... */


#ifdef __cplusplus
}
#endif
#endif
