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

typedef enum {
    EMBER_NORMALIZE_DEFAULT = 0, /* L2-normalise when the model has a Normalize module */
    EMBER_NORMALIZE_ON,
    EMBER_NORMALIZE_OFF
} ember_normalize;

typedef struct ember_model ember_model;

typedef struct {
    ember_device device;
    int32_t device_index;     /* CUDA device ordinal */
    ember_dtype dtype;        /* compute dtype; the CPU backend runs fp32 only */
    int32_t n_threads;        /* CPU threads; 0: every online core */
    int32_t max_batch_tokens; /* tokens per forward pass (sets the workspace size) */
    int32_t max_length;       /* 0: the model's own limit; otherwise min(this, model's) */
    const char *revision;     /* a model loaded by hub id: branch, tag or commit (NULL: "main") */
} ember_model_params;

ember_model_params ember_model_default_params(void);

/* Load a Hugging Face model directory as published (config.json,
 * model.safetensors, tokenizer files, sentence-transformers configs).
 * A `dir` that does not exist but reads as a hub id ("org/name", "name") is
 * a model by name: see "models by name" below. */
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
    char device_name[128];    /* "cpu (8 threads)", "NVIDIA H100 80GB HBM3", ... */
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
ember_status ember_hub_resolve(const char *id, const char *revision, char *dir, size_t cap);

/* Ask the hub which commit `revision` is now, download the files the model
 * needs that the cache lacks (config, safetensors weights, sharded ones too,
 * tokenizer files, sentence-transformers configs and module folders), then
 * resolve as ember_hub_resolve. An interrupted download resumes where it
 * stopped; LFS files are checked against their sha256; a lock per file
 * keeps processes pulling the same model from writing the same file; a file
 * appears in the snapshot only once it is complete and checked. `progress`
 * may be NULL. With HF_HUB_OFFLINE set this is ember_hub_resolve. */
ember_status ember_hub_pull(const char *id, const char *revision, ember_hub_progress_fn progress, void *user,
                            char *dir, size_t cap);

/* ---- end of models by name ------------------------------------------------ */

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
