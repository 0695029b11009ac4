/* host/report/seed_stats.h — the statistics behind every multi-seed table:
 * mean ± sample std, the 95 % Student-t interval of the mean, and the paired
 * two-sided t-test that marks a row as different from a baseline row.
 *
 *   values  x_1 … x_n, one per seed (NaN entries are an error for the caller
 *           to report: a diverged seed is a result, not noise to drop)
 *   summary mean, std = sqrt(Σ(x − mean)² / (n − 1)), and
 *           mean ± t_{0.975, n−1} · std / √n        (n ≥ 2; NaN for n = 1)
 *   paired  d_s = a_s − b_s over the seeds both rows ran (same seed, same
 *           teacher, same data): t = mean(d) / (std(d) / √n), n − 1 degrees
 *           of freedom, p = P(|T| ≥ |t|). All d_s equal: p = 0 when they are
 *           non-zero (the difference is the same on every seed), 1 when zero.
 *
 * Library code: no state, no I/O. Checked against scipy.stats in
 * tests/test_seed_stats.c.
 */
#ifndef WB_REPORT_SEED_STATS_H
#define WB_REPORT_SEED_STATS_H

typedef struct wb_summary {
    int n;
    double mean, std;    /* std: sample (n − 1) standard deviation; NaN for n = 1 */
    double lo, hi;       /* the interval of the mean at `level`; NaN for n = 1    */
} wb_summary;

typedef struct wb_paired {
    int n;               /* pairs                                                 */
    double mean_diff;    /* mean of a − b                                         */
    double t;            /* the statistic (±inf when every difference is equal)    */
    double p;            /* two-sided p value; NaN for n < 2                      */
} wb_paired;

/* Regularised incomplete beta I_x(a, b), a, b > 0, x ∈ [0, 1]. */
double wb_betainc(double a, double b, double x);
/* P(T ≤ t) for Student's t with df > 0 degrees of freedom. */
double wb_t_cdf(double t, double df);
/* The p-quantile of Student's t (0 < p < 1). */
double wb_t_quantile(double p, double df);
/* Summary of n ≥ 1 finite values at confidence `level` (0.95 in the tables). */
void wb_summarize(const double *x, int n, double level, wb_summary *out);
/* Paired two-sided t-test of a against b (n pairs). */
void wb_paired_t(const double *a, const double *b, int n, wb_paired *out);

#endif
