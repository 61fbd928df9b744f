/* A growing byte buffer for HTTP response bodies, with the JSON pieces the
 * server writes by hand (writing 384 floats per text through a jansson tree
 * would allocate a node per number). */
#ifndef EMBER_SERVER_STRBUF_H
#define EMBER_SERVER_STRBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t len, cap;
    int oom; /* an allocation failed: the contents are incomplete */
} strbuf;

void sb_init(strbuf *b, size_t cap);
void sb_free(strbuf *b);
/* The buffer, NUL-terminated, now owned by the caller (NULL after an
 * allocation failure, when it is freed). */
char *sb_take(strbuf *b, size_t *len);

void sb_put(strbuf *b, const char *s, size_t n);
void sb_puts(strbuf *b, const char *s);
void sb_putc(strbuf *b, char c);
void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_int(strbuf *b, int64_t v);
/* A JSON string literal (quotes included) of n bytes of UTF-8 (a byte that
 * is not part of well-formed UTF-8 is written as U+FFFD). */
void sb_json_string(strbuf *b, const char *s, size_t n);
/* A float as JSON: the shortest form that "%.9g" gives, which reads back to
 * the same float32; non-finite values as null (JSON has no NaN). */
void sb_float(strbuf *b, float v);
/* [v0,v1,...] */
void sb_float_array(strbuf *b, const float *v, size_t n);
/* A JSON string of the base64 (RFC 4648, padded) of the little-endian
 * float32 bytes of v: what OpenAI's encoding_format=base64 returns. */
void sb_base64_f32(strbuf *b, const float *v, size_t n);

/* Write "%.9g" of v (finite, float32) into out (at least 24 bytes); returns
 * the length. */
int format_f32(char *out, float v);

#endif
