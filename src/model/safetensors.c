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
    const uint8_t *data = p + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
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
        st_tensor *t = &f->tensors[f->n_tensors];
        const char *dt = json_string_value(json_object_get(v, "dtype"));
        json_t *shape = json_object_get(v, "shape"), *off = json_object_get(v, "data_offsets");
        if (!json_is_object(v) || !dt || !json_is_array(shape) || !json_is_array(off) ||
            json_array_size(off) != 2) {
            st = ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' has a malformed header entry", path, key);
            goto fail;
        }
        int esize = 0;
        for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
            if (strcmp(dtypes[i].name, dt) == 0) {
                t->dtype = dtypes[i].type;
                esize = dtypes[i].size;
            }
        if (!esize) {
            st = ember_fail(EMBER_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %s", path, key, dt);
            goto fail;
        }
        if (json_array_size(shape) > 8) {
            st = ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions", path, key,
                            json_array_size(shape));
            goto fail;
        }
        t->ndim = (int)json_array_size(shape);
        t->numel = 1;
        for (int i = 0; i < t->ndim; i++) {
            json_t *d = json_array_get(shape, (size_t)i);
            if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > ((int64_t)1 << 40)) {
                st = ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' has an invalid shape", path, key);
                goto fail;
            }
            t->shape[i] = json_integer_value(d);
            t->numel *= t->shape[i];
        }
        json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b) || (uint64_t)json_integer_value(e) > data_size) {
            st = ember_fail(EMBER_ERR_FORMAT,
                            "%s: tensor '%s' has data offsets [%lld, %lld] outside the %zu data bytes of the file "
                            "(truncated download?)",
                            path, key, (long long)json_integer_value(b), (long long)json_integer_value(e), data_size);
            goto fail;
        }
        uint64_t nbytes = (uint64_t)(json_integer_value(e) - json_integer_value(b));
        if (nbytes != (uint64_t)t->numel * (uint64_t)esize) {
            st = ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' holds %llu bytes but its shape and dtype need %llu",
                            path, key, (unsigned long long)nbytes, (unsigned long long)t->numel * esize);
            goto fail;
        }
        t->data = data + json_integer_value(b);
        t->name = strdup(key);
        if (!t->name) {
            st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            goto fail;
        }
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

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3FF;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f16_from_f32(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN, made quiet */
    /* 65520 = 0x477ff000 is halfway between fp16's largest finite value
     * (65504, odd mantissa) and 65536: it and everything above round to
     * infinity. */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    const uint32_t e = a >> 23;
    if (e < 113) { /* below 2^-14: an fp16 subnormal (or zero) */
        if (e == 0) return sign; /* fp32 subnormals are far below fp16's smallest */
        const uint32_t m = (a & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e; /* value = m * 2^(e - 150) = (m >> shift) * 2^-24 */
        if (shift > 24) return sign;
        uint32_t h = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1u))) h++; /* a carry into 0x400 is the smallest normal */
        return (uint16_t)(sign | h);
    }
    /* normal: rebias the exponent (127 -> 15), keep 10 of 23 mantissa bits */
    uint32_t h = ((e - 112) << 10) | ((a >> 13) & 0x3ffu);
    const uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* a carry into the exponent is right too */
    return (uint16_t)(sign | h);
}

uint16_t bf16_from_f32(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* NaN, made quiet */
    x += 0x7fffu + ((x >> 16) & 1u);                                            /* to nearest, ties to even */
    return (uint16_t)(x >> 16);
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
