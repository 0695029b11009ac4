/* tests/fuzz/fuzz_util.h — what the fuzz targets share: one scratch folder
 * per process (made on first use, removed at exit), writing fuzz bytes to a
 * file in it, and cutting one input into several files at a separator.
 * Header only (static inline functions): each target is one .c file plus this,
 * built either with libFuzzer (WB_FUZZ=ON, clang) or with the corpus replay
 * driver fuzz_replay.c (every build; the CTests fuzz_replay_<target>).
 *
 * The readers under test report problems through wb_set_error and a return
 * value; a target ignores the message (a rejection is a correct outcome)
 * and only checks that the call came back: a crash, a sanitizer report, a
 * leak or a timeout is the finding.
 *
 * Include it first: it defines _GNU_SOURCE for nftw.
 */
#ifndef WB_FUZZ_UTIL_H
#define WB_FUZZ_UTIL_H

#define _GNU_SOURCE /* nftw's FTW_DEPTH / FTW_PHYS */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wb/tensor.h" /* wb_last_error */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_path[256];

static inline int fuzz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path); /* best effort: what cannot go stays in /dev/shm or /tmp */
    return 0;
}

static inline void fuzz_rm_tree(const char *dir) { nftw(dir, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static inline void fuzz_cleanup(void) {
    if (fuzz_dir_path[0]) fuzz_rm_tree(fuzz_dir_path);
}

/* The process's scratch folder: in /dev/shm when it is writable (no disk
 * traffic at thousands of files a second), else $TMPDIR or /tmp. Aborts when
 * none can be made: a fuzz target without its folder tests nothing. */
static inline const char *fuzz_dir(void) {
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    const char *tmp = getenv("TMPDIR");
    const char *bases[] = {"/dev/shm", tmp && *tmp ? tmp : "/tmp", "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/wb_fuzz_XXXXXX", bases[i]);
        if (access(bases[i], W_OK) == 0 && mkdtemp(fuzz_dir_path)) {
            atexit(fuzz_cleanup);
            return fuzz_dir_path;
        }
    }
    fprintf(stderr, "fuzz: cannot create a scratch folder\n");
    abort();
}

/* <scratch>/<name> into out (a sub-path such as "run/config.json" is fine
 * once its folder exists). */
static inline const char *fuzz_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", fuzz_dir(), name);
    return out;
}

/* Makes <scratch>/<name> (and returns its path in out), empty. */
static inline const char *fuzz_fresh_dir(char *out, size_t cap, const char *name) {
    fuzz_path(out, cap, name);
    fuzz_rm_tree(out);
    if (mkdir(out, 0700) != 0) {
        perror(out);
        abort();
    }
    return out;
}

/* Writes n bytes to path (created or truncated); aborts on an I/O error,
 * which is the machine's problem, not a finding. */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w <= 0) {
            perror(path);
            abort();
        }
        done += (size_t)w;
    }
    close(fd);
}

/* With FUZZ_VERBOSE=1 in the environment, one line per call under test:
 * what was called and how it ended (wb_last_error() when it failed) — for
 * checking what a corpus file reaches (fuzz_replay FILE). Silent otherwise. */
static inline void fuzz_note(const char *what, int failed) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") && *getenv("FUZZ_VERBOSE") == '1';
    if (verbose) fprintf(stderr, "  %s: %s\n", what, failed ? wb_last_error() : "ok");
}

/* One piece of an input cut at a separator. */
typedef struct fuzz_part {
    const uint8_t *data;
    size_t size;
} fuzz_part;

/* Cuts data at every occurrence of sep (seplen >= 1) into at most max parts
 * (the last one keeps the rest, separators included); returns how many. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, const void *sep, size_t seplen, fuzz_part *parts,
                         size_t max) {
    size_t n = 0, start = 0;
    for (size_t i = 0; n + 1 < max && i + seplen <= size;) {
        if (memcmp(data + i, sep, seplen) == 0) {
            parts[n++] = (fuzz_part){data + start, i - start};
            i += seplen;
            start = i;
        } else {
            i++;
        }
    }
    parts[n++] = (fuzz_part){data + start, size - start};
    return n;
}

/* A NUL-terminated copy of a part (malloc'd; aborts when out of memory). */
static inline char *fuzz_strdup(fuzz_part p) {
    char *s = malloc(p.size + 1);
    if (!s) abort();
    memcpy(s, p.data, p.size);
    s[p.size] = '\0';
    return s;
}

#endif
