/* The model object behind the public API, shared with the CLI-independent
 * parts of the library (and with white-box tests). */
#ifndef EMBER_INTERNAL_H
#define EMBER_INTERNAL_H

#include <pthread.h>

#include "backend/backend.h"
#include "ember.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

struct ember_model {
    char name[256];
    model_files files; /* configuration; the tensors are released after load */
    tokenizer tok;
    int32_t max_length;
    backend *be;
    int32_t max_tokens;
    /* encode state, guarded by lock */
    pthread_mutex_t lock;
    int lock_ready;
    tokenizer_scratch scratch;
    piece_list pieces_a, pieces_b;
    ember_token *seq_tokens; /* (max_tokens) */
    int32_t *ids, *type_ids, *pos, *cu_seqlens;
    int32_t batch_T, batch_S, max_seqlen;
    int32_t *pool_skip; /* (max_tokens): per sequence of the batch, tokens left out of pooling */
    int32_t batch_skips; /* 1 when some pool_skip of the batch is > 0 */
    float *post_buf; /* two (S, widest) buffers for the modules after pooling */
    size_t post_cap; /* floats */
    float *pool_hidden; /* (max_tokens, C): hidden states pooled on the host, when a prompt is left out */
    char *prompt_buf;   /* prompt + text, joined */
    size_t prompt_cap;
};

/* Tokenize text (and pair) into out[capacity] with the model's template;
 * *n_out is the count (also when it does not fit: EMBER_ERR_BUFFER_TOO_SMALL,
 * with no message set). */
ember_status model_tokenize(const ember_model *m, tokenizer_scratch *scratch, piece_list *a, piece_list *b,
                            const char *text, size_t len, const char *pair, size_t pair_len, int add_special,
                            int truncate, int truncate_left, int32_t max_length, ember_token *out, int32_t capacity,
                            int32_t *n_out, ember_text_stats *stats);

#endif
