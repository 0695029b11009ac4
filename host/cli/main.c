/* host/cli/main.c — the `workbench` executable: runs Lua experiment scripts
 * (and, for a script with wb.arms arms, its report from the arms' results:
 * `workbench table FILE.lua`), builds paper tables from finished runs, lists
 * the loaded plugins, prints version facts. Modelled on Lua's own lua.c
 * (scripts run under lua_pcall with a traceback-appending message handler).
 * This is the only place that decides exit codes:
 *   0  success (also a script ended early by wb.core.done(): a wb.arms
 *      worker once its arm's result is written)
 *   1  the script (or plugin listing) failed
 *   2  bad command line
 *  75  stopped by SIGINT/SIGTERM: the training run in progress wrote a
 *      checkpoint; `workbench run FILE.lua ... resume=DIR` continues it
 *      (docs/resume.md). A second signal exits at once (130 / 143).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "engine/engine.h"
#include "engine/options.h"
#include "cli/lua_wb.h"
#include "cli/process_tuning.h"
#include "cli/run_args.h"
#include "core/comm.h"
#include "core/registry.h"
#include "report/results_table.h"
#include "wb/tensor.h"

#define EXIT_USAGE 2
#define EXIT_STOPPED 75 /* EX_TEMPFAIL: try again (resume) */

static const char *progname = "workbench";

static void usage(FILE *f) {
    fprintf(f,
            "usage: workbench <command> [arguments]\n"
            "\n"
            "commands:\n"
            "  run FILE.lua [key=value ...]  run an experiment script; the pairs reach it\n"
            "                                through wb.args{...} (or wb.core.cli_args())\n"
            "      --jobs N (jobs=N)         a script's arms (wb.arms) on N local worker\n"
            "                                processes, logs in OUT/arms/<arm>.log;\n"
            "                                1: all in this process, one after the other\n"
            "      --slurm \"OPTIONS\"         submit them with sbatch ($WB_SBATCH): a setup\n"
            "      (slurm=OPTIONS)           job, a job array of the arms, a table job;\n"
            "                                scripts in OUT/slurm/; ntasks=N: each arm\n"
            "                                an MPI job (srun)\n"
            "      arm=NAME                  run only that arm (arm=setup: only the setup)\n"
            "      resume=DIR                continue DIR's runs; arms with a result are\n"
            "                                skipped (docs/resume.md)\n"
            "  table FILE.lua [key=value ...]\n"
            "                                the script's own table and figures from its\n"
            "                                arms' results (OUT/arms/<arm>.json), run\n"
            "                                with the same key=value pairs; nothing trains\n"
            "  table RUN_DIR... [--format md|tex|csv] [--metrics a,b,...] [--out BASE]\n"
            "        [--baseline METHOD]     a table from finished runs (config.json +\n"
            "                                results.json): one row per configuration,\n"
            "                                mean ± std over the seeds that share it, the\n"
            "                                95 %% intervals; --baseline: \"†\" where a row\n"
            "                                differs from that row (paired t-test, p<0.05);\n"
            "                                --out writes BASE.md/.tex/.csv (only the\n"
            "                                --format one when given), else stdout (md)\n"
            "  plugins                       list every loaded plugin and its parameters\n"
            "  options [--markdown]          the options of wb.teacher and wb.distill (with\n"
            "                                --markdown: docs/lua.md's option tables)\n"
            "  version                       version, git commit and compute backends\n"
            "  help                          this text\n"
            "\n"
            "environment:\n"
            "  WB_PLUGIN_PATH  extra plugin folders (':'-separated)\n"
            "  WB_LUA_PATH     extra Lua module folders (':'-separated)\n"
            "  WB_BACKEND      cpu|cuda|cuda-emu|auto: the backend when a script names none\n"
            "  WB_DETERMINISTIC=1  CPU results that do not depend on the thread count\n"
            "  WB_MEMORY_LIMIT     SIZE (e.g. 8G) or off: the memory the guard allows\n"
            "  WB_SBATCH       the sbatch command of --slurm (default sbatch)\n"
            "\n"
            "stopping and resuming (docs/resume.md): SIGINT/SIGTERM write a checkpoint and\n"
            "exit 75; `workbench run FILE.lua ... resume=DIR` continues every run in DIR\n");
}

/* ---- run ---------------------------------------------------------------------- */


/* Adds "<d>/?.lua;<d>/?/init.lua;" for folder d to the buffer. */
static void add_folder(luaL_Buffer *b, const char *d, size_t len) {
    if (len == 0) return;
    for (int k = 0; k < 2; k++) {
        luaL_addlstring(b, d, len);
        luaL_addstring(b, k == 0 ? "/?.lua;" : "/?/init.lua;");
    }
}

/* package.path = <script dir>, $WB_LUA_PATH, then the shipped modules, then
 * whatever Lua's defaults and LUA_PATH gave: a helper module next to the
 * script wins. The shipped wb.lua: an installed workbench (its
 * <bin>/../share/wb/lua holds wb.lua) reads its own copy and never the
 * source tree, so an install is a snapshot that editing the sources does
 * not change under a running experiment (the plugins follow the same rule,
 * wb_registry_discover); a build-tree binary reads the source tree's, then
 * the configured install folder's. */
static void set_package_path(lua_State *L, const char *script) {
    luaL_Buffer b;
    lua_getglobal(L, "package");
    luaL_buffinit(L, &b);
    const char *slash = strrchr(script, '/');
    if (slash) add_folder(&b, script, (size_t)(slash - script) + (slash == script));
    else add_folder(&b, ".", 1);
    const char *env = getenv("WB_LUA_PATH");
    for (const char *p = env; p && *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        add_folder(&b, p, n);
        p += n + (colon ? 1 : 0);
    }
    /* <bin>/../share/wb/lua: an install moved, or made with --prefix
     * elsewhere than configured, still finds its own wb.lua */
    char beside[4096] = "";
    ssize_t len = readlink("/proc/self/exe", beside, sizeof beside - 32);
    if (len > 0) {
        beside[len] = 0;
        char *bin = strrchr(beside, '/');
        if (bin) strcpy(bin, "/../share/wb/lua");
        else beside[0] = 0;
    } else {
        beside[0] = 0;
    }
    char probe[4096 + 16];
    snprintf(probe, sizeof probe, "%s/wb.lua", beside);
    int installed = beside[0] && access(probe, R_OK) == 0;
    if (installed) {
        add_folder(&b, beside, strlen(beside));
    } else {
        add_folder(&b, wb_lua_source_dir(), strlen(wb_lua_source_dir()));
        if (beside[0]) add_folder(&b, beside, strlen(beside));
    }
    add_folder(&b, wb_lua_install_dir(), strlen(wb_lua_install_dir()));
    lua_getfield(L, -2, "path");
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

static void preload_wb_core(lua_State *L) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_wb_core);
    lua_setfield(L, -2, "wb.core");
    lua_pop(L, 1);
}

/* Runs in protected mode (cmd_run_pairs's pcall), so memory errors while building
 * tables cannot escape: args are (script, n, char **pairs, command, comm). */
static int setup_state(lua_State *L) {
    const char *script = lua_touserdata(L, 1);
    int n = (int)lua_tointeger(L, 2);
    char **pairs = lua_touserdata(L, 3);
    const char *command = lua_touserdata(L, 4);
    lua_pushvalue(L, 5); /* the communicator: wb.rank(), the engine's reductions */
    lua_setfield(L, LUA_REGISTRYINDEX, WB_LUA_COMM_KEY);
    luaL_openlibs(L);
    preload_wb_core(L);
    set_package_path(L, script);

    lua_newtable(L); /* cli args: key -> value string */
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(pairs[i], '=');
        lua_pushlstring(L, pairs[i], (size_t)(eq - pairs[i]));
        lua_pushstring(L, eq + 1);
        lua_settable(L, -3);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, WB_LUA_CLI_ARGS_KEY);
    lua_pushstring(L, script);
    lua_setfield(L, LUA_REGISTRYINDEX, WB_LUA_SCRIPT_KEY);
    lua_pushstring(L, command);
    lua_setfield(L, LUA_REGISTRYINDEX, WB_LUA_COMMAND_KEY);

    /* global arg, as lua.c builds it: arg[0] the script, arg[1..] the pairs,
     * negative indices the interpreter and command */
    lua_createtable(L, n, 3);
    lua_pushstring(L, progname);
    lua_rawseti(L, -2, -2);
    lua_pushstring(L, command);
    lua_rawseti(L, -2, -1);
    lua_pushstring(L, script);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, pairs[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
    return 0;
}

/* Data parallel: errors name the rank that saw them. */
static char rank_prefix[32];

static int report(lua_State *L, int status) {
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: %s%s\n", progname, rank_prefix, msg ? msg : "(error object is not a string)");
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status;
}

/* ---- stop signals ----------------------------------------------------------------- */
/* The first SIGINT or SIGTERM asks for a stop (wb_stop_request: the engine
 * finishes its step, checkpoints, fails with how to resume); a second one
 * takes the default action at once — the last checkpoint is whole, as
 * every checkpoint is renamed into place complete. */
/* Data parallel: the communicator while a script runs on several ranks. */
static wb_comm *stop_comm;

static void on_stop_signal(int signo) {
    if (stop_comm && !wb_stop_requested()) {
        /* under a launcher a SIGTERM usually means a rank has ended: say so
         * now, as this rank may be waiting in a reduction it cannot finish */
        static const char msg[] = "workbench: stop signal on a data-parallel run (a rank ended, or the job was "
                                  "stopped): stopping at the end of this step if every rank can; every checkpoint "
                                  "already written is whole (resume=DIR continues it)\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing to do about it here */
        }
    }
    if (wb_stop_requested()) {
        signal(signo, SIG_DFL);
        raise(signo);
        return;
    }
    wb_stop_request(signo);
}

static void install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* reads and writes in flight complete */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Outside training a stop request ends the script at the next Lua
 * instructions; during training the engine honours it (wb_lua_training). */
static void stop_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    int signo = wb_stop_requested();
    if (!signo || wb_lua_training(L)) return;
    luaL_error(L, "stopped by %s between training runs (finished runs are kept: re-run with resume=DIR to skip them)",
               signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal");
}

static int cmd_run_pairs(const char *command, const char *script, int n, char **pairs);

/* The keys of wb.arms (scripts/lua/wb/arms.lua) on the command line: their
 * --flag spellings, turned into key=value pairs before anything else. */
static const char *const arms_flags[] = {"jobs", "slurm", "ntasks", NULL};
static const char *const arms_keys[] = {"jobs", "slurm", "ntasks", "arm", NULL};

/* argv's "--jobs N", "--jobs=N", "--slurm OPTS", "--ntasks N" as "key=value"
 * pairs (malloc'd into out[], each owned by out), everything else as it
 * is. 0, or -1 with the message in err: an unknown --option, a flag
 * without its value. */
static int arms_flags_to_pairs(int n, char **argv, char **out, int *n_out, char *err, size_t errlen) {
    *n_out = 0;
    for (int i = 0; i < n; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            out[(*n_out)++] = strdup(a);
            if (!out[*n_out - 1]) goto oom;
            continue;
        }
        const char *name = a + 2, *value = NULL;
        int known = 0;
        for (int k = 0; arms_flags[k] && !known; k++) {
            size_t len = strlen(arms_flags[k]);
            if (strncmp(name, arms_flags[k], len) != 0 || (name[len] != '\0' && name[len] != '=')) continue;
            known = 1;
            if (name[len] == '=') value = name + len + 1;
            else if (i + 1 < n) value = argv[++i];
            else {
                snprintf(err, errlen, "%s needs a value (%s N, or %s=N)", a, a, a);
                return -1;
            }
            size_t size = len + strlen(value) + 2;
            char *pair = malloc(size);
            if (!pair) goto oom;
            snprintf(pair, size, "%s=%s", arms_flags[k], value);
            out[(*n_out)++] = pair;
        }
        if (!known) {
            snprintf(err, errlen, "unknown option '%s' (options: --jobs N, --slurm \"SBATCH OPTIONS\", --ntasks N; "
                     "everything else is key=value)", a);
            return -1;
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* The first of wb.arms's keys among the pairs ("jobs", ...), or NULL. */
static const char *arms_key_given(int n, char **pairs) {
    for (int i = 0; i < n; i++)
        for (int k = 0; arms_keys[k]; k++) {
            size_t len = strlen(arms_keys[k]);
            if (strncmp(pairs[i], arms_keys[k], len) == 0 && pairs[i][len] == '=') return arms_keys[k];
        }
    return NULL;
}

/* Runs script under `command` ("run", or "table": wb.arms reads the arms'
 * results instead of running them). */
static int run_script(const char *command, int argc, char **argv) {
    if (argc < 1) {
        fprintf(stderr, "%s: %s: missing script file\n", progname, command);
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *script = argv[0];
    char args_err[512];
    char **pairs = calloc((size_t)argc, sizeof *pairs);
    int n = 0;
    if (!pairs) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return EXIT_FAILURE;
    }
    if (arms_flags_to_pairs(argc - 1, argv + 1, pairs, &n, args_err, sizeof args_err) != 0 ||
        wb_run_args_check(n, pairs, args_err, sizeof args_err) != 0) {
        fprintf(stderr, "%s: %s: %s\n", progname, command, args_err);
        for (int i = 0; i < n; i++) free(pairs[i]);
        free(pairs);
        return EXIT_USAGE;
    }
    int rc = cmd_run_pairs(command, script, n, pairs);
    for (int i = 0; i < n; i++) free(pairs[i]);
    free(pairs);
    return rc;
}

static int cmd_run_pairs(const char *command, const char *script, int n, char **pairs) {
    /* one rank, or the launcher's (mpirun, srun): host/core/comm.h */
    wb_comm *comm = wb_comm_init(NULL, NULL);
    if (!comm) {
        fprintf(stderr, "%s: %s: %s\n", progname, command, wb_last_error());
        return EXIT_FAILURE;
    }
    if (wb_comm_size(comm) > 1) {
        snprintf(rank_prefix, sizeof rank_prefix, "rank %d: ", wb_comm_rank(comm));
        stop_comm = comm;
        /* rank 0 alone prints (print, tables, io.write); errors and
         * warnings (stderr) come from every rank, named by it */
        const char *all = getenv("WB_PRINT_ALL_RANKS");
        if (wb_comm_rank(comm) > 0 && !(all && strcmp(all, "1") == 0) && !freopen("/dev/null", "w", stdout)) {
            fprintf(stderr, "%s: %scannot silence stdout\n", progname, rank_prefix);
        }
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create Lua state: not enough memory\n", progname);
        wb_comm_abort(comm, EXIT_FAILURE);
        wb_comm_finalize(comm);
        return EXIT_FAILURE;
    }
    lua_pushcfunction(L, setup_state);
    lua_pushlightuserdata(L, (void *)script);
    lua_pushinteger(L, n);
    lua_pushlightuserdata(L, pairs);
    lua_pushlightuserdata(L, (void *)command);
    lua_pushlightuserdata(L, comm);
    int status = report(L, lua_pcall(L, 5, 0, 0));

    if (status == LUA_OK) status = report(L, luaL_loadfile(L, script));
    if (status == LUA_OK) {
        /* like lua.c: the script also receives the pairs as `...` */
        int base = lua_gettop(L); /* the chunk */
        if (!lua_checkstack(L, n + 2)) {
            fprintf(stderr, "%s: run: too many arguments\n", progname);
            lua_close(L);
            wb_comm_abort(comm, EXIT_USAGE);
            wb_comm_finalize(comm);
            return EXIT_USAGE;
        }
        for (int i = 0; i < n; i++) lua_pushstring(L, pairs[i]);
        install_stop_handlers();
        lua_sethook(L, stop_hook, LUA_MASKCOUNT, 10000);
        lua_pushcfunction(L, wb_lua_msghandler);
        lua_insert(L, base);
        status = lua_pcall(L, n, 0, base);
        lua_remove(L, base);
        if (status != LUA_OK && wb_lua_is_done(L, -1)) { /* wb.core.done(): ended early, with success */
            lua_pop(L, 1);
            status = LUA_OK;
        }
        report(L, status);
        /* arms keys, or `workbench table FILE.lua`, for a script without
         * wb.arms would be ignored (or, for table, train): say so */
        const char *key = arms_key_given(n, pairs);
        if (status == LUA_OK && (key || strcmp(command, "table") == 0) && !wb_lua_arms_called(L)) {
            if (key)
                fprintf(stderr, "%s: %s: key '%s' is for a script's arms, and %s never called wb.arms (its runs went "
                        "one after the other in this process)\n", progname, command, key, script);
            else
                fprintf(stderr, "%s: table: %s never called wb.arms, so it has no arms' results to build a table "
                        "from\n", progname, script);
            status = LUA_ERRRUN;
        }
    }
    /* closing runs every __gc: engine objects free before the plugin registry */
    lua_close(L);
    int exit_status = status == LUA_OK ? EXIT_SUCCESS : wb_stop_requested() ? EXIT_STOPPED : EXIT_FAILURE;
    /* a rank that failed or stopped alone would leave the others waiting in
     * a collective (MPI_Finalize included): end them all, with this status
     * (the launcher reports the abort). A stop agreed in training has
     * passed a barrier after rank 0's checkpoint, so nothing is cut short. */
    if (exit_status != EXIT_SUCCESS) wb_comm_abort(comm, exit_status);
    stop_comm = NULL;
    wb_comm_finalize(comm);
    return exit_status;
}

/* ---- table ---------------------------------------------------------------------- */
/* "--name VALUE" or "--name=VALUE" at argv[*i]; the value or NULL when absent. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/* "x.lua": `workbench table FILE.lua ...` runs the script's report. */
static int is_lua_file(const char *s) {
    size_t len = strlen(s);
    return len > 4 && strcmp(s + len - 4, ".lua") == 0;
}

static int cmd_table(int argc, char **argv) {
    if (argc >= 1 && is_lua_file(argv[0])) return run_script("table", argc, argv);
    static const char *const ext[] = {"md", "tex", "csv"};
    int format = -1, missing = 0, status = EXIT_FAILURE;
    const char *out = NULL, *metrics_arg = NULL, *baseline = NULL;
    char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    const char **metrics = calloc(1, sizeof *metrics);
    char *metrics_buf = NULL;
    int n_dirs = 0, n_metrics = 0;
    if (!dirs || !metrics) {
        fprintf(stderr, "%s: out of memory\n", progname);
        goto done;
    }
    for (int i = 0; i < argc; i++) {
        const char *v;
        if ((v = flag_value(argc, argv, &i, "--format", &missing))) {
            format = -1;
            for (int f = 0; f < 3; f++)
                if (strcmp(v, ext[f]) == 0) format = f;
            if (format < 0) {
                fprintf(stderr, "%s: table: --format expects md, tex or csv, got '%s'\n", progname, v);
                status = EXIT_USAGE;
                goto done;
            }
        } else if ((v = flag_value(argc, argv, &i, "--metrics", &missing))) {
            metrics_arg = v;
        } else if ((v = flag_value(argc, argv, &i, "--out", &missing))) {
            out = v;
        } else if ((v = flag_value(argc, argv, &i, "--baseline", &missing))) {
            baseline = v;
        } else if (missing || argv[i][0] == '-') {
            fprintf(stderr, missing ? "%s: table: %s needs a value\n" : "%s: table: unknown option '%s'\n", progname,
                    argv[i]);
            usage(stderr);
            status = EXIT_USAGE;
            goto done;
        } else {
            dirs[n_dirs++] = argv[i];
        }
    }
    if (n_dirs == 0) {
        fprintf(stderr, "%s: table: no run directories\n", progname);
        usage(stderr);
        status = EXIT_USAGE;
        goto done;
    }
    if (metrics_arg) {
        /* comma-separated; empty items are a typo, not "all metrics" */
        metrics_buf = strdup(metrics_arg);
        free(metrics);
        metrics = calloc(strlen(metrics_arg) + 2, sizeof *metrics);
        if (!metrics_buf || !metrics) {
            fprintf(stderr, "%s: out of memory\n", progname);
            goto done;
        }
        for (char *p = metrics_buf;;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = '\0';
            if (!*p) {
                fprintf(stderr, "%s: table: --metrics '%s' has an empty name\n", progname, metrics_arg);
                status = EXIT_USAGE;
                goto done;
            }
            metrics[n_metrics++] = p;
            if (!comma) break;
            p = comma + 1;
        }
    }
    status = EXIT_SUCCESS;
    for (int f = 0; f < 3 && status == EXIT_SUCCESS; f++) {
        /* stdout: one format (md unless asked); --out: the asked one or all */
        if (format >= 0 ? f != format : (out == NULL && f != 0)) continue;
        char *text = wb_results_table_vs((const char *const *)dirs, n_dirs, n_metrics ? metrics : NULL, n_metrics,
                                         (wb_table_format)f, baseline);
        if (!text) {
            fprintf(stderr, "%s: table: %s\n", progname, wb_last_error());
            status = EXIT_FAILURE;
            break;
        }
        if (out) {
            size_t len = strlen(out) + 8;
            char *path = malloc(len);
            if (path) snprintf(path, len, "%s.%s", out, ext[f]);
            if (!path || wb_write_file_atomic(path, text, strlen(text))) {
                fprintf(stderr, "%s: table: %s\n", progname, path ? wb_last_error() : "out of memory");
                status = EXIT_FAILURE;
            } else {
                printf("wrote %s\n", path);
            }
            free(path);
        } else {
            fputs(text, stdout);
        }
        free(text);
    }
done:
    free(dirs);
    free(metrics);
    free(metrics_buf);
    return status;
}

/* ---- plugins -------------------------------------------------------------------- */
static const char *param_type(wb_param_type t) {
    switch (t) {
    case WB_PARAM_NUMBER: return "number";
    case WB_PARAM_INT: return "integer";
    case WB_PARAM_BOOL: return "boolean";
    case WB_PARAM_STRING: return "string";
    case WB_PARAM_INTS: return "integers";
    }
    return "?";
}

static void print_param(const wb_param_spec *s) {
    printf("      %-14s %-8s ", s->name, param_type(s->type));
    switch (s->type) {
    case WB_PARAM_NUMBER:
    case WB_PARAM_INT: printf("default %-8g [%g, %g]", s->def, s->min, s->max); break;
    case WB_PARAM_BOOL: printf("default %-8s", s->def != 0.0 ? "true" : "false"); break;
    case WB_PARAM_STRING:
        printf("default %-8s %s", s->def_str ? s->def_str : "", s->choices ? s->choices : "(any string)");
        break;
    case WB_PARAM_INTS: printf("default {%s} each in [%g, %g]", s->def_str ? s->def_str : "", s->min, s->max); break;
    }
    if (s->doc && *s->doc) printf("  -- %s", s->doc);
    printf("\n");
}

static int cmd_plugins(void) {
    wb_registry *reg = wb_registry_new();
    if (!reg) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return EXIT_FAILURE;
    }
    wb_registry_discover(reg);
    static const struct {
        wb_plugin_kind kind;
        const char *title;
    } groups[] = {
        {WB_KIND_DIVERGENCE, "divergences"},
        {WB_KIND_RATIO, "ratio estimators"},
        {WB_KIND_NET, "nets"},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        int count = 0;
        for (int i = 0; i < wb_registry_count(reg); i++) count += wb_registry_at(reg, i)->desc->kind == groups[g].kind;
        printf("%s%s (%d)\n", g ? "\n" : "", groups[g].title, count);
        for (int i = 0; i < wb_registry_count(reg); i++) {
            const wb_plugin_info *info = wb_registry_at(reg, i);
            const wb_plugin_desc *d = info->desc;
            if (d->kind != groups[g].kind) continue;
            printf("  %s %s  [%s]  (%s)\n", d->name, d->version, d->family ? d->family : "plugin", info->path);
            if (d->doc && *d->doc) printf("      %s\n", d->doc);
            for (int p = 0; p < d->n_params; p++) print_param(&d->params[p]);
        }
    }
    fflush(stdout);
    for (int i = 0; i < wb_registry_error_count(reg); i++)
        fprintf(stderr, "%s: warning: rejected plugin library %s\n", progname, wb_registry_error(reg, i));
    wb_registry_free(reg);
    return EXIT_SUCCESS;
}

/* ---- options ----------------------------------------------------------------------- */
/* The engine's option rows (host/engine/options.c), for a terminal or, with
 * --markdown, exactly as docs/lua.md carries them (tests/test_options.c). */
static int cmd_options(int argc, char **argv) {
    int markdown = argc == 1 && strcmp(argv[0], "--markdown") == 0;
    if (argc > 1 || (argc == 1 && !markdown)) {
        fprintf(stderr, "%s: options: unexpected argument '%s'\n", progname, argv[argc > 1 && markdown ? 1 : 0]);
        return EXIT_USAGE;
    }
    const wb_option_table *tables[] = {&wb_teacher_options, &wb_distill_options};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (i) putchar('\n');
        int rc = markdown ? wb_options_markdown(stdout, tables[i]) : wb_options_print(stdout, tables[i]);
        if (rc) {
            fprintf(stderr, "%s: options: %s\n", progname, wb_last_error());
            return EXIT_FAILURE;
        }
    }
    return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---- version ----------------------------------------------------------------------- */
static int cmd_version(void) {
    printf("workbench %s\n", wb_build_version());
    printf("commit    %s\n", wb_build_commit());
    printf("lua       %s\n", LUA_RELEASE);
    printf("blas      OpenBLAS, %s kernels, %s threads\n", wb_cpu_blas_core(), wb_cpu_blas_threading());
    printf("cpu       elementwise kernels %s\n", wb_cpu_isa());
    const wb_backend *cpu = wb_backend_select("cpu");
    printf("backends  %s", cpu ? wb_backend_name(cpu) : "cpu (unavailable)");
    const wb_backend *cuda = wb_backend_cuda();
    if (cuda) printf(", %s\n", wb_backend_name(cuda));
    else printf(", cuda (%s)\n", wb_last_error());
    return EXIT_SUCCESS;
}

int main(int argc, char **argv) {
    wb_process_tuning(argv); /* may run this executable again, once */
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0) return run_script("run", argc - 2, argv + 2);
    if (strcmp(cmd, "table") == 0) return cmd_table(argc - 2, argv + 2);
    if (strcmp(cmd, "options") == 0) return cmd_options(argc - 2, argv + 2);
    if (argc > 2 && strcmp(cmd, "help") != 0) {
        fprintf(stderr, "%s: %s: unexpected argument '%s'\n", progname, cmd, argv[2]);
        return EXIT_USAGE;
    }
    if (strcmp(cmd, "plugins") == 0) return cmd_plugins();
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) return cmd_version();
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    fprintf(stderr, "%s: unknown command '%s'\n", progname, cmd);
    usage(stderr);
    return EXIT_USAGE;
}
