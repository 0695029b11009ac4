/* host/report/results_table.h — `workbench table`: a paper table (Markdown, LaTeX,
 * CSV) from finished run directories, one row per configuration with the
 * mean ± std of each metric over the seeds that share it. */
#ifndef WB_RESULTS_TABLE_H
#define WB_RESULTS_TABLE_H

#include "report/table_render.h" /* wb_table_format */

/* The table of runs[0..n_runs) (each a directory with config.json and
 * results.json) as a malloc'd string. metrics: the n_metrics result keys to
 * show, or NULL for every numeric key present in all results.json. NULL on
 * failure, with wb_last_error() naming the file or metric at fault. */
char *wb_results_table(const char *const *runs, int n_runs, const char *const *metrics, int n_metrics,
                       wb_table_format fmt);

#endif
