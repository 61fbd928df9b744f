/* A model directory as published on the Hugging Face Hub: config.json,
 * model.safetensors, the tokenizer, and sentence-transformers' modules. */
#ifndef EMBER_MODEL_MODEL_H
#define EMBER_MODEL_MODEL_H

#include <stdint.h>

#include "ember.h"
#include "safetensors.h"

typedef enum { ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU } activation;

/* The encoder families ember runs (config.json's model_type). */
typedef enum {
    ARCH_BERT = 0, /* BERT and its sentence-transformers forms (MiniLM, bge, ...): absolute positions */
    ARCH_MPNET     /* MPNet: relative position bias, RoBERTa-style positions, no token types */
} architecture;

/* "bert", "mpnet" */
const char *architecture_name(architecture a);
/* What ember runs, for messages and `ember info`: "bert (BertModel, ...), mpnet (MPNetModel, ...)". */
extern const char MODEL_ARCHITECTURES[];

/*
 * Dimension letters used across ember:
 *   T  tokens in a packed batch      S  sequences in the batch
 *   C  hidden size                   NH attention heads, HS = C / NH head size
 *   FF intermediate (FFN) size       V  vocabulary size, P positions, TV token types
 *   (not I: <complex.h>, which cblas.h pulls in, defines it)
 *   L  layers
 */
typedef struct {
    architecture arch;
    int32_t V, C, L, NH, HS, FF, P, TV; /* TV is 1 for a model without token types (MPNet) */
    int32_t max_len; /* tokens one sequence may hold: P, less pad_id + 1 where positions start there */
    int32_t pad_id;  /* MPNet: the padding id; a token's position is pad_id + 1 + the count of non-padding
                        tokens before it (RoBERTa style), pad_id for a padding token. -1: positions are
                        0, 1, 2, ... */
    int32_t NB;      /* relative attention buckets of the bias table (MPNet); 0: none */
    float ln_eps;
    activation act;
    char act_name[32];
} bert_config;

/* The weight tensors of a BertModel, pointing into the mapped file.
 * Linear weights are (out, in), as PyTorch stores them. */
typedef struct {
    const st_tensor *wq, *bq, *wk, *bk, *wv, *bv; /* (C, C), (C) */
    const st_tensor *wo, *bo;                     /* attention output (C, C), (C) */
    const st_tensor *ln1_w, *ln1_b;               /* after attention (C) */
    const st_tensor *w1, *b1;                     /* FFN up (FF, C), (FF) */
    const st_tensor *w2, *b2;                     /* FFN down (C, FF), (C) */
    const st_tensor *ln2_w, *ln2_b;               /* after the FFN (C) */
} bert_layer_tensors;

typedef struct {
    const st_tensor *word, *pos, *type; /* (V, C), (P, C), (TV, C); type NULL: no token types (MPNet) */
    const st_tensor *ln_w, *ln_b;       /* (C) */
    const st_tensor *rel_bias;          /* (NB, NH): MPNet's relative position bias, one table for every
                                           layer; NULL: none */
    bert_layer_tensors *layers;         /* L */
} bert_tensors;

/*
 * MPNet's relative position bias: the attention score of query i for key j
 * (positions within their sequence) gets rel_bias[rel_bucket(j - i)][h],
 * added after the 1 / sqrt(HS) scaling. transformers buckets with 32 buckets
 * and a largest distance of 128 whatever config.json says
 * (relative_attention_num_buckets only sizes the table): keys after the
 * query take buckets 16..31, those at or before it 0..15; distances under 8
 * have a bucket each, longer ones share logarithmic buckets up to 15.
 */
#define REL_BUCKETS 32
int32_t rel_bucket(int32_t d);

/* The position ids of one sequence of n ids (with its special tokens), as
 * cfg's architecture numbers them (see bert_config.pad_id). */
void model_position_ids(const bert_config *cfg, const int32_t *ids, int32_t n, int32_t *pos);

/* sentence-transformers' Dense: out = act(W x + b) on the pooled vector. */
typedef enum { DENSE_IDENTITY, DENSE_TANH, DENSE_RELU, DENSE_GELU, DENSE_SIGMOID } dense_activation;

/* A module that runs after pooling, in modules.json's order: a Dense, or an
 * L2 normalisation followed by more modules (a Normalize that ends the list
 * is model_files.normalize instead, so that callers can turn it off). */
typedef struct {
    enum { POST_DENSE, POST_NORMALIZE } kind;
    char name[64];          /* its folder in the model directory: "2_Dense" */
    int32_t in, out;        /* widths: K and N of the product */
    dense_activation act;
    float *w;               /* (out, in) fp32, as PyTorch stores it */
    float *b;               /* (out), or NULL for bias=false */
} post_module;

/* Everything a model directory says, before any backend exists. */
typedef struct {
    char dir[4096];
    bert_config cfg;
    safetensors_file st;
    bert_tensors tensors;
    ember_pooling pooling; /* never DEFAULT here */
    int normalize;
    int32_t max_seq_length;  /* sentence_bert_config.json (0: none) */
    int lowercase_input;     /* sentence_bert_config.json do_lower_case */
    post_module *post;       /* after pooling (n_post; NULL when none) */
    int32_t n_post;
    int32_t out_dim;         /* the pooled vector's width after them (C when none) */
    char modules[512];       /* what modules.json runs after the Transformer, as ember runs it:
                                "Pooling(mean) Dense(64->48, Tanh) Normalize"; "" for none */
    int32_t n_labels;        /* a cross-encoder (BertForSequenceClassification): its classes, whose
                                logits are the pooled vector (out_dim == n_labels); 0: an encoder */
    char **labels;           /* n_labels names, config.json's id2label ("LABEL_0", ...) */
    int include_prompt;      /* Pooling's include_prompt (default 1); 0: a prompt's tokens are left
                                out of pooling */
    /* config_sentence_transformers.json: prompts (name -> text, in the file's order) and
     * default_prompt_name (NULL: none) */
    char **prompt_names, **prompt_texts;
    int32_t n_prompts;
    char *default_prompt_name;
    char prompt_list[512];   /* the names, ", "-separated, for messages and ember_model_info */
} model_files;

ember_status model_files_open(model_files *mf, const char *dir);
/* The text of the prompt `name` (NULL: none of that name). */
const char *model_files_prompt(const model_files *mf, const char *name);
void model_files_close(model_files *mf);

/* config.json alone (also used by tests on broken files). */
ember_status bert_config_load(bert_config *cfg, const char *path);

#endif
