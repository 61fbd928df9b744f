/* The contract both backends keep: a packed batch in (sequences concatenated,
 * no padding), the last hidden states and/or pooled vectors out. */
#ifndef EMBER_BACKEND_BACKEND_H
#define EMBER_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ember.h"
#include "model/model.h"

typedef struct {
    int32_t S, T;              /* sequences, tokens in all */
    const int32_t *ids;        /* (T) */
    const int32_t *type_ids;   /* (T) */
    const int32_t *pos;        /* (T) position of each token within its sequence */
    const int32_t *cu_seqlens; /* (S + 1) prefix sums of the lengths */
    int32_t max_seqlen;
} packed_batch;

/* Called with every intermediate tensor when set (tests, layer-by-layer
 * dumps): "embeddings" (layer -1) and "layer_out" (layer 0..L-1). */
typedef void (*tensor_hook)(void *user, const char *name, int layer, const float *data, int32_t rows,
                            int32_t cols);

typedef struct backend backend;
struct backend {
    /* hidden: (T, C) or NULL; pooled: (S, C) or NULL (pooling, then L2
     * normalisation when normalize is set). */
    ember_status (*forward)(backend *be, const packed_batch *b, float *hidden, float *pooled,
                            ember_pooling pooling, int normalize);
    void (*destroy)(backend *be);
    ember_device device;
    int32_t device_index;
    ember_dtype dtype;
    int32_t max_tokens; /* the most tokens one forward takes */
    int batch_invariant; /* a sequence's output is the same bits whatever else is in its batch */
    char name[128];
    tensor_hook hook;
    void *hook_user;
};

/* kernels: EMBER_CPU_KERNELS_AUTO for the best the processor runs; a family
 * it lacks is EMBER_ERR_UNSUPPORTED naming the missing instructions. */
backend *cpu_backend_create(const bert_config *cfg, const bert_tensors *w, int32_t n_threads,
                            int32_t max_tokens, ember_cpu_kernels kernels, ember_status *st);

/* NULL with *st = EMBER_ERR_NO_DEVICE when CUDA is not compiled in or absent. */
backend *cuda_backend_create(const bert_config *cfg, const bert_tensors *w, int32_t device_index,
                             ember_dtype dtype, int32_t max_tokens, const ember_tuning *tuning, ember_status *st);
int32_t cuda_device_count(void);

#endif
