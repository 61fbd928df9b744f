/* What is done to a pooled vector on its way to storage: Matryoshka
 * truncation (the first d dimensions, normalised again), and the compact
 * precisions of sentence-transformers' quantize_embeddings (include/ember.h:
 * ember_precision). One implementation for the streaming output, the server
 * and search. */
#ifndef EMBER_COMMON_QUANTIZE_H
#define EMBER_COMMON_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "ember.h"
#include "npy.h"

/* out = v[0..d), divided by max(|v[0..d)|, 1e-12) when normalize (as
 * torch's F.normalize); out may be v. */
void vec_truncate(float *out, const float *v, int32_t d, int normalize);

/* Elements per stored row (d, or d / 8 rounded up for the bit precisions),
 * their dtype, and bytes per row. */
int64_t precision_cols(ember_precision p, int32_t d);
npy_dtype precision_npy_dtype(ember_precision p);
size_t precision_row_bytes(ember_precision p, int32_t d);
/* INT8 and UINT8 need ranges. */
int precision_needs_ranges(ember_precision p);

/* ranges: 2 x d floats, the per-dimension minimum then maximum. */
void ranges_init(float *ranges, int32_t d);
void ranges_update(float *ranges, const float *rows, int64_t n, int32_t d);

/* n rows of d floats into n stored rows (precision_row_bytes each); ranges
 * for INT8 / UINT8, else NULL. FLOAT16 rounds to nearest even. */
void quantize_rows(void *out, const float *rows, int64_t n, int32_t d, ember_precision p, const float *ranges);

/* Stored row -> floats, as sentence-transformers rescores them: INT8 / UINT8
 * as their integer values, the bit precisions as 0 / 1 per dimension. */
void dequantize_row(float *out, const void *row, int32_t d, ember_precision p);

#endif
