/* What the fuzz targets share: a private scratch directory for the files a
 * target writes, and a check that stops the fuzzer with a message. */
#ifndef EMBER_FUZZ_UTIL_H
#define EMBER_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A directory of this process's own (in /dev/shm when it exists). */
const char *fuzz_dir(void);
/* dir/name holding data[0..len); returns the path (static buffer per slot 0..3). */
const char *fuzz_write(int slot, const char *name, const uint8_t *data, size_t len);
/* Remove every file fuzz_write made in the directory. */
void fuzz_clean(void);
/* Split data at the separator "\n--8<--\n": parts[0..n), n <= max. */
size_t fuzz_split(const uint8_t *data, size_t len, const uint8_t **parts, size_t *lens, size_t max);

#define FUZZ_CHECK(cond, ...)                                                                                         \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);                       \
            fprintf(stderr, __VA_ARGS__);                                                                             \
            fputc('\n', stderr);                                                                                      \
            abort();                                                                                                  \
        }                                                                                                             \
    } while (0)

#endif
