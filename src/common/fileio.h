/* Whole-file reads and read-only memory maps. */
#ifndef EMBER_COMMON_FILEIO_H
#define EMBER_COMMON_FILEIO_H

#include <stddef.h>

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
/* snprintf into a fixed buffer; fails (returns 0) when it does not fit. */
int path_join(char *out, size_t cap, const char *dir, const char *name);

#endif
