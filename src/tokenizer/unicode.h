/* Character classes of BERT's normalizer and pre-tokenizer, as Hugging Face
 * `tokenizers` defines them, computed from utf8proc's Unicode tables. */
#ifndef EMBER_TOKENIZER_UNICODE_H
#define EMBER_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    UC_REMOVE = 1 << 0, /* clean_text drops it: NUL, U+FFFD, controls, format, private use */
    UC_SPACE = 1 << 1,  /* clean_text turns it into ' ' (whitespace other than ' ') */
    UC_CJK = 1 << 2,    /* handle_chinese_chars puts spaces around it */
    UC_PUNCT = 1 << 3,  /* the pre-tokenizer isolates it */
    UC_WS = 1 << 4,     /* the pre-tokenizer splits on it (Rust char::is_whitespace) */
    UC_MN = 1 << 5,     /* strip_accents drops it after NFD (nonspacing mark) */
};

/* The UC_* classes of a code point (0 <= cp <= 0x10FFFF). */
uint8_t unicode_class(int32_t cp);

/* The canonical decomposition (NFD) of cp into out (at most 4 code points
 * for any Unicode character; out must hold 8). Returns the count. */
int unicode_decompose(int32_t cp, int32_t *out);
/* strip_accents of cp where tokenizers' normalisation data differs from
 * utf8proc's (into out[4]; the count), or -1 where it does not. */
int unicode_strip_exception(int32_t cp, int32_t *out);
/* The canonical combining class (0 for starters). */
int unicode_combining_class(int32_t cp);
/* Full lowercase mapping as Rust's char::to_lowercase (into out[3]); returns the count. */
int unicode_lowercase(int32_t cp, int32_t *out);

/* Is cp a cased letter (Lu, Ll, Lt)? */
int unicode_is_letter(int32_t cp);

/* Decode one UTF-8 sequence at s[0..n). Returns its length (>= 1) and sets
 * *cp, or U+FFFD with the length of the maximal invalid subpart (the
 * WHATWG / Python "replace" rule) and *invalid = 1. */
int utf8_decode(const uint8_t *s, size_t n, int32_t *cp, int *invalid);
/* Encode cp as UTF-8 into out[4]; returns the byte count. */
int utf8_encode(int32_t cp, char *out);

#endif
