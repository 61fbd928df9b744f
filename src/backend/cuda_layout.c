#include "cuda_layout.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/attention.cuh"
#include "kernels/layernorm.cuh"
#include "common/error.h"

size_t dtype_size(ember_dtype dtype) { return dtype == EMBER_DTYPE_FP32 ? 4 : 2; }

void f32_to_dtype(void *out, const float *in, size_t n, ember_dtype dtype) {
    if (dtype == EMBER_DTYPE_FP32) {
        memcpy(out, in, n * sizeof(float));
        return;
    }
    uint16_t *o = out;
    if (dtype == EMBER_DTYPE_FP16)
        for (size_t i = 0; i < n; i++) o[i] = f16_from_f32(in[i]);
    else
        for (size_t i = 0; i < n; i++) o[i] = bf16_from_f32(in[i]);
}

void dtype_to_f32(float *out, const void *in, size_t n, ember_dtype dtype) {
    if (dtype == EMBER_DTYPE_FP32) {
        memcpy(out, in, n * sizeof(float));
        return;
    }
    const uint16_t *p = in;
    if (dtype == EMBER_DTYPE_FP16)
        for (size_t i = 0; i < n; i++) out[i] = f16_to_f32(p[i]);
    else
        for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(p[i]);
}

float dtype_round(float x, ember_dtype dtype) {
    switch (dtype) {
    case EMBER_DTYPE_FP16: return f16_to_f32(f16_from_f32(x));
    case EMBER_DTYPE_BF16: return bf16_to_f32(bf16_from_f32(x));
    default: return x;
    }
}


ember_status cuda_config_check(const bert_config *c, ember_dtype dtype, int32_t max_tokens) {
    if (dtype != EMBER_DTYPE_FP32 && dtype != EMBER_DTYPE_FP16 && dtype != EMBER_DTYPE_BF16)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "CUDA backend: unknown dtype %d", (int)dtype);
    if (max_tokens < 1 || max_tokens > CUDA_MAX_TOKENS)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "CUDA backend: max_batch_tokens %d is outside [1, %d]",
                          max_tokens, CUDA_MAX_TOKENS);
    if (c->C <= 0 || c->NH <= 0 || c->HS <= 0 || c->NH * c->HS != c->C || c->FF <= 0 || c->L < 0 || c->V <= 0 ||
        c->P <= 0 || c->TV <= 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                          "CUDA backend: inconsistent config (hidden %d, heads %d x %d, intermediate %d)", c->C, c->NH,
                          c->HS, c->FF);
    if (c->C % 8 != 0 || c->C > LAYERNORM_MAX_C)
        return ember_fail(EMBER_ERR_UNSUPPORTED,
                          "CUDA backend: hidden size %d is not supported (a multiple of 8, at most %d); use "
                          "--device cpu",
                          c->C, LAYERNORM_MAX_C);
    if (c->HS % 8 != 0 || c->HS > ATTENTION_MAX_HS)
        return ember_fail(EMBER_ERR_UNSUPPORTED,
                          "CUDA backend: head size %d is not supported (a multiple of 8, at most %d); use --device cpu",
                          c->HS, ATTENTION_MAX_HS);
    if (c->FF % 8 != 0)
        return ember_fail(EMBER_ERR_UNSUPPORTED,
                          "CUDA backend: intermediate size %d is not a multiple of 8; use --device cpu", c->FF);
    if (c->act != ACT_GELU_ERF && c->act != ACT_GELU_TANH && c->act != ACT_RELU)
        return ember_fail(EMBER_ERR_UNSUPPORTED, "CUDA backend: activation '%s' is not supported", c->act_name);
    return EMBER_OK;
}

/* Take `elems` elements of dtype at the slab's end, aligned. */
static size_t slab_take(size_t *end, size_t elems, size_t es) {
    size_t off = (*end + CUDA_SLAB_ALIGN - 1) / CUDA_SLAB_ALIGN * CUDA_SLAB_ALIGN;
    *end = off + elems * es;
    return off;
}

ember_status cuda_param_layout_init(cuda_param_layout *lay, const bert_config *c, ember_dtype dtype) {
    memset(lay, 0, sizeof *lay);
    lay->dtype = dtype;
    const size_t es = dtype_size(dtype), C = (size_t)c->C, FF = (size_t)c->FF;
    lay->layers = calloc(c->L > 0 ? (size_t)c->L : 1, sizeof *lay->layers);
    if (!lay->layers) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    size_t end = 0;
    lay->word = slab_take(&end, (size_t)c->V * C, es);
    lay->pos = slab_take(&end, (size_t)c->P * C, es);
    lay->type = slab_take(&end, (size_t)c->TV * C, es);
    lay->ln_w = slab_take(&end, C, es);
    lay->ln_b = slab_take(&end, C, es);
    if (c->NB > 0) {
        lay->rel_bias = slab_take(&end, (size_t)c->NB * (size_t)c->NH, sizeof(float)); /* kernels read 32 rows */
        lay->has_rel_bias = 1;
    }
    for (int32_t l = 0; l < c->L; l++) {
        cuda_layer_offsets *o = &lay->layers[l];
        o->wqkv = slab_take(&end, 3 * C * C, es);
        o->bqkv = slab_take(&end, 3 * C, es);
        o->wo = slab_take(&end, C * C, es);
        o->bo = slab_take(&end, C, es);
        o->ln1_w = slab_take(&end, C, es);
        o->ln1_b = slab_take(&end, C, es);
        o->w1 = slab_take(&end, FF * C, es);
        o->b1 = slab_take(&end, FF, es);
        o->w2 = slab_take(&end, C * FF, es);
        o->b2 = slab_take(&end, C, es);
        o->ln2_w = slab_take(&end, C, es);
        o->ln2_b = slab_take(&end, C, es);
    }
    lay->bytes = (end + CUDA_SLAB_ALIGN - 1) / CUDA_SLAB_ALIGN * CUDA_SLAB_ALIGN;
    return EMBER_OK;
}

void cuda_param_layout_free(cuda_param_layout *lay) {
    free(lay->layers);
    lay->layers = NULL;
}

/* Convert tensor t (numel elements expected) into the slab at off. */
static ember_status put(uint8_t *slab, size_t off, const st_tensor *t, int64_t numel, float *scratch,
                        ember_dtype dtype) {
    if (!t) return ember_fail(EMBER_ERR_FORMAT, "CUDA backend: a weight tensor is missing");
    if (t->numel != numel)
        return ember_fail(EMBER_ERR_FORMAT, "tensor '%s' has %lld elements, expected %lld", t->name,
                          (long long)t->numel, (long long)numel);
    ember_status st = st_tensor_to_f32(t, scratch);
    if (st) return st;
    f32_to_dtype(slab + off, scratch, (size_t)numel, dtype);
    return EMBER_OK;
}

ember_status cuda_params_pack(uint8_t *slab, const cuda_param_layout *lay, const bert_config *c,
                              const bert_tensors *w) {
    const int64_t V = c->V, C = c->C, FF = c->FF, P = c->P, TV = c->TV;
    const size_t es = dtype_size(lay->dtype);
    int64_t biggest = V * C;
    if (P * C > biggest) biggest = P * C;
    if (TV * C > biggest) biggest = TV * C;
    if (FF * C > biggest) biggest = FF * C;
    if (C * C > biggest) biggest = C * C; /* wq, wk, wv, wo: more than the rest when V and FF are small */
    if ((int64_t)c->NB * c->NH > biggest) biggest = (int64_t)c->NB * c->NH;
    float *scratch = malloc((size_t)biggest * sizeof *scratch);
    if (!scratch) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory converting the weights");
    memset(slab, 0, lay->bytes);
    const ember_dtype dt = lay->dtype;
    ember_status st;
    if ((st = put(slab, lay->word, w->word, V * C, scratch, dt)) ||
        (st = put(slab, lay->pos, w->pos, P * C, scratch, dt)) ||
        (w->type && (st = put(slab, lay->type, w->type, TV * C, scratch, dt))) || /* none (MPNet): the zero row */
        (st = put(slab, lay->ln_w, w->ln_w, C, scratch, dt)) || (st = put(slab, lay->ln_b, w->ln_b, C, scratch, dt)))
        goto done;
    if (lay->has_rel_bias && (st = put(slab, lay->rel_bias, w->rel_bias, (int64_t)c->NB * c->NH, scratch,
                                       EMBER_DTYPE_FP32))) /* fp32 whatever the dtype: it is tiny */
        goto done;
    for (int32_t l = 0; l < c->L; l++) {
        const cuda_layer_offsets *o = &lay->layers[l];
        const bert_layer_tensors *t = &w->layers[l];
        const size_t CC = (size_t)(C * C) * es, Cb = (size_t)C * es;
        if ((st = put(slab, o->wqkv, t->wq, C * C, scratch, dt)) ||
            (st = put(slab, o->wqkv + CC, t->wk, C * C, scratch, dt)) ||
            (st = put(slab, o->wqkv + 2 * CC, t->wv, C * C, scratch, dt)) ||
            (st = put(slab, o->bqkv, t->bq, C, scratch, dt)) || (st = put(slab, o->bqkv + Cb, t->bk, C, scratch, dt)) ||
            (st = put(slab, o->bqkv + 2 * Cb, t->bv, C, scratch, dt)) ||
            (st = put(slab, o->wo, t->wo, C * C, scratch, dt)) || (st = put(slab, o->bo, t->bo, C, scratch, dt)) ||
            (st = put(slab, o->ln1_w, t->ln1_w, C, scratch, dt)) ||
            (st = put(slab, o->ln1_b, t->ln1_b, C, scratch, dt)) ||
            (st = put(slab, o->w1, t->w1, FF * C, scratch, dt)) || (st = put(slab, o->b1, t->b1, FF, scratch, dt)) ||
            (st = put(slab, o->w2, t->w2, C * FF, scratch, dt)) || (st = put(slab, o->b2, t->b2, C, scratch, dt)) ||
            (st = put(slab, o->ln2_w, t->ln2_w, C, scratch, dt)) ||
            (st = put(slab, o->ln2_b, t->ln2_b, C, scratch, dt)))
            goto done;
    }
done:
    free(scratch);
    return st;
}

void cuda_workspace_layout_init(cuda_workspace_layout *ws, const bert_config *c, ember_dtype dtype,
                                int32_t max_tokens) {
    memset(ws, 0, sizeof *ws);
    const size_t es = dtype_size(dtype), T = (size_t)max_tokens, C = (size_t)c->C, FF = (size_t)c->FF;
    size_t end = 0;
    ws->max_tokens = max_tokens;
    ws->x = slab_take(&end, T * C, es);
    ws->qkv = slab_take(&end, T * 3 * C, es);
    ws->att = slab_take(&end, T * C, es);
    ws->tmp = slab_take(&end, T * C, es);
    ws->ff = slab_take(&end, T * FF, es);
    ws->out32 = slab_take(&end, T * C, sizeof(float));
    ws->ints = slab_take(&end, cuda_batch_ints(max_tokens, max_tokens), sizeof(int32_t));
    ws->bytes = (end + CUDA_SLAB_ALIGN - 1) / CUDA_SLAB_ALIGN * CUDA_SLAB_ALIGN;
}

ember_status cuda_batch_check(const packed_batch *b, const bert_config *c, int32_t max_tokens, int32_t *max_seqlen) {
    if (b->T < 0 || b->S < 0 || (b->T > 0 && b->S == 0))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "CUDA backend: batch of %d tokens in %d sequences", b->T, b->S);
    if (b->T > max_tokens)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "batch of %d tokens exceeds the workspace (%d)", b->T,
                          max_tokens);
    if (b->S > 0 && (!b->cu_seqlens || !b->ids || !b->pos))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "CUDA backend: batch without ids, positions or cu_seqlens");
    int32_t longest = 0;
    if (b->S > 0 && b->cu_seqlens[0] != 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "cu_seqlens[0] is %d, not 0", b->cu_seqlens[0]);
    for (int32_t s = 0; s < b->S; s++) {
        const int32_t len = b->cu_seqlens[s + 1] - b->cu_seqlens[s];
        if (len < 1 || b->cu_seqlens[s + 1] > b->T)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "sequence %d spans [%d, %d) in a batch of %d tokens", s,
                              b->cu_seqlens[s], b->cu_seqlens[s + 1], b->T);
        if (len > longest) longest = len;
    }
    if (b->S > 0 && b->cu_seqlens[b->S] != b->T)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "cu_seqlens ends at %d, the batch has %d tokens",
                          b->cu_seqlens[b->S], b->T);
    for (int32_t t = 0; t < b->T; t++) {
        const int32_t type = b->type_ids ? b->type_ids[t] : 0;
        if (b->ids[t] < 0 || b->ids[t] >= c->V || type < 0 || type >= c->TV || b->pos[t] < 0 || b->pos[t] >= c->P)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                              "token %d: id %d / type %d / position %d out of range for the model", t, b->ids[t], type,
                              b->pos[t]);
    }
    *max_seqlen = longest;
    return EMBER_OK;
}

void cuda_batch_stage(int32_t *ints, const packed_batch *b) {
    const size_t T = (size_t)b->T;
    memcpy(ints, b->ids, T * sizeof *ints);
    if (b->type_ids) memcpy(ints + T, b->type_ids, T * sizeof *ints);
    else memset(ints + T, 0, T * sizeof *ints);
    memcpy(ints + 2 * T, b->pos, T * sizeof *ints);
    memcpy(ints + 3 * T, b->cu_seqlens, ((size_t)b->S + 1) * sizeof *ints);
}
