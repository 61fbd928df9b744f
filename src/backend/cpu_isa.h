/* The kernels of one instruction-set family, as cpu_ops.c dispatches to them.
 * Internal to src/backend/cpu_*.c: one file per family (cpu_generic.c,
 * cpu_avx2.c, cpu_avx512.c), each compiled for its own instructions and
 * entered only when the processor has them.
 *
 * Every family computes the same fp32 arithmetic to rounding. A family whose
 * products sum each output in a fixed order, whatever the rows around it
 * (batch_invariant), gives a text the same bits in any batch. */
#ifndef EMBER_BACKEND_CPU_ISA_H
#define EMBER_BACKEND_CPU_ISA_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct {
    const char *name;
    int batch_invariant;
    /* The matrix product's geometry: weights are packed in panels of `nr`
     * output features, each (K, nr), zero-padded to a whole panel (packed),
     * or kept as PyTorch stores them (not packed; the tiles still follow the
     * nr grid); a tile, one thread's unit of work, is up to tile_rows rows. */
    int packed;
    int32_t nr, tile_rows;

    void (*layernorm_row)(float *out, const float *x, const float *w, const float *b, float eps, int32_t C);
    /* row = word + pos + type */
    void (*embed_row)(float *row, const float *word, const float *pos, const float *type, int32_t C);
    /* row = x + bias + r */
    void (*bias_residual_row)(float *row, const float *x, const float *bias, const float *r, int32_t C);
    /* y = act(x + bias), act an `activation` or CPU_ACT_NONE */
    void (*bias_act_row)(float *y, const float *x, const float *bias, int act, int32_t N);
    /* out[m0..m1, panels p0..p1] = act(inp @ w^T + bias) + res (res NULL: none);
     * m1 - m0 <= tile_rows; scratch: cpu_linear_scratch floats. */
    void (*linear_tile)(float *out, const float *inp, const float *w, const float *bias, const float *res, int act,
                        int32_t m0, int32_t m1, int32_t p0, int32_t p1, int32_t K, int32_t N, float *scratch);
    /* One (sequence, head) of attention: tokens t0..t0+L-1, head h; bias
     * (3C) or NULL; pos_bias NULL, or the relative position bias by offset:
     * the score of query i for key j (0 <= i, j < L) gets pos_bias[j - i]
     * after scaling, and pos_bias[L .. L + 30] may be read (zeros; vector
     * tails); scratch: cpu_attention_scratch floats. 0 when this family
     * does not handle the head size (the portable code then does). */
    int (*attention_head)(float *out, const float *qkv, const float *bias, const float *pos_bias, int32_t t0,
                          int32_t L, int32_t h, int32_t NH, int32_t HS, float *scratch);
} cpu_isa;

extern const cpu_isa cpu_isa_generic;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EMBER_X86_KERNELS 1
extern const cpu_isa cpu_isa_avx2;
extern const cpu_isa cpu_isa_avx512;
#endif

/* Scratch sizes in floats, enough for every family. */
size_t cpu_linear_scratch(const cpu_isa *isa, int32_t K, int32_t N);
size_t cpu_attention_scratch(int32_t L, int32_t HS);

/* The portable scalar functions, for the families' tails and fallbacks. */
float cpu_act_scalar(float v, int act);
void cpu_layernorm_row_generic(float *out, const float *x, const float *w, const float *b, float eps, int32_t C);
int cpu_attention_head_generic(float *out, const float *qkv, const float *bias, const float *pos_bias, int32_t t0,
                               int32_t L, int32_t h, int32_t NH, int32_t HS, float *scratch);

#endif
