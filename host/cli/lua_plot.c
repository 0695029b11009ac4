/* host/cli/lua_plot.c — figures from Lua: wb.scatter, wb.scatter_grid and
 * wb.plot_lines over host/report/plot.h (the folder a figure goes into is
 * created, below a folder the script owns: "directories" below), and
 * wb.mkdir.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/lua_guard.h"
#include "cli/lua_types.h"
#include "report/plot.h"

/* ---- directories ------------------------------------------------------------------------------ */
/* Which folders a figure or table may create (issue 10, defect 11): a
 * script names files, not places in the file system, so a file's missing
 * folders are made only below a folder the script owns — the current
 * directory (unless it is "/"), or a folder it made with wb.mkdir (which
 * creates what it is told, parents included, and marks it). Anywhere else,
 * and for missing parts that contain "." or "..", the call is refused
 * naming the folder, and nothing is created: a typo such as "/reslts/a.png"
 * must not make a folder at the top of the file system, as root or not. */
#define OWNED_DIRS_KEY "wb.owned_dirs"

/* The resolved folders made by wb.mkdir, as keys of a registry table (pushed). */
static void push_owned(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, OWNED_DIRS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, OWNED_DIRS_KEY);
    }
}

/* Whether real (a resolved path) is dir or below it. */
static int below(const char *real, const char *dir) {
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/') return 1;
    return strncmp(real, dir, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

static int owned(lua_State *L, const char *real) {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") != 0 && below(real, cwd)) return 1;
    push_owned(L);
    int yes = 0;
    lua_pushnil(L);
    while (!yes && lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && below(real, lua_tostring(L, -2))) yes = 1;
        lua_pop(L, 1);
    }
    if (yes) lua_pop(L, 1); /* lua_next left the key */
    lua_pop(L, 1);
    return yes;
}

int wb_lua_prepare_parent(lua_State *L, const char *path, char *err, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0; /* the current directory, or "/": there */
    size_t dir_len = (size_t)(slash - path);
    char dir[PATH_MAX], anc[PATH_MAX];
    if (dir_len >= sizeof dir) {
        snprintf(err, len, "folder of '%s': path too long", path);
        return -1;
    }
    memcpy(dir, path, dir_len);
    dir[dir_len] = '\0';
    /* the nearest folder of dir that exists: anc = dir[0, cut) ("." when none) */
    size_t cut = dir_len;
    struct stat st;
    for (;;) {
        memcpy(anc, dir, cut);
        anc[cut] = '\0';
        if (cut == 0) snprintf(anc, sizeof anc, ".");
        if (stat(anc, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                snprintf(err, len, "cannot create the folder '%s': '%s' is not a folder", dir, anc);
                return -1;
            }
            break;
        }
        if (errno != ENOENT) {
            snprintf(err, len, "cannot create the folder '%s': '%s': %s", dir, anc, strerror(errno));
            return -1;
        }
        while (cut > 0 && dir[cut - 1] == '/') cut--;
        while (cut > 0 && dir[cut - 1] != '/') cut--;
        while (cut > 1 && dir[cut - 1] == '/') cut--; /* "/" itself stays */
    }
    if (cut == dir_len) return 0; /* the folder is there */
    /* the parts to create: no "." or ".." (they could lead out of anc) */
    const char *missing = dir + cut;
    while (*missing == '/') missing++;
    for (const char *c = missing; *c;) {
        while (*c == '/') c++;
        size_t n = strcspn(c, "/");
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
            snprintf(err, len,
                     "the folder '%s' does not exist, and its missing part '%s' has a '%.*s': not created (give the "
                     "path without it, or create the folder with wb.mkdir first)",
                     dir, missing, (int)n, c);
            return -1;
        }
        c += n;
    }
    char real[PATH_MAX];
    if (!realpath(anc, real)) {
        snprintf(err, len, "cannot create the folder '%s': '%s': %s", dir, anc, strerror(errno));
        return -1;
    }
    if (!owned(L, real)) {
        snprintf(err, len,
                 "the folder '%s' does not exist and is not created: its nearest existing folder '%s' is outside "
                 "the current directory and the folders this script made with wb.mkdir (create it with "
                 "wb.mkdir(\"%s\") first)",
                 dir, real, dir);
        return -1;
    }
    if (wb_mkdir_p(dir)) {
        snprintf(err, len, "cannot create the folder '%s': %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* wb.mkdir(path): path and its missing parents, wherever the script says
 * (it asked for them by name); the folder is then the script's own, and
 * figures and tables may create folders below it. */
static int l_mkdir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    if (wb_mkdir_p(path)) luaL_error(L, "wb.mkdir: cannot create '%s': %s", path, strerror(errno));
    char real[PATH_MAX];
    if (!realpath(path, real)) luaL_error(L, "wb.mkdir: '%s': %s", path, strerror(errno));
    push_owned(L);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, real);
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    return 1;
}

/* The folder a figure goes into, created by the rule above, so plotting
 * "figs/x.png" (or OUT .. "/figs/x.png" after wb.mkdir(OUT)) just works. */
static void make_parent_dir(lua_State *L, const char *fn, const char *path) {
    char err[3 * PATH_MAX];
    if (wb_lua_prepare_parent(L, path, err, sizeof err)) luaL_error(L, "%s: %s", fn, err);
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
    samples_ud *s = wb_lua_check_samples(L, 2);
    int o = wb_lua_opt_table(L, 3, fn, scatter_keys, N_DEFS(scatter_keys)) ? 3 : 0;
    samples_ud *ref = wb_lua_get_udata(L, o, "reference");
    float b[4];
    const float *bounds = get_bounds(L, o, fn, b);
    int n = points_count(L, fn, "samples", s);
    int n_ref = ref ? points_count(L, fn, "reference samples", ref) : 0;
    make_parent_dir(L, fn, path);
    if (wb_plot_scatter(path, wb_lua_get_str(L, o, "title", NULL), ref ? ref->x : NULL, n_ref,
                        ref ? wb_lua_get_str(L, o, "reference_label", "reference") : NULL, s->x, n,
                        wb_lua_get_str(L, o, "label", "samples"), bounds))
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
    int o = wb_lua_opt_table(L, 3, fn, grid_keys, N_DEFS(grid_keys)) ? 3 : 0;
    lua_settop(L, 3);
    int columns = (int)wb_lua_get_int(L, o, fn, "columns", 5, 0, 1000);
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
        wb_lua_check_keys(L, p, pfn, panel_keys, N_DEFS(panel_keys));
        samples_ud *s = wb_lua_require_udata(L, p, pfn, "samples");
        samples_ud *ref = wb_lua_get_udata(L, p, "reference");
        panels[i - 1] = (wb_scatter_panel){
            .title = wb_lua_get_str(L, p, "title", NULL), /* owned by the panel table, held by arg 2 */
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
    {"lo", K_TABLE, NULL},
    {"hi", K_TABLE, NULL},
};

static int l_plot_lines(lua_State *L) {
    const char *fn = "wb.plot_lines";
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    wb_lua_check_keys(L, 2, fn, lines_keys, N_DEFS(lines_keys));
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
        wb_lua_check_keys(L, si, sfn, series_keys, N_DEFS(series_keys));
        if (lua_getfield(L, si, "y") != LUA_TTABLE) luaL_error(L, "%s: key 'y' is required", sfn);
        int64_t ny, nx = -1;
        /* Each float copy replaces its Lua array on the stack and stays there
         * until the plot is drawn; the series table itself is held by arg 2. */
        const float *y = wb_lua_float_array(L, -1, sfn, "y", &ny);
        lua_replace(L, -2);
        const float *x = NULL;
        if (lua_getfield(L, si, "x") != LUA_TNIL) {
            x = wb_lua_float_array(L, -1, sfn, "x", &nx);
            lua_replace(L, -2);
        } else {
            lua_pop(L, 1);
        }
        if (x && nx != ny) luaL_error(L, "%s: x has %I values, y has %I", sfn, (lua_Integer)nx, (lua_Integer)ny);
        const float *band[2] = {NULL, NULL};
        static const char *const band_keys[2] = {"lo", "hi"};
        for (int b = 0; b < 2; b++) {
            if (lua_getfield(L, si, band_keys[b]) != LUA_TNIL) {
                int64_t nb;
                band[b] = wb_lua_float_array(L, -1, sfn, band_keys[b], &nb);
                lua_replace(L, -2);
                if (nb != ny) luaL_error(L, "%s: %s has %I values, y has %I", sfn, band_keys[b], (lua_Integer)nb, (lua_Integer)ny);
            } else {
                lua_pop(L, 1);
            }
        }
        if (!band[0] != !band[1]) luaL_error(L, "%s: give lo and hi together (the band between them)", sfn);
        if (ny > INT_MAX) luaL_error(L, "%s: too many points", sfn);
        series[i - 1] = (wb_series){.name = wb_lua_get_str(L, si, "name", NULL), .x = x, .y = y, .n = (int)ny,
                                    .lo = band[0], .hi = band[1]};
        lua_remove(L, si);
        luaL_checkstack(L, 6, "too many series");
    }
    make_parent_dir(L, fn, path);
    if (wb_plot_lines(path, wb_lua_get_str(L, 2, "title", NULL), wb_lua_get_str(L, 2, "xlabel", NULL), wb_lua_get_str(L, 2, "ylabel", NULL),
                      (int)n, series, wb_lua_get_bool(L, 2, "log_y", 0)))
        luaL_error(L, "%s: %s", fn, wb_last_error());
    return 0;
}

/* ---- registration ------------------------------------------------------------------------- */
void wb_lua_open_plot(lua_State *L, int module, int registry) {
    static const luaL_Reg funcs[] = {
        {"scatter", l_scatter},
        {"scatter_grid", l_scatter_grid},
        {"plot_lines", l_plot_lines},
        {"mkdir", l_mkdir},
        {NULL, NULL},
    };
    wb_lua_set_funcs(L, module, registry, funcs);
}
