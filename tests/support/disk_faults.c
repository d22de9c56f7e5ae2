/*
 * An LD_PRELOAD shim that makes a real kvserver process see a failing disk, for the
 * end-to-end disk-fault tests (tests/disk_faults.rs). The server runs unmodified: no
 * test-only code path exists in it.
 *
 * The test steers the shim through files in the directory named by KV_FAULT_DIR; each is
 * checked on every intercepted call, so faults start and stop while the server runs:
 *
 *   write    "ENOSPC" | "EIO" | "EDQUOT": write(2) to a matching file fails with that errno;
 *            "short": the call writes half its bytes (at least one) and reports that count,
 *            and the next call fails with ENOSPC (how a disk filling up looks).
 *   fsync    an errno name: fsync(2)/fdatasync(2) of a matching regular file fails.
 *   dirsync  an errno name: fsync(2) of a directory fails.
 *   rename   an errno name: rename(2) whose source or target matches fails.
 *   stall    a number of milliseconds that every fsync/fdatasync of a matching file sleeps.
 *
 *   match    a substring: only files whose path contains it are affected from now on
 *            (without this file: the KV_FAULT_MATCH environment variable, which the tests
 *            set to the data directory), so sockets, logs and the terminal never are.
 * Each injected fault appends one line ("write ENOSPC /path") to KV_FAULT_DIR/injected, so
 * a test can tell that the fault it staged was actually hit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*fd_fn)(int);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned int);

static __thread int in_shim; /* our own bookkeeping writes must not recurse */
static __thread int short_pending; /* a short write happened: the next write fails */

static const char *control_dir(void) { return getenv("KV_FAULT_DIR"); }

/* Reads control file `name` into `out`; 0 if it does not exist. */
static int control(const char *name, char *out, size_t size) {
    const char *dir = control_dir();
    if (dir == NULL) return 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, out, size - 1);
    close(fd);
    if (n < 0) n = 0;
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) out[--n] = '\0';
    return 1;
}

static int errno_named(const char *name) {
    if (strcmp(name, "ENOSPC") == 0) return ENOSPC;
    if (strcmp(name, "EIO") == 0) return EIO;
    if (strcmp(name, "EDQUOT") == 0) return EDQUOT;
    if (strcmp(name, "EROFS") == 0) return EROFS;
    return EIO;
}

static int path_matches(const char *path) {
    char from_file[PATH_MAX];
    const char *match = control("match", from_file, sizeof from_file) ? from_file
                                                                      : getenv("KV_FAULT_MATCH");
    return path != NULL && match != NULL && match[0] != '\0' && strstr(path, match) != NULL;
}

/* The path behind `fd` and whether it is a directory; 0 if it is neither file nor dir. */
static int fd_path(int fd, char *path, size_t size, int *is_dir) {
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return 0;
    *is_dir = S_ISDIR(st.st_mode);
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, size - 1);
    if (n < 0) return 0;
    path[n] = '\0';
    return 1;
}

static void note(const char *call, const char *what, const char *path) {
    const char *dir = control_dir();
    if (dir == NULL) return;
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/injected", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s %s %s\n", call, what, path);
    if (n > 0) {
        write_fn real = (write_fn)dlsym(RTLD_NEXT, "write");
        in_shim = 1;
        real(fd, line, (size_t)n);
        in_shim = 0;
    }
    close(fd);
}

ssize_t write(int fd, const void *buf, size_t count) {
    write_fn real = (write_fn)dlsym(RTLD_NEXT, "write");
    if (in_shim || count == 0) return real(fd, buf, count);
    char path[PATH_MAX];
    int is_dir = 0;
    char mode[32];
    if (!control("write", mode, sizeof mode)) {
        short_pending = 0;
        return real(fd, buf, count);
    }
    if (!fd_path(fd, path, sizeof path, &is_dir) || is_dir || !path_matches(path)) {
        return real(fd, buf, count);
    }
    if (strcmp(mode, "short") == 0 && !short_pending) {
        size_t half = count / 2 > 0 ? count / 2 : 1;
        ssize_t written = real(fd, buf, half);
        if (written > 0) {
            short_pending = 1;
            note("write", "short", path);
        }
        return written;
    }
    int err = strcmp(mode, "short") == 0 ? ENOSPC : errno_named(mode);
    note("write", strcmp(mode, "short") == 0 ? "ENOSPC" : mode, path);
    errno = err;
    return -1;
}

static void stall_if_asked(void) {
    char ms[32];
    if (!control("stall", ms, sizeof ms)) return;
    long millis = strtol(ms, NULL, 10);
    if (millis <= 0) return;
    struct timespec pause = {millis / 1000, (millis % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* Shared by fsync and fdatasync: decides whether to fail, stall or pass the call on. */
static int sync_call(const char *name, int fd) {
    fd_fn real = (fd_fn)dlsym(RTLD_NEXT, name);
    if (in_shim) return real(fd);
    char path[PATH_MAX];
    int is_dir = 0;
    if (!fd_path(fd, path, sizeof path, &is_dir) || !path_matches(path)) return real(fd);
    char mode[32];
    if (control(is_dir ? "dirsync" : "fsync", mode, sizeof mode)) {
        note(is_dir ? "dirsync" : name, mode, path);
        errno = errno_named(mode);
        return -1;
    }
    if (!is_dir) stall_if_asked();
    return real(fd);
}

int fsync(int fd) { return sync_call("fsync", fd); }
int fdatasync(int fd) { return sync_call("fdatasync", fd); }

static int rename_fails(const char *from, const char *to) {
    char mode[32];
    if (in_shim || !control("rename", mode, sizeof mode)) return 0;
    if (!path_matches(from) && !path_matches(to)) return 0;
    note("rename", mode, to);
    errno = errno_named(mode);
    return 1;
}

int rename(const char *from, const char *to) {
    rename_fn real = (rename_fn)dlsym(RTLD_NEXT, "rename");
    if (rename_fails(from, to)) return -1;
    return real(from, to);
}

int renameat(int olddir, const char *from, int newdir, const char *to) {
    renameat_fn real = (renameat_fn)dlsym(RTLD_NEXT, "renameat");
    if (rename_fails(from, to)) return -1;
    return real(olddir, from, newdir, to);
}

int renameat2(int olddir, const char *from, int newdir, const char *to, unsigned int flags) {
    renameat2_fn real = (renameat2_fn)dlsym(RTLD_NEXT, "renameat2");
    if (rename_fails(from, to)) return -1;
    return real(olddir, from, newdir, to, flags);
}
