/* JSON lines: the text field of an input line, and strings written as JSON. */
#ifndef EMBER_COMMON_JSONL_H
#define EMBER_COMMON_JSONL_H

#include <stddef.h>
#include <stdio.h>

#include "ember.h"

/* The string `field` of the JSON object in line[0..len): a malloc'd copy
 * (*out_len bytes, NUL-terminated), or NULL with EMBER_ERR_FORMAT and a
 * message saying what is wrong ("malformed JSON at column 5: ...", "the
 * text field is missing", ...), for the caller to put after the file and
 * line it names. */
char *jsonl_field(const char *line, size_t len, const char *field, size_t *out_len);
/* s[0..len) as a JSON string (quoted, escaped, ASCII). */
void json_write_string(FILE *f, const char *s, size_t len);

#endif
