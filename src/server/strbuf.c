#include "strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_init(strbuf *b, size_t cap) {
    b->len = 0;
    b->oom = 0;
    b->cap = cap ? cap : 256;
    b->data = malloc(b->cap);
    if (!b->data) b->oom = 1, b->cap = 0;
}

void sb_free(strbuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *sb_take(strbuf *b, size_t *len) {
    sb_putc(b, '\0');
    if (b->oom) {
        sb_free(b);
        return NULL;
    }
    char *d = b->data;
    *len = b->len - 1;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

/* Room for n more bytes; 0 (and oom set) when there is none. */
static int sb_room(strbuf *b, size_t n) {
    if (b->oom) return 0;
    if (b->len + n <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return 0;
    }
    b->data = d;
    b->cap = cap;
    return 1;
}

void sb_put(strbuf *b, const char *s, size_t n) {
    if (!sb_room(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_putc(strbuf *b, char c) {
    if (!sb_room(b, 1)) return;
    b->data[b->len++] = c;
}

void sb_printf(strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sb_put(b, small, (size_t)n);
        return;
    }
    if (!sb_room(b, (size_t)n + 1)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_int(strbuf *b, int64_t v) {
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    sb_put(b, t, (size_t)n);
}

/* The length of the well-formed multi-byte UTF-8 sequence (RFC 3629) at
 * s, of n bytes, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t k = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (!k || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xF0 && s[1] < 0x90)) return 0; /* overlong */
    if ((c == 0xED && s[1] > 0x9F) || (c == 0xF4 && s[1] > 0x8F)) return 0; /* surrogate, over U+10FFFF */
    return k;
}

void sb_json_string(strbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    sb_putc(b, '"');
    size_t run = 0; /* bytes copied as they are, flushed in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            continue;
        }
        if (c >= 0x80) {
            /* messages quote URLs and cut text at a byte count: a byte
             * that is not UTF-8 becomes U+FFFD, so the JSON stays valid */
            size_t k = utf8_len((const unsigned char *)s + i, n - i);
            if (k) {
                run += k;
                i += k - 1;
                continue;
            }
            sb_put(b, s + i - run, run);
            run = 0;
            sb_put(b, "\\ufffd", 6);
            continue;
        }
        sb_put(b, s + i - run, run);
        run = 0;
        char esc[7] = {'\\', 0};
        size_t k = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        }
        sb_put(b, esc, k);
    }
    sb_put(b, s + n - run, run);
    sb_putc(b, '"');
}

/* Powers of ten that a double holds exactly. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * glibc's "%.9g" converts exactly and costs about 1 us per number, which
 * is most of the time of a /embed response once the model is on a GPU. Here
 * the value (exact as a double) is scaled by an exact power of ten, one
 * correctly rounded multiplication, to a 9-digit integer. That differs
 * from exact rounding only within 2^-53 of a tie in the ninth digit, and
 * either neighbour there still reads back to the same float32: 9-digit
 * decimals are at most 1e-8 apart relatively, float32s at least 5.9e-8.
 * Values outside [1e-13, 1e9) take the exact path. NaN and infinities
 * (weights holding them: the loader warns) are JSON's null.
 */
int format_f32(char *out, float v) {
    if (!isfinite(v)) return (int)(strcpy(out, "null"), 4);
    double d = fabs((double)v);
    if (d == 0) return (int)(strcpy(out, signbit(v) ? "-0" : "0"), strlen(out));
    if (!(d >= 1e-13 && d < 1e9)) return snprintf(out, 24, "%.9g", (double)v);
    int X = (int)floor(log10(d)); /* the decimal exponent, maybe off by one */
    unsigned long long M = 0;
    for (int tries = 0; tries < 3; tries++) {
        int k = 8 - X;
        if (k < 0 || k > 22) return snprintf(out, 24, "%.9g", (double)v);
        M = (unsigned long long)llrint(d * pow10_exact[k]);
        if (M >= 1000000000ULL) X++;
        else if (M < 100000000ULL) X--;
        else break;
    }
    if (M < 100000000ULL || M >= 1000000000ULL) return snprintf(out, 24, "%.9g", (double)v);
    char D[9];
    for (int i = 8; i >= 0; i--) D[i] = (char)('0' + M % 10), M /= 10;
    int nd = 9;
    while (nd > 1 && D[nd - 1] == '0') nd--;
    char *p = out;
    if (v < 0) *p++ = '-';
    if (X >= -4 && X < 9) {
        if (X >= 0) {
            memcpy(p, D, (size_t)X + 1);
            p += X + 1;
            if (nd > X + 1) {
                *p++ = '.';
                memcpy(p, D + X + 1, (size_t)(nd - X - 1));
                p += nd - X - 1;
            }
        } else {
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -X - 1; i++) *p++ = '0';
            memcpy(p, D, (size_t)nd);
            p += nd;
        }
    } else {
        *p++ = D[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, D + 1, (size_t)nd - 1);
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = X < 0 ? '-' : '+';
        int ax = X < 0 ? -X : X;
        if (ax >= 100) *p++ = (char)('0' + ax / 100);
        *p++ = (char)('0' + ax / 10 % 10);
        *p++ = (char)('0' + ax % 10);
    }
    *p = '\0';
    return (int)(p - out);
}

void sb_float(strbuf *b, float v) {
    if (!isfinite(v)) {
        sb_put(b, "null", 4);
        return;
    }
    if (!sb_room(b, 24)) return;
    b->len += (size_t)format_f32(b->data + b->len, v);
}

void sb_float_array(strbuf *b, const float *v, size_t n) {
    if (!sb_room(b, n * 16 + 2)) return;
    sb_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) sb_putc(b, ',');
        sb_float(b, v[i]);
    }
    sb_putc(b, ']');
}

void sb_base64_f32(strbuf *b, const float *v, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t nbytes = n * 4;
    if (!sb_room(b, (nbytes + 2) / 3 * 4 + 2)) return;
    char *o = b->data + b->len;
    *o++ = '"';
    /* the bytes, little-endian whatever the host's order */
    unsigned char trio[3];
    size_t have = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++) {
            trio[have++] = (unsigned char)(u >> (8 * k));
            if (have == 3) {
                *o++ = tab[trio[0] >> 2];
                *o++ = tab[((trio[0] & 3) << 4) | (trio[1] >> 4)];
                *o++ = tab[((trio[1] & 15) << 2) | (trio[2] >> 6)];
                *o++ = tab[trio[2] & 63];
                have = 0;
            }
        }
    }
    if (have == 1) {
        *o++ = tab[trio[0] >> 2];
        *o++ = tab[(trio[0] & 3) << 4];
        *o++ = '=';
        *o++ = '=';
    } else if (have == 2) {
        *o++ = tab[trio[0] >> 2];
        *o++ = tab[((trio[0] & 3) << 4) | (trio[1] >> 4)];
        *o++ = tab[(trio[1] & 15) << 2];
        *o++ = '=';
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
}
