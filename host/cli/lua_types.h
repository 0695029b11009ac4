/* host/cli/lua_types.h — the userdata types of `wb.core` and the parts of
 * the binding that register them:
 *   lua_data.c     Samples, Dataset (wb.samples, wb.data.gmm2d, wb.data.images)
 *   lua_models.c   Teacher, Student (wb.teacher, wb.distill)
 *   lua_eval.c     FeatureNet, Inception caches (wb.evaluate, wb.image_metrics)
 *   lua_plot.c     wb.scatter, wb.scatter_grid, wb.plot_lines, wb.mkdir
 *   lua_plugins.c  wb.plugins, wb.divergences, wb.divergence_weights/value
 *   lua_proc.c     child processes for wb.arms (spawn, wait, kill, cpu_count)
 * Engine objects are full userdata with __gc; objects that point into others
 * keep them alive through user values (a teacher holds its dataset, a student
 * its teacher and dataset, all hold the registry whose libraries their code
 * lives in). Internal to the binding.
 */
#ifndef WB_LUA_TYPES_H
#define WB_LUA_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "engine/engine.h"

#define SAMPLES_TNAME "wb.Samples"
#define DATASET_TNAME "wb.Dataset"
#define TEACHER_TNAME "wb.Teacher"
#define STUDENT_TNAME "wb.Student"
#define FEATURE_NET_TNAME "wb.FeatureNet"
#define INCEPTION_TNAME "wb.Inception"

/* ---- Samples: an n × dim float matrix ------------------------------------------------- */
/* Each row is one sample flattened; (c, h, w) records the geometry it came
 * from (an image's C, H, W; a vector's D, 1, 1) so image rows can be shown
 * as images again without the caller restating their shape. */
typedef struct samples_ud {
    int64_t n, dim;
    int c, h, w; /* c * h * w == dim */
    float x[];   /* row-major */
} samples_ud;

samples_ud *wb_lua_samples_push(lua_State *L, int64_t n, int64_t dim);
/* Samples shaped like data of geometry `shape` (which must match dim). */
samples_ud *wb_lua_samples_push_shaped(lua_State *L, int64_t n, const wb_net_shape *shape);
samples_ud *wb_lua_check_samples(lua_State *L, int arg);

/* ---- Dataset ----------------------------------------------------------------------------- */
typedef struct dataset_ud {
    wb_dataset *ds;
} dataset_ud;

wb_dataset *wb_lua_check_dataset(lua_State *L, int arg);
/* n samples of ds drawn with `seed` on RNG stream 0 (pushed) — the same
 * numbers ds:sample(n, seed) returns. */
samples_ud *wb_lua_dataset_draw(lua_State *L, wb_dataset *ds, int64_t n, uint64_t seed, const char *fn);

/* ---- Teacher, Student ---------------------------------------------------------------------- */
/* user values of a Teacher: 1 = its Dataset, 2 = the registry box */
typedef struct teacher_ud {
    wb_teacher *t;
    int64_t dim;
    int exact;
    char run[1024]; /* run directory ("" = none): where evaluations record results.json */
} teacher_ud;

/* user values of a Student: 1 = Teacher, 2 = Dataset, 3 = registry box */
typedef struct student_ud {
    wb_student *s;
    int64_t dim;
    char divergence[64];
    char ratio[64];
    char run[1024];
    int training; /* inside wb.distill's on_eval: scores are not final, so none go to results.json */
} student_ud;

/* ---- folders (lua_plot.c) -------------------------------------------------------------- */
/* Creates the missing folders of the file `path` when they lie below a
 * folder the script owns (the current directory unless it is "/", or one
 * made by wb.mkdir) and contain no "." or "..": 0. Otherwise creates
 * nothing and returns -1 with the reason, naming the folder, in err.
 * Figures and Table:write (through wb.core.write_file) go through it. */
int wb_lua_prepare_parent(lua_State *L, const char *path, char *err, size_t len);

/* ---- registration: each creates its classes and sets its functions into the
 * table at `module` (data: into `data`, the wb.data table), each function
 * with the registry box at `registry` as upvalue 1 ------------------------------------ */
void wb_lua_open_data(lua_State *L, int module, int data, int registry);
void wb_lua_open_models(lua_State *L, int module, int registry);
void wb_lua_open_eval(lua_State *L, int module, int registry);
void wb_lua_open_plot(lua_State *L, int module, int registry);
void wb_lua_open_plugins(lua_State *L, int module, int registry);
void wb_lua_open_proc(lua_State *L, int module, int registry);

#endif
