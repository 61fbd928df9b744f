/* The CPU reference ops (fp32). Each CUDA op in kernels/ has its twin here
 * with the same parameter order: outputs, inputs, sizes. Shapes use the
 * letters of model/model.h. */
#ifndef EMBER_BACKEND_CPU_OPS_H
#define EMBER_BACKEND_CPU_OPS_H

#include <stdint.h>

#include "model/model.h"

/* out = LayerNorm(word[ids] + pos_emb[pos] + type_emb[type_ids]) */
void embed_layernorm_cpu(float *out /* (T, C) */, const int32_t *ids, const int32_t *type_ids,
                         const int32_t *pos, const float *word /* (V, C) */, const float *pos_emb /* (P, C) */,
                         const float *type_emb /* (TV, C) */, const float *ln_w, const float *ln_b, float eps,
                         int32_t T, int32_t C);

/* out = inp @ w^T (no bias): inp (T, K), w (N, K), out (T, N) */
void matmul_cpu(float *out, const float *inp, const float *w, int32_t T, int32_t K, int32_t N);

/* out = LayerNorm(inp + bias + residual); out may alias residual */
void bias_residual_layernorm_cpu(float *out /* (T, C) */, const float *inp /* (T, C) */, const float *bias,
                                 const float *residual, const float *ln_w, const float *ln_b, float eps, int32_t T,
                                 int32_t C);

/* out = act(inp + bias), in place allowed */
void bias_act_cpu(float *out /* (T, N) */, const float *inp, const float *bias, activation act, int32_t T, int32_t N);

/* Multi-head self-attention within each sequence of a packed batch.
 * qkv (T, 3C) holds [q | k | v] without their bias; bias (3C). */
void attention_cpu(float *out /* (T, C) */, const float *qkv, const float *bias, const int32_t *cu_seqlens,
                   int32_t S, int32_t max_seqlen, int32_t NH, int32_t HS);

/* One vector per sequence: cls / mean / max / mean_sqrt_len, then L2
 * normalisation (x / max(|x|, 1e-12), as torch's F.normalize) if asked. */
void pool_cpu(float *out /* (S, C) */, const float *hidden /* (T, C) */, const int32_t *cu_seqlens, int32_t S,
              int32_t C, ember_pooling pooling, int normalize);

#endif
