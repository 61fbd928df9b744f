/* ember_embed_file (include/ember.h): check the options, describe the run
 * for the manifest, open the output (or pick up the run being resumed), run
 * the stream (pipeline.c), then finish or abandon the output. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/npy.h"
#include "common/quantize.h"
#include "manifest.h"
#include "pipeline.h"
#include "sink.h"

ember_embed_options ember_embed_default_options(void) {
    ember_embed_options o;
    memset(&o, 0, sizeof o);
    o.input = "-";
    o.format = EMBER_OUTPUT_JSONL;
    o.encode = ember_encode_default_params();
    o.window = 8192;
    o.tokenizer_threads = 1;
    return o;
}

static ember_status check_options(ember_model *const *models, int32_t n_models, const ember_embed_options *o) {
    if (!models || n_models < 1 || !o || !o->input)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_embed_file: no model, no options or no input");
    const int to_stdout = !o->output || strcmp(o->output, "-") == 0;
    if (o->format < EMBER_OUTPUT_NPY || o->format > EMBER_OUTPUT_JSONL)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "unknown output format %d", (int)o->format);
    if (o->format != EMBER_OUTPUT_JSONL && to_stdout)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, ".npy output needs a file (-o PATH); JSONL can go to stdout");
    if (o->shard_rows < 0 || o->max_batch_rows < 0 || o->window < 0 || o->tokenizer_threads < 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_embed_file: negative option");
    if (o->shard_rows > 0 && to_stdout)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "shards need an output directory (-o DIR)");
    if (o->resume && o->shard_rows <= 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                          "--resume continues a run of shards: give the first run's -o DIR and --shard-rows N");
    ember_model_info first, other;
    ember_model_get_info(models[0], &first);
    if (o->dimensions < 0 || o->dimensions > first.dim)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "--dimensions %d: the model's vectors have %d", o->dimensions,
                          first.dim);
    if (o->precision < EMBER_PRECISION_FLOAT32 || o->precision > EMBER_PRECISION_UBINARY)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "unknown precision %d", (int)o->precision);
    if (o->format == EMBER_OUTPUT_NPY16 && o->precision != EMBER_PRECISION_FLOAT32 &&
        o->precision != EMBER_PRECISION_FLOAT16)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "--format npy16 is float16: it takes no --precision %s",
                          ember_precision_str(o->precision));
    if (precision_needs_ranges(o->precision) && to_stdout && !o->calibration)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                          "--precision %s to stdout needs --calibration: the ranges could be stored nowhere",
                          ember_precision_str(o->precision));
    for (int32_t i = 1; i < n_models; i++) {
        ember_model_get_info(models[i], &other);
        if (other.dim != first.dim || other.max_length != first.max_length || strcmp(other.dir, first.dir) != 0)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                              "ember_embed_file: model %d (%s) is not a copy of model 0 (%s)", i, other.dir, first.dir);
    }
    return EMBER_OK;
}

/* What the output depends on, for a new manifest or against an old one. */
static sink_identity run_identity(const ember_model_info *info, const ember_embed_options *o,
                                  const ember_encode_params *ep, int32_t window) {
    sink_identity id;
    memset(&id, 0, sizeof id);
    struct stat st;
    const int have_input = strcmp(o->input, "-") != 0 && stat(o->input, &st) == 0;
    id.input_path = o->input;
    id.input_size = have_input ? (int64_t)st.st_size : -1;
    id.input_mtime = have_input ? (int64_t)st.st_mtime : -1;
    id.jsonl_field = o->jsonl_field;
    id.model_name = info->name;
    id.model_dir = info->dir;
    id.dim = info->dim;
    id.max_length = info->max_length;
    char weights[4200];
    snprintf(weights, sizeof weights, "%s/model.safetensors", info->dir);
    id.weights_bytes = stat(weights, &st) == 0 ? (int64_t)st.st_size : -1;
    id.pooling = ember_pooling_str(ep->pooling);
    id.normalize = ep->normalize == EMBER_NORMALIZE_ON;
    id.truncate = ep->truncate;
    id.device = info->device == EMBER_DEVICE_CUDA ? "cuda" : "cpu";
    id.dtype = ember_dtype_str(info->dtype);
    id.window = window;
    id.token_budget = info->max_batch_tokens;
    id.batch_rows = o->max_batch_rows;
    id.batch_invariant = info->batch_invariant;
    return id;
}

/* Ranges recorded by an earlier run: its manifest (or directory), or the
 * description beside a single file (OUT.npy.json, or OUT.npy itself). */
static ember_status recorded_ranges(const char *path, int32_t d, float *ranges) {
    embed_manifest m;
    const size_t n = strlen(path);
    char npy[4200];
    snprintf(npy, sizeof npy, "%.*s", (int)(n > 9 && strcmp(path + n - 9, ".npy.json") == 0 ? n - 5 : n), path);
    struct stat st;
    const int single = strcmp(npy, path) != 0 || (n > 4 && strcmp(path + n - 4, ".npy") == 0 && stat(path, &st) == 0 &&
                                                  !S_ISDIR(st.st_mode));
    ember_status s = single ? sidecar_read(&m, npy) : manifest_read(&m, path);
    if (s) return s;
    if (!m.ranges) s = ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s records no int8 ranges (%s vectors)", m.path,
                                  ember_precision_str(m.precision));
    else if (m.dim != d)
        s = ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s holds ranges of %d dimensions; the output has %d", m.path, m.dim,
                       d);
    else memcpy(ranges, m.ranges, 2 * (size_t)d * sizeof *ranges);
    manifest_free(&m);
    return s;
}

/* The int8 / uint8 ranges --calibration names: the min and max of a .npy
 * of vectors (of the model's dimension, cut as the output is, or of the
 * output's), or what an earlier run recorded. */
static ember_status calibration_ranges(const char *path, int32_t D, int32_t d, int normalize, float *ranges) {
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 4, ".npy") != 0) return recorded_ranges(path, d, ranges);
    npy_file f;
    ember_status st = npy_map(&f, path);
    if (st) return st;
    if (f.type != NPY_F32 && f.type != NPY_F16) { /* compact vectors an earlier run wrote: their ranges */
        npy_unmap(&f);
        return recorded_ranges(path, d, ranges);
    }
    if ((f.cols != D && f.cols != d) || f.rows < 1) {
        st = ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                        "%s: calibration vectors must be float32 or float16 rows of %d (the model's) or %d (the "
                        "output's) dimensions; it holds %lld x %lld",
                        path, D, d, (long long)f.rows, (long long)f.cols);
        npy_unmap(&f);
        return st;
    }
    float *row = malloc((size_t)f.cols * sizeof *row);
    if (!row) {
        npy_unmap(&f);
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    ranges_init(ranges, d);
    for (int64_t i = 0; i < f.rows; i++) {
        const void *src = (const char *)f.data + (size_t)i * (size_t)f.cols * npy_dtype_size(f.type);
        dequantize_row(row, src, (int32_t)f.cols, f.type == NPY_F16 ? EMBER_PRECISION_FLOAT16 : EMBER_PRECISION_FLOAT32);
        if (f.cols != d) vec_truncate(row, row, d, normalize);
        ranges_update(ranges, row, 1, d);
    }
    free(row);
    npy_unmap(&f);
    return EMBER_OK;
}

ember_status ember_embed_file(ember_model *const *models, int32_t n_models, const ember_embed_options *o,
                              ember_embed_result *result) {
    ember_embed_result res;
    memset(&res, 0, sizeof res);
    ember_status st = check_options(models, n_models, o);
    if (st) return st;
    ember_model_info info;
    ember_model_get_info(models[0], &info);
    /* the defaults resolved, so that the manifest says what was done */
    ember_encode_params ep = o->encode;
    if (ep.pooling == EMBER_POOLING_DEFAULT) ep.pooling = info.pooling;
    if (ep.normalize == EMBER_NORMALIZE_DEFAULT)
        ep.normalize = info.normalize ? EMBER_NORMALIZE_ON : EMBER_NORMALIZE_OFF;
    const int32_t window = o->window > 0 ? o->window : 8192;
    const char *prompt; /* resolved here too, so that an unknown name fails before any output is opened */
    if ((st = ember_resolve_prompt(models[0], ep.prompt_name, ep.prompt, &prompt, NULL))) return st;

    sink_opts so;
    memset(&so, 0, sizeof so);
    so.path = o->output;
    so.format = o->format;
    so.shard_rows = o->shard_rows;
    so.resume = o->resume;
    so.id = run_identity(&info, o, &ep, window);
    so.id.prompt = prompt;
    so.log = o->log;
    so.log_user = o->log_user;
    so.dimensions = o->dimensions;
    so.normalize = ep.normalize == EMBER_NORMALIZE_ON;
    so.precision = o->format == EMBER_OUTPUT_NPY16 ? EMBER_PRECISION_FLOAT16 : o->precision;
    const int32_t d = o->dimensions > 0 ? o->dimensions : info.dim;
    float *ranges = NULL;
    if (precision_needs_ranges(so.precision) && o->calibration) {
        if (!(ranges = malloc(2 * (size_t)d * sizeof *ranges))) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        if ((st = calibration_ranges(o->calibration, info.dim, d, so.normalize, ranges))) {
            free(ranges);
            return st;
        }
        so.ranges = ranges;
    }
    sink *out = NULL;
    int complete = 0;
    const int opened = sink_open(&out, &so, &complete);
    free(ranges);
    if (!opened) return ember_error_status();
    uint32_t skip_crc = 0;
    int64_t skip_bytes = 0;
    sink_resume_point(out, &res.resumed_rows, &skip_crc, &skip_bytes, &res.resumed_shards);
    if (complete) {
        res.already_complete = 1;
    } else {
        pipeline_opts po;
        memset(&po, 0, sizeof po);
        po.input = o->input;
        po.jsonl_field = o->jsonl_field;
        po.models = models;
        po.n_models = n_models;
        po.encode = ep;
        po.token_budget = info.max_batch_tokens;
        po.max_batch_rows = o->max_batch_rows;
        po.window = window;
        po.align_rows = o->shard_rows;
        po.tokenizer_threads = o->tokenizer_threads;
        po.skip_rows = res.resumed_rows;
        po.skip_crc = skip_crc;
        po.skip_bytes = skip_bytes;
        po.out = out;
        po.cancel = o->cancel;
        po.cancel_user = o->cancel_user;
        po.progress = o->progress;
        po.progress_user = o->progress_user;
        po.progress_interval = o->progress_interval;
        pipeline_result pr;
        st = pipeline_run(&po, &pr);
        if (st == EMBER_OK && !sink_finish(out)) st = ember_error_status();
        if (st != EMBER_OK) sink_abort(out);
        res.rows = pr.rows;
        res.tokens = pr.tokens;
        res.elapsed = pr.elapsed;
        res.n_models = n_models;
        for (int32_t i = 0; i < pr.n_busy; i++) res.busy[i] = pr.busy[i];
    }
    res.totals = *sink_get_totals(out);
    sink_committed(out, &res.committed_rows, &res.committed_shards);
    sink_free(out);
    if (result) *result = res;
    return st;
}
