/* host/engine/options.h — the engine's options as data: one row per key of
 * wb_teacher_config and wb_distill_config (name, type, the field it sets,
 * bounds or choices, a one-line doc). The same rows
 *   - check and apply a script's keys (host/cli/lua_guard.c: type, bounds,
 *     choices, unknown keys),
 *   - write the option numbers of config.json (wb_options_record), and
 *   - generate the option tables of docs/lua.md (wb_options_markdown, behind
 *     `workbench options --markdown`; tests/test_options.c fails when the
 *     docs differ from what the rows generate).
 * A row carries its default; wb_teacher_config_default and
 * wb_distill_config_default are wb_options_defaults over the rows, so a
 * default has one home and the docs cannot drift from it.
 *
 * To add an option: the field in engine.h, one row in options.c (with its
 * default), and the code that uses it. Lua checking, the default,
 * config.json and the docs follow.
 */
#ifndef WB_ENGINE_OPTIONS_H
#define WB_ENGINE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wb/tensor.h"

typedef enum {
    WB_OPT_NUMBER,  /* float field                                            */
    WB_OPT_INT,     /* int / int64_t / uint64_t field, checked against lo..hi  */
    WB_OPT_BOOL,    /* int field, 0 or 1                                       */
    WB_OPT_STRING,  /* const char * field, borrowed from the caller            */
    WB_OPT_ENUM,    /* int-sized field set to values[i] for choice i           */
    WB_OPT_BACKEND, /* const wb_backend * field, from wb_backend_select        */
} wb_opt_type;

/* row flags */
#define WB_OPT_UNSIGNED 1u    /* WB_OPT_INT: the field is a uint64_t              */
#define WB_OPT_NOT_RECORDED 2u /* a number that config.json leaves out            */

typedef struct wb_option {
    const char *name;     /* the Lua key, and config.json's key               */
    wb_opt_type type;
    size_t offset, size;  /* the field in the config struct (WB_OPT_FIELD)    */
    int64_t lo, hi;       /* WB_OPT_INT: inclusive bounds                     */
    const char *choices;  /* WB_OPT_ENUM / WB_OPT_BACKEND: "a|b|c"             */
    const int *values;    /* WB_OPT_ENUM: the field's value for each choice   */
    unsigned flags;
    const char *def_text; /* default as the docs show it, when the field's
                             default value does not say it (NULL: from it)  */
    const char *doc;      /* one line, Markdown                               */
    double def;           /* the default: NUMBER/INT/BOOL its value, ENUM the
                             index of its choice; STRING/BACKEND: unset (NULL) */
    /* WB_OPT_NUMBER: bounds, as flags say (none: any finite number; NaN and
     * ±inf are never accepted) */
    double min, max;
    unsigned bounds;      /* WB_NUM_* */
} wb_option;

enum { WB_NUM_GE_MIN = 1, WB_NUM_GT_MIN = 2, WB_NUM_LE_MAX = 4, WB_NUM_LT_MAX = 8 };

#define WB_OPT_FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)

typedef struct wb_option_table {
    const char *fn;       /* the Lua function that takes them: "wb.distill"   */
    const wb_option *rows;
    int n;
    size_t config_size;
    void (*defaults)(void *config); /* fills a config with its defaults        */
} wb_option_table;

extern const wb_option_table wb_teacher_options; /* wb_teacher_config */
extern const wb_option_table wb_distill_options; /* wb_distill_config */

/* Zero config (config_size bytes) and give every row its default: how
 * wb_teacher_config_default / wb_distill_config_default are made. */
void wb_options_defaults(const wb_option_table *t, void *config);

/* The row called name, or NULL. */
const wb_option *wb_option_find(const wb_option_table *t, const char *name);

/* Setters: each checks the value against the row and stores it in config,
 * or returns -1 with a message naming the key ("key 'steps' = -1 is below
 * its minimum 0", "key 'time_weight' = 'x' is not one of auto|dmd|sigma2|none").
 * number: WB_OPT_NUMBER; integer: WB_OPT_INT; boolean: WB_OPT_BOOL; string:
 * WB_OPT_STRING (the pointer is kept, not copied), WB_OPT_ENUM, WB_OPT_BACKEND. */
int wb_option_set_number(const wb_option *o, void *config, double v);
int wb_option_set_integer(const wb_option *o, void *config, int64_t v);
int wb_option_set_bool(const wb_option *o, void *config, int v);
int wb_option_set_string(const wb_option *o, void *config, const char *s);

/* A backend named by a `backend` key: "cpu", "cuda" or "auto" (NULL or "":
 * $WB_BACKEND, else cpu). NULL with a message naming the key and the reason
 * (another name: the choices; cuda: why it is not available). */
const wb_backend *wb_option_backend(const char *name);

/* Adds every number, integer and boolean row of config (flags without
 * WB_OPT_NOT_RECORDED) to the JSON object root, in row order. */
struct cJSON;
void wb_options_record(const wb_option_table *t, const void *config, struct cJSON *root);

/* The option table of t as Markdown (key | type | default | range | meaning),
 * between the marker lines docs/lua.md carries:
 *   <!-- options wb.distill: generated by `workbench options --markdown` -->
 *   ...
 *   <!-- end options wb.distill -->
 * Returns 0, or -1 when writing fails. */
int wb_options_markdown(FILE *f, const wb_option_table *t);
/* One line per option, for a terminal. */
int wb_options_print(FILE *f, const wb_option_table *t);

#endif
