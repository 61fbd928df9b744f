#include "vec.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lines.h"

int vec_grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *n = realloc(*buf, c * elem);
    if (!n) return 0;
    *buf = n;
    *cap = c;
    return 1;
}

ember_status str_list_add(str_list *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        int32_t cap = l->cap ? l->cap * 2 : 64;
        char **ns = realloc(l->s, (size_t)cap * sizeof *ns);
        if (ns) l->s = ns;
        ptrdiff_t *nl = realloc(l->len, (size_t)cap * sizeof *nl);
        if (nl) l->len = nl;
        if (!ns || !nl) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for %d texts", cap);
        l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for a text of %zu bytes", len);
    memcpy(c, s, len);
    c[len] = '\0';
    l->s[l->n] = c;
    l->len[l->n++] = (ptrdiff_t)len;
    l->bytes += len;
    return EMBER_OK;
}

ember_status str_list_read(str_list *l, const char *path, int32_t limit) {
    line_reader *r;
    ember_status st = line_reader_open(&r, path, NULL, NULL);
    if (st) return st;
    const char *line;
    size_t len;
    int got = 0;
    while ((limit <= 0 || l->n < limit) && (got = line_reader_next(r, &line, &len)) > 0)
        if ((st = str_list_add(l, line, len))) break;
    if (!st && got < 0) st = line_reader_status(r);
    line_reader_close(r);
    return st;
}

void str_list_free(str_list *l) {
    for (int32_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    free(l->len);
    memset(l, 0, sizeof *l);
}
