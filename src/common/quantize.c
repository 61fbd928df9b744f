#include "quantize.h"

#include <math.h>
#include <string.h>

#include "half.h"

void vec_truncate(float *out, const float *v, int32_t d, int normalize) {
    if (!normalize) {
        if (out != v) memmove(out, v, (size_t)d * sizeof *out);
        return;
    }
    double ss = 0;
    for (int32_t k = 0; k < d; k++) ss += (double)v[k] * v[k];
    double norm = sqrt(ss);
    if (norm < 1e-12) norm = 1e-12;
    for (int32_t k = 0; k < d; k++) out[k] = (float)(v[k] / norm);
}

int64_t precision_cols(ember_precision p, int32_t d) {
    return p == EMBER_PRECISION_BINARY || p == EMBER_PRECISION_UBINARY ? (d + 7) / 8 : d;
}

npy_dtype precision_npy_dtype(ember_precision p) {
    switch (p) {
    case EMBER_PRECISION_FLOAT16: return NPY_F16;
    case EMBER_PRECISION_INT8:
    case EMBER_PRECISION_BINARY: return NPY_I8;
    case EMBER_PRECISION_UINT8:
    case EMBER_PRECISION_UBINARY: return NPY_U8;
    default: return NPY_F32;
    }
}

size_t precision_row_bytes(ember_precision p, int32_t d) {
    return (size_t)precision_cols(p, d) * npy_dtype_size(precision_npy_dtype(p));
}

int precision_needs_ranges(ember_precision p) { return p == EMBER_PRECISION_INT8 || p == EMBER_PRECISION_UINT8; }

void ranges_init(float *ranges, int32_t d) {
    for (int32_t k = 0; k < d; k++) {
        ranges[k] = INFINITY;
        ranges[d + k] = -INFINITY;
    }
}

void ranges_update(float *ranges, const float *rows, int64_t n, int32_t d) {
    for (int64_t i = 0; i < n; i++)
        for (int32_t k = 0; k < d; k++) {
            const float x = rows[i * d + k];
            if (x < ranges[k]) ranges[k] = x;
            if (x > ranges[d + k]) ranges[d + k] = x;
        }
}

/* numpy's ((x - start) / step).astype(uint8), in fp32 as numpy computes it,
 * minus 128 for int8; saturated where numpy's cast would wrap. */
static int32_t scalar_code(float x, float start, float step, int minus128) {
    if (!(step > 0)) return minus128 ? -128 : 0; /* a dimension with no range */
    float v = (x - start) / step;
    if (minus128) v -= 128.0f;
    if (!(v == v)) return minus128 ? -128 : 0;
    const float lo = minus128 ? -128.0f : 0.0f, hi = minus128 ? 127.0f : 255.0f;
    v = v < lo ? lo : v > hi ? hi : v;
    return (int32_t)v; /* truncation toward zero, as the cast */
}

void quantize_rows(void *out, const float *rows, int64_t n, int32_t d, ember_precision p, const float *ranges) {
    const int64_t cols = precision_cols(p, d);
    for (int64_t i = 0; i < n; i++) {
        const float *x = rows + i * d;
        switch (p) {
        case EMBER_PRECISION_FLOAT16: {
            uint16_t *o = (uint16_t *)out + i * cols;
            for (int32_t k = 0; k < d; k++) o[k] = f16_from_f32(x[k]);
            break;
        }
        case EMBER_PRECISION_INT8:
        case EMBER_PRECISION_UINT8: {
            const int s8 = p == EMBER_PRECISION_INT8;
            uint8_t *o = (uint8_t *)out + i * cols;
            for (int32_t k = 0; k < d; k++) {
                const float step = (ranges[d + k] - ranges[k]) / 255.0f;
                o[k] = (uint8_t)scalar_code(x[k], ranges[k], step, s8); /* two's complement for int8 */
            }
            break;
        }
        case EMBER_PRECISION_BINARY:
        case EMBER_PRECISION_UBINARY: {
            uint8_t *o = (uint8_t *)out + i * cols;
            memset(o, 0, (size_t)cols);
            for (int32_t k = 0; k < d; k++)
                if (x[k] > 0) o[k >> 3] |= (uint8_t)(0x80u >> (k & 7));
            if (p == EMBER_PRECISION_BINARY)
                for (int64_t b = 0; b < cols; b++) o[b] = (uint8_t)(o[b] - 128u); /* the int8 value u - 128 */
            break;
        }
        default: memcpy((float *)out + i * cols, x, (size_t)d * sizeof *x); break;
        }
    }
}

void dequantize_row(float *out, const void *row, int32_t d, ember_precision p) {
    const uint8_t *u = row;
    switch (p) {
    case EMBER_PRECISION_FLOAT16:
        for (int32_t k = 0; k < d; k++) out[k] = f16_to_f32(((const uint16_t *)row)[k]);
        break;
    case EMBER_PRECISION_INT8:
        for (int32_t k = 0; k < d; k++) out[k] = (float)((const int8_t *)row)[k];
        break;
    case EMBER_PRECISION_UINT8:
        for (int32_t k = 0; k < d; k++) out[k] = (float)u[k];
        break;
    case EMBER_PRECISION_BINARY:
    case EMBER_PRECISION_UBINARY:
        /* binary stores u - 128: the bits are those of the byte plus 128 */
        for (int32_t k = 0; k < d; k++) {
            const uint8_t b = p == EMBER_PRECISION_BINARY ? (uint8_t)(u[k >> 3] + 128u) : u[k >> 3];
            out[k] = (float)((b >> (7 - (k & 7))) & 1);
        }
        break;
    default: memcpy(out, row, (size_t)d * sizeof *out); break;
    }
}
