/* Growable arrays: the one doubling rule, and a list of strings (texts read
 * from a file or the command line, each with its length). */
#ifndef EMBER_COMMON_VEC_H
#define EMBER_COMMON_VEC_H

#include <stddef.h>
#include <stdint.h>

#include "ember.h"

/* Make *buf hold at least `need` elements of `elem` bytes, doubling from
 * `*cap` (at least 1024); 0 when out of memory (*buf is then unchanged). */
int vec_grow(void **buf, size_t *cap, size_t need, size_t elem);

typedef struct {
    char **s;       /* NUL-terminated copies */
    ptrdiff_t *len; /* their lengths in bytes */
    int32_t n, cap;
    size_t bytes;   /* of all of them */
} str_list;

/* Append a copy of s[0..len). */
ember_status str_list_add(str_list *l, const char *s, size_t len);
/* Append every line of a file (text or .gz, "-" for stdin), at most `limit`
 * lines in all (0: no limit); errors name the file and line. */
ember_status str_list_read(str_list *l, const char *path, int32_t limit);
void str_list_free(str_list *l);

#endif
