/* host/cli/lua_table.c — the Lua side of the table renderer
 * (report/table_render.h) and of the atomic file writer
 * (core/atomic_file.h), for wb.table in scripts/lua/wb.lua:
 *
 *   wb.core.render_table(format, columns, rows [, {compact = bool}]) -> string
 *       format  "md" | "tex" | "csv"
 *       columns {{label = s, latex = s|nil, numeric = bool}, ...}
 *       rows    {{cell, ...}, ...}, a cell a string or {text, bold = bool,
 *               raw = bool (Markdown/LaTeX written as it is, e.g. "$\pm$")}
 *   wb.core.write_file(path, text) -> true | nil, message   (atomic; the
 *       file's missing folders created below a folder the script owns,
 *       wb_lua_prepare_parent in lua_plot.c)
 *   wb.core.seed_summary(values [, level]) -> {n, mean, std, lo, hi}
 *   wb.core.paired_t(a, b) -> {n, mean_diff, t, p}
 *       the multi-seed statistics of report/seed_stats.h (wb.stats in wb.lua)
 *
 * wb.lua keeps what depends on Lua values (number formats, which value is
 * the best of its column); escaping, alignment and layout are C's.
 */
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "cli/lua_types.h" /* wb_lua_prepare_parent */
#include "cli/lua_wb.h"
#include "wb/atomic_file.h"
#include "report/seed_stats.h"
#include "report/table_render.h"
#include "wb/tensor.h"

/* Field k of the table at idx as a string anchored by that table (NULL:
 * nil); any other type is an error naming where it was found. */
static const char *string_field(lua_State *L, int idx, const char *k, const char *where, int at) {
    int t = lua_getfield(L, idx, k);
    const char *s = NULL;
    if (t == LUA_TSTRING) s = lua_tostring(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "wb.render_table: %s %d: '%s' must be a string, got %s", where, at, k, lua_typename(L, t));
    lua_pop(L, 1);
    return s;
}

static int l_render_table(lua_State *L) {
    static const char *const formats[] = {"md", "tex", "csv", NULL};
    static const wb_table_format format_of[] = {WB_TABLE_MD, WB_TABLE_TEX, WB_TABLE_CSV};
    wb_table_format fmt = format_of[luaL_checkoption(L, 1, NULL, formats)];
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    int compact = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "compact");
        compact = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_Integer nc = luaL_len(L, 2), nr = luaL_len(L, 3);
    if (nc < 1 || nc > 100000 || nr > 10000000) return luaL_error(L, "wb.render_table: need 1 to 100000 columns");
    /* userdata: freed by Lua even when an error below jumps out */
    wb_table_column *cols = lua_newuserdatauv(L, (size_t)nc * sizeof *cols, 0);
    wb_table_cell *cells = lua_newuserdatauv(L, (size_t)(nr * nc > 0 ? nr * nc : 1) * sizeof *cells, 0);
    for (lua_Integer j = 0; j < nc; j++) {
        if (lua_geti(L, 2, j + 1) != LUA_TTABLE) return luaL_error(L, "wb.render_table: column %d is not a table", (int)j + 1);
        int c = lua_gettop(L);
        cols[j].label = string_field(L, c, "label", "column", (int)j + 1);
        if (!cols[j].label) return luaL_error(L, "wb.render_table: column %d has no label", (int)j + 1);
        cols[j].latex = string_field(L, c, "latex", "column", (int)j + 1);
        lua_getfield(L, c, "numeric");
        cols[j].numeric = lua_toboolean(L, -1);
        lua_pop(L, 2);
    }
    for (lua_Integer i = 0; i < nr; i++) {
        if (lua_geti(L, 3, i + 1) != LUA_TTABLE) return luaL_error(L, "wb.render_table: row %d is not a table", (int)i + 1);
        int r = lua_gettop(L);
        for (lua_Integer j = 0; j < nc; j++) {
            wb_table_cell *cell = &cells[i * nc + j];
            int t = lua_geti(L, r, j + 1);
            cell->flags = 0;
            if (t == LUA_TSTRING) {
                cell->text = lua_tostring(L, -1); /* anchored by the row */
            } else if (t == LUA_TTABLE) {
                if (lua_geti(L, -1, 1) != LUA_TSTRING)
                    return luaL_error(L, "wb.render_table: row %d cell %d: [1] must be the text", (int)i + 1, (int)j + 1);
                cell->text = lua_tostring(L, -1); /* anchored by the cell table */
                lua_pop(L, 1);
                lua_getfield(L, -1, "bold");
                if (lua_toboolean(L, -1)) cell->flags |= WB_CELL_BOLD;
                lua_pop(L, 1);
                lua_getfield(L, -1, "raw");
                if (lua_toboolean(L, -1)) cell->flags |= WB_CELL_RAW;
                lua_pop(L, 1);
            } else {
                return luaL_error(L, "wb.render_table: row %d cell %d is a %s, not a string", (int)i + 1, (int)j + 1,
                                  lua_typename(L, t));
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    wb_table table = {.n_cols = (int)nc, .n_rows = (int)nr, .cols = cols, .cells = cells, .md_compact = compact};
    char *text = wb_table_render(&table, fmt);
    if (!text) return luaL_error(L, "wb.render_table: %s", wb_last_error());
    lua_pushstring(L, text);
    free(text);
    return 1;
}

static int l_write_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    char err[3 * PATH_MAX];
    if (wb_lua_prepare_parent(L, path, err, sizeof err)) { /* its folder, by the figures' rule */
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (wb_write_file_atomic(path, text, len)) {
        luaL_pushfail(L);
        lua_pushstring(L, wb_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* The array at idx as doubles in a userdata left on the stack: 1..1000000
 * numbers, all finite (a NaN seed is a diverged run: the caller reports it). */
static double *number_array(lua_State *L, int idx, const char *fn, const char *what, int *n_out) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n < 1 || n > 1000000) luaL_error(L, "%s: %s must hold 1 to 1000000 numbers, got %I", fn, what, n);
    double *x = lua_newuserdatauv(L, (size_t)n * sizeof *x, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        int isnum = 0;
        lua_rawgeti(L, idx, i);
        x[i - 1] = (double)lua_tonumberx(L, -1, &isnum);
        if (!isnum) luaL_error(L, "%s: %s[%I] is a %s, not a number", fn, what, i, luaL_typename(L, -1));
        if (!isfinite(x[i - 1])) luaL_error(L, "%s: %s[%I] is %f (not finite)", fn, what, i, x[i - 1]);
        lua_pop(L, 1);
    }
    *n_out = (int)n;
    return x;
}

static void set_number(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static int l_seed_summary(lua_State *L) {
    int n;
    const double *x = number_array(L, 1, "wb.stats.summary", "values", &n);
    double level = luaL_optnumber(L, 2, 0.95);
    if (!(level > 0 && level < 1)) return luaL_error(L, "wb.stats.summary: level %f is not in (0, 1)", level);
    wb_summary s;
    wb_summarize(x, n, level, &s);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, s.n);
    lua_setfield(L, -2, "n");
    set_number(L, "mean", s.mean);
    set_number(L, "std", s.std);
    set_number(L, "lo", s.lo);
    set_number(L, "hi", s.hi);
    return 1;
}

static int l_paired_t(lua_State *L) {
    int na, nb;
    const double *a = number_array(L, 1, "wb.stats.paired", "a", &na);
    const double *b = number_array(L, 2, "wb.stats.paired", "b", &nb);
    if (na != nb) return luaL_error(L, "wb.stats.paired: a has %d values, b %d (one per seed each)", na, nb);
    wb_paired r;
    wb_paired_t(a, b, na, &r);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, r.n);
    lua_setfield(L, -2, "n");
    set_number(L, "mean_diff", r.mean_diff);
    set_number(L, "t", r.t);
    set_number(L, "p", r.p);
    return 1;
}

int wb_lua_open_table(lua_State *L) {
    static const luaL_Reg funcs[] = {{"render_table", l_render_table}, {"write_file", l_write_file},
                                     {"seed_summary", l_seed_summary}, {"paired_t", l_paired_t}, {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
    return 0;
}
