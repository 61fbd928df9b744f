/*
 * Where a streaming run puts its rows, in input order:
 *   - JSONL on stdout (streamed as it goes);
 *   - one file (.npy float32 / float16, or .jsonl), written as PATH.partial
 *     and renamed into place once complete, so PATH is never half-written;
 *   - a directory of shards of shard_rows rows each plus manifest.json (its
 *     layout is in include/ember.h), the record that makes a run resumable:
 *     each shard is written as shard-NNNNN.EXT.partial, fsync'd, renamed,
 *     and only then listed in the manifest (itself replaced atomically),
 *     with its row count, its crc32, and the crc32 of the input read up to
 *     its last row. A shard's "totals" count every row up to its end (rows
 *     are 1-based in first_*; 0: none), so a run cut back to any shard knows
 *     its summary.
 * Failures set ember_last_error() on the calling thread and return 0; notes
 * (a resume's decisions) go to the log function of the options.
 */
#ifndef EMBER_PIPELINE_SINK_H
#define EMBER_PIPELINE_SINK_H

#include <stdint.h>

#include "ember.h"
#include "pipeline.h"

/* The run's identity: written to a new manifest, checked against an old one. */
typedef struct {
    const char *input_path;
    int64_t input_size;  /* -1: unknown (stdin) */
    int64_t input_mtime; /* -1: unknown */
    const char *jsonl_field; /* NULL: plain text lines */
    const char *model_name, *model_dir;
    int32_t dim, max_length;
    int64_t weights_bytes; /* size of model.safetensors, -1: unknown */
    const char *pooling;
    const char *prompt; /* put before every text ("" none) */
    int normalize, truncate;
    const char *device, *dtype;
    /* How rows were batched: no part of the output on a backend whose bits do
     * not depend on the rest of the batch (checked by tests/test_pipeline.c);
     * recorded, and a resume that changes them is told so. */
    int32_t window, token_budget, batch_rows;
    int batch_invariant; /* ... unless this is set: then the batching does not matter */
} sink_identity;

typedef struct {
    const char *path; /* file, or directory when shard_rows > 0; NULL or "-": stdout (JSONL) */
    ember_output_format format;
    int64_t shard_rows; /* 0: one file */
    int resume;         /* continue the run recorded in path/manifest.json */
    sink_identity id;
    ember_log_fn log; /* notes; NULL: the library's log */
    void *log_user;
    /* what a row becomes (quantize.h): the first `dimensions` (0: all),
     * normalised again when `normalize`, in `precision`; int8 / uint8 with
     * these ranges (2 x dimensions), or NULL: those of the first window
     * written (a resumed run takes its manifest's) */
    int32_t dimensions;
    int normalize;
    ember_precision precision;
    const float *ranges;
} sink_opts;

/* Open for writing (and, resuming, check the old run: identity, every shard's
 * size and crc32); 0 on failure. When the old run
 * is already complete, *already_complete is set and nothing is opened for
 * writing. */
int sink_open(sink **out, const sink_opts *o, int *already_complete);
/* Resuming: rows already written, and the input hash after them. */
void sink_resume_point(const sink *s, int64_t *rows, uint32_t *in_crc, int64_t *in_bytes, int32_t *shards);
/* n rows of dim floats, in input order, with their row_info. */
int sink_write(sink *s, const float *vecs, const row_info *info, int32_t n);
/* Close the last shard / rename the file into place; mark the manifest complete. */
int sink_finish(sink *s);
/* Interrupted or failed: remove the partial file; committed shards and the
 * manifest stay as they are (resumable). */
void sink_abort(sink *s);
const ember_embed_totals *sink_get_totals(const sink *s);
/* Committed state, for the message after an interruption. */
void sink_committed(const sink *s, int64_t *rows, int32_t *shards);
void sink_free(sink *s);

/* The ranges the output uses (2 x its dimension), NULL when none (yet). */
const float *sink_ranges(const sink *s);

#endif
