/* BERT tokenization exactly as Hugging Face `tokenizers` does it:
 * BertNormalizer, BertPreTokenizer, WordPiece and the BERT or RoBERTa
 * post-processor (MPNet's), with the special tokens of the text split out
 * first (added tokens: in the raw text, or in the normalised text for
 * normalized ones; lstrip / rstrip). */
#ifndef EMBER_TOKENIZER_TOKENIZER_H
#define EMBER_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "ember.h"

/* An open-addressing map from byte strings to ids. */
typedef struct {
    uint32_t *slots; /* index + 1 into keys, 0 = empty */
    uint32_t mask;
    const char **keys;
    uint32_t *key_len;
    int32_t *ids;
    uint32_t n, cap;
    uint32_t max_len; /* the longest key, in bytes: no longer key can match */
} str_map;

typedef struct {
    char *text;
    int32_t id;
    int special;
    int lstrip, rstrip; /* the match takes the whitespace to its left / right with it */
    int32_t *norm;      /* normalized: NULL, else the content as the normaliser leaves it (n_norm code
                           points), matched in the normalised text instead of the raw text */
    int32_t n_norm;
} added_token;

/* One item of the post-processor's template: a special token or a sequence. */
typedef struct {
    int sequence;     /* -1: the special token `id`; 0: sequence A; 1: sequence B */
    int32_t id;
    int32_t type_id;
} template_item;

typedef struct {
    /* BertNormalizer */
    int clean_text, handle_chinese_chars, strip_accents, lowercase;
    /* sentence-transformers' do_lower_case: Python str.lower() on the text first */
    int lowercase_input;
    /* WordPiece */
    str_map vocab;        /* every vocabulary entry */
    str_map continuation; /* entries starting with the prefix, keyed without it */
    char prefix[16];
    int32_t unk_id;
    int32_t max_word_chars;
    char **id_text; /* id -> entry (NULL for unused ids) */
    int32_t n_ids;
    added_token *added; /* matched in the raw text before normalisation (or in the normalised text) */
    int n_added, n_added_norm;
    uint8_t added_first[256]; /* 1 for the first byte of an added token matched in the raw text */
    /* post-processor */
    template_item single[8], pair[16];
    int n_single, n_pair;
    int trim_offsets; /* RobertaProcessing: offsets leave out a token's leading and trailing whitespace */
    int32_t pad_id;
    int32_t model_max_length; /* from the tokenizer files; 0: unknown */
} tokenizer;

/* Load tokenizer.json when the directory has one, else vocab.txt with
 * tokenizer_config.json (and special_tokens_map.json). */
ember_status tokenizer_load_dir(tokenizer *tok, const char *dir);
/* Load a vocab.txt with explicit BertNormalizer flags (tests, tools). */
ember_status tokenizer_load_vocab(tokenizer *tok, const char *vocab_path, int lowercase,
                                  int strip_accents, int handle_chinese_chars);
void tokenizer_free(tokenizer *tok);

/* Tokens of one text without special tokens: ids and byte offsets. */
typedef struct {
    int32_t *ids;
    int32_t *start, *end;
    uint8_t *special; /* 0 for every piece of the text (see tokenizer_encode) */
    int32_t n, cap;
    int32_t invalid_utf8;
} piece_list;

/* Scratch space reused across calls (one per thread). */
typedef struct {
    int32_t *cp, *cp_start, *cp_end; /* normalised code points and their source bytes */
    size_t n_cp, cap_cp;
    char *word;                      /* one word as UTF-8 */
    int32_t *word_char;              /* byte offset in `word` of each of its chars (+ end) */
    size_t cap_word, cap_word_char;
    char *lowered;                   /* the text after lowercase_input */
    int32_t *lowered_src;            /* source [start, end) of each byte of `lowered`:
                                        starts, then ends at + cap_lowered */
    size_t cap_lowered;
} tokenizer_scratch;

void tokenizer_scratch_free(tokenizer_scratch *s);
void piece_list_free(piece_list *p);

/* BertNormalizer alone: the normalised code points of text into s->cp[0..n_cp),
 * with their source byte ranges in s->cp_start / s->cp_end. */
ember_status tokenizer_normalize(const tokenizer *tok, const char *text, size_t len, tokenizer_scratch *s,
                                 int32_t *invalid_utf8);

/* Append the tokens of text[0..len) to out (offsets relative to text). */
ember_status tokenizer_encode(const tokenizer *tok, const char *text, size_t len,
                              piece_list *out, tokenizer_scratch *scratch);

/* Cut a and b (b may be NULL) to `room` tokens together, tokenizers'
 * "longest_first" strategy, from the end (or the start when left). */
void tokenizer_truncate(piece_list *a, piece_list *b, int32_t room, int left);

/*
 * The whole pipeline for one text (and optionally a pair): tokens, then
 * truncation to max_length (when truncate), then the template's special
 * tokens (when add_special). Truncation cuts from the end, or from the
 * start when truncate_left. Writes up to capacity tokens to out; *n_out is
 * the count needed, and EMBER_ERR_BUFFER_TOO_SMALL (no message set) when it
 * does not fit. a and b are scratch lists.
 */
ember_status tokenizer_tokenize(const tokenizer *tok, tokenizer_scratch *scratch, piece_list *a, piece_list *b,
                                const char *text, size_t len, const char *pair, size_t pair_len, int add_special,
                                int truncate, int truncate_left, int32_t max_length, ember_token *out,
                                int32_t capacity, int32_t *n_out, ember_text_stats *stats);

/* Special tokens the template adds around one text (pair: two texts). */
int tokenizer_n_special(const tokenizer *tok, int pair);

int32_t str_map_get(const str_map *m, const char *key, size_t len);
/* Build tok->vocab and tok->continuation from tok->id_text. */
ember_status tokenizer_index_vocab(tokenizer *tok);

#endif
