/*
 * ember — BERT-family text encoders (sentence-transformers, bert-base, bge, ...)
 * on the CPU and on CUDA GPUs, from C.
 *
 * Basic usage:
 *
 *     ember_model *m;
 *     ember_model_params p = ember_model_default_params();
 *     if (ember_model_load("weights/all-MiniLM-L6-v2", &p, &m) != EMBER_OK)
 *         fprintf(stderr, "%s\n", ember_last_error());
 *     float vec[384];
 *     const char *texts[] = { "hello world" };
 *     ember_encode(m, texts, NULL, 1, NULL, vec, NULL);
 *     ember_model_free(m);
 *
 * Thread safety: every function may be called from any thread. A model is
 * immutable after ember_model_load; ember_tokenize* and ember_model_get_info
 * run concurrently on one model without locking; ember_encode* calls on one
 * model are serialised by a lock inside the model (they share its
 * workspace), so use one model per thread for parallel encoding on the CPU.
 * ember_last_error() is per thread. ember_log_set() is global and should be
 * called before other threads use the library.
 *
 * The library never prints and never exits: status codes, ember_last_error()
 * and the log callback carry everything out.
 */
#ifndef EMBER_H
#define EMBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_VERSION "0.1.0"

typedef enum {
    EMBER_OK = 0,
    EMBER_ERR_INVALID_ARGUMENT, /* a NULL or out-of-range argument */
    EMBER_ERR_IO,               /* a file is missing or unreadable */
    EMBER_ERR_FORMAT,           /* a file is malformed, truncated or mis-shaped */
    EMBER_ERR_UNSUPPORTED,      /* a model type, activation, dtype, ... ember does not handle */
    EMBER_ERR_NO_DEVICE,        /* CUDA was asked for and there is none */
    EMBER_ERR_OUT_OF_MEMORY,
    EMBER_ERR_BUFFER_TOO_SMALL, /* the caller's buffer is too small; the needed size is returned */
    EMBER_ERR_BACKEND           /* the compute backend failed (a CUDA error, ...) */
} ember_status;

/* A fixed string naming the status ("ok", "format error", ...). */
const char *ember_status_str(ember_status status);
/* The detailed message of the calling thread's last failure ("" if none),
 * naming the input and the problem, e.g.
 * "model.safetensors: tensor 'x' has wrong shape: got [3, 4], expected [4, 4]". */
const char *ember_last_error(void);

typedef enum { EMBER_LOG_DEBUG = 0, EMBER_LOG_INFO, EMBER_LOG_WARN, EMBER_LOG_ERROR } ember_log_level;
typedef void (*ember_log_fn)(ember_log_level level, const char *message, void *user);
/* Route the library's log messages (NULL: drop them, the default). */
void ember_log_set(ember_log_fn fn, void *user);

typedef enum {
    EMBER_DEVICE_CPU = 0,
    EMBER_DEVICE_CUDA,
    EMBER_DEVICE_AUTO /* CUDA when a device is present, else the CPU (logged) */
} ember_device;

typedef enum { EMBER_DTYPE_FP32 = 0, EMBER_DTYPE_FP16, EMBER_DTYPE_BF16 } ember_dtype;

typedef enum {
    EMBER_POOLING_DEFAULT = 0, /* what the model directory says; CLS for a plain BERT */
    EMBER_POOLING_CLS,
    EMBER_POOLING_MEAN,
    EMBER_POOLING_MAX,
    EMBER_POOLING_MEAN_SQRT_LEN /* sum / sqrt(number of tokens) */
} ember_pooling;

/* Fixed strings naming a dtype ("fp32", "fp16", "bf16": what --dtype takes)
 * and a pooling ("default", "cls", "mean", "max", "mean_sqrt_len");
 * "unknown" for a value outside the enum. */
const char *ember_dtype_str(ember_dtype dtype);
const char *ember_pooling_str(ember_pooling pooling);
/* The reverse, for what --dtype, --pooling and --device take ("cpu", "cuda",
 * "cuda:N", "auto"; *index is N, else 0); EMBER_ERR_INVALID_ARGUMENT with
 * a message listing the accepted values for anything else. */
ember_status ember_dtype_parse(const char *s, ember_dtype *out);
ember_status ember_pooling_parse(const char *s, ember_pooling *out);
ember_status ember_device_parse(const char *s, ember_device *device, int32_t *index);

typedef enum {
    EMBER_NORMALIZE_DEFAULT = 0, /* L2-normalise when the model has a Normalize module */
    EMBER_NORMALIZE_ON,
    EMBER_NORMALIZE_OFF
} ember_normalize;

typedef struct ember_model ember_model;

/* ---- debugging and tuning ------------------------------------------------
 * How a backend runs, never what it computes (beyond rounding). All zero is
 * the default everywhere. The library never reads the environment: programs
 * that let users set these there call ember_tuning_from_env. */

typedef enum {
    EMBER_CPU_KERNELS_AUTO = 0, /* the best family the processor runs */
    EMBER_CPU_KERNELS_GENERIC,  /* portable C, OpenBLAS for the products */
    EMBER_CPU_KERNELS_AVX512,   /* AVX-512 F, DQ, BW and VL */
    EMBER_CPU_KERNELS_AVX2      /* AVX2 and FMA (last, so that the values before it stay) */
} ember_cpu_kernels;

typedef enum {
    EMBER_SWITCH_DEFAULT = 0,
    EMBER_SWITCH_ON,
    EMBER_SWITCH_OFF
} ember_switch;

typedef enum {
    EMBER_CUDA_ATTENTION_DEFAULT = 0, /* mma.sync, flash style */
    EMBER_CUDA_ATTENTION_MMA,
    EMBER_CUDA_ATTENTION_WMMA         /* the first tensor-core kernel, kept for comparison */
} ember_cuda_attention;

typedef enum {
    EMBER_CUDA_GEMM_DEFAULT = 0, /* cublasGemmEx */
    EMBER_CUDA_GEMM_BLAS,
    EMBER_CUDA_GEMM_LT,          /* cuBLASLt, its heuristic's first algorithm per shape */
    EMBER_CUDA_GEMM_LT_TUNE      /* cuBLASLt, the fastest of its algorithms per shape, timed */
} ember_cuda_gemm;

typedef struct {
    ember_cpu_kernels cpu_kernels; /* an explicit family this processor lacks is an error */
    ember_switch cuda_sync;        /* synchronise after every op so that a fault names it
                                      (default: on in debug builds) */
    ember_cuda_attention cuda_attention;
    ember_cuda_gemm cuda_gemm;
    int32_t cuda_ffn_chunk;        /* FFN up, activation and down over this many tokens at a
                                      time; 0: the whole batch */
    ember_switch cuda_profile;     /* time every op with CUDA events; the table goes to the
                                      log callback (EMBER_LOG_INFO) when the model is freed */
} ember_tuning;

/*
 * Fill *tuning from the environment: EMBER_CPU_KERNELS (auto, generic,
 * avx2, avx512), EMBER_CUDA_SYNC (0, 1), EMBER_CUDA_ATTENTION (mma, wmma),
 * EMBER_CUDA_GEMM (blas, lt, lt-tune), EMBER_CUDA_FFN_CHUNK (tokens),
 * EMBER_CUDA_PROFILE (0, 1). Unset or empty variables leave their field as
 * it is; a value it does not know is EMBER_ERR_INVALID_ARGUMENT naming the
 * variable, so that no benchmark runs mislabelled.
 */
ember_status ember_tuning_from_env(ember_tuning *tuning);

typedef struct {
    ember_device device;
    int32_t device_index;     /* CUDA device ordinal */
    ember_dtype dtype;        /* compute dtype; the CPU backend runs fp32 only */
    int32_t n_threads;        /* CPU threads; 0: every online core */
    int32_t max_batch_tokens; /* tokens per forward pass (sets the workspace size);
                                 0: 4096 on the CPU, 32768 on a GPU */
    int32_t max_length;       /* 0: the model's own limit; otherwise min(this, model's) */
    ember_tuning tuning;      /* all zero: the defaults */
} ember_model_params;

ember_model_params ember_model_default_params(void);

/* Load a Hugging Face model directory as published (config.json,
 * model.safetensors, tokenizer files, sentence-transformers configs). */
ember_status ember_model_load(const char *dir, const ember_model_params *params, ember_model **out);
void ember_model_free(ember_model *model);

typedef struct {
    const char *name;         /* the directory's base name */
    const char *architecture; /* "bert" */
    int32_t dim;              /* hidden size = pooled vector size */
    int32_t n_layers;
    int32_t n_heads;
    int32_t intermediate_size;
    int32_t vocab_size;
    int32_t max_length;       /* tokens per text, [CLS] and [SEP] included */
    int32_t max_batch_tokens; /* tokens per forward pass (the workspace's size) */
    ember_pooling pooling;    /* the model's default pooling */
    int32_t normalize;        /* 1 when the model L2-normalises by default */
    int32_t lowercase;        /* the tokenizer lowercases */
    ember_device device;      /* the device actually used */
    int32_t device_index;
    ember_dtype dtype;        /* the compute dtype actually used */
    char device_name[128];    /* "cpu (8 threads, avx512)", "NVIDIA H100 80GB HBM3", ... */
    int32_t batch_invariant;  /* 1 when a text's vector is the same bits whatever else is in
                                 its batch (the CPU's SIMD kernels); 0 when it may differ in the
                                 last bits (portable C, cuBLAS) */
} ember_model_info;

ember_status ember_model_get_info(const ember_model *model, ember_model_info *info);

/* ---- tokenization ------------------------------------------------------ */

typedef struct {
    int32_t id;
    int32_t type_id;   /* 0 for the first text, 1 for the pair's second */
    int32_t mask;      /* attention mask: 1, or 0 for padding */
    int32_t special;   /* 1 for [CLS], [SEP], [PAD] */
    int32_t start;     /* byte offsets of the token in its input text, */
    int32_t end;       /* [start, end); 0, 0 for special tokens */
} ember_token;

typedef struct {
    int32_t add_special_tokens; /* [CLS] ... [SEP] (default 1) */
    int32_t truncate;           /* cut to max_length (default 1); 0: keep every token */
    int32_t max_length;         /* 0: the model's */
    int32_t pad_to;             /* pad with [PAD] (mask 0) up to this many tokens; 0: none */
    int32_t truncate_left;      /* cut tokens from the start instead of the end */
} ember_tokenize_params;

ember_tokenize_params ember_tokenize_default_params(void);

/* What happened to one text on its way to tokens. */
typedef struct {
    int32_t n_tokens;          /* tokens produced, special tokens included */
    int32_t n_tokens_untruncated; /* tokens the text would give without truncation */
    int32_t truncated;         /* 1 when tokens were cut off */
    int32_t invalid_utf8;      /* invalid UTF-8 sequences replaced by U+FFFD (see below) */
} ember_text_stats;

/*
 * Tokenize one text (and optionally a second text of a pair: its tokens get
 * type_id 1), exactly as Hugging Face `tokenizers` does for the model.
 * Texts are UTF-8 of the given byte length (len < 0: NUL-terminated).
 * Invalid UTF-8 is not an error: each maximal invalid sequence becomes
 * U+FFFD, which BERT's text cleaning then removes — what Python's
 * bytes.decode("utf-8", "replace") followed by the tokenizer does — and the
 * count is reported in stats->invalid_utf8.
 * Writes up to `capacity` tokens; when more are needed returns
 * EMBER_ERR_BUFFER_TOO_SMALL and sets *n_tokens to the number needed.
 */
ember_status ember_tokenize(const ember_model *model, const char *text, ptrdiff_t len,
                            const char *pair, ptrdiff_t pair_len,
                            const ember_tokenize_params *params, ember_token *tokens,
                            int32_t capacity, int32_t *n_tokens, ember_text_stats *stats);

/* The vocabulary entry of an id (NULL when out of range). */
const char *ember_token_text(const ember_model *model, int32_t id);

/* ---- encoding ----------------------------------------------------------- */

typedef struct {
    ember_pooling pooling;     /* EMBER_POOLING_DEFAULT: the model's */
    ember_normalize normalize; /* EMBER_NORMALIZE_DEFAULT: the model's */
    int32_t truncate;          /* 1 (default): cut over-long texts to max_length;
                                  0: an over-long text is an error */
    int32_t truncate_left;     /* cut from the start instead of the end */
} ember_encode_params;

ember_encode_params ember_encode_default_params(void);

/*
 * Encode n texts to pooled vectors, out[n * dim] row-major, in input order.
 * lens: byte lengths (NULL, or an entry < 0: NUL-terminated). params NULL:
 * defaults. stats: NULL or n entries to fill. An empty text is valid (it is
 * "[CLS] [SEP]"). Texts are batched internally by max_batch_tokens.
 */
ember_status ember_encode(ember_model *model, const char *const *texts, const ptrdiff_t *lens,
                          int32_t n, const ember_encode_params *params, float *out,
                          ember_text_stats *stats);

/* Every token's last hidden state ([CLS] and [SEP] included) for n texts. */
typedef struct {
    int32_t n_texts;
    int32_t dim;
    int32_t n_tokens;    /* in all */
    int32_t *offsets;    /* n_texts + 1: text i has rows offsets[i] .. offsets[i+1]-1 */
    ember_token *tokens; /* n_tokens: the token of each row */
    float *data;         /* n_tokens * dim */
} ember_token_embeddings;

ember_status ember_encode_tokens(ember_model *model, const char *const *texts,
                                 const ptrdiff_t *lens, int32_t n,
                                 const ember_encode_params *params,
                                 ember_token_embeddings **out, ember_text_stats *stats);
void ember_token_embeddings_free(ember_token_embeddings *emb);

/* A sequence already tokenized: ids as the model sees them, special tokens
 * included (see ember_tokenize). type_ids NULL: all 0. */
typedef struct {
    const int32_t *ids;
    const int32_t *type_ids;
    int32_t n;
} ember_sequence;

/*
 * Run the model on n tokenized sequences: pooled vectors into pooled
 * (n * dim, or NULL) and every token's last hidden state into hidden
 * (sum of the lengths * dim, in order, or NULL). A sequence longer than the
 * model's max_length is an error, or with params->truncate is cut to its
 * first max_length ids (its last, with truncate_left) — special tokens are
 * not re-added, and `hidden` then holds the rows of the cut sequences. Ids
 * must be in the vocabulary.
 */
ember_status ember_encode_sequences(ember_model *model, const ember_sequence *seqs, int32_t n,
                                    const ember_encode_params *params, float *pooled, float *hidden);

/* ---- helpers -------------------------------------------------------------- */

/* Cosine similarity of two vectors of length dim. */
float ember_cosine(const float *a, const float *b, int32_t dim);

/* How many CUDA devices the backend sees; -1 when ember is built without CUDA. */
int32_t ember_cuda_device_count(void);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
