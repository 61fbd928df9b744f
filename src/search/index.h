/* A corpus of stored vectors, as search reads it: shards memory-mapped (or
 * one matrix the caller holds), each a run of rows in the corpus's order. */
#ifndef EMBER_SEARCH_INDEX_H
#define EMBER_SEARCH_INDEX_H

#include <stdint.h>

#include "common/npy.h"
#include "ember.h"

typedef struct {
    npy_file file;     /* mapped (unused for a wrapped matrix) */
    const void *data;  /* rows x row_bytes */
    int64_t rows;
    int64_t first_row; /* of the corpus */
} index_shard;

struct ember_index {
    ember_index_info info;
    char model_name[256];
    size_t row_bytes; /* of a stored row */
    float *ranges;    /* (2, dim) for int8 / uint8 */
    index_shard *shards;
    int32_t n_shards;
};

/* Row r of the corpus as stored. */
const void *index_row(const ember_index *ix, int64_t r);

#endif
