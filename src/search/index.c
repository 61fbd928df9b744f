/* ember_index_open / _wrap / _free / _get_info (include/ember.h). */
#include "index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/quantize.h"
#include "pipeline/manifest.h"

const void *index_row(const ember_index *ix, int64_t r) {
    int32_t lo = 0, hi = ix->n_shards - 1;
    while (lo < hi) { /* the last shard that starts at or before r */
        int32_t mid = (lo + hi + 1) / 2;
        if (ix->shards[mid].first_row <= r) lo = mid;
        else hi = mid - 1;
    }
    const index_shard *s = &ix->shards[lo];
    return (const char *)s->data + (size_t)(r - s->first_row) * ix->row_bytes;
}

void ember_index_free(ember_index *ix) {
    if (!ix) return;
    for (int32_t i = 0; i < ix->n_shards; i++) npy_unmap(&ix->shards[i].file);
    free(ix->shards);
    free(ix->ranges);
    free(ix);
}

/* Map one .npy and check it holds rows of what the description says. */
static ember_status shard_map(ember_index *ix, index_shard *sh, const char *path, int64_t want_rows) {
    ember_status st = npy_map(&sh->file, path);
    if (st) return st;
    const ember_precision p = ix->info.precision;
    if (sh->file.type != precision_npy_dtype(p) || sh->file.cols != precision_cols(p, ix->info.dim) ||
        (want_rows >= 0 && sh->file.rows != want_rows))
        return ember_fail(EMBER_ERR_FORMAT, "%s holds %lld x %lld of %s, but its description says %lld x %lld of %s",
                          path, (long long)sh->file.rows, (long long)sh->file.cols,
                          sh->file.type == NPY_F32 ? "float32" : sh->file.type == NPY_F16 ? "float16"
                          : sh->file.type == NPY_I8 ? "int8" : "uint8",
                          (long long)want_rows, (long long)precision_cols(p, ix->info.dim), ember_precision_str(p));
    sh->data = sh->file.data;
    sh->rows = sh->file.rows;
    sh->first_row = ix->info.rows;
    ix->info.rows += sh->rows;
    ix->n_shards++;
    return EMBER_OK;
}

/* What the manifest or the description beside a file says, kept. */
static ember_status take_description(ember_index *ix, const embed_manifest *m) {
    ix->info.dim = m->dim;
    ix->info.precision = m->precision;
    ix->info.model_dim = m->model_dim;
    ix->info.complete = m->complete;
    ix->info.pooling = m->pooling;
    ix->info.normalized = m->normalize;
    if (m->model_name && *m->model_name) {
        snprintf(ix->model_name, sizeof ix->model_name, "%s", m->model_name);
        ix->info.model_name = ix->model_name;
    }
    if (m->ranges) {
        if (!(ix->ranges = malloc(2 * (size_t)m->dim * sizeof *ix->ranges)))
            return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(ix->ranges, m->ranges, 2 * (size_t)m->dim * sizeof *ix->ranges);
    }
    ix->row_bytes = precision_row_bytes(m->precision, m->dim);
    return EMBER_OK;
}

static ember_status open_shards(ember_index *ix, const char *dir) {
    embed_manifest m;
    ember_status st = manifest_read(&m, dir);
    if (st) return st;
    if (m.format == EMBER_OUTPUT_JSONL)
        st = ember_fail(EMBER_ERR_UNSUPPORTED, "%s: JSONL shards cannot be searched; write .npy (--format npy)", m.path);
    if (!st) st = take_description(ix, &m);
    if (!st && !(ix->shards = calloc((size_t)m.n_shards + 1, sizeof *ix->shards)))
        st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (int32_t i = 0; !st && i < m.n_shards; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, m.shards[i].file);
        st = shard_map(ix, &ix->shards[ix->n_shards], p, m.shards[i].rows);
    }
    ix->info.n_shards = ix->n_shards;
    manifest_free(&m);
    return st;
}

/* One .npy: float32 or float16 stands alone; compact vectors need the
 * description ember embed wrote beside them (PATH.json). */
static ember_status open_file(ember_index *ix, const char *path) {
    npy_file probe;
    ember_status st = npy_map(&probe, path);
    if (st) return st;
    const npy_dtype type = probe.type;
    const int64_t cols = probe.cols;
    npy_unmap(&probe);
    embed_manifest m;
    if (type == NPY_F32 || type == NPY_F16) {
        memset(&m, 0, sizeof m);
        m.precision = type == NPY_F16 ? EMBER_PRECISION_FLOAT16 : EMBER_PRECISION_FLOAT32;
        m.dim = (int32_t)cols;
        m.complete = 1;
    } else if ((st = sidecar_read(&m, path))) {
        return st;
    }
    st = take_description(ix, &m);
    manifest_free(&m);
    if (!st && !(ix->shards = calloc(1, sizeof *ix->shards))) st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    if (!st) st = shard_map(ix, &ix->shards[0], path, -1);
    ix->info.n_shards = ix->n_shards;
    return st;
}

ember_status ember_index_open(const char *path, ember_index **out) {
    if (!path || !out) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_index_open: NULL argument");
    *out = NULL;
    ember_index *ix = calloc(1, sizeof *ix);
    if (!ix) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    struct stat sb;
    ember_status st;
    if (stat(path, &sb) != 0) st = ember_fail(EMBER_ERR_IO, "%s: no such file or directory", path);
    else if (S_ISDIR(sb.st_mode)) st = open_shards(ix, path);
    else st = open_file(ix, path);
    if (st) {
        ember_index_free(ix);
        return st;
    }
    *out = ix;
    return EMBER_OK;
}

ember_status ember_index_wrap(const float *rows, int64_t n_rows, int32_t dim, ember_index **out) {
    if (!out || (n_rows > 0 && !rows) || n_rows < 0 || dim < 1)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_index_wrap: NULL or negative argument");
    *out = NULL;
    ember_index *ix = calloc(1, sizeof *ix);
    if (!ix || !(ix->shards = calloc(1, sizeof *ix->shards))) {
        free(ix);
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    ix->info.dim = dim;
    ix->info.precision = EMBER_PRECISION_FLOAT32;
    ix->info.complete = 1;
    ix->info.rows = n_rows;
    ix->info.n_shards = ix->n_shards = 1;
    ix->row_bytes = (size_t)dim * sizeof(float);
    ix->shards[0] = (index_shard){.data = rows, .rows = n_rows, .first_row = 0};
    *out = ix;
    return EMBER_OK;
}

ember_status ember_index_get_info(const ember_index *ix, ember_index_info *info) {
    if (!ix || !info) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_index_get_info: NULL argument");
    *info = ix->info;
    return EMBER_OK;
}
