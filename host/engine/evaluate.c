/* host/engine/evaluate.c — sample sources and results.json recording for the
 * evaluations (evaluate.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/evaluate.h"

const wb_net_shape *wb_sample_source_shape(const wb_sample_source *src) {
    return src->student ? &src->student->shape : &src->teacher->shape;
}

int wb_draw_samples(const wb_sample_source *src, int64_t n, uint64_t seed, float *out) {
    if (src->student) return wb_student_sample(src->student, n, seed, 1, out);
    if (src->teacher) return wb_teacher_sample(src->teacher, n, WB_HEUN_STEPS, seed, out);
    wb_set_error("no samples: the source has neither a student nor a teacher");
    return -1;
}

int wb_record_results(const char *run, const wb_result *results, int n) {
    if (!run || !run[0] || n <= 0) return 0;
    const char **keys = malloc((size_t)n * sizeof *keys);
    double *values = malloc((size_t)n * sizeof *values);
    int rc = -1;
    if (!keys || !values) {
        wb_set_error("results of run '%s': out of memory", run);
    } else {
        for (int i = 0; i < n; i++) keys[i] = results[i].key, values[i] = results[i].value;
        rc = wb_run_merge_results(run, keys, values, n);
        if (rc) {
            char why[1024];
            snprintf(why, sizeof why, "%s", wb_last_error());
            wb_set_error("results of run '%s': %s", run, why);
        }
    }
    free(keys);
    free(values);
    return rc;
}
