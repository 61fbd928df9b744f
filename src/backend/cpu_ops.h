/* The CPU reference ops (fp32). Each CUDA op in kernels/ has its twin here
 * with the same parameter order: outputs, inputs, sizes, and last the kernel
 * family to run (as a CUDA op takes its stream last). Shapes use the
 * letters of model/model.h.
 *
 * The kernel families (cpu_isa.h; one file each): portable C, and AVX2 and
 * AVX-512 where the processor has them (one binary serves every x86-64
 * machine); all compute the same fp32 arithmetic to rounding. The caller
 * picks one (cpu_kernels_best, or what ember_model_params says) and passes it
 * to every op; packed weights are laid out for the family that packed them.
 *
 * Threading: an op called outside an OpenMP parallel region opens its own
 * (the ops above the "inside a parallel region" line); the ops below it
 * share their work among the threads of the region they are called from
 * (orphaned `omp for`), so the backend runs a whole forward pass in one
 * region, and called outside any region they run on the calling thread. */
#ifndef EMBER_BACKEND_CPU_OPS_H
#define EMBER_BACKEND_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ember.h"
#include "model/model.h"

/* In order of preference: cpu_kernels_best takes the last one the processor runs. */
typedef enum { CPU_KERNELS_GENERIC = 0, CPU_KERNELS_AVX2, CPU_KERNELS_AVX512, CPU_KERNELS_COUNT } cpu_kernels;

/* The best family this processor runs (decided once per process). */
cpu_kernels cpu_kernels_best(void);
/* EMBER_OK when the processor runs family k, else EMBER_ERR_UNSUPPORTED
 * with a message naming the instructions it lacks. */
ember_status cpu_kernels_check(cpu_kernels k);
const char *cpu_kernels_name(cpu_kernels k);
/* 1 when family k gives a row the same bits whatever the rows around it. */
int cpu_kernels_batch_invariant(cpu_kernels k);

/* out = LayerNorm(word[ids] + pos_emb[pos] + type_emb[type_ids]) */
void embed_layernorm_cpu(float *out /* (T, C) */, const int32_t *ids, const int32_t *type_ids,
                         const int32_t *pos, const float *word /* (V, C) */, const float *pos_emb /* (P, C) */,
                         const float *type_emb /* (TV, C) */, const float *ln_w, const float *ln_b, float eps,
                         int32_t T, int32_t C, cpu_kernels k);

/* out = inp @ w^T (no bias): inp (T, K), w (N, K), out (T, N) */
void matmul_cpu(float *out, const float *inp, const float *w, int32_t T, int32_t K, int32_t N, cpu_kernels k);

/* out = LayerNorm(inp + bias + residual); out may alias residual */
void bias_residual_layernorm_cpu(float *out /* (T, C) */, const float *inp /* (T, C) */, const float *bias,
                                 const float *residual, const float *ln_w, const float *ln_b, float eps, int32_t T,
                                 int32_t C, cpu_kernels k);

/* out = act(inp + bias), in place allowed */
void bias_act_cpu(float *out /* (T, N) */, const float *inp, const float *bias, activation act, int32_t T, int32_t N,
                  cpu_kernels k);

/* Multi-head self-attention within each sequence of a packed batch.
 * qkv (T, 3C) holds [q | k | v] without their bias; bias (3C); rel_bias
 * NULL, or MPNet's relative position bias table (REL_BUCKETS, NH): the
 * score of query i for key j of a sequence gets rel_bias[rel_bucket(j - i)][h]
 * (model/model.h) after the 1 / sqrt(HS) scaling. */
void attention_cpu(float *out /* (T, C) */, const float *qkv, const float *bias, const float *rel_bias,
                   const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH, int32_t HS, cpu_kernels k);

/* One vector per sequence: cls / mean / max / mean_sqrt_len, then L2
 * normalisation (x / max(|x|, 1e-12), as torch's F.normalize) if asked. */
void pool_cpu(float *out /* (S, C) */, const float *hidden /* (T, C) */, const int32_t *cu_seqlens, int32_t S,
              int32_t C, ember_pooling pooling, int normalize, cpu_kernels k);

/* sentence-transformers' Dense on pooled vectors: out = act(inp @ w^T + bias),
 * bias NULL for none; out must not alias inp. */
void dense_cpu(float *out /* (S, N) */, const float *inp /* (S, K) */, const float *w /* (N, K) */,
               const float *bias /* (N) */, dense_activation act, int32_t S, int32_t K, int32_t N, cpu_kernels k);

/* ---- the fused forward's ops (no CUDA twin needed: the CUDA backend fuses
 * differently) — called inside a parallel region ------------------------------ */

/* No activation (for linear_cpu's act). */
#define CPU_ACT_NONE (-1)

/* A linear layer's weight w (N, K), as PyTorch stores it, in the layout
 * family k's linear_cpu reads: panels of output features, each (K, panel
 * width), zero-padded to a whole panel (AVX2, AVX-512), or w unchanged
 * (portable C). Sizes in floats; the packed tensor must be 64-byte aligned. */
size_t linear_packed_size(int32_t N, int32_t K, cpu_kernels k);
void linear_pack(float *packed, const float *w /* (N, K) */, int32_t N, int32_t K, cpu_kernels k);

/* out = act(inp @ w^T + bias) + residual, residual NULL for none, act an
 * `activation` or CPU_ACT_NONE; w as linear_pack left it. inp (T, K),
 * out and residual (T, N); out may alias residual, not inp. */
void linear_cpu(float *out, const float *inp, const float *w_packed, const float *bias, const float *residual,
                int act, int32_t T, int32_t K, int32_t N, cpu_kernels k);

/* linear_cpu's work for rows m0..m1 only, all on the calling thread (for a
 * forward pass that hands out blocks of rows itself). */
void linear_rows_cpu(float *out, const float *inp, const float *w_packed, const float *bias, const float *residual,
                     int act, int32_t m0, int32_t m1, int32_t K, int32_t N, cpu_kernels k);

/* layernorm_cpu for rows m0..m1, on the calling thread. */
void layernorm_rows_cpu(float *out, const float *inp, const float *ln_w, const float *ln_b, float eps, int32_t m0,
                        int32_t m1, int32_t C, cpu_kernels k);

/* out = LayerNorm(inp) row by row; in place allowed. */
void layernorm_cpu(float *out /* (T, C) */, const float *inp /* (T, C) */, const float *ln_w, const float *ln_b,
                   float eps, int32_t T, int32_t C, cpu_kernels k);

/* attention_cpu's work, shared among the region's threads by (sequence,
 * head); bias NULL when the product that made qkv added it already.
 * seq_order (S): the order to hand sequences out in, NULL for 0..S-1;
 * longest first keeps a long sequence from being the last item one thread
 * works on while the others wait. */
void attention_heads_cpu(float *out /* (T, C) */, const float *qkv /* (T, 3C) */, const float *bias /* (3C) */,
                         const float *rel_bias /* (REL_BUCKETS, NH) */, const int32_t *cu_seqlens, int32_t S,
                         int32_t NH, int32_t HS, const int32_t *seq_order, cpu_kernels k);

/* The ops keep per-thread scratch (freed when the thread ends). Each thread
 * of a region calls this first with the model's sizes and the longest
 * sequence of the batch, so that no op has to allocate; 0 when out of
 * memory. */
int cpu_scratch_reserve(int32_t C, int32_t FF, int32_t HS, int32_t max_seqlen, cpu_kernels k);

/* pool_cpu's work, shared among the region's threads by sequence. */
void pool_rows_cpu(float *out /* (S, C) */, const float *hidden /* (T, C) */, const int32_t *cu_seqlens, int32_t S,
                   int32_t C, ember_pooling pooling, int normalize, cpu_kernels k);

/* embed_layernorm_cpu's work, shared among the region's threads by token. */
void embed_layernorm_rows_cpu(float *out /* (T, C) */, const int32_t *ids, const int32_t *type_ids,
                              const int32_t *pos, const float *word, const float *pos_emb, const float *type_emb,
                              const float *ln_w, const float *ln_b, float eps, int32_t T, int32_t C, cpu_kernels k);

#endif
