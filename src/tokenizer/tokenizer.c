#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/vec.h"
#include "unicode.h"

/* ---- string map ----------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int str_map_init(str_map *m, uint32_t expected) {
    uint32_t size = 16;
    while (size < expected * 2 + 2) size *= 2;
    m->slots = calloc(size, sizeof *m->slots);
    m->mask = size - 1;
    m->cap = expected + 1;
    m->n = 0;
    m->max_len = 0;
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->key_len = malloc(m->cap * sizeof *m->key_len);
    m->ids = malloc(m->cap * sizeof *m->ids);
    return m->slots && m->keys && m->key_len && m->ids;
}

static void str_map_free(str_map *m) {
    free(m->slots);
    free(m->keys);
    free(m->key_len);
    free(m->ids);
    memset(m, 0, sizeof *m);
}

/* Insert or overwrite (a later duplicate entry wins, as in tokenizers).
 * The key must outlive the map. The map was sized for all inserts. */
static void str_map_put(str_map *m, const char *key, size_t len, int32_t id) {
    uint32_t i = hash_bytes(key, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        uint32_t s = m->slots[i];
        if (s == 0) break;
        if (m->key_len[s - 1] == len && memcmp(m->keys[s - 1], key, len) == 0) {
            m->ids[s - 1] = id;
            return;
        }
    }
    m->keys[m->n] = key;
    m->key_len[m->n] = (uint32_t)len;
    m->ids[m->n] = id;
    m->slots[i] = ++m->n;
    if (len > m->max_len) m->max_len = (uint32_t)len;
}

int32_t str_map_get(const str_map *m, const char *key, size_t len) {
    if (!m->slots || len > m->max_len) return -1;
    uint32_t i = hash_bytes(key, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        uint32_t s = m->slots[i];
        if (s == 0) return -1;
        if (m->key_len[s - 1] == len && memcmp(m->keys[s - 1], key, len) == 0) return m->ids[s - 1];
    }
}

/* ---- vocabulary ----------------------------------------------------------- */

ember_status tokenizer_index_vocab(tokenizer *tok) {
    size_t plen = strlen(tok->prefix);
    uint32_t n = 0, nc = 0;
    for (int32_t i = 0; i < tok->n_ids; i++) {
        if (!tok->id_text[i]) continue;
        n++;
        if (plen && strncmp(tok->id_text[i], tok->prefix, plen) == 0) nc++;
    }
    if (!str_map_init(&tok->vocab, n) || !str_map_init(&tok->continuation, nc))
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory indexing the vocabulary");
    /* In id order, so that a duplicated entry maps to its last id. */
    for (int32_t i = 0; i < tok->n_ids; i++) {
        const char *t = tok->id_text[i];
        if (!t) continue;
        size_t len = strlen(t);
        str_map_put(&tok->vocab, t, len, i);
        if (plen && strncmp(t, tok->prefix, plen) == 0)
            str_map_put(&tok->continuation, t + plen, len - plen, i);
    }
    return EMBER_OK;
}

void tokenizer_free(tokenizer *tok) {
    str_map_free(&tok->vocab);
    str_map_free(&tok->continuation);
    if (tok->id_text) {
        for (int32_t i = 0; i < tok->n_ids; i++) free(tok->id_text[i]);
        free(tok->id_text);
    }
    for (int i = 0; i < tok->n_added; i++) {
        free(tok->added[i].text);
        free(tok->added[i].norm);
    }
    free(tok->added);
    memset(tok, 0, sizeof *tok);
}

void tokenizer_scratch_free(tokenizer_scratch *s) {
    free(s->cp);
    free(s->cp_start);
    free(s->cp_end);
    free(s->word);
    free(s->word_char);
    free(s->lowered);
    free(s->lowered_src);
    memset(s, 0, sizeof *s);
}

void piece_list_free(piece_list *p) {
    free(p->ids);
    free(p->start);
    free(p->end);
    free(p->special);
    memset(p, 0, sizeof *p);
}

static int piece_push(piece_list *p, int32_t id, int32_t start, int32_t end, int special) {
    if (p->n == p->cap) {
        int32_t cap = p->cap ? p->cap * 2 : 64;
        int32_t *ids = realloc(p->ids, (size_t)cap * sizeof *ids);
        if (ids) p->ids = ids;
        int32_t *st = realloc(p->start, (size_t)cap * sizeof *st);
        if (st) p->start = st;
        int32_t *en = realloc(p->end, (size_t)cap * sizeof *en);
        if (en) p->end = en;
        uint8_t *sp = realloc(p->special, (size_t)cap);
        if (sp) p->special = sp;
        if (!ids || !st || !en || !sp) return 0;
        p->cap = cap;
    }
    p->ids[p->n] = id;
    p->start[p->n] = start;
    p->end[p->n] = end;
    p->special[p->n] = (uint8_t)special;
    p->n++;
    return 1;
}

/* ---- normalisation -------------------------------------------------------- */

static int cp_push(tokenizer_scratch *s, int32_t cp, int32_t start, int32_t end) {
    if (s->n_cp == s->cap_cp) {
        size_t cap = s->cap_cp ? s->cap_cp * 2 : 1024;
        int32_t *a = realloc(s->cp, cap * sizeof *a);
        if (a) s->cp = a;
        int32_t *b = realloc(s->cp_start, cap * sizeof *b);
        if (b) s->cp_start = b;
        int32_t *c = realloc(s->cp_end, cap * sizeof *c);
        if (c) s->cp_end = c;
        if (!a || !b || !c) return 0;
        s->cap_cp = cap;
    }
    s->cp[s->n_cp] = cp;
    s->cp_start[s->n_cp] = start;
    s->cp_end[s->n_cp] = end;
    s->n_cp++;
    return 1;
}

/*
 * BertNormalizer over text[0..len) (source offsets are `base` + byte index),
 * appending code points to s->cp: clean_text, spaces around CJK ideographs,
 * NFD with nonspacing marks dropped, lowercase — in tokenizers' order.
 */
static ember_status normalize(const tokenizer *tok, const char *text, size_t len, int32_t base,
                              const int32_t *src_start, const int32_t *src_end, tokenizer_scratch *s,
                              int32_t *invalid) {
    const uint8_t *u = (const uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        int32_t cp;
        int bad = 0, n;
        if (u[i] < 0x80) {
            cp = u[i];
            n = 1;
        } else {
            n = utf8_decode(u + i, len - i, &cp, &bad);
        }
        int32_t start = src_start ? src_start[i] : base + (int32_t)i;
        int32_t end = src_end ? src_end[i + (size_t)n - 1] : base + (int32_t)(i + (size_t)n);
        i += (size_t)n;
        *invalid += bad;
        uint8_t cls = unicode_class(cp);
        if (tok->clean_text) {
            if (cls & UC_REMOVE) continue;
            if (cls & UC_SPACE) {
                cp = ' ';
                cls = unicode_class(' ');
            }
        }
        int cjk = tok->handle_chinese_chars && (cls & UC_CJK);
        if (cjk && !cp_push(s, ' ', start, end)) goto oom;
        if (tok->strip_accents && cp >= 0x80) {
            int32_t d[8];
            int nd = unicode_strip_exception(cp, d);
            if (nd < 0) nd = unicode_decompose(cp, d);
            for (int k = 0; k < nd; k++) {
                if (!cp_push(s, d[k], start, end)) goto oom;
            }
        } else if (!cp_push(s, cp, start, end)) {
            goto oom;
        }
        if (cjk && !cp_push(s, ' ', start, end)) goto oom;
    }
    return EMBER_OK;
oom:
    return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory normalising text");
}

/* NFD's canonical ordering of each run of combining marks, then the marks
 * strip_accents drops, then lowercase — on s->cp[from..). */
static ember_status finish_normalize(const tokenizer *tok, tokenizer_scratch *s, size_t from) {
    if (tok->strip_accents) {
        for (size_t i = from; i < s->n_cp; i++) {
            if (s->cp[i] < 0x300) continue;
            int ci = unicode_combining_class(s->cp[i]);
            if (ci == 0) continue;
            /* insertion sort by combining class (stable), within the run */
            size_t j = i;
            while (j > from && s->cp[j - 1] >= 0x300) {
                int cj = unicode_combining_class(s->cp[j - 1]);
                if (cj == 0 || cj <= ci) break;
                int32_t t = s->cp[j - 1];
                s->cp[j - 1] = s->cp[j];
                s->cp[j] = t;
                t = s->cp_start[j - 1];
                s->cp_start[j - 1] = s->cp_start[j];
                s->cp_start[j] = t;
                t = s->cp_end[j - 1];
                s->cp_end[j - 1] = s->cp_end[j];
                s->cp_end[j] = t;
                j--;
            }
        }
        size_t w = from;
        for (size_t i = from; i < s->n_cp; i++) {
            if (s->cp[i] >= 0x300 && (unicode_class(s->cp[i]) & UC_MN)) continue;
            s->cp[w] = s->cp[i];
            s->cp_start[w] = s->cp_start[i];
            s->cp_end[w] = s->cp_end[i];
            w++;
        }
        s->n_cp = w;
    }
    if (tok->lowercase) {
        for (size_t i = from; i < s->n_cp; i++) {
            int32_t cp = s->cp[i];
            if (cp < 0x80) {
                if (cp >= 'A' && cp <= 'Z') s->cp[i] = cp + 32;
                continue;
            }
            int32_t lo[3];
            int n = unicode_lowercase(cp, lo);
            s->cp[i] = lo[0];
            if (n > 1) {
                /* rare (U+0130): insert the extra code points after i */
                int32_t st = s->cp_start[i], en = s->cp_end[i];
                for (int k = 1; k < n; k++) {
                    if (!cp_push(s, 0, 0, 0)) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
                    size_t at = i + (size_t)k;
                    memmove(s->cp + at + 1, s->cp + at, (s->n_cp - 1 - at) * sizeof *s->cp);
                    memmove(s->cp_start + at + 1, s->cp_start + at, (s->n_cp - 1 - at) * sizeof *s->cp);
                    memmove(s->cp_end + at + 1, s->cp_end + at, (s->n_cp - 1 - at) * sizeof *s->cp);
                    s->cp[at] = lo[k];
                    s->cp_start[at] = st;
                    s->cp_end[at] = en;
                }
                i += (size_t)n - 1;
            }
        }
    }
    return EMBER_OK;
}

/* ---- pre-tokenisation and WordPiece ----------------------------------------- */

/* WordPiece on the word s->cp[a..b): greedy longest match from the left. */
static ember_status wordpiece(const tokenizer *tok, tokenizer_scratch *s, size_t a, size_t b,
                              piece_list *out) {
    size_t nchar = b - a;
    int32_t wstart = s->cp_start[a], wend = s->cp_end[b - 1];
    for (size_t k = a; k < b; k++) {
        if (s->cp_start[k] < wstart) wstart = s->cp_start[k];
        if (s->cp_end[k] > wend) wend = s->cp_end[k];
    }
    if (nchar > (size_t)tok->max_word_chars) {
        if (!piece_push(out, tok->unk_id, wstart, wend, 0)) goto oom;
        return EMBER_OK;
    }
    if (!vec_grow((void **)&s->word, &s->cap_word, nchar * 4 + 1, 1) ||
        !vec_grow((void **)&s->word_char, &s->cap_word_char, nchar + 1, sizeof(int32_t)))
        goto oom;
    size_t nb = 0;
    for (size_t k = 0; k < nchar; k++) {
        s->word_char[k] = (int32_t)nb;
        nb += (size_t)utf8_encode(s->cp[a + k], s->word + nb);
    }
    s->word_char[nchar] = (int32_t)nb;
    int32_t first = out->n;
    size_t start = 0;
    while (start < nchar) {
        size_t end = nchar;
        int32_t id = -1;
        const str_map *map = start == 0 ? &tok->vocab : &tok->continuation;
        /* longest match first; ends past the longest entry cannot match */
        while (end > start && (size_t)(s->word_char[end] - s->word_char[start]) > map->max_len) end--;
        while (end > start) {
            id = str_map_get(map, s->word + s->word_char[start],
                             (size_t)(s->word_char[end] - s->word_char[start]));
            if (id >= 0) break;
            end--;
        }
        if (id < 0) {
            out->n = first; /* the whole word becomes [UNK] */
            if (!piece_push(out, tok->unk_id, wstart, wend, 0)) goto oom;
            return EMBER_OK;
        }
        int32_t ps = s->cp_start[a + start], pe = s->cp_end[a + end - 1];
        for (size_t k = a + start; k < a + end; k++) {
            if (s->cp_start[k] < ps) ps = s->cp_start[k];
            if (s->cp_end[k] > pe) pe = s->cp_end[k];
        }
        if (!piece_push(out, id, ps, pe, 0)) goto oom;
        start = end;
    }
    return EMBER_OK;
oom:
    return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory in WordPiece");
}

/* BertPreTokenizer over s->cp[from..to): split on whitespace, isolate punctuation. */
static ember_status pretokenize(const tokenizer *tok, tokenizer_scratch *s, size_t from, size_t to,
                                piece_list *out) {
    size_t word = from;
    for (size_t i = from; i < to; i++) {
        uint8_t c = unicode_class(s->cp[i]);
        if (!(c & (UC_WS | UC_PUNCT))) continue;
        if (i > word) {
            ember_status st = wordpiece(tok, s, word, i, out);
            if (st) return st;
        }
        if (c & UC_PUNCT) {
            ember_status st = wordpiece(tok, s, i, i + 1, out);
            if (st) return st;
        }
        word = i + 1;
    }
    if (to > word) return wordpiece(tok, s, word, to, out);
    return EMBER_OK;
}

/* The longest normalized added token at s->cp[i..n), or -1. */
static int match_added_norm(const tokenizer *tok, const tokenizer_scratch *s, size_t i) {
    int best = -1;
    int32_t best_len = 0;
    for (int k = 0; k < tok->n_added; k++) {
        const added_token *a = &tok->added[k];
        if (!a->norm || a->n_norm <= best_len || (size_t)a->n_norm > s->n_cp - i) continue;
        if (memcmp(s->cp + i, a->norm, (size_t)a->n_norm * sizeof *a->norm) == 0) {
            best = k;
            best_len = a->n_norm;
        }
    }
    return best;
}

/* The normalised text s->cp[0..n_cp): the added tokens matched there
 * (normalized ones, as tokenizers matches them after normalising), and the
 * pre-tokenizer and WordPiece on the pieces between them. */
static ember_status split_normalized(const tokenizer *tok, tokenizer_scratch *s, piece_list *out) {
    size_t from = 0;
    for (size_t i = 0; tok->n_added_norm > 0 && i < s->n_cp; i++) {
        const int k = match_added_norm(tok, s, i);
        if (k < 0) continue;
        ember_status st = pretokenize(tok, s, from, i, out);
        if (st) return st;
        const size_t end = i + (size_t)tok->added[k].n_norm;
        int32_t a0 = s->cp_start[i], a1 = s->cp_end[i];
        for (size_t j = i; j < end; j++) {
            if (s->cp_start[j] < a0) a0 = s->cp_start[j];
            if (s->cp_end[j] > a1) a1 = s->cp_end[j];
        }
        if (!piece_push(out, tok->added[k].id, a0, a1, 0)) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        from = end;
        i = end - 1;
    }
    return pretokenize(tok, s, from, s->n_cp, out);
}

ember_status tokenizer_normalize(const tokenizer *tok, const char *text, size_t len, tokenizer_scratch *s,
                                 int32_t *invalid_utf8) {
    s->n_cp = 0;
    ember_status st = normalize(tok, text, len, 0, NULL, NULL, s, invalid_utf8);
    if (!st) st = finish_normalize(tok, s, 0);
    return st;
}

static ember_status encode_segment(const tokenizer *tok, const char *text, size_t len, int32_t base,
                                   const int32_t *src_start, const int32_t *src_end, piece_list *out,
                                   tokenizer_scratch *s) {
    s->n_cp = 0;
    ember_status st = normalize(tok, text, len, base, src_start, src_end, s, &out->invalid_utf8);
    if (!st) st = finish_normalize(tok, s, 0);
    if (!st) st = split_normalized(tok, s, out);
    return st;
}

/* The longest added token matched in the raw text at text[i..), or -1. */
static int match_added(const tokenizer *tok, const char *text, size_t len, size_t i) {
    int best = -1;
    size_t best_len = 0;
    for (int k = 0; k < tok->n_added; k++) {
        if (tok->added[k].norm) continue;
        size_t n = strlen(tok->added[k].text);
        if (n > best_len && n <= len - i && memcmp(text + i, tok->added[k].text, n) == 0) {
            best = k;
            best_len = n;
        }
    }
    return best;
}

/*
 * Python's str.lower() of the text, as sentence-transformers applies it when
 * its config says do_lower_case, with the source bytes of each output byte.
 * Final sigma (a capital sigma after a letter and not before one) becomes
 * U+03C2 as Python does; other context-dependent casing is not reproduced.
 * Invalid bytes pass through unchanged (the normaliser replaces them).
 */
static ember_status lower_input(const char *text, size_t len, tokenizer_scratch *s, size_t *out_len) {
    size_t need = len * 3 + 4;
    if (!vec_grow((void **)&s->lowered, &s->cap_lowered, need, 1)) goto oom;
    free(s->lowered_src);
    s->lowered_src = malloc(2 * s->cap_lowered * sizeof *s->lowered_src);
    if (!s->lowered_src) goto oom;
    int32_t *src_start = s->lowered_src, *src_end = s->lowered_src + s->cap_lowered;
    const uint8_t *u = (const uint8_t *)text;
    size_t i = 0, o = 0;
    int32_t prev = 0;
    while (i < len) {
        int32_t cp, lo[3];
        int bad, nl;
        int n = utf8_decode(u + i, len - i, &cp, &bad);
        if (bad) {
            for (int k = 0; k < n; k++) {
                s->lowered[o] = text[i + (size_t)k];
                src_start[o] = (int32_t)(i + (size_t)k);
                src_end[o++] = (int32_t)(i + (size_t)k + 1);
            }
            i += (size_t)n;
            prev = 0;
            continue;
        }
        if (cp == 0x3A3) {
            int32_t next = 0;
            int b2;
            if (i + (size_t)n < len) utf8_decode(u + i + n, len - i - (size_t)n, &next, &b2);
            nl = 1;
            lo[0] = unicode_is_letter(prev) && !unicode_is_letter(next) ? 0x3C2 : 0x3C3;
        } else {
            nl = unicode_lowercase(cp, lo);
        }
        for (int k = 0; k < nl; k++) {
            char b[4];
            int m = utf8_encode(lo[k], b);
            for (int q = 0; q < m; q++) {
                s->lowered[o] = b[q];
                src_start[o] = (int32_t)i;
                src_end[o++] = (int32_t)(i + (size_t)n);
            }
        }
        prev = cp;
        i += (size_t)n;
    }
    *out_len = o;
    return EMBER_OK;
oom:
    return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory lowercasing text");
}

/* Is cp whitespace as Rust's char::is_whitespace has it (or, with or_g,
 * U+0120, the byte-level space 'Ġ')? */
static int is_space(int32_t cp, int or_g) { return (unicode_class(cp) & UC_WS) || (or_g && cp == 0x120); }

/* The length of the character at text[p..len) when is_space, else 0. */
static size_t space_at(const char *text, size_t p, size_t len, int or_g) {
    int32_t cp;
    int bad;
    int n = utf8_decode((const uint8_t *)text + p, len - p, &cp, &bad);
    return !bad && is_space(cp, or_g) ? (size_t)n : 0;
}

/* The length of the character ending at text[p) (starting at lo or later)
 * when is_space, else 0. */
static size_t space_before(const char *text, size_t lo, size_t p, int or_g) {
    size_t q = p - 1;
    while (q > lo && p - q < 4 && ((uint8_t)text[q] & 0xC0) == 0x80) q--;
    return space_at(text, q, p, or_g) == p - q ? p - q : 0;
}

/* Where the added token `a` matched at text[i, i + its length) takes the
 * text: [*m0, *m1) with the whitespace lstrip / rstrip take (not before
 * lo, the end of the previous match), and its offsets [*o0, *o1): the same,
 * or with trim_offsets (RobertaProcessing) without leading and trailing
 * whitespace and 'Ġ' (tokenizers' byte-level process_offsets, on the
 * token's text). */
static void added_span(const tokenizer *tok, const added_token *a, const char *text, size_t len, size_t lo,
                       size_t i, size_t *m0, size_t *m1, size_t *o0, size_t *o1) {
    size_t b = i, e = i + strlen(a->text), n;
    while (a->lstrip && b > lo && (n = space_before(text, lo, b, 0)) > 0) b -= n;
    while (a->rstrip && e < len && (n = space_at(text, e, len, 0)) > 0) e += n;
    *m0 = *o0 = b;
    *m1 = *o1 = e;
    if (!tok->trim_offsets) return;
    while (*o0 < *o1 && (n = space_at(text, *o0, *o1, 1)) > 0) *o0 += n;
    while (*o1 > *o0 && (n = space_before(text, *o0, *o1, 1)) > 0) *o1 -= n;
}

ember_status tokenizer_encode(const tokenizer *tok, const char *text, size_t len, piece_list *out,
                              tokenizer_scratch *s) {
    const int32_t *src_start = NULL, *src_end = NULL;
    if (tok->lowercase_input) {
        size_t n = 0;
        ember_status st = lower_input(text, len, s, &n);
        if (st) return st;
        text = s->lowered;
        len = n;
        src_start = s->lowered_src;
        src_end = s->lowered_src + s->cap_lowered;
    }
    /* Split out the added (special) tokens written in the text, then run the
     * normaliser and pre-tokenizer on the pieces between them. */
    size_t seg = 0;
    for (size_t i = 0; i < len; i++) {
        if (!tok->added_first[(uint8_t)text[i]]) continue;
        int k = match_added(tok, text, len, i);
        if (k < 0) continue;
        size_t m0, m1, o0, o1;
        added_span(tok, &tok->added[k], text, len, seg, i, &m0, &m1, &o0, &o1);
        if (m0 > seg) {
            ember_status st = encode_segment(tok, text + seg, m0 - seg, (int32_t)seg,
                                             src_start ? src_start + seg : NULL,
                                             src_end ? src_end + seg : NULL, out, s);
            if (st) return st;
        }
        /* (a token trimmed to nothing: an empty span where its text ended) */
        int32_t a1 = src_end ? src_end[(o1 > o0 ? o1 : m1) - 1] : (int32_t)(o1 > o0 ? o1 : m1);
        int32_t a0 = o1 > o0 ? (src_start ? src_start[o0] : (int32_t)o0) : a1;
        /* Like tokenizers, special_tokens_mask marks only the template's
         * tokens, not special tokens written in the text. */
        if (!piece_push(out, tok->added[k].id, a0, a1, 0))
            return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        i = m1 - 1;
        seg = m1;
    }
    if (len > seg)
        return encode_segment(tok, text + seg, len - seg, (int32_t)seg,
                              src_start ? src_start + seg : NULL, src_end ? src_end + seg : NULL, out, s);
    return EMBER_OK;
}

int tokenizer_n_special(const tokenizer *tok, int pair) {
    const template_item *t = pair ? tok->pair : tok->single;
    int n = pair ? tok->n_pair : tok->n_single, count = 0;
    for (int i = 0; i < n; i++) count += t[i].sequence < 0;
    return count;
}

/* Keep n pieces: the first n, or the last n when left. */
static void piece_keep(piece_list *p, int32_t n, int left) {
    if (p->n <= n) return;
    if (left) {
        int32_t drop = p->n - n;
        memmove(p->ids, p->ids + drop, (size_t)n * sizeof *p->ids);
        memmove(p->start, p->start + drop, (size_t)n * sizeof *p->start);
        memmove(p->end, p->end + drop, (size_t)n * sizeof *p->end);
        memmove(p->special, p->special + drop, (size_t)n);
    }
    p->n = n;
}

void tokenizer_truncate(piece_list *a, piece_list *b, int32_t room, int left) {
    if (room < 0) room = 0;
    int32_t total = a->n + (b ? b->n : 0);
    if (total <= room) return;
    if (!b) {
        piece_keep(a, room, left);
        return;
    }
    /* tokenizers' LongestFirst for pairs, as it computes it */
    int32_t n1 = a->n, n2 = b->n;
    int swap = n1 > n2;
    if (swap) {
        int32_t t = n1;
        n1 = n2;
        n2 = t;
    }
    if (n1 > room) n2 = n1;
    else n2 = n1 > room - n1 ? n1 : room - n1;
    if (n1 + n2 > room) {
        n1 = room / 2;
        n2 = n1 + room % 2;
    }
    if (swap) {
        int32_t t = n1;
        n1 = n2;
        n2 = t;
    }
    piece_keep(a, n1, left);
    piece_keep(b, n2, left);
}

ember_status tokenizer_tokenize(const tokenizer *tok, tokenizer_scratch *scratch, piece_list *a, piece_list *b,
                                const char *text, size_t len, const char *pair, size_t pair_len, int add_special,
                                int truncate, int truncate_left, int32_t max_length, ember_token *out,
                                int32_t capacity, int32_t *n_out, ember_text_stats *stats) {
    a->n = 0;
    a->invalid_utf8 = 0;
    ember_status st = tokenizer_encode(tok, text, len, a, scratch);
    if (st) return st;
    if (pair) {
        b->n = 0;
        b->invalid_utf8 = 0;
        if ((st = tokenizer_encode(tok, pair, pair_len, b, scratch))) return st;
    }
    int32_t n_special = add_special ? tokenizer_n_special(tok, pair != NULL) : 0;
    int32_t untruncated = a->n + (pair ? b->n : 0) + n_special;
    if (truncate && untruncated > max_length)
        tokenizer_truncate(a, pair ? b : NULL, max_length - n_special, truncate_left);
    int32_t total = a->n + (pair ? b->n : 0) + n_special;
    if (stats) {
        stats->n_tokens = total;
        stats->n_tokens_untruncated = untruncated;
        stats->truncated = total < untruncated;
        stats->invalid_utf8 = a->invalid_utf8 + (pair ? b->invalid_utf8 : 0);
    }
    *n_out = total;
    if (total > capacity) return EMBER_ERR_BUFFER_TOO_SMALL;
    int32_t k = 0;
    const template_item *tpl = pair ? tok->pair : tok->single;
    int n_tpl = pair ? tok->n_pair : tok->n_single;
    static const template_item bare[2] = {{0, 0, 0}, {1, 0, 1}};
    if (!add_special) {
        tpl = bare;
        n_tpl = pair ? 2 : 1;
    }
    for (int i = 0; i < n_tpl; i++) {
        if (tpl[i].sequence < 0) {
            out[k++] = (ember_token){tpl[i].id, tpl[i].type_id, 1, 1, 0, 0};
            continue;
        }
        const piece_list *p = tpl[i].sequence == 0 ? a : b;
        for (int32_t j = 0; j < p->n; j++)
            out[k++] = (ember_token){p->ids[j], tpl[i].type_id, 1, p->special[j], p->start[j], p->end[j]};
    }
    return EMBER_OK;
}
