/* The tokenizer on arbitrary bytes (of a text, or of a pair), through the
 * public API, checking on every input: no read past the given length (the
 * text is an exactly sized copy, no NUL after it: AddressSanitizer sees an
 * overread), ids inside the vocabulary, offsets inside their text and
 * non-decreasing, the same tokens on a second call, and the counts
 * consistent (truncation, invalid UTF-8). */
#include <string.h>

#include "ember.h"
#include "fuzz_util.h"

#ifndef EMBER_FUZZ_MODEL
#define EMBER_FUZZ_MODEL "tests/data/tiny-bert"
#endif

static ember_model *model;
static int32_t vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (ember_model_load(EMBER_FUZZ_MODEL, NULL, &model) != EMBER_OK) {
        fprintf(stderr, "fuzz_tokenize: %s\n", ember_last_error());
        abort();
    }
    ember_model_info info;
    ember_model_get_info(model, &info);
    vocab = info.vocab_size;
    return 0;
}

/* Whether s[0..n) is valid UTF-8 (the shortest forms, no surrogates). */
static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n) return 0;
        uint32_t cp = k == 1 ? c : (uint32_t)(c & (0x7F >> k));
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const uint8_t flags = data[0];
    ember_tokenize_params p = ember_tokenize_default_params();
    p.add_special_tokens = flags & 1;
    p.truncate = (flags >> 1) & 1;
    p.truncate_left = (flags >> 2) & 1;
    p.max_length = 3 + data[1] % 70;
    const int pair = (flags >> 3) & 1;
    data += 2;
    size -= 2;
    const size_t la = pair ? size / 2 : size, lb = size - la;
    char *a = malloc(la ? la : 1), *b = pair ? malloc(lb ? lb : 1) : NULL;
    memcpy(a, data, la);
    if (pair) memcpy(b, data + la, lb);
    ember_token small[4], *tok = NULL, *again = NULL;
    int32_t n = 0, n2 = 0;
    ember_text_stats st, st2;
    ember_status s = ember_tokenize(model, a, (ptrdiff_t)la, b, (ptrdiff_t)lb, &p, small, 4, &n, &st);
    FUZZ_CHECK(s == EMBER_OK || s == EMBER_ERR_BUFFER_TOO_SMALL, "status %d: %s", (int)s, ember_last_error());
    tok = malloc(((size_t)n + 1) * sizeof *tok);
    again = malloc(((size_t)n + 1) * sizeof *again);
    FUZZ_CHECK(ember_tokenize(model, a, (ptrdiff_t)la, b, (ptrdiff_t)lb, &p, tok, n, &n2, &st) == EMBER_OK && n2 == n,
               "%d then %d tokens", n, n2);
    FUZZ_CHECK(ember_tokenize(model, a, (ptrdiff_t)la, b, (ptrdiff_t)lb, &p, again, n, &n2, &st2) == EMBER_OK &&
                   n2 == n && memcmp(tok, again, (size_t)n * sizeof *tok) == 0 && memcmp(&st, &st2, sizeof st) == 0,
               "a second call differs");
    FUZZ_CHECK(st.n_tokens == n && st.truncated == (st.n_tokens < st.n_tokens_untruncated),
               "stats: %d tokens, %d untruncated, truncated %d", st.n_tokens, st.n_tokens_untruncated, st.truncated);
    FUZZ_CHECK(!p.truncate || n <= p.max_length, "%d tokens over max_length %d", n, p.max_length);
    FUZZ_CHECK(p.truncate || !st.truncated, "truncated with truncation off");
    FUZZ_CHECK(st.invalid_utf8 >= 0, "invalid_utf8 %d", st.invalid_utf8);
    if (valid_utf8((const uint8_t *)a, la) && (!pair || valid_utf8((const uint8_t *)b, lb)))
        FUZZ_CHECK(st.invalid_utf8 == 0, "%d invalid sequences in valid UTF-8", st.invalid_utf8);
    int32_t last_start[2] = {0, 0};
    for (int32_t i = 0; i < n; i++) {
        const ember_token *t = &tok[i];
        FUZZ_CHECK(t->id >= 0 && t->id < vocab, "token %d: id %d outside [0, %d)", i, t->id, vocab);
        FUZZ_CHECK(t->type_id == 0 || (pair && t->type_id == 1), "token %d: type %d", i, t->type_id);
        if (t->special) {
            FUZZ_CHECK(t->start == 0 && t->end == 0, "special token %d has offsets", i);
            continue;
        }
        const size_t len = t->type_id ? lb : la;
        FUZZ_CHECK(t->start >= 0 && t->start <= t->end && (size_t)t->end <= len, "token %d: [%d, %d) outside %zu bytes",
                   i, t->start, t->end, len);
        FUZZ_CHECK(t->start >= last_start[t->type_id], "token %d starts at %d before %d", i, t->start,
                   last_start[t->type_id]);
        last_start[t->type_id] = t->start;
    }
    free(a);
    free(b);
    free(tok);
    free(again);
    return 0;
}
