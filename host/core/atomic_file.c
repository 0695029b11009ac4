/* host/core/atomic_file.c — atomic file replacement (see atomic_file.h): the
 * single writer behind every file libwb produces except the append-only
 * metrics log.
 */
#include "wb/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wb/tensor.h"

static void clear(wb_atomic_file *af) {
    free(af->path);
    free(af->tmp);
    af->f = NULL;
    af->path = af->tmp = NULL;
}

int wb_atomic_open(wb_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (!path || !path[0]) {
        wb_set_error("atomic write: NULL or empty path");
        return -1;
    }
    size_t len = strlen(path);
    af->path = malloc(len + 1);
    af->tmp = malloc(len + 12);
    if (!af->path || !af->tmp) {
        clear(af);
        wb_set_error("%s: out of memory", path);
        return -1;
    }
    memcpy(af->path, path, len + 1);
    memcpy(af->tmp, path, len);
    /* A temporary name of its own (mkstemp: created exclusively, never a
     * link someone left there): two processes replacing the same file —
     * runs sharing a cache directory — each write a whole file, and the
     * rename that lands last wins; a shared PATH.tmp would interleave
     * their bytes into one file that both then rename into place. */
    memcpy(af->tmp + len, ".tmp.XXXXXX", 12);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        wb_set_error("%s: cannot create %s: %s", path, af->tmp, strerror(errno));
        clear(af);
        return -1;
    }
    /* mkstemp makes 0600; a replaced file gets what a created one would */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        wb_set_error("%s: cannot open %s: %s", path, af->tmp, strerror(errno));
        close(fd);
        unlink(af->tmp);
        clear(af);
        return -1;
    }
    return 0;
}

void wb_atomic_abort(wb_atomic_file *af) {
    if (!af || !af->f) return;
    fclose(af->f);
    unlink(af->tmp);
    clear(af);
}

/* The rename is only durable once the folder holding it is synced; not
 * every file system allows fsync on a folder, and the file itself is
 * complete either way, so this is best effort. */
static void sync_folder(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (!(dir = malloc(n + 1))) return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int wb_atomic_commit(wb_atomic_file *af) {
    if (!af || !af->f) {
        wb_set_error("atomic write: commit without a successful open");
        return -1;
    }
    int e = 0;
    /* stdio buffers: a full disk may only show up at flush time. EINVAL
     * from fsync: the file system cannot sync, there is nothing to gain. */
    if (ferror(af->f)) e = errno ? errno : EIO;
    if (!e && fflush(af->f) != 0) e = errno ? errno : EIO;
    if (!e && fsync(fileno(af->f)) != 0 && errno != EINVAL) e = errno;
    if (fclose(af->f) != 0 && !e) e = errno ? errno : EIO;
    af->f = NULL;
    if (e) {
        wb_set_error("%s: writing %s failed: %s", af->path, af->tmp, strerror(e));
        unlink(af->tmp);
        clear(af);
        return -1;
    }
    if (rename(af->tmp, af->path) != 0) {
        wb_set_error("%s: cannot rename %s into place: %s", af->path, af->tmp, strerror(errno));
        unlink(af->tmp);
        clear(af);
        return -1;
    }
    sync_folder(af->path);
    clear(af);
    return 0;
}

int wb_write_file_atomic(const char *path, const void *data, size_t len) {
    wb_atomic_file af;
    if (wb_atomic_open(&af, path)) return -1;
    if (len > 0 && fwrite(data, 1, len, af.f) != len) {
        wb_set_error("%s: writing %s failed: %s", path, af.tmp, strerror(errno ? errno : EIO));
        wb_atomic_abort(&af);
        return -1;
    }
    return wb_atomic_commit(&af);
}
