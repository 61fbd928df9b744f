/* The CPU backend: fp32, the reference every other path is checked against.
 * Weights are converted once into one slab; activations live in another,
 * sized for max_tokens at creation. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "common/error.h"
#include "cpu_ops.h"

typedef struct {
    float *wqkv, *bqkv; /* (3C, C), (3C): q, k, v stacked for one GEMM */
    float *wo, *bo, *ln1_w, *ln1_b, *w1, *b1, *w2, *b2, *ln2_w, *ln2_b;
} cpu_layer;

typedef struct {
    backend base;
    bert_config cfg;
    int32_t n_threads;
    float *params; /* one slab for every weight */
    float *word, *pos, *type, *ln_w, *ln_b;
    cpu_layer *layers;
    float *acts; /* one slab: x, qkv, att, tmp, ff */
    float *x, *qkv, *att, *tmp, *ff;
} cpu_backend;

static ember_status cpu_forward(backend *be, const packed_batch *b, float *hidden, float *pooled,
                                ember_pooling pooling, int normalize) {
    cpu_backend *cb = (cpu_backend *)be;
    const bert_config *c = &cb->cfg;
    const int32_t T = b->T, C = c->C, FF = c->FF;
    if (T > be->max_tokens)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "batch of %d tokens exceeds the workspace (%d)", T,
                          be->max_tokens);
    for (int32_t t = 0; t < T; t++) {
        if (b->ids[t] < 0 || b->ids[t] >= c->V || b->type_ids[t] < 0 || b->type_ids[t] >= c->TV || b->pos[t] < 0 ||
            b->pos[t] >= c->P)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                              "token %d: id %d / type %d / position %d out of range for the model", t, b->ids[t],
                              b->type_ids[t], b->pos[t]);
    }
    omp_set_num_threads(cb->n_threads);
    float *x = cb->x;
    embed_layernorm_cpu(x, b->ids, b->type_ids, b->pos, cb->word, cb->pos, cb->type, cb->ln_w, cb->ln_b, c->ln_eps,
                        T, C);
    if (be->hook) be->hook(be->hook_user, "embeddings", -1, x, T, C);
    for (int32_t l = 0; l < c->L; l++) {
        const cpu_layer *w = &cb->layers[l];
        matmul_cpu(cb->qkv, x, w->wqkv, T, C, 3 * C);
        attention_cpu(cb->att, cb->qkv, w->bqkv, b->cu_seqlens, b->S, b->max_seqlen, c->NH, c->HS);
        matmul_cpu(cb->tmp, cb->att, w->wo, T, C, C);
        bias_residual_layernorm_cpu(x, cb->tmp, w->bo, x, w->ln1_w, w->ln1_b, c->ln_eps, T, C);
        matmul_cpu(cb->ff, x, w->w1, T, C, FF);
        bias_act_cpu(cb->ff, cb->ff, w->b1, c->act, T, FF);
        matmul_cpu(cb->tmp, cb->ff, w->w2, T, FF, C);
        bias_residual_layernorm_cpu(x, cb->tmp, w->b2, x, w->ln2_w, w->ln2_b, c->ln_eps, T, C);
        if (be->hook) be->hook(be->hook_user, "layer_out", l, x, T, C);
    }
    if (hidden) memcpy(hidden, x, (size_t)T * C * sizeof *x);
    if (pooled) pool_cpu(pooled, x, b->cu_seqlens, b->S, C, pooling, normalize);
    return EMBER_OK;
}

static void cpu_destroy(backend *be) {
    cpu_backend *cb = (cpu_backend *)be;
    if (!cb) return;
    free(cb->params);
    free(cb->acts);
    free(cb->layers);
    free(cb);
}

backend *cpu_backend_create(const bert_config *cfg, const bert_tensors *w, int32_t n_threads, int32_t max_tokens,
                            ember_status *st) {
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb) goto oom;
    cb->cfg = *cfg;
    cb->n_threads = n_threads > 0 ? n_threads : omp_get_num_procs();
    const int64_t V = cfg->V, C = cfg->C, FF = cfg->FF, P = cfg->P, TV = cfg->TV, L = cfg->L;
    int64_t per_layer = 3 * C * C + 3 * C + C * C + C + 2 * C + FF * C + FF + C * FF + C + 2 * C;
    int64_t total = V * C + P * C + TV * C + 2 * C + L * per_layer;
    cb->params = malloc((size_t)total * sizeof(float));
    cb->layers = calloc((size_t)L, sizeof *cb->layers);
    if (!cb->params || !cb->layers) goto oom;
    float *p = cb->params;
#define TAKE(dst, tensor)                                                                                             \
    do {                                                                                                              \
        dst = p;                                                                                                      \
        if ((*st = st_tensor_to_f32(tensor, p))) goto fail;                                                          \
        p += (tensor)->numel;                                                                                         \
    } while (0)
    TAKE(cb->word, w->word);
    TAKE(cb->pos, w->pos);
    TAKE(cb->type, w->type);
    TAKE(cb->ln_w, w->ln_w);
    TAKE(cb->ln_b, w->ln_b);
    for (int64_t l = 0; l < L; l++) {
        cpu_layer *cl = &cb->layers[l];
        const bert_layer_tensors *t = &w->layers[l];
        float *tmp;
        TAKE(cl->wqkv, t->wq);
        TAKE(tmp, t->wk);
        TAKE(tmp, t->wv);
        TAKE(cl->bqkv, t->bq);
        TAKE(tmp, t->bk);
        TAKE(tmp, t->bv);
        (void)tmp;
        TAKE(cl->wo, t->wo);
        TAKE(cl->bo, t->bo);
        TAKE(cl->ln1_w, t->ln1_w);
        TAKE(cl->ln1_b, t->ln1_b);
        TAKE(cl->w1, t->w1);
        TAKE(cl->b1, t->b1);
        TAKE(cl->w2, t->w2);
        TAKE(cl->b2, t->b2);
        TAKE(cl->ln2_w, t->ln2_w);
        TAKE(cl->ln2_b, t->ln2_b);
    }
#undef TAKE
    int64_t T = max_tokens;
    cb->acts = malloc((size_t)(T * (C + 3 * C + C + C + FF)) * sizeof(float));
    if (!cb->acts) goto oom;
    cb->x = cb->acts;
    cb->qkv = cb->x + T * C;
    cb->att = cb->qkv + T * 3 * C;
    cb->tmp = cb->att + T * C;
    cb->ff = cb->tmp + T * C;
    cb->base.forward = cpu_forward;
    cb->base.destroy = cpu_destroy;
    cb->base.device = EMBER_DEVICE_CPU;
    cb->base.dtype = EMBER_DTYPE_FP32;
    cb->base.max_tokens = max_tokens;
    snprintf(cb->base.name, sizeof cb->base.name, "cpu (%d threads)", cb->n_threads);
    *st = EMBER_OK;
    return &cb->base;
oom:
    *st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for the CPU backend (max_batch_tokens %d)", max_tokens);
fail:
    cpu_destroy(cb ? &cb->base : NULL);
    return NULL;
}
