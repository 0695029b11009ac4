/* tests/fuzz/fuzz_replay.c — the corpus as an ordinary regression test: a
 * main() that feeds every file named on the command line (a folder: every
 * file in it, sorted) to the target's LLVMFuzzerTestOneInput, once each,
 * the way libFuzzer replays a corpus. Linked with each target in every
 * build (gcc included), so `ctest` runs tests/fuzz/corpus/<target>/ as the
 * CTests fuzz_replay_<target>; a crash or abort fails the test, and under
 * WB_SANITIZE=ON so does a sanitizer report. Prints how many inputs ran.
 */
#include "fuzz_util.h"

#include <dirent.h>
#include <errno.h>

/* The whole file (malloc'd) and its size, or NULL when it cannot be read. */
static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *more = realloc(buf, cap *= 2);
        if (!more) free(buf);
        buf = more;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

static int run_one(const char *path) {
    size_t size = 0;
    uint8_t *data = read_all(path, &size);
    if (!data) {
        fprintf(stderr, "fuzz_replay: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    int n_inputs = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= run_one(argv[i]) != 0;
            n_inputs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "fuzz_replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                char **more = realloc(names, cap * sizeof *more);
                if (!more) abort();
                names = more;
            }
            if (!(names[n++] = strdup(e->d_name))) abort();
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp_name);
        for (size_t k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
            failed |= run_one(path) != 0;
            n_inputs++;
            free(names[k]);
        }
        free(names);
    }
    printf("fuzz_replay: %d inputs ran\n", n_inputs);
    if (n_inputs == 0) {
        fprintf(stderr, "fuzz_replay: no inputs (an empty corpus tests nothing)\n");
        return 1;
    }
    return failed;
}
