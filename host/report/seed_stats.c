/* host/report/seed_stats.c — Student-t summaries and the paired t-test of
 * the multi-seed tables (see seed_stats.h). The incomplete beta function is
 * the continued fraction of Abramowitz & Stegun 26.5.8, evaluated with the
 * modified Lentz method; the quantile is found by bisection on the CDF,
 * which is monotone, so it cannot fail to converge.
 */
#include "report/seed_stats.h"

#include <math.h>

/* The continued fraction of I_x(a, b), converging fast for x < (a+1)/(a+b+2). */
static double beta_fraction(double a, double b, double x) {
    const double tiny = 1e-300, eps = 1e-15;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 400; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));  /* even step */
        d = 1.0 + num * d;
        c = 1.0 + num / c;
        d = 1.0 / (fabs(d) < tiny ? tiny : d);
        c = fabs(c) < tiny ? tiny : c;
        h *= d * c;
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)); /* odd step */
        d = 1.0 + num * d;
        c = 1.0 + num / c;
        d = 1.0 / (fabs(d) < tiny ? tiny : d);
        c = fabs(c) < tiny ? tiny : c;
        double step = d * c;
        h *= step;
        if (fabs(step - 1.0) < eps) break;
    }
    return h;
}

double wb_betainc(double a, double b, double x) {
    if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1)) return NAN;
    if (x == 0 || x == 1) return x;
    /* the prefactor x^a (1−x)^b / (a B(a, b)), in logs */
    double lf = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1.0) / (a + b + 2.0)) return exp(lf) * beta_fraction(a, b, x) / a;
    return 1.0 - exp(lf) * beta_fraction(b, a, 1.0 - x) / b; /* the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) */
}

double wb_t_cdf(double t, double df) {
    if (isnan(t) || !(df > 0)) return NAN;
    if (isinf(t)) return t > 0 ? 1.0 : 0.0;
    /* P(|T| ≥ |t|) = I_{df/(df+t²)}(df/2, 1/2) */
    double tail = 0.5 * wb_betainc(0.5 * df, 0.5, df / (df + t * t));
    return t > 0 ? 1.0 - tail : tail;
}

double wb_t_quantile(double p, double df) {
    if (!(p > 0) || !(p < 1) || !(df > 0)) return NAN;
    if (p == 0.5) return 0.0;
    if (p < 0.5) return -wb_t_quantile(1.0 - p, df);
    double lo = 0.0, hi = 1.0;
    while (wb_t_cdf(hi, df) < p && hi < 1e300) hi *= 2.0;
    for (int i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (wb_t_cdf(mid, df) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

void wb_summarize(const double *x, int n, double level, wb_summary *out) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    out->n = n;
    out->mean = n > 0 ? s / n : NAN;
    out->std = out->lo = out->hi = NAN;
    if (n < 2) return;
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (x[i] - out->mean) * (x[i] - out->mean);
    out->std = sqrt(ss / (n - 1));
    double half = wb_t_quantile(0.5 + 0.5 * level, n - 1) * out->std / sqrt((double)n);
    out->lo = out->mean - half;
    out->hi = out->mean + half;
}

void wb_paired_t(const double *a, const double *b, int n, wb_paired *out) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] - b[i];
    out->n = n;
    out->mean_diff = n > 0 ? s / n : NAN;
    out->t = out->p = NAN;
    if (n < 2) return;
    double ss = 0;
    for (int i = 0; i < n; i++) {
        double d = a[i] - b[i] - out->mean_diff;
        ss += d * d;
    }
    double se = sqrt(ss / (n - 1)) / sqrt((double)n);
    /* every difference equal (to rounding): the same difference on every seed */
    if (se <= 1e-12 * fabs(out->mean_diff) || se == 0) {
        out->t = out->mean_diff == 0 ? 0.0 : copysign(INFINITY, out->mean_diff);
        out->p = out->mean_diff == 0 ? 1.0 : 0.0;
        return;
    }
    out->t = out->mean_diff / se;
    out->p = 2.0 * wb_t_cdf(-fabs(out->t), n - 1);
}
