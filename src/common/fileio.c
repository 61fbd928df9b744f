#define _POSIX_C_SOURCE 200809L
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "error.h"

ember_status file_check_regular(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        if (e == ENOENT && lstat(path, &st) == 0)
            return ember_fail(EMBER_ERR_IO, "%s: no such file (a link to a file that does not exist)", path);
        if (e == ENOENT) return ember_fail(EMBER_ERR_IO, "%s: no such file", path);
        return ember_fail(EMBER_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) return ember_fail(EMBER_ERR_IO, "%s: is a directory, not a file", path);
    if (!S_ISREG(st.st_mode))
        return ember_fail(EMBER_ERR_IO, "%s: not a regular file (a FIFO, socket or device)", path);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ember_fail(EMBER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    close(fd);
    return EMBER_OK;
}

ember_status file_read_all(const char *path, char **data, size_t *size) {
    ember_status cst = file_check_regular(path);
    if (cst) return cst;
    FILE *f = fopen(path, "rb");
    if (!f) return ember_fail(EMBER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return ember_fail(EMBER_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    if (size) *size = n;
    return EMBER_OK;
}

ember_status file_map_open(const char *path, file_map *map) {
    map->data = NULL;
    map->size = 0;
    ember_status cst = file_check_regular(path);
    if (cst) return cst;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ember_fail(EMBER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ember_fail(EMBER_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ember_fail(EMBER_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return ember_fail(EMBER_ERR_FORMAT, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return ember_fail(EMBER_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    map->data = p;
    map->size = (size_t)st.st_size;
    return EMBER_OK;
}

void file_map_close(file_map *map) {
    if (map->data) munmap(map->data, map->size);
    map->data = NULL;
    map->size = 0;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

int file_sync_crc(const char *path, int64_t *bytes, uint32_t *crc) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int ok = fsync(fd) == 0;
    uLong c = crc32(0L, Z_NULL, 0);
    int64_t n = 0;
    static _Thread_local unsigned char buf[1 << 16];
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) ok = 0;
        if (got <= 0) break;
        c = crc32(c, buf, (uInt)got);
        n += got;
    }
    int e = errno;
    close(fd);
    errno = e;
    *bytes = n;
    *crc = (uint32_t)c;
    return ok;
}

int dir_sync(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0;
    int ok = fsync(fd) == 0 || errno == EINVAL; /* some file systems cannot sync a directory */
    close(fd);
    return ok;
}
