/* What the CUDA backend decides on the host before any CUDA call: whether
 * the kernels support a model, the parameter slab (offsets, the weights in
 * the compute dtype, q/k/v stacked for one GEMM), the activation workspace
 * sized from the token budget, and the staging of a packed batch. Plain C
 * with no CUDA call in it, so all of it is tested without a GPU. */
#ifndef EMBER_BACKEND_CUDA_LAYOUT_H
#define EMBER_BACKEND_CUDA_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "ember.h"
#include "model/model.h"

/* Every buffer in the device slabs starts on this boundary (cuBLAS and the
 * 16-byte vector loads need far less; 256 is what cudaMalloc gives). */
#define CUDA_SLAB_ALIGN 256
/* The most tokens one forward may take (keeps every size far from overflow). */
#define CUDA_MAX_TOKENS (1 << 22)

size_t dtype_size(ember_dtype dtype);

/* n values from fp32 into dtype (out holds n * dtype_size bytes), and back. */
void f32_to_dtype(void *out, const float *in, size_t n, ember_dtype dtype);
void dtype_to_f32(float *out, const void *in, size_t n, ember_dtype dtype);
/* x as the nearest value dtype holds. */
float dtype_round(float x, ember_dtype dtype);

/* EMBER_OK when the kernels handle this model in this dtype with this token
 * budget; otherwise EMBER_ERR_UNSUPPORTED / EMBER_ERR_INVALID_ARGUMENT with a
 * message naming the limit. */
ember_status cuda_config_check(const bert_config *cfg, ember_dtype dtype, int32_t max_tokens);

/* Byte offsets into the parameter slab, all in the compute dtype. */
typedef struct {
    size_t wqkv, bqkv; /* (3C, C), (3C): rows of q, then k, then v */
    size_t wo, bo, ln1_w, ln1_b, w1, b1, w2, b2, ln2_w, ln2_b;
} cuda_layer_offsets;

typedef struct {
    ember_dtype dtype;
    size_t word, pos, type, ln_w, ln_b; /* (V, C), (P, C), (TV, C), (C), (C) */
    size_t rel_bias;                    /* (NB, NH) fp32 whatever the dtype: MPNet's relative position bias,
                                           of which the attention kernels read the first REL_BUCKETS rows */
    int has_rel_bias;                   /* 0: the model has none (rel_bias is no offset) */
    cuda_layer_offsets *layers;         /* (L) */
    size_t bytes;                       /* the whole slab */
} cuda_param_layout;

ember_status cuda_param_layout_init(cuda_param_layout *lay, const bert_config *cfg, ember_dtype dtype);
void cuda_param_layout_free(cuda_param_layout *lay);
/* Fill slab (lay->bytes, host memory) with every weight converted to the
 * layout's dtype; bytes between tensors are zeroed. */
ember_status cuda_params_pack(uint8_t *slab, const cuda_param_layout *lay, const bert_config *cfg,
                              const bert_tensors *w);

/* Byte offsets into the activation slab, sized for max_tokens. */
typedef struct {
    int32_t max_tokens;
    size_t x;     /* (T, C) dtype: the residual stream */
    size_t qkv;   /* (T, 3C) dtype */
    size_t att;   /* (T, C) dtype */
    size_t tmp;   /* (T, C) dtype: projections before bias + residual + LayerNorm */
    size_t ff;    /* (T, FF) dtype */
    size_t out32; /* (T, C) fp32: hidden states or pooled vectors on their way out */
    size_t ints;  /* cuda_batch_ints(max_tokens, max_tokens) int32: the staged batch */
    size_t bytes;
} cuda_workspace_layout;

void cuda_workspace_layout_init(cuda_workspace_layout *ws, const bert_config *cfg, ember_dtype dtype,
                                int32_t max_tokens);

/* The staged batch is one int32 array [ids (T) | type_ids (T) | pos (T) |
 * cu_seqlens (S + 1)], copied to the device in one transfer. */
static inline size_t cuda_batch_ints(int32_t T, int32_t S) { return 3 * (size_t)T + (size_t)S + 1; }

/* Check a packed batch against the model and the token budget (ids, types
 * and positions in range, cu_seqlens from 0 to T without an empty
 * sequence); *max_seqlen is the longest sequence, recomputed. */
ember_status cuda_batch_check(const packed_batch *b, const bert_config *cfg, int32_t max_tokens,
                              int32_t *max_seqlen);
/* Copy the batch into ints (cuda_batch_ints(T, S) entries). */
void cuda_batch_stage(int32_t *ints, const packed_batch *b);

#endif
