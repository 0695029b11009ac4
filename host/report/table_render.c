/* host/report/table_render.c — Markdown, LaTeX (booktabs) and CSV rendering of
 * a table whose cells are already formatted (see table_render.h).
 */
#include "report/table_render.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/tensor.h"

/* Characters of UTF-8 text, with the validity rules of Lua 5.4's utf8.len
 * (no overlong forms, surrogates or code points past U+10FFFF), so a
 * padded Markdown table lines up as it always did; -1 if s is not UTF-8. */
static long utf8_chars(const char *s) {
    static const uint32_t limits[] = {~(uint32_t)0, 0x80, 0x800, 0x10000u, 0x200000u, 0x4000000u};
    long n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned int c = *p;
        uint32_t res = 0;
        int count = 0;
        if (c >= 0x80) {
            for (; c & 0x40; c <<= 1) {
                unsigned int cc = p[++count];
                if ((cc & 0xC0) != 0x80) return -1;
                res = (res << 6) | (cc & 0x3F);
            }
            res |= (uint32_t)(c & 0x7F) << (count * 5);
            if (count > 5 || res > 0x7FFFFFFFu || res < limits[count]) return -1;
            if (res > 0x10FFFFu || (res >= 0xD800u && res <= 0xDFFFu)) return -1;
        }
        p += count + 1;
        n++;
    }
    return n;
}

static long text_width(const char *s) {
    long n = utf8_chars(s);
    return n >= 0 ? n : (long)strlen(s);
}

/* The cell as Markdown or LaTeX shows it (escaped, bold), malloc'd. */
static char *display(const char *text, int flags, wb_table_format fmt) {
    if (!text) text = "";
    size_t len = strlen(text);
    char *out = malloc(2 * len + 16), *o = out;
    if (!out) return NULL;
    if (flags & WB_CELL_BOLD) o += sprintf(o, "%s", fmt == WB_TABLE_TEX ? "\\textbf{" : "**");
    for (const char *s = text; *s; s++) {
        if (!(flags & WB_CELL_RAW)) {
            if (fmt == WB_TABLE_MD && *s == '|') *o++ = '\\';
            if (fmt == WB_TABLE_TEX && strchr("_%&#$", *s)) *o++ = '\\';
        }
        *o++ = *s;
    }
    if (flags & WB_CELL_BOLD) o += sprintf(o, "%s", fmt == WB_TABLE_TEX ? "}" : "**");
    *o = '\0';
    return out;
}

static void put_csv(FILE *m, const char *s) {
    if (!s) s = "";
    if (strpbrk(s, ",\"\n\r") == NULL) {
        fputs(s, m);
        return;
    }
    fputc('"', m);
    for (; *s; s++) {
        if (*s == '"') fputc('"', m);
        fputc(*s, m);
    }
    fputc('"', m);
}

static void put_padded(FILE *m, const char *s, long width, int right) {
    long pad = width - text_width(s);
    if (!right) fputs(s, m);
    for (long i = 0; i < pad; i++) fputc(' ', m);
    if (right) fputs(s, m);
}

/* One Markdown line: "| a | b |". widths NULL: no padding. */
static void md_line(FILE *m, char *const *cells, const wb_table *t, const long *widths) {
    fputs("| ", m);
    for (int j = 0; j < t->n_cols; j++) {
        if (j) fputs(" | ", m);
        if (widths) put_padded(m, cells[j], widths[j], t->cols[j].numeric);
        else fputs(cells[j], m);
    }
    fputs(" |\n", m);
}

static void render_md(FILE *m, const wb_table *t, char **shown, char **head, long *widths) {
    const int nc = t->n_cols;
    if (!t->md_compact) {
        /* the header's width counts its label as given, as wb.table always did */
        for (int j = 0; j < nc; j++) {
            long w = text_width(t->cols[j].label);
            widths[j] = w > 3 ? w : 3;
        }
        for (int i = 0; i < t->n_rows; i++)
            for (int j = 0; j < nc; j++) {
                long w = text_width(shown[(size_t)i * nc + j]);
                if (w > widths[j]) widths[j] = w;
            }
    }
    md_line(m, head, t, t->md_compact ? NULL : widths);
    if (t->md_compact) {
        fputc('|', m);
        for (int j = 0; j < nc; j++) fputs(t->cols[j].numeric ? "--:|" : "---|", m);
        fputc('\n', m);
    } else {
        fputs("| ", m);
        for (int j = 0; j < nc; j++) {
            if (j) fputs(" | ", m);
            for (long k = 0; k < widths[j] - (t->cols[j].numeric ? 1 : 0); k++) fputc('-', m);
            if (t->cols[j].numeric) fputc(':', m);
        }
        fputs(" |\n", m);
    }
    for (int i = 0; i < t->n_rows; i++) md_line(m, shown + (size_t)i * nc, t, t->md_compact ? NULL : widths);
}

static void render_tex(FILE *m, const wb_table *t, char **shown, char **head) {
    const int nc = t->n_cols;
    fputs("\\begin{tabular}{", m);
    for (int j = 0; j < nc; j++) fputc(t->cols[j].numeric ? 'r' : 'l', m);
    fputs("}\n\\toprule\n", m);
    for (int j = 0; j < nc; j++) {
        if (j) fputs(" & ", m);
        fputs(t->cols[j].latex ? t->cols[j].latex : head[j], m);
    }
    fputs(" \\\\\n\\midrule\n", m);
    for (int i = 0; i < t->n_rows; i++) {
        for (int j = 0; j < nc; j++) {
            if (j) fputs(" & ", m);
            fputs(shown[(size_t)i * nc + j], m);
        }
        fputs(" \\\\\n", m);
    }
    fputs("\\bottomrule\n\\end{tabular}\n", m);
}

static void render_csv(FILE *m, const wb_table *t) {
    const int nc = t->n_cols;
    for (int j = 0; j < nc; j++) {
        if (j) fputc(',', m);
        put_csv(m, t->cols[j].label);
    }
    fputc('\n', m);
    for (int i = 0; i < t->n_rows; i++) {
        for (int j = 0; j < nc; j++) {
            if (j) fputc(',', m);
            put_csv(m, t->cells[(size_t)i * nc + j].text);
        }
        fputc('\n', m);
    }
}

char *wb_table_render(const wb_table *t, wb_table_format fmt) {
    if (!t || t->n_cols < 1 || t->n_rows < 0 || !t->cols || (t->n_rows > 0 && !t->cells)) {
        wb_set_error("table: no columns, or rows without cells");
        return NULL;
    }
    if (fmt != WB_TABLE_MD && fmt != WB_TABLE_TEX && fmt != WB_TABLE_CSV) {
        wb_set_error("table: unknown format %d", (int)fmt);
        return NULL;
    }
    for (int j = 0; j < t->n_cols; j++)
        if (!t->cols[j].label) {
            wb_set_error("table: column %d has no label", j + 1);
            return NULL;
        }
    const size_t n_cells = (size_t)t->n_rows * (size_t)t->n_cols;
    char **shown = calloc(n_cells + 1, sizeof *shown), **head = calloc((size_t)t->n_cols, sizeof *head);
    long *widths = calloc((size_t)t->n_cols, sizeof *widths);
    char *out = NULL;
    size_t size = 0;
    int ok = shown && head && widths;
    if (fmt != WB_TABLE_CSV) {
        for (size_t k = 0; ok && k < n_cells; k++) ok = (shown[k] = display(t->cells[k].text, t->cells[k].flags, fmt)) != NULL;
        for (int j = 0; ok && j < t->n_cols; j++) ok = (head[j] = display(t->cols[j].label, 0, fmt)) != NULL;
    }
    FILE *m = ok ? open_memstream(&out, &size) : NULL;
    if (m) {
        if (fmt == WB_TABLE_MD) render_md(m, t, shown, head, widths);
        else if (fmt == WB_TABLE_TEX) render_tex(m, t, shown, head);
        else render_csv(m, t);
        if (fclose(m) != 0) {
            free(out);
            out = NULL;
        }
    }
    if (!out) wb_set_error("table: out of memory");
    for (size_t k = 0; shown && k < n_cells; k++) free(shown[k]);
    for (int j = 0; head && j < t->n_cols; j++) free(head[j]);
    free(shown);
    free(head);
    free(widths);
    return out;
}
