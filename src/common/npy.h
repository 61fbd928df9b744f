/* .npy files (NumPy's format, version 1.0): a writer of float32 or float16
 * rows x dim matrices in C order. The row count is written into the header
 * when the file is closed, so the output must be a seekable file. */
#ifndef EMBER_COMMON_NPY_H
#define EMBER_COMMON_NPY_H

#include <stdint.h>
#include <stdio.h>

#include "ember.h"

typedef struct {
    FILE *f;
    char path[4200];
    int32_t dim;
    int fp16;
    int64_t rows;
} npy_writer;

ember_status npy_open(npy_writer *w, const char *path, int32_t dim, int fp16);
/* n rows of dim floats (converted to float16 when the file holds those). */
ember_status npy_write(npy_writer *w, const float *rows, int64_t n);
/* Patch the row count into the header and close. */
ember_status npy_close(npy_writer *w);
/* Close without finishing (the file is left as it is). */
void npy_abandon(npy_writer *w);

#endif
