/* The CPU backend: fp32, the reference every other path is checked against.
 * Weights are converted once into one slab, the linear layers' in the layout
 * the matrix-product kernel reads (cpu_ops.h: linear_pack); activations live
 * in another slab, sized for max_tokens at creation.
 *
 * One forward pass: the batch is packed (no padding), every product carries
 * its bias, activation and residual in its epilogue, and each layer runs in
 * one OpenMP parallel region (see cpu_forward for how its threads share the
 * work). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "common/error.h"
#include "cpu_ops.h"

typedef struct {
    float *wqkv, *bqkv; /* packed (3C, C), (3C): q, k, v stacked for one product */
    float *wo, *bo;     /* packed (C, C), (C) */
    float *ln1_w, *ln1_b;
    float *w1, *b1;     /* packed (FF, C), (FF) */
    float *w2, *b2;     /* packed (C, FF), (C) */
    float *ln2_w, *ln2_b;
} cpu_layer;

typedef struct {
    backend base;
    bert_config cfg;
    int32_t n_threads;
    cpu_kernels kernels;
    float *params; /* one slab for every weight, 64-byte aligned */
    float *word, *pos, *type, *ln_w, *ln_b;
    float *rel_bias; /* (REL_BUCKETS, NH): MPNet's relative position bias; NULL: none */
    cpu_layer *layers;
    float *acts; /* one slab: x, qkv, att, ff */
    float *x, *qkv, *att, *ff;
    int32_t *seq_order;  /* (max_tokens) the batch's sequences, longest first */
    int32_t *len_count;  /* (P + 2) counting sort of the lengths */
} cpu_backend;

/* cb->seq_order = the sequences of b by length, longest first (stable). */
static void order_by_length(cpu_backend *cb, const packed_batch *b) {
    const int32_t P = cb->cfg.P;
    int32_t *count = cb->len_count;
    memset(count, 0, (size_t)(P + 2) * sizeof *count);
    for (int32_t s = 0; s < b->S; s++) count[P - (b->cu_seqlens[s + 1] - b->cu_seqlens[s])]++;
    for (int32_t i = 0, sum = 0; i <= P; i++) {
        int32_t c = count[i];
        count[i] = sum;
        sum += c;
    }
    for (int32_t s = 0; s < b->S; s++) cb->seq_order[count[P - (b->cu_seqlens[s + 1] - b->cu_seqlens[s])]++] = s;
}

/* Reserve each thread's scratch; 0 when any thread is out of memory. */
static int reserve_scratch(const cpu_backend *cb, int nt, int32_t max_seqlen) {
    const bert_config *c = &cb->cfg;
    int ok = 1;
#pragma omp parallel num_threads(nt) reduction(&& : ok)
    ok = cpu_scratch_reserve(c->C, c->FF, c->HS, max_seqlen, cb->kernels);
    return ok;
}

static ember_status cpu_forward(backend *be, const packed_batch *b, float *hidden, float *pooled,
                                ember_pooling pooling, int normalize) {
    cpu_backend *cb = (cpu_backend *)be;
    const bert_config *c = &cb->cfg;
    const int32_t T = b->T, C = c->C, FF = c->FF;
    const cpu_kernels kern = cb->kernels;
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
    /* A thread per 64 tokens at most. A short text's forward pass is a few
     * milliseconds of work cut by ~50 barriers (one per op); when the
     * machine is shared, a thread that waits at one of them may not run
     * again for a scheduler period, and two threads took 7 times longer than
     * one (measured: bench/RESULTS.md). One thread has no barriers. */
    int nt = cb->n_threads;
    if (nt > T / 64) nt = T / 64;
    if (nt < 1) nt = 1;
    if (b->max_seqlen > c->max_len)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "a sequence of %d tokens exceeds the model's %d positions",
                          b->max_seqlen, c->max_len);
    if (!reserve_scratch(cb, nt, b->max_seqlen))
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for the CPU backend's scratch");
    order_by_length(cb, b);
    float *x = cb->x;
    /* Long batches go block by block of rows: from one layer's attention
     * output to the next layer's q, k, v every step is row-local (products,
     * residuals, LayerNorms), so a thread takes a block of rows through all
     * of it with the block in its L2 cache, and threads meet twice a layer
     * (after q/k/v, after attention) instead of after every op: what a
     * thread that the system preempts holds up is one block, not an op.
     * Batches too short for two blocks per thread share each op by tiles
     * instead (rows x output features), each thread reading only its share
     * of the weights. */
    const int32_t block = 48;
    const int by_rows = T >= 2 * block * nt;
    const int32_t n_blocks = (T + block - 1) / block;
#pragma omp parallel num_threads(nt)
    {
        embed_layernorm_rows_cpu(x, b->ids, b->type_ids, b->pos, cb->word, cb->pos, cb->type, cb->ln_w, cb->ln_b,
                                 c->ln_eps, T, C, kern);
        if (by_rows) {
            const cpu_layer *w = &cb->layers[0];
#pragma omp for schedule(dynamic, 1)
            for (int32_t i = 0; i < n_blocks; i++) {
                int32_t m0 = i * block, m1 = m0 + block < T ? m0 + block : T;
                linear_rows_cpu(cb->qkv, x, w->wqkv, w->bqkv, NULL, CPU_ACT_NONE, m0, m1, C, 3 * C, kern);
            }
        }
    }
    /* hooks run outside the parallel regions, on the caller's thread */
    if (be->hook) be->hook(be->hook_user, "embeddings", -1, x, T, C);
    for (int32_t l = 0; l < c->L; l++) {
        const cpu_layer *w = &cb->layers[l], *next = l + 1 < c->L ? &cb->layers[l + 1] : NULL;
#pragma omp parallel num_threads(nt)
        {
            if (by_rows) {
                attention_heads_cpu(cb->att, cb->qkv, NULL, cb->rel_bias, b->cu_seqlens, b->S, c->NH, c->HS,
                                    cb->seq_order, kern);
#pragma omp for schedule(dynamic, 1)
                for (int32_t i = 0; i < n_blocks; i++) {
                    int32_t m0 = i * block, m1 = m0 + block < T ? m0 + block : T;
                    linear_rows_cpu(x, cb->att, w->wo, w->bo, x, CPU_ACT_NONE, m0, m1, C, C, kern);
                    layernorm_rows_cpu(x, x, w->ln1_w, w->ln1_b, c->ln_eps, m0, m1, C, kern);
                    linear_rows_cpu(cb->ff, x, w->w1, w->b1, NULL, (int)c->act, m0, m1, C, FF, kern);
                    linear_rows_cpu(x, cb->ff, w->w2, w->b2, x, CPU_ACT_NONE, m0, m1, FF, C, kern);
                    layernorm_rows_cpu(x, x, w->ln2_w, w->ln2_b, c->ln_eps, m0, m1, C, kern);
                    if (next)
                        linear_rows_cpu(cb->qkv, x, next->wqkv, next->bqkv, NULL, CPU_ACT_NONE, m0, m1, C, 3 * C,
                                        kern);
                }
            } else {
                linear_cpu(cb->qkv, x, w->wqkv, w->bqkv, NULL, CPU_ACT_NONE, T, C, 3 * C, kern);
                attention_heads_cpu(cb->att, cb->qkv, NULL, cb->rel_bias, b->cu_seqlens, b->S, c->NH, c->HS,
                                    cb->seq_order, kern);
                linear_cpu(x, cb->att, w->wo, w->bo, x, CPU_ACT_NONE, T, C, C, kern);
                layernorm_cpu(x, x, w->ln1_w, w->ln1_b, c->ln_eps, T, C, kern);
                linear_cpu(cb->ff, x, w->w1, w->b1, NULL, (int)c->act, T, C, FF, kern);
                linear_cpu(x, cb->ff, w->w2, w->b2, x, CPU_ACT_NONE, T, FF, C, kern);
                layernorm_cpu(x, x, w->ln2_w, w->ln2_b, c->ln_eps, T, C, kern);
            }
        }
        if (be->hook) be->hook(be->hook_user, "layer_out", l, x, T, C);
    }
    if (hidden) memcpy(hidden, x, (size_t)T * C * sizeof *x);
    if (pooled) {
#pragma omp parallel num_threads(nt)
        pool_rows_cpu(pooled, x, b->cu_seqlens, b->S, C, pooling, normalize, kern);
    }
    return EMBER_OK;
}

static void cpu_destroy(backend *be) {
    cpu_backend *cb = (cpu_backend *)be;
    if (!cb) return;
    free(cb->params);
    free(cb->acts);
    free(cb->layers);
    free(cb->seq_order);
    free(cb->len_count);
    free(cb);
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; } /* keeps every tensor 64-byte aligned */

/* Every weight into one slab as fp32, the linear layers' packed for the
 * kernel family (linear_pack). */
static ember_status weights_load(cpu_backend *cb, const bert_tensors *w, cpu_kernels kernels) {
    const bert_config *cfg = &cb->cfg;
    const int32_t V = cfg->V, C = cfg->C, FF = cfg->FF, P = cfg->P, TV = cfg->TV, L = cfg->L;
    ember_status st = EMBER_OK;
    size_t per_layer = round16(linear_packed_size(3 * C, C, kernels)) + round16(3 * (size_t)C) +
                       round16(linear_packed_size(C, C, kernels)) + round16(linear_packed_size(FF, C, kernels)) +
                       round16(linear_packed_size(C, FF, kernels)) + round16(FF) + 7 * round16(C);
    size_t total = round16((size_t)V * C) + round16((size_t)P * C) + round16((size_t)TV * C) + 2 * round16(C) +
                   round16((size_t)cfg->NB * cfg->NH) + (size_t)L * per_layer;
    cb->params = aligned_alloc(64, total * sizeof(float));
    cb->layers = calloc((size_t)L, sizeof *cb->layers);
    size_t big = (size_t)FF * C > 3 * (size_t)C * C ? (size_t)FF * C : 3 * (size_t)C * C;
    float *tmp = malloc(big * sizeof *tmp); /* one weight as f32, before packing */
    if (!cb->params || !cb->layers || !tmp) {
        free(tmp);
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for the CPU backend's %.1f MiB of weights",
                          (double)total * sizeof(float) / (1 << 20));
    }
    float *p = cb->params;
#define TAKE(dst, tensor)                                                                                             \
    do {                                                                                                              \
        dst = p;                                                                                                      \
        if ((st = st_tensor_to_f32(tensor, p))) goto done;                                                            \
        p += round16((size_t)(tensor)->numel);                                                                        \
    } while (0)
#define TAKE_PACKED(dst, N, K, ...)                                                                                   \
    do {                                                                                                              \
        const st_tensor *parts[] = {__VA_ARGS__};                                                                     \
        float *part = tmp;                                                                                             \
        for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {                                                   \
            if ((st = st_tensor_to_f32(parts[i], part))) goto done;                                                    \
            part += parts[i]->numel;                                                                                   \
        }                                                                                                             \
        dst = p;                                                                                                      \
        linear_pack(p, tmp, N, K, kernels);                                                                           \
        p += round16(linear_packed_size(N, K, kernels));                                                              \
    } while (0)
    TAKE(cb->word, w->word);
    TAKE(cb->pos, w->pos);
    if (w->type) {
        TAKE(cb->type, w->type);
    } else { /* no token types (MPNet): one zero row, so that every token adds type 0's nothing */
        cb->type = p;
        memset(p, 0, (size_t)C * sizeof *p);
        p += round16((size_t)C);
    }
    TAKE(cb->ln_w, w->ln_w);
    TAKE(cb->ln_b, w->ln_b);
    if (w->rel_bias) TAKE(cb->rel_bias, w->rel_bias); /* (NB, NH): attention reads the first REL_BUCKETS rows */
    for (int32_t l = 0; l < L; l++) {
        cpu_layer *cl = &cb->layers[l];
        const bert_layer_tensors *t = &w->layers[l];
        TAKE_PACKED(cl->wqkv, 3 * C, C, t->wq, t->wk, t->wv);
        /* q, k, v biases side by side, as the stacked product's outputs */
        cl->bqkv = p;
        if ((st = st_tensor_to_f32(t->bq, p)) || (st = st_tensor_to_f32(t->bk, p + C)) ||
            (st = st_tensor_to_f32(t->bv, p + 2 * C)))
            goto done;
        p += round16(3 * (size_t)C);
        TAKE_PACKED(cl->wo, C, C, t->wo);
        TAKE(cl->bo, t->bo);
        TAKE(cl->ln1_w, t->ln1_w);
        TAKE(cl->ln1_b, t->ln1_b);
        TAKE_PACKED(cl->w1, FF, C, t->w1);
        TAKE(cl->b1, t->b1);
        TAKE_PACKED(cl->w2, C, FF, t->w2);
        TAKE(cl->b2, t->b2);
        TAKE(cl->ln2_w, t->ln2_w);
        TAKE(cl->ln2_b, t->ln2_b);
    }
#undef TAKE
#undef TAKE_PACKED
done:
    free(tmp);
    return st;
}

backend *cpu_backend_create(const bert_config *cfg, const bert_tensors *w, int32_t n_threads, int32_t max_tokens,
                            ember_cpu_kernels choice, ember_status *st) {
    cpu_kernels kernels = cpu_kernels_best();
    if (choice == EMBER_CPU_KERNELS_GENERIC) kernels = CPU_KERNELS_GENERIC;
    else if (choice == EMBER_CPU_KERNELS_AVX2) kernels = CPU_KERNELS_AVX2;
    else if (choice == EMBER_CPU_KERNELS_AVX512) kernels = CPU_KERNELS_AVX512;
    else if (choice != EMBER_CPU_KERNELS_AUTO) {
        *st = ember_fail(EMBER_ERR_INVALID_ARGUMENT, "unknown CPU kernel family %d", (int)choice);
        return NULL;
    }
    if ((*st = cpu_kernels_check(kernels))) return NULL;
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb) goto oom;
    cb->cfg = *cfg;
    cb->n_threads = n_threads > 0 ? n_threads : omp_get_num_procs();
    cb->kernels = kernels;
    const int32_t C = cfg->C, FF = cfg->FF, P = cfg->P;
    if ((*st = weights_load(cb, w, kernels))) goto fail;
    size_t T = (size_t)max_tokens;
    cb->acts = aligned_alloc(64, round16(T * (C + 3 * (size_t)C + C + FF)) * sizeof(float));
    cb->seq_order = malloc(T * sizeof *cb->seq_order);
    cb->len_count = malloc(((size_t)P + 2) * sizeof *cb->len_count);
    if (!cb->acts || !cb->seq_order || !cb->len_count) goto oom;
    cb->x = cb->acts;
    cb->qkv = cb->x + T * C;
    cb->att = cb->qkv + T * 3 * C;
    cb->ff = cb->att + T * C;
    cb->base.forward = cpu_forward;
    cb->base.destroy = cpu_destroy;
    cb->base.device = EMBER_DEVICE_CPU;
    cb->base.dtype = EMBER_DTYPE_FP32;
    cb->base.max_tokens = max_tokens;
    cb->base.batch_invariant = cpu_kernels_batch_invariant(kernels);
    snprintf(cb->base.name, sizeof cb->base.name, "cpu (%d threads, %s)", cb->n_threads,
             cpu_kernels_name(cb->kernels));
    *st = EMBER_OK;
    return &cb->base;
oom:
    *st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for the CPU backend (max_batch_tokens %d)", max_tokens);
fail:
    cpu_destroy(cb ? &cb->base : NULL);
    return NULL;
}
