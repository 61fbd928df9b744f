#include "jsonl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

char *jsonl_field(const char *line, size_t len, const char *field, size_t *out_len) {
    json_error_t err;
    json_t *root = json_loadb(line, len, 0, &err);
    if (!root) {
        ember_fail(EMBER_ERR_FORMAT, "malformed JSON at column %d: %s", err.column, err.text);
        return NULL;
    }
    json_t *v = json_is_object(root) ? json_object_get(root, field) : NULL;
    char *s = NULL;
    if (!json_is_string(v)) {
        ember_fail(EMBER_ERR_FORMAT, "%s (the text is read from the field '%s'; set it with --field)",
                   !json_is_object(root) ? "not a JSON object"
                   : v                   ? "the text field is not a string"
                                         : "the text field is missing",
                   field);
    } else {
        size_t n = json_string_length(v);
        s = malloc(n + 1);
        if (s) {
            memcpy(s, json_string_value(v), n);
            s[n] = '\0';
            *out_len = n;
        } else {
            ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for a text of %zu bytes", n);
        }
    }
    json_decref(root);
    return s;
}

void json_write_string(FILE *f, const char *s, size_t len) {
    json_t *j = json_stringn_nocheck(s, len);
    json_dumpf(j, f, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    json_decref(j);
}
