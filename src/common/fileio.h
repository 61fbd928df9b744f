/* Whole-file reads and read-only memory maps. */
#ifndef EMBER_COMMON_FILEIO_H
#define EMBER_COMMON_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "ember.h"

/* Read a whole file into a NUL-terminated heap buffer. */
ember_status file_read_all(const char *path, char **data, size_t *size);

typedef struct {
    void *data;
    size_t size;
} file_map;

ember_status file_map_open(const char *path, file_map *map);
void file_map_close(file_map *map);

int file_exists(const char *path);
/* EMBER_OK when path is a regular file this process can open for reading;
 * else EMBER_ERR_IO naming it and why: missing (or a link to nothing), a
 * directory, a FIFO or device (which would block or never end), or the
 * open's error. Checked before reading, so that a directory in place of
 * config.json is not reported as malformed JSON, and a FIFO does not hang. */
ember_status file_check_regular(const char *path);
/* fsync a closed file and read it back: its size and crc32 as they are on
 * disk; 0 (errno set) when it cannot be read or synced. */
int file_sync_crc(const char *path, int64_t *bytes, uint32_t *crc);
/* fsync a directory, so that a rename in it is durable; 0 on failure (file
 * systems that cannot sync a directory count as success). */
int dir_sync(const char *dir);
/* snprintf into a fixed buffer; fails (returns 0) when it does not fit. */
int path_join(char *out, size_t cap, const char *dir, const char *name);

#endif
