/* model.safetensors, memory-mapped and validated: an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}}, then
 * the tensor bytes. */
#ifndef EMBER_MODEL_SAFETENSORS_H
#define EMBER_MODEL_SAFETENSORS_H

#include <stdint.h>

#include "common/fileio.h"
#include "common/half.h"
#include "ember.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[8];
    int64_t numel;
    const uint8_t *data; /* inside the map; not aligned */
} st_tensor;

typedef struct {
    char path[4096];
    file_map map;
    st_tensor *tensors;
    int n_tensors;
} safetensors_file;

ember_status safetensors_open(safetensors_file *f, const char *path);
void safetensors_close(safetensors_file *f);
const st_tensor *safetensors_find(const safetensors_file *f, const char *name);
const char *st_dtype_name(st_dtype t);

/* Convert a float tensor (F32, F16, BF16) to fp32. */
ember_status st_tensor_to_f32(const st_tensor *t, float *out);

#endif
