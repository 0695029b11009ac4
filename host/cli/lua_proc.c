/* host/cli/lua_proc.c — child processes for wb.arms (scripts/lua/wb/arms.lua):
 * the few POSIX calls a Lua script cannot make itself, to run an
 * experiment's arms as local worker processes (`workbench run FILE.lua
 * --jobs N`). Minimal on purpose: the policy (which arms, how many at a
 * time, what a failure means) is Lua's.
 *
 *   wb.core.spawn(argv, {log = PATH, env = {NAME = value, ...}}) -> pid
 *       runs argv[1] (a path, not searched on PATH) with argv as its
 *       arguments, stdin from /dev/null, stdout and stderr into PATH
 *       (truncated), the environment of this process with `env` set over
 *       it, in a process group of its own (so a Ctrl-C at the terminal
 *       reaches only the parent, which forwards one SIGTERM: a worker that
 *       got the terminal's signal and the parent's would take the second
 *       as "exit at once" and lose its checkpoint)
 *   wb.core.wait(pids[, watch_stop = true]) -> pid, "exit" | "signal", code
 *                                            | nil, "stop", signo
 *       waits until one of the pids (an array) ends, or, with watch_stop,
 *       until this process is asked to stop (SIGINT / SIGTERM:
 *       wb_stop_requested; false once the stop has been passed on)
 *   wb.core.kill(pid[, "TERM" | "INT" | "KILL"]) -> true | nil, message
 *   wb.core.cpu_count() -> the CPUs this process may run on (its affinity mask)
 *   wb.core.executable() -> the running workbench's path (/proc/self/exe resolved)
 *   wb.core.realpath(path) -> the absolute canonical path | nil, message
 *
 * Library code: errors are Lua errors (or nil + message), never exit().
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/lua_guard.h"
#include "cli/lua_types.h"
#include "engine/engine.h" /* wb_stop_requested */

extern char **environ;

/* How often wait() looks at its children and at a stop request: short
 * enough that a worker's end is noticed at once, long enough to cost
 * nothing while arms train for minutes. */
#define WAIT_POLL_NS (20 * 1000 * 1000)

/* The string at index `at` of the array at `t`, or an error naming it. */
static const char *array_string(lua_State *L, int t, lua_Integer at, const char *what) {
    if (lua_geti(L, t, at) != LUA_TSTRING)
        luaL_error(L, "wb.core.spawn: %s[%d] must be a string, got %s", what, (int)at, luaL_typename(L, -1));
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* anchored by the table */
    return s;
}

/* environ with the NAME = value pairs of the table at `env` set over it,
 * as a NULL-terminated array in a userdata pushed on the stack; its
 * strings are anchored in a table pushed below it. */
static char **build_environment(lua_State *L, int env) {
    size_t n_env = 0;
    while (environ[n_env]) n_env++;
    size_t n_over = 0;
    if (env) {
        lua_pushnil(L);
        while (lua_next(L, env)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "wb.core.spawn: env must map names to strings");
            n_over++;
            lua_pop(L, 1);
        }
    }
    lua_createtable(L, (int)n_over, 0); /* anchors the "NAME=value" strings */
    int anchor = lua_gettop(L);
    char **out = lua_newuserdatauv(L, (n_env + n_over + 1) * sizeof *out, 0);
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(environ[i], '=');
        int replaced = 0;
        if (env && eq) {
            lua_pushlstring(L, environ[i], (size_t)(eq - environ[i]));
            replaced = lua_rawget(L, env) != LUA_TNIL;
            lua_pop(L, 1);
        }
        if (!replaced) out[k++] = environ[i];
    }
    if (env) {
        lua_pushnil(L);
        while (lua_next(L, env)) {
            const char *pair = lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
            out[k++] = (char *)pair;
            lua_rawseti(L, anchor, (lua_Integer)k); /* pops the pair */
            lua_pop(L, 1);
        }
    }
    out[k] = NULL;
    return out;
}

static int l_spawn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_Integer argc = luaL_len(L, 1);
    if (argc < 1 || argc > 100000) return luaL_error(L, "wb.core.spawn: argv needs 1 to 100000 strings");
    char **argv = lua_newuserdatauv(L, (size_t)(argc + 1) * sizeof *argv, 0);
    for (lua_Integer i = 0; i < argc; i++) argv[i] = (char *)array_string(L, 1, i + 1, "argv");
    argv[argc] = NULL;
    if (lua_getfield(L, 2, "log") != LUA_TSTRING) return luaL_error(L, "wb.core.spawn: opts.log must be a path");
    const char *log = lua_tostring(L, -1); /* anchored by opts */
    lua_pop(L, 1);
    int env = 0;
    int t = lua_getfield(L, 2, "env");
    if (t == LUA_TTABLE) env = lua_gettop(L);
    else if (t != LUA_TNIL) return luaL_error(L, "wb.core.spawn: opts.env must be a table, got %s", lua_typename(L, t));
    char **envp = build_environment(L, env);

    /* opened here, so an unwritable log is this call's error, naming it */
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return luaL_error(L, "wb.core.spawn: cannot open the log '%s': %s", log, strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    /* its own process group; SIGINT and SIGTERM at their default (not
     * ignored, whatever this process inherited), nothing blocked */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fd);
    if (rc != 0) return luaL_error(L, "wb.core.spawn: cannot start '%s': %s", argv[0], strerror(rc));
    lua_pushinteger(L, pid);
    return 1;
}

static int l_wait(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n < 1) return luaL_error(L, "wb.core.wait: no process to wait for");
    int watch_stop = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
    for (;;) {
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, 1, i);
            lua_Integer want = lua_tointeger(L, -1);
            lua_pop(L, 1);
            if (want <= 0) return luaL_error(L, "wb.core.wait: pids[%d] is not a process id", (int)i);
            int status = 0;
            pid_t got = waitpid((pid_t)want, &status, WNOHANG);
            if (got < 0 && errno != EINTR)
                return luaL_error(L, "wb.core.wait: process %d: %s", (int)want, strerror(errno));
            if (got == (pid_t)want) {
                lua_pushinteger(L, got);
                if (WIFSIGNALED(status)) {
                    lua_pushliteral(L, "signal");
                    lua_pushinteger(L, WTERMSIG(status));
                } else {
                    lua_pushliteral(L, "exit");
                    lua_pushinteger(L, WEXITSTATUS(status));
                }
                return 3;
            }
        }
        int signo = watch_stop ? wb_stop_requested() : 0;
        if (signo) {
            luaL_pushfail(L);
            lua_pushliteral(L, "stop");
            lua_pushinteger(L, signo);
            return 3;
        }
        struct timespec pause = {0, WAIT_POLL_NS};
        nanosleep(&pause, NULL);
    }
}

static int l_kill(lua_State *L) {
    static const char *const names[] = {"TERM", "INT", "KILL", NULL};
    static const int signals[] = {SIGTERM, SIGINT, SIGKILL};
    lua_Integer pid = luaL_checkinteger(L, 1);
    int which = luaL_checkoption(L, 2, "TERM", names);
    if (pid <= 0) return luaL_error(L, "wb.core.kill: %d is not a process id", (int)pid);
    if (kill((pid_t)pid, signals[which]) != 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "process %d: %s", (int)pid, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cpu_count(lua_State *L) {
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n < 1) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

static int l_executable(lua_State *L) {
    char path[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
    if (len <= 0) return luaL_error(L, "wb.core.executable: /proc/self/exe: %s", strerror(errno));
    path[len] = '\0';
    lua_pushstring(L, path);
    return 1;
}

static int l_realpath(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    char *full = realpath(path, NULL);
    if (!full) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    lua_pushstring(L, full);
    free(full);
    return 1;
}

void wb_lua_open_proc(lua_State *L, int module, int registry) {
    static const luaL_Reg funcs[] = {
        {"spawn", l_spawn},         {"wait", l_wait},
        {"kill", l_kill},           {"cpu_count", l_cpu_count},
        {"executable", l_executable}, {"realpath", l_realpath},
        {NULL, NULL},
    };
    wb_lua_set_funcs(L, module, registry, funcs);
}
