/* host/report/results_table.h — `workbench table`: a paper table (Markdown, LaTeX,
 * CSV) from finished run directories, one row per configuration with the
 * mean ± std of each metric over the seeds that share it, its 95 % interval,
 * and markers where a row differs from a baseline row (report/seed_stats.h). */
#ifndef WB_RESULTS_TABLE_H
#define WB_RESULTS_TABLE_H

#include "report/table_render.h" /* wb_table_format */

/* The table of runs[0..n_runs) (each a directory with config.json and
 * results.json) as a malloc'd string. metrics: the n_metrics result keys to
 * show, or NULL for every numeric key present in all results.json. NULL on
 * failure, with wb_last_error() naming the file or metric at fault. */
char *wb_results_table(const char *const *runs, int n_runs, const char *const *metrics, int n_metrics,
                       wb_table_format fmt);
/* The same, with the 95 % interval of every mean (Student t; CSV columns
 * _lo/_hi, Markdown a second table) and, when baseline names a row's method
 * ("kl", "sba (lambda=5)"), a "†" on every cell whose runs differ from the
 * baseline row's at p < 0.05: two-sided paired t-test over the seeds both
 * rows ran (config.json "seed"), at least 2 of them (CSV: _p). A baseline
 * that is no row's method is an error naming the methods. */
char *wb_results_table_vs(const char *const *runs, int n_runs, const char *const *metrics, int n_metrics,
                          wb_table_format fmt, const char *baseline);

#endif
