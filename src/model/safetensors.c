#include "safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static const struct {
    const char *name;
    st_dtype type;
    int size;
} dtypes[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8}, {"I64", ST_I64, 8},
    {"I32", ST_I32, 4}, {"I16", ST_I16, 2}, {"I8", ST_I8, 1},     {"U8", ST_U8, 1},   {"BOOL", ST_BOOL, 1},
};

const char *st_dtype_name(st_dtype t) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].type == t) return dtypes[i].name;
    return "?";
}

static void free_tensors(safetensors_file *f) {
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->n_tensors = 0;
}

void safetensors_close(safetensors_file *f) {
    free_tensors(f);
    file_map_close(&f->map);
}

/* One header entry (name: {dtype, shape, data_offsets}) into t, checked
 * against the data section of data_size bytes. */
static ember_status tensor_entry(st_tensor *t, const char *path, const char *key, json_t *v, const uint8_t *data,
                                 size_t data_size) {
    const char *dt = json_string_value(json_object_get(v, "dtype"));
    json_t *shape = json_object_get(v, "shape"), *off = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !dt || !json_is_array(shape) || !json_is_array(off) || json_array_size(off) != 2)
        return ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' has a malformed header entry", path, key);
    int esize = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, dt) == 0) {
            t->dtype = dtypes[i].type;
            esize = dtypes[i].size;
        }
    if (!esize) return ember_fail(EMBER_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %s", path, key, dt);
    if (json_array_size(shape) > 8)
        return ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions", path, key, json_array_size(shape));
    t->ndim = (int)json_array_size(shape);
    t->numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(shape, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > ((int64_t)1 << 40))
            return ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' has an invalid shape", path, key);
        t->shape[i] = json_integer_value(d);
        t->numel *= t->shape[i];
    }
    json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b) || (uint64_t)json_integer_value(e) > data_size)
        return ember_fail(EMBER_ERR_FORMAT,
                          "%s: tensor '%s' has data offsets [%lld, %lld] outside the %zu data bytes of the file "
                          "(truncated download?)",
                          path, key, (long long)json_integer_value(b), (long long)json_integer_value(e), data_size);
    uint64_t nbytes = (uint64_t)(json_integer_value(e) - json_integer_value(b));
    if (nbytes != (uint64_t)t->numel * (uint64_t)esize)
        return ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' holds %llu bytes but its shape and dtype need %llu", path,
                          key, (unsigned long long)nbytes, (unsigned long long)t->numel * esize);
    t->data = data + json_integer_value(b);
    t->name = strdup(key);
    if (!t->name) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    return EMBER_OK;
}

ember_status safetensors_open(safetensors_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    ember_status st = file_map_open(path, &f->map);
    if (st) return st;
    const uint8_t *p = f->map.data;
    size_t size = f->map.size;
    json_t *root = NULL;
    if (size < 8) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: truncated safetensors file (%zu bytes, no header)", path, size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen == 0 || hlen > size - 8) {
        st = ember_fail(EMBER_ERR_FORMAT,
                        "%s: corrupt safetensors header: header length %llu but the file has %zu bytes after it",
                        path, (unsigned long long)hlen, size - 8);
        goto fail;
    }
    json_error_t jerr;
    root = json_loadb((const char *)p + 8, (size_t)hlen, 0, &jerr);
    if (!root || !json_is_object(root)) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: corrupt safetensors header: %s", path,
                        root ? "not a JSON object" : jerr.text);
        goto fail;
    }
    size_t n = json_object_size(root);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto fail;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        if ((st = tensor_entry(&f->tensors[f->n_tensors], path, key, v, p + 8 + hlen, size - 8 - (size_t)hlen)))
            goto fail;
        f->n_tensors++;
    }
    json_decref(root);
    return EMBER_OK;
fail:
    json_decref(root);
    safetensors_close(f);
    return st;
}

const st_tensor *safetensors_find(const safetensors_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

ember_status st_tensor_to_f32(const st_tensor *t, float *out) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        memcpy(out, p, (size_t)t->numel * 4);
        return EMBER_OK;
    case ST_F16:
        for (int64_t i = 0; i < t->numel; i++) out[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return EMBER_OK;
    case ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) out[i] = bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return EMBER_OK;
    default:
        return ember_fail(EMBER_ERR_UNSUPPORTED, "tensor '%s' has dtype %s; only F32, F16 and BF16 weights are supported",
                          t->name, st_dtype_name(t->dtype));
    }
}
