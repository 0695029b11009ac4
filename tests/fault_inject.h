/* tests/fault_inject.h — faults for the atomic-write tests that work even as
 * root (which ignores permissions): a create that fails (no free file
 * descriptor: the soft limit set to the lowest free one), and a check that a
 * failed or finished write left no temporary PATH.tmp.XXXXXX beside PATH.
 * Header-only, libc only.
 */
#ifndef WB_TEST_FAULT_INJECT_H
#define WB_TEST_FAULT_INJECT_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The next open()/mkstemp() fails with EMFILE until wb_fault_fds_restore. */
static inline int wb_fault_fds_block(struct rlimit *saved) {
    if (getrlimit(RLIMIT_NOFILE, saved) != 0) return -1;
    int lowest = dup(0);
    if (lowest < 0) return -1;
    close(lowest);
    struct rlimit lim = *saved;
    lim.rlim_cur = (rlim_t)lowest;
    return setrlimit(RLIMIT_NOFILE, &lim);
}

static inline void wb_fault_fds_restore(const struct rlimit *saved) { (void)setrlimit(RLIMIT_NOFILE, saved); }

/* 1 when PATH's folder holds an entry named PATH's name + ".tmp" + anything. */
static inline int wb_fault_tmp_left(const char *path) {
    char dir[1024], prefix[1100];
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return 1;
        memcpy(dir, path, n);
        dir[n ? n : 1] = '\0';
        if (!n) dir[0] = '/';
    } else {
        dir[0] = '.', dir[1] = '\0';
    }
    snprintf(prefix, sizeof prefix, "%s.tmp", slash ? slash + 1 : path);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
    closedir(d);
    return found;
}

#endif
