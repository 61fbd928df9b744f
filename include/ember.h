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

/* What libember exports: these functions and nothing else. */
#if defined(__GNUC__) || defined(__clang__)
#define EMBER_API __attribute__((visibility("default")))
#else
#define EMBER_API
#endif

typedef enum {
    EMBER_OK = 0,
    EMBER_ERR_INVALID_ARGUMENT, /* a NULL or out-of-range argument */
    EMBER_ERR_IO,               /* a file is missing or unreadable */
    EMBER_ERR_FORMAT,           /* a file is malformed, truncated or mis-shaped */
    EMBER_ERR_UNSUPPORTED,      /* a model type, activation, dtype, ... ember does not handle */
    EMBER_ERR_NO_DEVICE,        /* CUDA was asked for and there is none */
    EMBER_ERR_OUT_OF_MEMORY,
    EMBER_ERR_BUFFER_TOO_SMALL, /* the caller's buffer is too small; the needed size is returned */
    EMBER_ERR_BACKEND,          /* the compute backend failed (a CUDA error, ...) */
    EMBER_ERR_CANCELLED         /* the caller asked to stop (ember_embed_file's cancel) */
} ember_status;

/* A fixed string naming the status ("ok", "format error", ...). */
EMBER_API const char *ember_status_str(ember_status status);
/* The detailed message of the calling thread's last failure ("" if none),
 * naming the input and the problem, e.g.
 * "model.safetensors: tensor 'x' has wrong shape: got [3, 4], expected [4, 4]". */
EMBER_API const char *ember_last_error(void);

typedef enum { EMBER_LOG_DEBUG = 0, EMBER_LOG_INFO, EMBER_LOG_WARN, EMBER_LOG_ERROR } ember_log_level;
typedef void (*ember_log_fn)(ember_log_level level, const char *message, void *user);
/* Route the library's log messages (NULL: drop them, the default). */
EMBER_API void ember_log_set(ember_log_fn fn, void *user);

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
EMBER_API const char *ember_dtype_str(ember_dtype dtype);
EMBER_API const char *ember_pooling_str(ember_pooling pooling);
/* The reverse, for what --dtype, --pooling and --device take ("cpu", "cuda",
 * "cuda:N", "auto"; *index is N, else 0); EMBER_ERR_INVALID_ARGUMENT with
 * a message listing the accepted values for anything else. */
EMBER_API ember_status ember_dtype_parse(const char *s, ember_dtype *out);
EMBER_API ember_status ember_pooling_parse(const char *s, ember_pooling *out);
EMBER_API ember_status ember_device_parse(const char *s, ember_device *device, int32_t *index);

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
EMBER_API ember_status ember_tuning_from_env(ember_tuning *tuning);

typedef struct {
    ember_device device;
    int32_t device_index;     /* CUDA device ordinal */
    ember_dtype dtype;        /* compute dtype; the CPU backend runs fp32 only */
    int32_t n_threads;        /* CPU threads; 0: every online core */
    int32_t max_batch_tokens; /* tokens per forward pass (sets the workspace size);
                                 0: 4096 on the CPU, 32768 on a GPU */
    int32_t max_length;       /* 0: the model's own limit; otherwise min(this, model's) */
    ember_tuning tuning;      /* all zero: the defaults */
    const char *revision;     /* a model loaded by hub id: branch, tag or commit (NULL: "main") */
} ember_model_params;

EMBER_API ember_model_params ember_model_default_params(void);

/* Load a Hugging Face model directory as published (config.json,
 * model.safetensors, tokenizer files, sentence-transformers configs).
 * A `dir` that does not exist but reads as a hub id ("org/name", "name") is
 * a model by name: see "models by name" below. Weights holding NaN or Inf
 * load, with a warning per tensor to the log (EMBER_LOG_WARN, naming it). */
EMBER_API ember_status ember_model_load(const char *dir, const ember_model_params *params, ember_model **out);
EMBER_API void ember_model_free(ember_model *model);

typedef struct {
    const char *name;         /* the directory's base name */
    const char *architecture; /* "bert" or "mpnet" (config.json's model_type) */
    int32_t dim;              /* the size of the vectors ember_encode writes: the hidden size,
                                 or a Dense module's out_features */
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
    const char *dir;          /* the directory it was loaded from */
    int32_t batch_invariant;  /* 1 when a text's vector is the same bits whatever else is in
                                 its batch (the CPU's SIMD kernels); 0 when it may differ in the
                                 last bits (portable C, cuBLAS) */
    int32_t hidden_size;      /* the width of a token's hidden state (ember_encode_tokens) */
    const char *modules;      /* the sentence-transformers modules run after the Transformer, in
                                 order: "Pooling(mean) Dense(768->256, Tanh) Normalize"; "" for a
                                 plain BERT directory (CLS pooling) */
    int32_t num_labels;       /* a cross-encoder (config.json's architectures[0] is
                                 BertForSequenceClassification): its classes, and dim == num_labels
                                 (ember_encode writes the logits); 0 for an encoder */
    const char *const *labels; /* num_labels names, config.json's id2label; NULL for an encoder */
    const char *prompts;      /* config_sentence_transformers.json's prompt names, ", "-separated
                                 ("" when none) */
    const char *default_prompt_name; /* NULL when none */
    int32_t include_prompt;   /* 0: a prompt's tokens are left out of pooling */
} ember_model_info;

EMBER_API ember_status ember_model_get_info(const ember_model *model, ember_model_info *info);

/* The encoder families ember runs, as one line of text: each model_type with
 * the transformers classes it covers. A model directory of another
 * model_type (xlm-roberta, modernbert, ...) is refused with
 * EMBER_ERR_UNSUPPORTED and a message naming its model_type and this list. */
EMBER_API const char *ember_supported_architectures(void);

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
    const char *prompt;         /* NULL or text joined before `text` (not the pair) before
                                   tokenizing; offsets are then in the joined string */
} ember_tokenize_params;

EMBER_API ember_tokenize_params ember_tokenize_default_params(void);

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
EMBER_API ember_status ember_tokenize(const ember_model *model, const char *text, ptrdiff_t len, const char *pair,
                                      ptrdiff_t pair_len, const ember_tokenize_params *params, ember_token *tokens,
                                      int32_t capacity, int32_t *n_tokens, ember_text_stats *stats);

/* The vocabulary entry of an id (NULL when out of range). */
EMBER_API const char *ember_token_text(const ember_model *model, int32_t id);

/* ---- encoding ----------------------------------------------------------- */

typedef struct {
    ember_pooling pooling;     /* EMBER_POOLING_DEFAULT: the model's */
    ember_normalize normalize; /* EMBER_NORMALIZE_DEFAULT: the model's */
    int32_t truncate;          /* 1 (default): cut over-long texts to max_length;
                                  0: an over-long text is an error */
    int32_t truncate_left;     /* cut from the start instead of the end */
    /* A prompt put before every text, as sentence-transformers' encode(prompt=,
     * prompt_name=) does: the strings are joined, then tokenized. `prompt` is the
     * text itself and wins over `prompt_name`; "" is no prompt. `prompt_name` names
     * one of config_sentence_transformers.json's prompts (an unknown name is
     * EMBER_ERR_INVALID_ARGUMENT naming it and the model's prompts). Both NULL (the
     * default): the model's default_prompt_name, when it has one. When the model's
     * Pooling says include_prompt false, the prompt's tokens ([CLS] with them) are
     * left out of pooling. ember_encode only: ember_encode_tokens and
     * ember_encode_sequences ignore these (for tokens made elsewhere see
     * ember_resolve_prompt, ember_tokenize_params.prompt and ember_sequence.pool_skip). */
    const char *prompt_name;
    const char *prompt;
} ember_encode_params;

EMBER_API ember_encode_params ember_encode_default_params(void);

/*
 * Encode n texts to pooled vectors, out[n * dim] row-major, in input order:
 * the model's modules as modules.json lists them (Transformer, Pooling, then
 * any Dense and Normalize modules), so that dim is the last Dense module's
 * out_features when there is one.
 * lens: byte lengths (NULL, or an entry < 0: NUL-terminated). params NULL:
 * defaults. stats: NULL or n entries to fill. An empty text is valid (it is
 * "[CLS] [SEP]"). Texts are batched internally by max_batch_tokens.
 */
EMBER_API ember_status ember_encode(ember_model *model, const char *const *texts, const ptrdiff_t *lens, int32_t n,
                                    const ember_encode_params *params, float *out, ember_text_stats *stats);

/* Every token's last hidden state ([CLS] and [SEP] included) for n texts. */
typedef struct {
    int32_t n_texts;
    int32_t dim;         /* the hidden size (ember_model_info.hidden_size) */
    int32_t n_tokens;    /* in all */
    int32_t *offsets;    /* n_texts + 1: text i has rows offsets[i] .. offsets[i+1]-1 */
    ember_token *tokens; /* n_tokens: the token of each row */
    float *data;         /* n_tokens * dim */
} ember_token_embeddings;

EMBER_API ember_status ember_encode_tokens(ember_model *model, const char *const *texts, const ptrdiff_t *lens,
                                           int32_t n, const ember_encode_params *params, ember_token_embeddings **out,
                                           ember_text_stats *stats);
EMBER_API void ember_token_embeddings_free(ember_token_embeddings *emb);

/* A sequence already tokenized: ids as the model sees them, special tokens
 * included (see ember_tokenize). type_ids NULL: all 0. */
typedef struct {
    const int32_t *ids;
    const int32_t *type_ids;
    int32_t n;
    int32_t pool_skip;   /* the first pool_skip tokens are left out of pooling (a prompt's, as
                            ember_resolve_prompt counts them); 0: none */
} ember_sequence;

/*
 * Run the model on n tokenized sequences: pooled vectors into pooled
 * (n * dim, or NULL) and every token's last hidden state into hidden
 * (sum of the lengths * hidden_size, in order, or NULL). A sequence longer than the
 * model's max_length is an error, or with params->truncate is cut to its
 * first max_length ids (its last, with truncate_left) — special tokens are
 * not re-added, and `hidden` then holds the rows of the cut sequences. Ids
 * must be in the vocabulary.
 */
/*
 * The prompt that prompt / prompt_name ask for, as ember_encode_params
 * documents them: *text is its text ("" for none; it lives as long as the
 * model or the caller's string), *pool_skip the tokens to leave out of
 * pooling (ember_sequence.pool_skip) — 0 unless the model's Pooling has
 * include_prompt false, where it is the prompt's tokens as
 * sentence-transformers counts them (the prompt tokenized alone, [CLS]
 * included, the final [SEP] not). pool_skip may be NULL. An unknown name is
 * EMBER_ERR_INVALID_ARGUMENT naming it and the model's prompts.
 */
EMBER_API ember_status ember_resolve_prompt(const ember_model *model, const char *prompt_name, const char *prompt,
                                            const char **text, int32_t *pool_skip);

EMBER_API ember_status ember_encode_sequences(ember_model *model, const ember_sequence *seqs, int32_t n,
                                              const ember_encode_params *params, float *pooled, float *hidden);

/* ---- cross-encoders (rerankers) ------------------------------------------
 *
 * A BertForSequenceClassification directory loads with ember_model_load
 * like any model: BERT, then its pooler (Dense + tanh on [CLS]) and its
 * classifier (Linear to num_labels). A pair is tokenized as
 * [CLS] a [SEP] b [SEP] (b's tokens with type id 1), cut longest first to the
 * model's max_length when truncating, as transformers' tokenizers do.
 */
typedef struct {
    int32_t raw;           /* 1: the logits as they are; 0 (default): what sentence-transformers'
                              CrossEncoder answers by default, the sigmoid of the logit when
                              num_labels == 1, the logits otherwise */
    int32_t truncate;      /* 1 (default): cut over-long pairs; 0: fail on them */
    int32_t truncate_left; /* cut from the start instead of the end */
} ember_score_params;

EMBER_API ember_score_params ember_score_default_params(void);

/* Score n pairs (a[i], b[i]) of NUL-terminated UTF-8 texts with a
 * cross-encoder into scores, (n, num_labels) row-major. b NULL, or b[i]
 * NULL: a[i] alone ([CLS] a [SEP]). stats (NULL or n entries): per pair.
 * EMBER_ERR_UNSUPPORTED for a model that is not a cross-encoder. */
EMBER_API ember_status ember_score_pairs(ember_model *model, const char *const *a, const char *const *b, int32_t n,
                                         const ember_score_params *params, float *scores, ember_text_stats *stats);

/* ---- streaming corpus embedding ------------------------------------------
 *
 * ember_embed_file: one vector per line of a file (or stdin), in input
 * order, streamed so that memory is set by the options, never by the
 * corpus: lines are read and tokenized ahead by threads, sorted by length
 * within a window so that batches carry no padding, run on one or more
 * models (one thread each: several GPUs, or replicas on one), and written
 * back in input order to one file (.npy float32 / float16, or JSONL) or to
 * a directory of shards with a manifest that makes the run resumable: a run
 * stopped anywhere (cancelled, killed, a crash) and resumed ends with the
 * output an uninterrupted run writes. Empty lines are embedded as empty
 * texts, over-long ones truncated, invalid UTF-8 replaced: each counted in
 * the totals, nothing skipped.
 *
 * It prints nothing and installs no signal handler: progress and notes go
 * to callbacks, errors to the status and ember_last_error() (naming the
 * file and line), and the caller stops a run by making `cancel` return
 * nonzero (polled every 100 ms at least, also while waiting for input from
 * a terminal or a pipe). The threads it starts block SIGINT and SIGTERM, so
 * that those reach the caller's threads; a signal that interrupts a blocked
 * write to stdout with EINTR, while cancel says stop, ends the run as
 * cancelled.
 *
 * Manifest (manifest.json in the shard directory; version 1):
 *   { "ember_embed_manifest": 1, "complete": bool,
 *     "input":  { "path", "size", "mtime", "jsonl_field" },
 *     "model":  { "name", "dir", "dim", "max_length", "weights_bytes" },
 *     "output": { "format", "shard_rows", "pooling", "normalize", "truncate", "device", "dtype" },
 *     "batching": { "window", "max_batch_tokens", "batch" },
 *     "shards": [ { "file", "rows", "bytes", "crc32", "input_bytes", "input_crc32", "totals" }, ... ],
 *     "totals": { "rows", "tokens", "empty", "truncated", "invalid_utf8",
 *                 "first_truncated", "first_invalid" } (when complete) }
 */

typedef enum {
    EMBER_OUTPUT_NPY = 0, /* rows x dim in the precision's dtype */
    EMBER_OUTPUT_NPY16,   /* the same as NPY with EMBER_PRECISION_FLOAT16 */
    EMBER_OUTPUT_JSONL    /* one JSON array per line: every float exactly (%.9g), or integers */
} ember_output_format;

/* What a stored vector is (sentence-transformers' quantize_embeddings):
 * - INT8 / UINT8: per dimension, v = (x - min) / ((max - min) / 255) in fp32,
 *   truncated, minus 128 for INT8, with min and max from calibration
 *   vectors; the same numbers as numpy inside the calibration range (outside
 *   it ember saturates where numpy's cast wraps around);
 * - BINARY / UBINARY: the bits x > 0, eight to a byte, the first dimension
 *   in the high bit (np.packbits), as uint8, or minus 128 as int8. */
typedef enum {
    EMBER_PRECISION_FLOAT32 = 0,
    EMBER_PRECISION_FLOAT16,
    EMBER_PRECISION_INT8,
    EMBER_PRECISION_UINT8,
    EMBER_PRECISION_BINARY,
    EMBER_PRECISION_UBINARY
} ember_precision;

/* "float32", "float16", "int8", "uint8", "binary", "ubinary" (what
 * --precision takes), and back. */
EMBER_API const char *ember_precision_str(ember_precision precision);
EMBER_API ember_status ember_precision_parse(const char *s, ember_precision *out);

/* Every row of an output so far (an earlier run's included on a resume). */
typedef struct {
    int64_t rows, tokens, empty, truncated, invalid_utf8;
    int64_t first_truncated, first_invalid; /* 1-based rows; 0: none */
} ember_embed_totals;

typedef struct {
    int64_t rows, tokens; /* embedded by this run so far */
    int64_t rows_before;  /* rows an earlier run had written (a resume) */
    int64_t input_bytes;  /* how far into the input as stored (compressed for .gz) the
                             rows written reach; -1 before the first */
    int64_t input_start;  /* where this run began reading new rows (a resume skips some) */
    int64_t input_size;   /* the input's size as stored; -1 when unknown (stdin, a pipe) */
    double elapsed;       /* seconds since the run began */
    int32_t done;         /* 1 on the last report */
} ember_embed_progress;

typedef void (*ember_embed_progress_fn)(const ember_embed_progress *progress, void *user);

typedef struct {
    const char *input;       /* a path (plain or gzip) or "-" for stdin */
    const char *jsonl_field; /* NULL: each line is a text; else each line is a JSON object
                                whose string field of this name is the text */
    const char *output;      /* a file; a directory when shard_rows > 0; NULL or "-":
                                JSONL on stdout */
    ember_output_format format;
    int64_t shard_rows;      /* > 0: shards of this many rows plus manifest.json in `output` */
    int32_t resume;          /* continue the run recorded in output/manifest.json, after
                                its last complete shard (a fresh start when there is none) */
    ember_encode_params encode; /* pooling DEFAULT / normalize DEFAULT: the first model's */
    int32_t max_batch_rows;  /* texts per forward pass; 0: as many as the token budget holds */
    int32_t window;          /* texts sorted by length together; 0: 8192 */
    int32_t tokenizer_threads; /* 0: 1 */
    ember_embed_progress_fn progress; /* NULL: none */
    void *progress_user;
    double progress_interval; /* seconds between reports; 0: 0.25 */
    ember_log_fn log;        /* notes (a resume's decisions, a damaged shard redone); NULL:
                                the global log (ember_log_set) */
    void *log_user;
    int (*cancel)(void *user); /* nonzero: stop as soon as possible; NULL: never */
    void *cancel_user;
    int32_t dimensions;      /* > 0: keep the first N dimensions (Matryoshka), L2-normalised
                                again when the vectors are normalised; 0: all */
    ember_precision precision; /* what a row is stored as (default FLOAT32) */
    const char *calibration; /* INT8 / UINT8: the ranges are the per-dimension min and max of
                                the vectors of this .npy (float32 or float16, the model's or
                                the output's dimension), or those an earlier run recorded
                                (its directory or manifest.json); NULL: of the first window
                                of this run. A resumed run keeps its manifest's ranges. */
} ember_embed_options;

EMBER_API ember_embed_options ember_embed_default_options(void);

typedef struct {
    ember_embed_totals totals; /* the whole output, an earlier run's rows included */
    int64_t rows, tokens;      /* embedded by this run */
    double elapsed;            /* seconds, from the first read to the last row written */
    int64_t resumed_rows;      /* found done by a resume ... */
    int32_t resumed_shards;    /* ... in this many shards */
    int64_t committed_rows;    /* rows the output keeps for sure (a cancelled run's shards) */
    int32_t committed_shards;
    int32_t already_complete;  /* a resume found the run complete: nothing was done */
    int32_t n_models;
    double busy[64];           /* seconds each model (the first 64) spent encoding */
} ember_embed_result;

/*
 * Run it with n_models models of one model directory (the same dimension and
 * maximum length; e.g. one per GPU), models[0] tokenizing. EMBER_OK when
 * every row was written; EMBER_ERR_CANCELLED when cancel stopped it (a
 * sharded output keeps its complete shards, resumable; a single file is not
 * written); another status with ember_last_error() naming the file, line or
 * option at fault. result may be NULL.
 */
EMBER_API ember_status ember_embed_file(ember_model *const *models, int32_t n_models,
                                        const ember_embed_options *options, ember_embed_result *result);

/* ---- search over stored vectors -------------------------------------------
 *
 * Exact top-k by inner product over what ember_embed_file wrote (a directory
 * of shards with its manifest, or one .npy file), memory-mapped so that the
 * corpus need not fit in memory, or over a matrix the caller holds. On the
 * CPU: every core, blocked matrix products on ember's own kernels and a
 * streaming top-k per query. Compact corpora (ember_precision) are searched
 * as sentence-transformers does: int8 / uint8 by integer products with the
 * queries quantized by the corpus's ranges, binary by Hamming similarity
 * (matching bits); then, when rescore > 0, the best rescore x k candidates
 * are scored again as the float query against the stored vector (its
 * integer values, or its bits as 0 / 1), and the best k of those returned.
 *
 *     ember_index *ix;
 *     ember_index_open("vectors/", &ix);
 *     ember_hit hits[10 * n];
 *     int32_t found[n];
 *     ember_search(ix, queries, n, 384, NULL, hits, found);   // k = 10
 */

typedef struct ember_index ember_index;

/* path: a directory of shards (manifest.json), or a .npy of rows. */
EMBER_API ember_status ember_index_open(const char *path, ember_index **out);
/* rows (n_rows x dim float32, row-major) as they are: not copied, so they
 * must outlive the index. */
EMBER_API ember_status ember_index_wrap(const float *rows, int64_t n_rows, int32_t dim, ember_index **out);
EMBER_API void ember_index_free(ember_index *index);

typedef struct {
    int64_t rows;
    int32_t dim;               /* of the vectors (after any --dimensions) */
    ember_precision precision;
    const char *model_name;    /* the model that made them (NULL when unknown: a bare .npy) */
    int32_t model_dim;         /* its hidden size (0 when unknown) */
    int32_t complete;          /* 0: an interrupted run's shards (searched as far as they go) */
    int32_t n_shards;
    ember_pooling pooling;     /* how the vectors were pooled (DEFAULT when unknown) */
    int32_t normalized;        /* 1: L2-normalised (after any cut to dim); 0: not, or unknown */
} ember_index_info;

EMBER_API ember_status ember_index_get_info(const ember_index *index, ember_index_info *info);

typedef struct {
    int32_t k;         /* hits per query; default 10 */
    int32_t n_threads; /* 0: every core */
    int32_t rescore;   /* compact corpora: rescore this many times k candidates with the
                          float query (default 4); 0: the compact scores as they are */
    const ember_index *rescore_vectors; /* NULL: rescore against the compact vectors as
                          stored (sentence-transformers' scheme); else against these float
                          vectors of the same rows (e.g. a float32 run of the same corpus) */
} ember_search_params;

EMBER_API ember_search_params ember_search_default_params(void);

typedef struct {
    int64_t row;   /* 0-based, in the order the corpus was written */
    float score;   /* the inner product (after rescoring, for a compact corpus) */
} ember_hit;

/*
 * For each of n queries (n x dim floats; dim must be the index's), its best
 * k rows, best first, ties by the lower row: hits[q * k ...], found[q] of
 * them (k, or every row when the corpus has fewer). params NULL: defaults.
 */
EMBER_API ember_status ember_search(const ember_index *index, const float *queries, int32_t n, int32_t dim,
                                    const ember_search_params *params, ember_hit *hits, int32_t *found);

/* ---- the HTTP server ------------------------------------------------------
 *
 * Hugging Face text-embeddings-inference's routes (POST /embed, /embed_all,
 * /tokenize, /similarity; with a cross-encoder /rerank and /predict instead;
 * GET /info, /health, /metrics) and OpenAI's POST /v1/embeddings
 * (float or base64) over one model; with stored vectors, POST /search
 * ({"query": text or [texts], "k": 10, "return_text": false} answered with
 * [{"id": row, "score": s, "text": line}, ...] per query, best first). Requests from every connection are
 * merged into batches by the model's token budget (max_batch_tokens) and
 * run by one thread that owns the model; parsing, tokenizing and answering
 * run on worker threads; limits answer with TEI's or OpenAI's error shapes.
 *
 * The server prints nothing (libmicrohttpd's complaints go to the log
 * callback) and installs no signal handler: the program decides when to
 * drain and stop. It does not ignore SIGPIPE for the process; libmicrohttpd
 * sends with MSG_NOSIGNAL on Linux.
 *
 *     ember_server *srv;
 *     ember_server_config cfg = ember_server_default_config();
 *     cfg.port = 8080;
 *     if (ember_server_start(model, &cfg, &srv) != EMBER_OK) ... ember_last_error() ...
 *     ... until the program wants to stop ...
 *     ember_server_drain(srv);   // refuse new requests, finish those in flight
 *     while (ember_server_in_flight(srv) > 0 && ...) sleep a little;
 *     ember_server_stop(srv);    // what is still queued is answered 503; freed
 */

typedef struct {
    const char *host;                /* address to bind; default "127.0.0.1" */
    int32_t port;                    /* default 3000; 0: any free port (ember_server_port) */
    const char *served_model_name;   /* model_id in /info, "model" in OpenAI answers; NULL: the model's name */
    const char *api_key;             /* NULL: none; else POST routes need "Authorization: Bearer KEY" */
    int32_t max_concurrent_requests; /* in flight before answering 429; default 512 */
    int32_t max_batch_requests;      /* inputs per forward pass; 0: no limit but the token budget */
    int32_t max_client_batch_size;   /* inputs per request; default 32 */
    int32_t auto_truncate;           /* cut over-long inputs unless a request says truncate=false */
    int32_t tokenization_workers;    /* threads parsing and tokenizing; 0: every online core */
    int64_t payload_limit;           /* bytes of request body; default 2000000 */
    int32_t idle_timeout;            /* seconds before an idle connection is closed; default 60; 0: never */
    const char *vectors;             /* NULL; else POST /search answers queries over these stored
                                        vectors (ember_index_open's path), made by this model */
    const char *corpus;              /* with vectors: the corpus file whose lines /search can return
                                        (held in memory; its line count must be the vectors' rows) */
    const char *default_prompt_name; /* the prompt of requests that name none (TEI's `prompt_name`):
                                        NULL: the model's default_prompt_name, if any */
    const char *default_prompt;      /* the same as a text (wins over default_prompt_name; "": none) */
} ember_server_config;

EMBER_API ember_server_config ember_server_default_config(void);

typedef struct ember_server ember_server;

/* Bind, start the threads, and return at once: the server runs until
 * ember_server_stop. The model must outlive the server; while it runs, the
 * server's model thread is the model's only encoder (other threads may still
 * call ember_tokenize and ember_model_get_info on it). */
EMBER_API ember_status ember_server_start(ember_model *model, const ember_server_config *config, ember_server **out);
/* The port it listens on (the one the system chose for port 0). */
EMBER_API int32_t ember_server_port(const ember_server *server);
/* Requests admitted and not yet answered. */
EMBER_API int32_t ember_server_in_flight(const ember_server *server);
/* Stop accepting connections and refuse new requests (503, /health too);
 * requests in flight go on. */
EMBER_API void ember_server_drain(ember_server *server);
/* Drain, answer what is still queued with 503, let a batch running finish
 * (waiting up to 10 s for those answers), stop every thread and free. */
EMBER_API void ember_server_stop(ember_server *server);

/* ---- helpers -------------------------------------------------------------- */

/* Cosine similarity of two vectors of length dim. */
EMBER_API float ember_cosine(const float *a, const float *b, int32_t dim);

/* How many CUDA devices the backend sees; -1 when ember is built without CUDA. */
EMBER_API int32_t ember_cuda_device_count(void);

/* ---- models by name: the Hugging Face Hub and its cache -------------------
 *
 * Wherever ember takes a model directory it also takes a Hugging Face model
 * id as users type it: "sentence-transformers/all-MiniLM-L6-v2",
 * "BAAI/bge-small-en-v1.5", or a bare "all-MiniLM-L6-v2", tried as
 * sentence-transformers does: "sentence-transformers/<name>", then "<name>".
 * A path that exists is always read as a directory.
 *
 * Models are found in, and downloaded into, the cache huggingface_hub uses,
 * in its layout ($HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub: models--org--name/{refs,snapshots,blobs}), so
 * that ember, huggingface_hub, transformers and sentence-transformers share
 * one copy. Environment, as huggingface_hub reads it: HF_ENDPOINT (default
 * https://huggingface.co), HF_TOKEN (gated and private models; else the file
 * `hf auth login` writes), HF_HUB_OFFLINE=1 (never connect),
 * HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (seconds without progress
 * before giving up; default 10).
 *
 * A revision is a branch, a tag or a commit hash; NULL or "" is "main".
 */

/* A download's progress: `file` (the index-th of the count files the model
 * needs, from 1) has `done` of `total` bytes (total < 0: unknown). Called as
 * data arrives and when the file is complete; files already cached are not
 * reported. Return nonzero to stop: the pull then fails, and a later one
 * resumes the file where it stopped. */
typedef int (*ember_hub_progress_fn)(const char *file, int32_t index, int32_t count, int64_t done,
                                     int64_t total, void *user);

/* The local directory of model `id` at `revision`, from the cache only (it
 * never connects): the snapshot path goes into dir[cap]. EMBER_ERR_IO when
 * the model, the revision or a file the model needs is not cached (the
 * message names the id, the revision, the cache directory and what to run),
 * EMBER_ERR_INVALID_ARGUMENT when `id` is not a model id,
 * EMBER_ERR_BUFFER_TOO_SMALL when the path does not fit in cap bytes. */
EMBER_API ember_status ember_hub_resolve(const char *id, const char *revision, char *dir, size_t cap);

/* Ask the hub which commit `revision` is now, download the files the model
 * needs that the cache lacks (config, safetensors weights, sharded ones too,
 * tokenizer files, sentence-transformers configs and module folders), then
 * resolve as ember_hub_resolve. An interrupted download resumes where it
 * stopped; LFS files are checked against their sha256; a lock per file
 * keeps processes pulling the same model from writing the same file; a file
 * appears in the snapshot only once it is complete and checked. `progress`
 * may be NULL. With HF_HUB_OFFLINE set this is ember_hub_resolve. */
EMBER_API ember_status ember_hub_pull(const char *id, const char *revision, ember_hub_progress_fn progress,
                                      void *user, char *dir, size_t cap);

/* ---- end of models by name ------------------------------------------------ */

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
