#include "attention_reference.h"

#include <stdlib.h>

#include "backend/cpu_ops.h"
#include "backend/cuda_layout.h"

int attention_kernel_reference(float *out, const float *qkv, const float *bias, const float *rel_bias,
                               const int32_t *cu_seqlens, int32_t S, int32_t max_len, int32_t NH, int32_t HS,
                               ember_dtype dtype, attention_ref_kernel kernel) {
    const int32_t C = NH * HS, T = cu_seqlens[S];
    if (kernel == ATTENTION_REF_SCALAR) {
        attention_cpu(out, qkv, bias, rel_bias, cu_seqlens, S, max_len, NH, HS, cpu_kernels_best());
        return 0;
    }
    float *op = calloc((size_t)T * 3 * C, sizeof *op), *zero = calloc((size_t)3 * C, sizeof *zero);
    if (!op || !zero) {
        free(op);
        free(zero);
        return -1;
    }
    for (int32_t t = 0; t < T; t++)
        for (int32_t j = 0; j < 3 * C; j++) {
            const float x = qkv[(size_t)t * 3 * C + j];
            op[(size_t)t * 3 * C + j] = kernel == ATTENTION_REF_MMA && j >= C ? x : dtype_round(x + bias[j], dtype);
        }
    attention_cpu(out, op, zero, rel_bias, cu_seqlens, S, max_len, NH, HS, cpu_kernels_best());
    if (kernel == ATTENTION_REF_MMA)
        for (int32_t t = 0; t < T; t++)
            for (int32_t j = 0; j < C; j++) out[(size_t)t * C + j] += bias[2 * C + j];
    free(op);
    free(zero);
    return 0;
}
