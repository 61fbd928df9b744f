#include "npy.h"

#include <errno.h>
#include <string.h>

#include "error.h"
#include "half.h"

/* The header, padded to 128 bytes so that the row count can grow in place. */
#define NPY_HEADER 128

static int npy_header(npy_writer *w) {
    char h[NPY_HEADER];
    memset(h, ' ', sizeof h);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(NPY_HEADER - 10);
    h[9] = 0;
    char dict[NPY_HEADER];
    int n = snprintf(dict, sizeof dict, "{'descr': '<%s', 'fortran_order': False, 'shape': (%lld, %d), }",
                     w->fp16 ? "f2" : "f4", (long long)w->rows, w->dim);
    if (n < 0 || n > NPY_HEADER - 11) return 0;
    memcpy(h + 10, dict, (size_t)n);
    h[NPY_HEADER - 1] = '\n';
    return fwrite(h, 1, sizeof h, w->f) == sizeof h;
}

ember_status npy_open(npy_writer *w, const char *path, int32_t dim, int fp16) {
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    w->dim = dim;
    w->fp16 = fp16;
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
    size_t count = (size_t)n * (size_t)w->dim;
    if (w->fp16) {
        uint16_t buf[4096];
        for (size_t i = 0; i < count;) {
            size_t k = count - i < 4096 ? count - i : 4096;
            for (size_t j = 0; j < k; j++) buf[j] = f16_from_f32(rows[i + j]);
            if (fwrite(buf, 2, k, w->f) != k) goto fail;
            i += k;
        }
    } else if (fwrite(rows, sizeof(float), count, w->f) != count) {
        goto fail;
    }
    w->rows += n;
    return EMBER_OK;
fail:
    return ember_fail(EMBER_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
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
