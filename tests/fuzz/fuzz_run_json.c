/* tests/fuzz/fuzz_run_json.c — fuzzes the readers of a run directory's JSON
 * files: `workbench table` (wb_results_table, host/report/results_table.c:
 * config.json + results.json of each run, grouping, labels, metrics) and
 * the results merge every evaluation does (wb_run_merge_results,
 * host/engine/run.c: reads results.json, adds two metrics, writes it back
 * atomically).
 *
 * Input: cut at NUL bytes (JSON text never holds one) into up to six
 * parts: config.json and results.json of run 0, of run 1, of run 2 (a
 * missing part leaves that file out; runs after the last part do not
 * exist). The table is made in Markdown, LaTeX and CSV with every shared
 * metric, and once in Markdown for the metrics "fid" and "kl"; then run 0's
 * results.json gets fid and tv merged in. Seeds: corpus/fuzz_run_json/
 * (make_corpus.py; json.dict).
 */
#include "fuzz_util.h"

#include "engine/engine.h"
#include "report/results_table.h"
#include "wb/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_part parts[6];
    size_t n = fuzz_split(data, size, "\0", 1, parts, 6);
    char runs_dir[512], dirs[3][600], path[2048];
    fuzz_fresh_dir(runs_dir, sizeof runs_dir, "runs");
    int n_runs = (int)((n + 1) / 2);
    const char *run_list[3];
    for (int r = 0; r < n_runs; r++) {
        snprintf(dirs[r], sizeof dirs[r], "%s/run%d", runs_dir, r);
        if (mkdir(dirs[r], 0700) != 0) abort();
        run_list[r] = dirs[r];
        for (int k = 0; k < 2 && (size_t)(2 * r + k) < n; k++) {
            snprintf(path, sizeof path, "%s/%s", dirs[r], k ? "results.json" : "config.json");
            fuzz_write(path, parts[2 * r + k].data, parts[2 * r + k].size);
        }
    }
    static const wb_table_format formats[] = {WB_TABLE_MD, WB_TABLE_TEX, WB_TABLE_CSV};
    for (size_t i = 0; i < 3; i++) {
        char *table = wb_results_table(run_list, n_runs, NULL, 0, formats[i]);
        fuzz_note("table", !table);
        free(table);
    }
    static const char *const metrics[] = {"fid", "kl"};
    free(wb_results_table(run_list, n_runs, metrics, 2, WB_TABLE_MD));

    static const char *const keys[] = {"fid", "tv"};
    static const double values[] = {1.5, 0.25};
    fuzz_note("merge results", wb_run_merge_results(run_list[0], keys, values, 2) != 0);
    return 0;
}
