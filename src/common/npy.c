#include "npy.h"

#include <errno.h>
#include <string.h>

#include "error.h"
#include "half.h"

/* The header, padded to 128 bytes so that the row count can grow in place. */
#define NPY_HEADER 128

static const char *const DESCR[] = {"<f4", "<f2", "|i1", "|u1"};

size_t npy_dtype_size(npy_dtype t) { return t == NPY_F32 ? 4 : t == NPY_F16 ? 2 : 1; }

static int npy_header(npy_writer *w) {
    char h[NPY_HEADER];
    memset(h, ' ', sizeof h);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(NPY_HEADER - 10);
    h[9] = 0;
    char dict[NPY_HEADER];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     DESCR[w->type], (long long)w->rows, (long long)w->cols);
    if (n < 0 || n > NPY_HEADER - 11) return 0;
    memcpy(h + 10, dict, (size_t)n);
    h[NPY_HEADER - 1] = '\n';
    return fwrite(h, 1, sizeof h, w->f) == sizeof h;
}

ember_status npy_open(npy_writer *w, const char *path, npy_dtype type, int64_t cols) {
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    w->type = type;
    w->cols = cols;
    w->f = fopen(path, "wb");
    if (!w->f) return ember_fail(EMBER_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (!npy_header(w)) {
        int e = errno;
        fclose(w->f);
        w->f = NULL;
        return ember_fail(EMBER_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return EMBER_OK;
}

ember_status npy_write(npy_writer *w, const float *rows, int64_t n) {
    size_t count = (size_t)n * (size_t)w->cols;
    if (w->type == NPY_F16) {
        uint16_t buf[4096];
        for (size_t i = 0; i < count;) {
            size_t k = count - i < 4096 ? count - i : 4096;
            for (size_t j = 0; j < k; j++) buf[j] = f16_from_f32(rows[i + j]);
            if (fwrite(buf, 2, k, w->f) != k) goto fail;
            i += k;
        }
        w->rows += n;
        return EMBER_OK;
    }
    if (w->type != NPY_F32) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: floats into an integer .npy", w->path);
    return npy_write_raw(w, rows, n);
fail:
    return ember_fail(EMBER_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
}

ember_status npy_write_raw(npy_writer *w, const void *rows, int64_t n) {
    size_t count = (size_t)n * (size_t)w->cols;
    if (fwrite(rows, npy_dtype_size(w->type), count, w->f) != count)
        return ember_fail(EMBER_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    w->rows += n;
    return EMBER_OK;
}

ember_status npy_close(npy_writer *w) {
    int ok = fseek(w->f, 0, SEEK_SET) == 0 && npy_header(w);
    int e = errno;
    ok = (fclose(w->f) == 0) && ok;
    if (!ok && e == 0) e = errno;
    w->f = NULL;
    if (!ok) return ember_fail(EMBER_ERR_IO, "%s: could not finish the file: %s", w->path, strerror(e));
    return EMBER_OK;
}

void npy_abandon(npy_writer *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
}

/* ---- reading ------------------------------------------------------------------------ */

ember_status npy_map(npy_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    ember_status st = file_map_open(path, &f->map);
    if (st) return st;
    const unsigned char *p = f->map.data;
    const size_t size = f->map.size;
    if (size < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: not a .npy file", path);
        goto fail;
    }
    /* version 1.0: a 2-byte header length; 2.0 and 3.0: 4 bytes */
    size_t hlen, off;
    if (p[6] == 1) hlen = (size_t)p[8] | (size_t)p[9] << 8, off = 10;
    else if (size >= 12) hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24, off = 12;
    else hlen = SIZE_MAX, off = 12;
    if (hlen > size - off || hlen > 65536) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: truncated .npy header", path);
        goto fail;
    }
    char h[65537];
    memcpy(h, p + off, hlen);
    h[hlen] = '\0';
    int type = -1;
    for (int t = 0; t < 4; t++) {
        char want[32];
        snprintf(want, sizeof want, "'descr': '%s'", DESCR[t]);
        if (strstr(h, want)) type = t;
    }
    long long r = -1, c = -1;
    const char *shape = strstr(h, "'shape': (");
    if (type < 0 || !strstr(h, "'fortran_order': False") || !shape ||
        sscanf(shape, "'shape': (%lld, %lld)", &r, &c) != 2 || r < 0 || c <= 0) {
        st = ember_fail(EMBER_ERR_FORMAT,
                        "%s: not a 2-D C-order .npy of float32, float16, int8 or uint8 (header: %.120s)", path, h);
        goto fail;
    }
    f->type = (npy_dtype)type;
    f->rows = r;
    f->cols = c;
    size_t need;
    if (__builtin_mul_overflow((size_t)r, (size_t)c, &need) ||
        __builtin_mul_overflow(need, npy_dtype_size(f->type), &need) || size - off - hlen != need) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: %zu data bytes do not match its shape (%lld, %lld) (truncated?)", path,
                        size - off - hlen, r, c);
        goto fail;
    }
    f->data = p + off + hlen;
    return EMBER_OK;
fail:
    npy_unmap(f);
    return st;
}

void npy_unmap(npy_file *f) { file_map_close(&f->map); }
