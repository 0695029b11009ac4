/* host/cli/lua_table.c — the Lua side of the table renderer
 * (report/table_render.h) and of the atomic file writer
 * (core/atomic_file.h), for wb.table in scripts/lua/wb.lua:
 *
 *   wb.core.render_table(format, columns, rows [, {compact = bool}]) -> string
 *       format  "md" | "tex" | "csv"
 *       columns {{label = s, latex = s|nil, numeric = bool}, ...}
 *       rows    {{cell, ...}, ...}, a cell a string or {text, bold = bool}
 *   wb.core.write_file(path, text) -> true | nil, message   (atomic; the
 *       file's missing folders created below a folder the script owns,
 *       wb_lua_prepare_parent in lua_plot.c)
 *
 * wb.lua keeps what depends on Lua values (number formats, which value is
 * the best of its column); escaping, alignment and layout are C's.
 */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "cli/lua_types.h" /* wb_lua_prepare_parent */
#include "cli/lua_wb.h"
#include "wb/atomic_file.h"
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

int wb_lua_open_table(lua_State *L) {
    static const luaL_Reg funcs[] = {{"render_table", l_render_table}, {"write_file", l_write_file}, {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
    return 0;
}
