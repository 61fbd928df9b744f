/* manifest.json of a directory of shards (its layout: include/ember.h),
 * read back: by a resumed run (sink.c), by search over the stored vectors,
 * and to take an earlier run's int8 ranges. */
#ifndef EMBER_PIPELINE_MANIFEST_H
#define EMBER_PIPELINE_MANIFEST_H

#include <jansson.h>
#include <stdint.h>

#include "ember.h"

#define MANIFEST_NAME "manifest.json"
#define MANIFEST_VERSION 1

typedef struct {
    char file[64];
    int64_t rows, bytes;
    uint32_t crc;
    int64_t in_bytes;
    uint32_t in_crc;
    ember_embed_totals totals; /* of every row up to this shard's end */
} shard_rec;

typedef struct {
    json_t *root; /* the whole document, for checks of fields not below */
    char path[4200];
    int complete;
    const char *model_name, *model_dir;
    int32_t model_dim;     /* the model's hidden size */
    ember_output_format format;
    ember_precision precision;
    int32_t dim;           /* the stored vectors' dimension (the model's, or --dimensions) */
    int64_t shard_rows;
    int normalize;
    ember_pooling pooling; /* DEFAULT when not recorded */
    float *ranges;         /* (2, dim) for int8 / uint8, else NULL */
    shard_rec *shards;     /* in order: shard-00000, ... */
    int32_t n_shards;
    int64_t rows;          /* in the shards listed */
} embed_manifest;

/* path: manifest.json or the directory holding it. The shards' entries and
 * the output's description are checked for form (not the shards' bytes);
 * EMBER_ERR_FORMAT / EMBER_ERR_IO naming the file otherwise. */
ember_status manifest_read(embed_manifest *m, const char *path);
void manifest_free(embed_manifest *m);

/* One .npy file of compact vectors (int8, uint8, binary, ubinary) is
 * described beside it in PATH.json ({"ember_vectors": 1, "precision",
 * "dimensions", "model": {"name", "dim"}, "pooling", "normalize", "ranges"}): what a dtype alone
 * cannot say. Written by sink.c; read into the fields of m that a manifest
 * fills (no shards). */
ember_status sidecar_write(const char *npy_path, ember_precision p, int32_t dim, const char *model_name,
                           int32_t model_dim, const char *pooling, int normalize, const float *ranges);
ember_status sidecar_read(embed_manifest *m, const char *npy_path);

/* {"min": [...], "max": [...]} of (2, d) ranges, exact to the bit. */
json_t *ranges_json(const float *ranges, int32_t d);

/* The totals as the manifest writes them, and back (0 when malformed). */
json_t *totals_json(const ember_embed_totals *t);
int totals_from_json(json_t *t, ember_embed_totals *out);

/* "npy", "npy16", "jsonl" and the extension of the shards of each. */
const char *output_format_name(ember_output_format f);
const char *output_format_ext(ember_output_format f);

#endif
