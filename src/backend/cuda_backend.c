/* The CUDA backend: the forward pass of cpu_backend.c, op for op, on a GPU.
 *
 * Weights are converted to the compute dtype on the host and uploaded once,
 * into one device slab. Activations live in a second slab sized for
 * max_tokens at creation; the cuBLAS handle, its workspace, the stream and
 * the pinned host buffers (the staged batch in, fp32 vectors out) are made
 * once too. Nothing is allocated per batch. A forward is one stream:
 * H2D of the batch, the ops, D2H of the result, one synchronisation.
 *
 * Shapes (model/model.h): T tokens, S sequences, C hidden, NH heads of HS,
 * FF intermediate. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "common/error.h"
#include "cuda_layout.h"
#include "kernels/activation.cuh"
#include "kernels/attention.cuh"
#include "kernels/convert.cuh"
#include "kernels/embed.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/matmul.cuh"
#include "kernels/pool.cuh"

#ifndef EMBER_CUDA_ARCHS
#define EMBER_CUDA_ARCHS "80;86;89;90"
#endif

/* cuBLAS's workspace: what NVIDIA recommends for Hopper (32 MiB). */
#define BLAS_WORKSPACE_BYTES ((size_t)32 << 20)

/* ember_tuning.cuda_profile: each op timed with CUDA events, summed per op
 * over the backend's life and logged (EMBER_LOG_INFO) when it is destroyed. */
enum {
    PROF_UPLOAD,
    PROF_EMBED,
    PROF_QKV,
    PROF_ATTENTION,
    PROF_ATT_OUT,
    PROF_LN1,
    PROF_FFN_UP,
    PROF_ACT,
    PROF_FFN_DOWN,
    PROF_LN2,
    PROF_OUTPUT,
    PROF_N
};
static const char *const PROF_NAMES[PROF_N] = {
    "batch upload",    "embedding + LayerNorm",       "QKV projection (cuBLAS)", "attention",
    "attention output projection (cuBLAS)", "bias + residual + LayerNorm 1", "FFN up (cuBLAS)",
    "bias + activation", "FFN down (cuBLAS)", "bias + residual + LayerNorm 2", "pooling / output"};

typedef struct {
    backend base;
    bert_config cfg;
    int device;
    int sync_each_op; /* debug: synchronise after every op so a fault names its op */
    /* ember_tuning (kernels/NOTES.md) */
    int attn_wmma;       /* the first tensor-core attention kernel */
    ember_cuda_gemm gemm;
    matmul_lt *lt;       /* lt | lt-tune: the projections through cuBLASLt (else cublasGemmEx) */
    int32_t ffn_chunk;   /* FFN up, activation and down over this many tokens at a time, so that the
                            (chunk, FF) intermediate can stay in L2; 0: all T at once */
    int profile;         /* each op timed, the table logged at the end */
    cudaEvent_t *prof_ev;
    int *prof_op;
    int prof_cap, prof_n;
    double prof_ms[PROF_N];
    int64_t prof_forwards, prof_tokens;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;
    cuda_param_layout lay;
    uint8_t *params; /* device: every weight, in dtype */
    cuda_workspace_layout ws;
    uint8_t *acts;  /* device: the activations */
    int32_t *h_ints; /* pinned: the staged batch */
    float *h_out;    /* pinned: (max_tokens, C) fp32 out */
} cuda_backend;

static ember_status cuda_fail(const char *op, int layer, cudaError_t e) {
    if (layer >= 0)
        return ember_fail(EMBER_ERR_BACKEND, "CUDA error in %s (layer %d): %s (%s)", op, layer, cudaGetErrorString(e),
                          cudaGetErrorName(e));
    return ember_fail(EMBER_ERR_BACKEND, "CUDA error in %s: %s (%s)", op, cudaGetErrorString(e), cudaGetErrorName(e));
}

static const char *blas_status_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "unknown cuBLAS status";
}

/* Each op's error checked at once; in debug mode the stream is synchronised
 * too, so that an asynchronous fault is reported against the op that made it. */
#define CUDA_OP(name, layer, call)                                                                                    \
    do {                                                                                                              \
        cudaError_t e_ = (call);                                                                                      \
        if (e_ == cudaSuccess && cb->sync_each_op) e_ = cudaStreamSynchronize(cb->stream);                            \
        if (e_ != cudaSuccess) return cuda_fail(name, layer, e_);                                                     \
    } while (0)

#define BLAS_OP(name, layer, call)                                                                                    \
    do {                                                                                                              \
        cublasStatus_t s_ = (call);                                                                                   \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                              \
            return ember_fail(EMBER_ERR_BACKEND, "cuBLAS error in %s (layer %d): %s", name, layer,                    \
                              blas_status_name(s_));                                                                  \
        if (cb->sync_each_op) CUDA_OP(name, layer, cudaStreamSynchronize(cb->stream));                               \
    } while (0)

/* Hand a (T, C) activation in dtype to the debug hook as fp32. */
static ember_status hook_tensor(cuda_backend *cb, const char *name, int layer, const void *x, int32_t T) {
    const int32_t C = cb->cfg.C;
    const size_t n = (size_t)T * C;
    const void *src = x;
    if (cb->base.dtype != EMBER_DTYPE_FP32) {
        float *out32 = (float *)(cb->acts + cb->ws.out32);
        CUDA_OP("hook conversion", layer, convert_to_f32_cuda(out32, x, (int64_t)n, cb->base.dtype, cb->stream));
        src = out32;
    }
    CUDA_OP("hook copy", layer, cudaMemcpyAsync(cb->h_out, src, n * sizeof(float), cudaMemcpyDeviceToHost, cb->stream));
    CUDA_OP("hook synchronise", layer, cudaStreamSynchronize(cb->stream));
    cb->base.hook(cb->base.hook_user, name, layer, cb->h_out, T, C);
    return EMBER_OK;
}

/* One projection, out (T, N) = inp (T, K) @ w^T, on the backend's choice of path. */
static cublasStatus_t gemm(cuda_backend *cb, void *out, const void *inp, const void *w, int32_t T, int32_t K,
                           int32_t N) {
    if (cb->lt) return matmul_lt_cuda(cb->lt, out, inp, w, T, K, N, cb->base.dtype, cb->stream);
    return matmul_cuda(out, inp, w, T, K, N, cb->base.dtype, cb->blas);
}

/* Mark the start of op `op` (profiling only): the span runs to the next mark. */
static void prof_mark(cuda_backend *cb, int op) {
    if (!cb->prof_ev || cb->prof_n >= cb->prof_cap) return;
    cudaEventRecord(cb->prof_ev[cb->prof_n], cb->stream);
    cb->prof_op[cb->prof_n++] = op;
}

/* After the forward's last synchronisation: add each span to its op (a span
 * that starts at an end mark, PROF_N, is host time and not counted). */
static void prof_collect(cuda_backend *cb, int32_t T) {
    if (!cb->prof_ev || cb->prof_n < 2) return;
    cudaEventSynchronize(cb->prof_ev[cb->prof_n - 1]);
    for (int i = 0; i + 1 < cb->prof_n; i++) {
        float ms = 0;
        if (cudaEventElapsedTime(&ms, cb->prof_ev[i], cb->prof_ev[i + 1]) == cudaSuccess)
            if (cb->prof_op[i] < PROF_N) cb->prof_ms[cb->prof_op[i]] += ms;
    }
    (void)cudaGetLastError();
    cb->prof_forwards++;
    cb->prof_tokens += T;
}

/* The profile through the log callback, a message per line. */
static void prof_report(const cuda_backend *cb) {
    double total = 0;
    for (int i = 0; i < PROF_N; i++) total += cb->prof_ms[i];
    if (cb->prof_forwards == 0 || total <= 0) return;
    ember_log(EMBER_LOG_INFO,
              "CUDA profile (%s, %s, %lld forwards, %lld tokens, %.1f ms on the GPU: %.2f M tokens/s%s%s%s):",
              cb->base.name, ember_dtype_str(cb->base.dtype), (long long)cb->prof_forwards,
              (long long)cb->prof_tokens, total, cb->prof_tokens / total / 1e3, cb->attn_wmma ? ", wmma attention" : "",
              cb->ffn_chunk ? ", FFN in chunks" : "", cb->lt ? ", projections through cuBLASLt" : "");
    for (int i = 0; i < PROF_N; i++)
        if (cb->prof_ms[i] > 0)
            ember_log(EMBER_LOG_INFO, "  %-40s %10.2f ms %6.1f%% %8.1f ns/token", PROF_NAMES[i], cb->prof_ms[i],
                      100 * cb->prof_ms[i] / total, cb->prof_ms[i] * 1e6 / (double)cb->prof_tokens);
}

#define P(off) ((const void *)(cb->params + (off)))

/* One encoder layer on x (T, C), in place: the stream of ops of cpu_forward's
 * layer, the FFN over chunks of tokens when asked. */
static ember_status layer_forward(cuda_backend *cb, int32_t l, int32_t T, int32_t S, int32_t max_seqlen) {
    const bert_config *c = &cb->cfg;
    const int32_t C = c->C, FF = c->FF;
    const ember_dtype dt = cb->base.dtype;
    cudaStream_t stream = cb->stream;
    uint8_t *A = cb->acts;
    void *x = A + cb->ws.x, *qkv = A + cb->ws.qkv, *att = A + cb->ws.att, *tmp = A + cb->ws.tmp, *ff = A + cb->ws.ff;
    const int32_t *d_cu = (const int32_t *)(A + cb->ws.ints) + 3 * (size_t)T;
    const cuda_layer_offsets *o = &cb->lay.layers[l];
    const size_t es = dtype_size(dt);
    const int32_t chunk = cb->ffn_chunk > 0 && cb->ffn_chunk < T ? cb->ffn_chunk : T;
    const float *rel_bias = cb->lay.has_rel_bias ? (const float *)P(cb->lay.rel_bias) : NULL;
    prof_mark(cb, PROF_QKV);
    BLAS_OP("QKV projection", l, gemm(cb, qkv, x, P(o->wqkv), T, C, 3 * C));
    prof_mark(cb, PROF_ATTENTION);
    CUDA_OP("attention", l,
            (cb->attn_wmma ? attention_wmma_cuda : attention_cuda)(att, qkv, P(o->bqkv), rel_bias, d_cu, S, max_seqlen,
                                                                   c->NH, c->HS, dt, stream));
    prof_mark(cb, PROF_ATT_OUT);
    BLAS_OP("attention output projection", l, gemm(cb, tmp, att, P(o->wo), T, C, C));
    prof_mark(cb, PROF_LN1);
    CUDA_OP("attention bias_residual_layernorm", l,
            bias_residual_layernorm_cuda(x, tmp, P(o->bo), x, P(o->ln1_w), P(o->ln1_b), c->ln_eps, T, C, dt, stream));
    for (int32_t t0 = 0; t0 < T; t0 += chunk) {
        const int32_t n = T - t0 < chunk ? T - t0 : chunk;
        prof_mark(cb, PROF_FFN_UP);
        BLAS_OP("FFN up projection", l, gemm(cb, ff, (uint8_t *)x + (size_t)t0 * C * es, P(o->w1), n, C, FF));
        prof_mark(cb, PROF_ACT);
        CUDA_OP("bias_act", l, bias_act_cuda(ff, ff, P(o->b1), c->act, n, FF, dt, stream));
        prof_mark(cb, PROF_FFN_DOWN);
        BLAS_OP("FFN down projection", l, gemm(cb, (uint8_t *)tmp + (size_t)t0 * C * es, ff, P(o->w2), n, FF, C));
    }
    prof_mark(cb, PROF_LN2);
    CUDA_OP("FFN bias_residual_layernorm", l,
            bias_residual_layernorm_cuda(x, tmp, P(o->b2), x, P(o->ln2_w), P(o->ln2_b), c->ln_eps, T, C, dt, stream));
    return EMBER_OK;
}

/* The results back to the host: hidden states (T, C) and/or pooled vectors
 * (S, C) as fp32. Each synchronisation is preceded by an end mark (PROF_N),
 * so that the host's time between copies is never in a profiled span. */
static ember_status output_download(cuda_backend *cb, int32_t T, int32_t S, float *hidden, float *pooled,
                                    ember_pooling pooling, int normalize) {
    const int32_t C = cb->cfg.C;
    const ember_dtype dt = cb->base.dtype;
    cudaStream_t stream = cb->stream;
    void *x = cb->acts + cb->ws.x;
    float *out32 = (float *)(cb->acts + cb->ws.out32);
    const int32_t *d_cu = (const int32_t *)(cb->acts + cb->ws.ints) + 3 * (size_t)T;
    if (hidden) {
        prof_mark(cb, PROF_OUTPUT);
        const void *src = x;
        if (dt != EMBER_DTYPE_FP32) {
            CUDA_OP("hidden state conversion", -1, convert_to_f32_cuda(out32, x, (int64_t)T * C, dt, stream));
            src = out32;
        }
        CUDA_OP("hidden state download", -1,
                cudaMemcpyAsync(cb->h_out, src, (size_t)T * C * sizeof(float), cudaMemcpyDeviceToHost, stream));
        prof_mark(cb, PROF_N);
        CUDA_OP("forward (synchronise)", -1, cudaStreamSynchronize(stream));
        memcpy(hidden, cb->h_out, (size_t)T * C * sizeof(float));
    }
    if (pooled) {
        prof_mark(cb, PROF_OUTPUT);
        CUDA_OP("pool", -1, pool_cuda(out32, x, d_cu, S, C, pooling, normalize, dt, stream));
        CUDA_OP("pooled vector download", -1,
                cudaMemcpyAsync(cb->h_out, out32, (size_t)S * C * sizeof(float), cudaMemcpyDeviceToHost, stream));
        prof_mark(cb, PROF_N);
        CUDA_OP("forward (synchronise)", -1, cudaStreamSynchronize(stream));
        memcpy(pooled, cb->h_out, (size_t)S * C * sizeof(float));
    }
    if (!hidden && !pooled) {
        prof_mark(cb, PROF_N);
        CUDA_OP("forward (synchronise)", -1, cudaStreamSynchronize(stream));
    }
    return EMBER_OK;
}

static ember_status cuda_forward(backend *be, const packed_batch *b, float *hidden, float *pooled,
                                 ember_pooling pooling, int normalize) {
    cuda_backend *cb = (cuda_backend *)be;
    const bert_config *c = &cb->cfg;
    int32_t max_seqlen;
    ember_status st = cuda_batch_check(b, c, be->max_tokens, &max_seqlen);
    if (st) return st;
    if (pooling == EMBER_POOLING_DEFAULT) pooling = EMBER_POOLING_CLS; /* as pool_cpu */
    const int32_t T = b->T, S = b->S, C = c->C;
    if (T == 0) return EMBER_OK;
    const ember_dtype dt = be->dtype;
    cudaStream_t stream = cb->stream;
    CUDA_OP("cudaSetDevice", -1, cudaSetDevice(cb->device));
    void *x = cb->acts + cb->ws.x;
    int32_t *d_ints = (int32_t *)(cb->acts + cb->ws.ints);
    const int32_t *d_ids = d_ints, *d_type = d_ints + T, *d_pos = d_ints + 2 * (size_t)T;

    /* The pinned staging buffer is rewritten below: a forward that failed
     * half-way may have left its upload queued (a no-op when idle). */
    CUDA_OP("synchronise before staging", -1, cudaStreamSynchronize(stream));
    cb->prof_n = 0;
    cuda_batch_stage(cb->h_ints, b);
    prof_mark(cb, PROF_UPLOAD);
    CUDA_OP("batch upload", -1,
            cudaMemcpyAsync(d_ints, cb->h_ints, cuda_batch_ints(T, S) * sizeof(int32_t), cudaMemcpyHostToDevice,
                            stream));
    prof_mark(cb, PROF_EMBED);
    CUDA_OP("embed_layernorm", -1,
            embed_layernorm_cuda(x, d_ids, d_type, d_pos, P(cb->lay.word), P(cb->lay.pos), P(cb->lay.type),
                                 P(cb->lay.ln_w), P(cb->lay.ln_b), c->ln_eps, T, C, dt, stream));
    if (be->hook && (st = hook_tensor(cb, "embeddings", -1, x, T))) return st;
    for (int32_t l = 0; l < c->L; l++) {
        if ((st = layer_forward(cb, l, T, S, max_seqlen))) return st;
        if (be->hook && (st = hook_tensor(cb, "layer_out", l, x, T))) return st;
    }
    if ((st = output_download(cb, T, S, hidden, pooled, pooling, normalize))) return st;
    prof_collect(cb, T);
    return EMBER_OK;
}
#undef P

static void cuda_destroy(backend *be) {
    cuda_backend *cb = (cuda_backend *)be;
    if (!cb) return;
    cudaSetDevice(cb->device);
    if (cb->stream) cudaStreamSynchronize(cb->stream);
    if (cb->prof_ev) {
        prof_report(cb);
        for (int i = 0; i < cb->prof_cap; i++) cudaEventDestroy(cb->prof_ev[i]);
    }
    free(cb->prof_ev);
    free(cb->prof_op);
    if (cb->lt) matmul_lt_destroy(cb->lt);
    if (cb->blas) cublasDestroy(cb->blas);
    if (cb->blas_ws) cudaFree(cb->blas_ws);
    if (cb->params) cudaFree(cb->params);
    if (cb->acts) cudaFree(cb->acts);
    if (cb->h_ints) cudaFreeHost(cb->h_ints);
    if (cb->h_out) cudaFreeHost(cb->h_out);
    if (cb->stream) cudaStreamDestroy(cb->stream);
    cuda_param_layout_free(&cb->lay);
    free(cb);
}

int32_t cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no device: not a sticky error, but clear it */
        return 0;
    }
    return n;
}

/* cudaMalloc / cudaMallocHost with a message naming what and how much. */
static ember_status device_alloc(void **p, size_t bytes, const char *what, int device, int pinned) {
    cudaError_t e = pinned ? cudaMallocHost(p, bytes) : cudaMalloc(p, bytes);
    if (e == cudaSuccess) return EMBER_OK;
    (void)cudaGetLastError();
    *p = NULL;
    return ember_fail(e == cudaErrorMemoryAllocation ? EMBER_ERR_OUT_OF_MEMORY : EMBER_ERR_BACKEND,
                      "CUDA device %d: cannot allocate %.1f MiB of %s for %s: %s (lower max_batch_tokens?)", device,
                      (double)bytes / (1 << 20), pinned ? "pinned host memory" : "device memory", what,
                      cudaGetErrorString(e));
}

/* ---- creation, phase by phase ------------------------------------------------------- */

/* The device exists, takes ember's kernels, and is current; its name in prop. */
static ember_status device_open(int32_t device_index, struct cudaDeviceProp *prop) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        (void)cudaGetLastError();
        if (e == cudaErrorInsufficientDriver)
            return ember_fail(EMBER_ERR_NO_DEVICE,
                              "no CUDA device: %s (no NVIDIA driver, or one older than CUDA %d.%d needs); use "
                              "--device cpu (or auto)",
                              cudaGetErrorString(e), CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
        return ember_fail(EMBER_ERR_NO_DEVICE, "no CUDA device: %s; use --device cpu (or auto)",
                          e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
    }
    if (device_index < 0 || device_index >= n)
        return ember_fail(EMBER_ERR_NO_DEVICE, "no CUDA device cuda:%d: this machine has %d (cuda:0 to cuda:%d)",
                          device_index, n, n - 1);
    if ((e = cudaSetDevice(device_index)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(prop, device_index)) != cudaSuccess)
        return cuda_fail("device setup", -1, e);
    if (prop->major < 8)
        return ember_fail(EMBER_ERR_UNSUPPORTED,
                          "CUDA device %d (%s) has compute capability %d.%d; ember's kernels are built for %s (8.0 "
                          "or newer); use --device cpu",
                          device_index, prop->name, prop->major, prop->minor, EMBER_CUDA_ARCHS);
    return EMBER_OK;
}

/* The switches of ember_tuning that shape this backend. */
static ember_status tuning_apply(cuda_backend *cb, const ember_tuning *t, int32_t max_tokens) {
    static const ember_tuning defaults;
    if (!t) t = &defaults;
#ifdef NDEBUG
    cb->sync_each_op = t->cuda_sync == EMBER_SWITCH_ON;
#else
    cb->sync_each_op = t->cuda_sync != EMBER_SWITCH_OFF;
#endif
    if (t->cuda_attention < EMBER_CUDA_ATTENTION_DEFAULT || t->cuda_attention > EMBER_CUDA_ATTENTION_WMMA)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "unknown CUDA attention kernel %d", (int)t->cuda_attention);
    if (t->cuda_gemm < EMBER_CUDA_GEMM_DEFAULT || t->cuda_gemm > EMBER_CUDA_GEMM_LT_TUNE)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "unknown CUDA GEMM path %d", (int)t->cuda_gemm);
    if (t->cuda_ffn_chunk < 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "the FFN chunk must be a token count (0: off), got %d",
                          t->cuda_ffn_chunk);
    cb->attn_wmma = t->cuda_attention == EMBER_CUDA_ATTENTION_WMMA;
    cb->gemm = t->cuda_gemm;
    /* a chunk of the whole batch is no chunking */
    cb->ffn_chunk = t->cuda_ffn_chunk >= max_tokens ? 0 : t->cuda_ffn_chunk;
    cb->profile = t->cuda_profile == EMBER_SWITCH_ON;
    return EMBER_OK;
}

/* The stream, cuBLAS with its workspace on it, and cuBLASLt when asked for. */
static ember_status blas_open(cuda_backend *cb) {
    cudaError_t e;
    if ((e = cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking)) != cudaSuccess)
        return cuda_fail("stream creation", -1, e);
    cublasStatus_t bs = cublasCreate(&cb->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        cb->blas = NULL;
        return ember_fail(EMBER_ERR_BACKEND, "cuBLAS initialisation failed: %s", blas_status_name(bs));
    }
    ember_status st = device_alloc(&cb->blas_ws, BLAS_WORKSPACE_BYTES, "the cuBLAS workspace", cb->device, 0);
    if (st) return st;
    if ((bs = cublasSetStream(cb->blas, cb->stream)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetWorkspace(cb->blas, cb->blas_ws, BLAS_WORKSPACE_BYTES)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetMathMode(cb->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS)
        return ember_fail(EMBER_ERR_BACKEND, "cuBLAS setup failed: %s", blas_status_name(bs));
    if ((cb->gemm == EMBER_CUDA_GEMM_LT || cb->gemm == EMBER_CUDA_GEMM_LT_TUNE) &&
        (bs = matmul_lt_create(&cb->lt, cb->blas, cb->blas_ws, BLAS_WORKSPACE_BYTES,
                               cb->gemm == EMBER_CUDA_GEMM_LT_TUNE)) != CUBLAS_STATUS_SUCCESS)
        return ember_fail(EMBER_ERR_BACKEND, "cuBLASLt initialisation failed: %s", blas_status_name(bs));
    return EMBER_OK;
}

/* Every weight converted to the compute dtype on the host, one upload. */
static ember_status weights_upload(cuda_backend *cb, const bert_config *cfg, const bert_tensors *w,
                                   ember_dtype dtype) {
    ember_status st = cuda_param_layout_init(&cb->lay, cfg, dtype);
    if (st) return st;
    uint8_t *host_slab = malloc(cb->lay.bytes);
    if (!host_slab)
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory staging %.1f MiB of weights",
                          (double)cb->lay.bytes / (1 << 20));
    if (!(st = cuda_params_pack(host_slab, &cb->lay, cfg, w)) &&
        !(st = device_alloc((void **)&cb->params, cb->lay.bytes, "the weights", cb->device, 0))) {
        /* On the backend's own stream, then waited for: a plain cudaMemcpy
         * from pageable memory may return before its last DMA lands, and it
         * runs on the legacy default stream, which a non-blocking stream
         * does not wait for. */
        cudaError_t e;
        if ((e = cudaMemcpyAsync(cb->params, host_slab, cb->lay.bytes, cudaMemcpyHostToDevice, cb->stream)) !=
                cudaSuccess ||
            (e = cudaStreamSynchronize(cb->stream)) != cudaSuccess)
            st = cuda_fail("weight upload", -1, e);
    }
    free(host_slab);
    return st;
}

/* The activation slab and the pinned buffers a batch passes through. */
static ember_status workspace_alloc(cuda_backend *cb, const bert_config *cfg, ember_dtype dtype, int32_t max_tokens) {
    cuda_workspace_layout_init(&cb->ws, cfg, dtype, max_tokens);
    ember_status st;
    if ((st = device_alloc((void **)&cb->acts, cb->ws.bytes, "the activations", cb->device, 0)) ||
        (st = device_alloc((void **)&cb->h_ints, cuda_batch_ints(max_tokens, max_tokens) * sizeof(int32_t),
                           "the batch staging buffer", cb->device, 1)))
        return st;
    return device_alloc((void **)&cb->h_out, (size_t)max_tokens * cfg->C * sizeof(float), "the output buffer",
                        cb->device, 1);
}

/* Events for the per-op profile: marks per forward are the upload, the
 * embedding, 5 per layer plus 3 per FFN chunk, and at most two (output,
 * end) per copy back. */
static ember_status profile_setup(cuda_backend *cb, int32_t max_tokens) {
    const int32_t chunks = cb->ffn_chunk > 0 ? (max_tokens + cb->ffn_chunk - 1) / cb->ffn_chunk : 1;
    const int cap = 6 + cb->cfg.L * (5 + 3 * chunks);
    cb->prof_ev = calloc((size_t)cap, sizeof *cb->prof_ev);
    cb->prof_op = calloc((size_t)cap, sizeof *cb->prof_op);
    if (!cb->prof_ev || !cb->prof_op) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (; cb->prof_cap < cap; cb->prof_cap++) {
        cudaError_t e = cudaEventCreate(&cb->prof_ev[cb->prof_cap]);
        if (e != cudaSuccess) return cuda_fail("profiling event creation", -1, e);
    }
    return EMBER_OK;
}

backend *cuda_backend_create(const bert_config *cfg, const bert_tensors *w, int32_t device_index, ember_dtype dtype,
                             int32_t max_tokens, const ember_tuning *tuning, ember_status *st) {
    /* The device first: with no GPU or no driver the answer is always
     * EMBER_ERR_NO_DEVICE (callers fall back to the CPU on it), whatever
     * the model. */
    struct cudaDeviceProp prop;
    if ((*st = device_open(device_index, &prop)) || (*st = cuda_config_check(cfg, dtype, max_tokens))) return NULL;
    cuda_backend *cb = calloc(1, sizeof *cb);
    if (!cb) {
        *st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    cb->cfg = *cfg;
    cb->device = device_index;
    if ((*st = tuning_apply(cb, tuning, max_tokens)) || (*st = blas_open(cb)) ||
        (*st = weights_upload(cb, cfg, w, dtype)) || (*st = workspace_alloc(cb, cfg, dtype, max_tokens)) ||
        (cb->profile && (*st = profile_setup(cb, max_tokens)))) {
        cuda_destroy(&cb->base);
        return NULL;
    }
    cb->base.forward = cuda_forward;
    cb->base.destroy = cuda_destroy;
    cb->base.device = EMBER_DEVICE_CUDA;
    cb->base.device_index = device_index;
    cb->base.dtype = dtype;
    cb->base.max_tokens = max_tokens;
    snprintf(cb->base.name, sizeof cb->base.name, "%s", prop.name);
    return &cb->base;
}
