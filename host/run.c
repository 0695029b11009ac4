/* host/run.c — run directories, atomic file writes and the progress line.
 * A run directory is self-contained: config.json (resolved config, plugin
 * versions, commit), metrics.jsonl, checkpoint.safetensors, PNG figures.
 * Every file except the append-only metrics log is written to a temporary
 * name and renamed, so an interrupted run never leaves a damaged result.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "wb_internal.h"

double wb_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mkdir_p(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(path, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(path, 0755) && errno != EEXIST) return -1;
    return 0;
}

int wb_run_open(wb_run *run, const char *dir) {
    memset(run, 0, sizeof *run);
    if (strlen(dir) >= sizeof run->dir - 64) {
        wb_set_error("run directory name too long: %s", dir);
        return -1;
    }
    if (mkdir_p(dir)) {
        wb_set_error("run directory %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    /* A fresh log per run: a re-run into the same directory replaces it. */
    run->metrics = fopen(path, "w");
    if (!run->metrics) {
        wb_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void wb_run_close(wb_run *run) {
    if (run && run->metrics) {
        fclose(run->metrics);
        run->metrics = NULL;
    }
}

int wb_write_file_atomic(const char *path, const char *text, size_t len) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        wb_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(text, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        wb_set_error("%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void wb_progress_start(wb_progress *p, const char *label, int64_t total, int enabled) {
    /* On a terminal the line redraws in place; in a log (CI, nohup) only
     * the final summary line is written, so logs stay readable. */
    p->tty = isatty(fileno(stderr));
    p->label = label;
    p->total = total;
    p->t_start = p->t_last_print = wb_now_seconds();
    p->enabled = enabled;
}

static void format_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, n, "--:--");
        return;
    }
    int total = (int)(s + 0.5);
    if (total >= 3600) snprintf(buf, n, "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60);
    else snprintf(buf, n, "%d:%02d", total / 60, total % 60);
}

void wb_progress_update(wb_progress *p, int64_t done, const char *extra) {
    if (!p->enabled || !p->tty) return;
    double now = wb_now_seconds();
    if (now - p->t_last_print < 0.5 && done < p->total) return; /* at most two redraws a second */
    p->t_last_print = now;
    double elapsed = now - p->t_start, rate = elapsed > 0 ? (double)done / elapsed : 0;
    char eta[32];
    format_duration(rate > 0 ? (double)(p->total - done) / rate : -1, eta, sizeof eta);
    fprintf(stderr, "\r%-24s %7lld/%-7lld %8.1f it/s  ETA %s  %s\033[K", p->label, (long long)done,
            (long long)p->total, rate, eta, extra ? extra : "");
    fflush(stderr);
}

void wb_progress_end(wb_progress *p, const char *extra) {
    if (!p->enabled) return;
    double elapsed = wb_now_seconds() - p->t_start;
    char took[32];
    format_duration(elapsed, took, sizeof took);
    fprintf(stderr, p->tty ? "\r%-24s %7lld steps in %s (%.1f it/s)  %s\033[K\n" : "%-24s %7lld steps in %s (%.1f it/s)  %s\n", p->label, (long long)p->total, took,
            elapsed > 0 ? (double)p->total / elapsed : 0.0, extra ? extra : "");
    fflush(stderr);
}
