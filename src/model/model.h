/* A model directory as published on the Hugging Face Hub: config.json,
 * model.safetensors, the tokenizer, and sentence-transformers' modules. */
#ifndef EMBER_MODEL_MODEL_H
#define EMBER_MODEL_MODEL_H

#include <stdint.h>

#include "ember.h"
#include "safetensors.h"

typedef enum { ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU } activation;

/*
 * Dimension letters used across ember:
 *   T  tokens in a packed batch      S  sequences in the batch
 *   C  hidden size                   NH attention heads, HS = C / NH head size
 *   FF intermediate (FFN) size       V  vocabulary size, P positions, TV token types
 *   (not I: <complex.h>, which cblas.h pulls in, defines it)
 *   L  layers
 */
typedef struct {
    int32_t V, C, L, NH, HS, FF, P, TV;
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
    const st_tensor *word, *pos, *type; /* (V, C), (P, C), (TV, C) */
    const st_tensor *ln_w, *ln_b;       /* (C) */
    bert_layer_tensors *layers;         /* L */
} bert_tensors;

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
} model_files;

ember_status model_files_open(model_files *mf, const char *dir);
void model_files_close(model_files *mf);

/* config.json alone (also used by tests on broken files). */
ember_status bert_config_load(bert_config *cfg, const char *path);

#endif
