/* .npy files (NumPy's format, version 1.0), 2-D and in C order: a writer of
 * rows x cols matrices of float32, float16, int8 or uint8, and a reader that
 * maps one. The writer patches the row count into the header when the file
 * is closed, so its output must be a seekable file. */
#ifndef EMBER_COMMON_NPY_H
#define EMBER_COMMON_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ember.h"
#include "fileio.h"

typedef enum { NPY_F32 = 0, NPY_F16, NPY_I8, NPY_U8 } npy_dtype;

size_t npy_dtype_size(npy_dtype t);

typedef struct {
    FILE *f;
    char path[4200];
    npy_dtype type;
    int64_t cols;
    int64_t rows;
} npy_writer;

ember_status npy_open(npy_writer *w, const char *path, npy_dtype type, int64_t cols);
/* n rows of floats (the file's dtype must be float32 or float16). */
ember_status npy_write(npy_writer *w, const float *rows, int64_t n);
/* n rows already in the file's dtype. */
ember_status npy_write_raw(npy_writer *w, const void *rows, int64_t n);
/* Patch the row count into the header and close. */
ember_status npy_close(npy_writer *w);
/* Close without finishing (the file is left as it is). */
void npy_abandon(npy_writer *w);

/* A .npy file mapped read-only: its dtype, shape and data (after the header). */
typedef struct {
    file_map map;
    npy_dtype type;
    int64_t rows, cols;
    const void *data;
} npy_file;

/* EMBER_ERR_FORMAT naming the file when it is not a 2-D C-order .npy of
 * float32, float16, int8 or uint8, or its size does not match its shape. */
ember_status npy_map(npy_file *f, const char *path);
void npy_unmap(npy_file *f);

#endif
