/* host/report/table_render.h — the one Markdown / LaTeX / CSV table renderer.
 * Callers build the table (column labels and alignment, cell text already
 * formatted, which cells are bold) and this decides how each format writes
 * it: escaping, alignment, padding, bold markup, CSV quoting. `workbench
 * table` (results_table.c) and the experiments' wb.table (scripts/lua/wb.lua,
 * through host/cli/lua_table.c) both render with it.
 */
#ifndef WB_TABLE_RENDER_H
#define WB_TABLE_RENDER_H

typedef enum { WB_TABLE_MD, WB_TABLE_TEX, WB_TABLE_CSV } wb_table_format;

typedef struct wb_table_column {
    const char *label; /* header text, escaped like any cell                     */
    const char *latex; /* LaTeX header written as it is (e.g. "$\\lambda$"), or NULL */
    int numeric;       /* right-aligned: "r" in LaTeX, "--:" in Markdown          */
} wb_table_column;

enum {
    WB_CELL_BOLD = 1, /* "**x**" in Markdown, "\textbf{x}" in LaTeX; CSV: plain */
    WB_CELL_RAW = 2,  /* Markdown / LaTeX text written as it is (e.g. "$\pm$")   */
};
typedef struct wb_table_cell {
    const char *text; /* NULL: an empty cell */
    int flags;
} wb_table_cell;

typedef struct wb_table {
    int n_cols, n_rows;
    const wb_table_column *cols;
    const wb_table_cell *cells; /* n_rows x n_cols, row by row */
    /* Markdown layout. 0: columns padded to a common width (at least 3) so
     * the table reads in a terminal, rule "| --- | --: |". 1: compact, no
     * padding, rule "|---|--:|". */
    int md_compact;
} wb_table;

/* Escapes: Markdown "|" -> "\|"; LaTeX _ % & # $ get a backslash; CSV
 * (RFC 4180) quotes a field holding , " CR or LF, doubling its quotes.
 * Every line ends in "\n". Widths count UTF-8 characters (bytes when the
 * text is not valid UTF-8). Returns a malloc'd string, or NULL with the
 * error set. */
char *wb_table_render(const wb_table *t, wb_table_format fmt);

#endif
