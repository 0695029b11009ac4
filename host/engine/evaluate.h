/* host/engine/evaluate.h — what an evaluation needs besides its metric: where
 * the samples come from (a Student's one-step generator, a Teacher's Heun
 * sampler, or samples the caller already has) and where its numbers are
 * recorded (the run directory's results.json). wb.evaluate and
 * wb.image_metrics (host/cli/lua_eval.c) both go through here, so the two
 * cannot drift apart.
 */
#ifndef WB_ENGINE_EVALUATE_H
#define WB_ENGINE_EVALUATE_H

#include <stdint.h>

#include "engine/engine.h"

/* Samples to evaluate: exactly one of student / teacher is set. */
typedef struct wb_sample_source {
    wb_student *student; /* its EMA generator, one step per sample                    */
    wb_teacher *teacher; /* EDM Heun sampler at WB_HEUN_STEPS steps                   */
    const char *run;     /* the model's run directory (results.json); NULL / "": none */
} wb_sample_source;

/* Geometry of one sample of src. */
const wb_net_shape *wb_sample_source_shape(const wb_sample_source *src);
/* n samples of src drawn with seed into out (n × C·H·W floats): the same
 * numbers student:sample(n, {seed}) / teacher:sample(n, {seed}) give. */
int wb_draw_samples(const wb_sample_source *src, int64_t n, uint64_t seed, float *out);

/* One number of an evaluation's result. */
typedef struct wb_result {
    const char *key;
    double value;
    int integer; /* a count (shown without decimals) */
} wb_result;

/* Final metrics belong to the run they describe, so `workbench table` can
 * build a paper table from run directories alone: merges n results into
 * <run>/results.json (other keys kept). run NULL or "": nothing to do.
 * Errors name the run ("results of run 'DIR': ..."). */
int wb_record_results(const char *run, const wb_result *results, int n);

#endif
