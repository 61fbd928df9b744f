/*
 * The streaming engine behind ember_embed_file (embed_file.c), over the
 * public API (ember_tokenize, ember_encode_sequences) and src/common.
 *
 *   reader ──▶ tokenizer threads ──▶ batcher ──▶ device thread(s) ──▶ writer
 *   (lines,     (ember_tokenize,      (a window    (one per model:      (the calling
 *    crc32)      per chunk)            sorted by    ember_encode_        thread, in
 *                                      length, cut  sequences)           input order:
 *                                      by tokens)                        sink.h)
 *
 * The unit of flow is a window: up to `window` consecutive input rows. A few
 * window slots cycle (read -> tokenized -> batched -> encoded -> written ->
 * free), so the reader and tokenizers run ahead of the devices by at most
 * PIPE_SLOTS - 1 windows and memory is set by the options, never by the
 * corpus: per slot, the window's text (at most PIPE_WINDOW_BYTES, or one
 * line), its token ids and its output vectors (window x dim floats).
 *
 * Row r of the output is always input line r + 1, whatever the batching: the
 * writer takes windows in order and rows in order within a window.
 */
#ifndef EMBER_PIPELINE_PIPELINE_H
#define EMBER_PIPELINE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/lines.h"
#include "ember.h"

/* Window slots in flight: one being written or encoded, the next ones being
 * read and tokenized. */
#define PIPE_SLOTS 3
/* Rows a tokenizer thread takes at a time. */
#define PIPE_CHUNK_ROWS 256
/* A window closes early when its text reaches this many bytes, so that long
 * lines cannot make a window's text unbounded (a single line still is). */
#define PIPE_WINDOW_BYTES ((size_t)64 << 20)

/* What happened to one input row, and where the input stood after it. */
typedef struct {
    int32_t n_tokens;     /* tokens fed to the model, [CLS] and [SEP] included */
    uint8_t truncated;    /* over-long: cut to max_length */
    uint8_t invalid_utf8; /* had invalid UTF-8 (replaced) */
    uint8_t empty;        /* the text was empty */
    uint32_t in_crc;      /* crc32 of the input's lines up to and including this one */
    int64_t in_bytes;     /* their length (each line's bytes plus one for its end) */
} row_info;

/* Where rows go, in input order (see sink.h). */
typedef struct sink sink;

typedef struct {
    const char *input;       /* a path, or "-" for stdin; plain or gzip */
    const char *jsonl_field; /* NULL: text lines; else the JSON field holding the text */
    ember_model *const *models; /* one device thread each; models[0] also tokenizes */
    int32_t n_models;
    ember_encode_params encode;
    int32_t token_budget;   /* tokens per batch (at most the models' max_batch_tokens) */
    int32_t max_batch_rows; /* 0: no cap */
    int32_t window;         /* rows sorted by length together */
    /* Windows never straddle a multiple of this many rows (the shard size):
     * a run resumed at a shard boundary then cuts exactly the batches an
     * uninterrupted run cuts, so it gives the same bits even on a backend
     * whose output depends on the rest of the batch. 0: no alignment. */
    int64_t align_rows;
    int32_t tokenizer_threads;
    /* Resume: the first skip_rows lines are read, checked against the hash
     * the earlier run recorded, and not embedded again. */
    int64_t skip_rows;
    uint32_t skip_crc;
    int64_t skip_bytes;
    sink *out;
    cancel_fn cancel; /* polled; nonzero: stop as soon as possible */
    void *cancel_user;
    ember_embed_progress_fn progress;
    void *progress_user;
    double progress_interval;
} pipeline_opts;

typedef struct {
    int64_t rows;    /* written by this run */
    int64_t tokens;  /* fed to the model by this run */
    double elapsed;  /* seconds, from the start of reading to the last row written */
    double busy[64]; /* seconds each model spent in ember_encode_sequences (first 64) */
    int32_t n_busy;
} pipeline_result;

/* Run the whole stream: EMBER_OK when every row was written,
 * EMBER_ERR_CANCELLED when o->cancel stopped it, else the error (the
 * message names the input and line; the earliest row's failure wins). */
ember_status pipeline_run(const pipeline_opts *o, pipeline_result *res);

#endif
