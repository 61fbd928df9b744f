/* The portable CPU kernels: plain C with OpenBLAS for the matrix products,
 * the reference arithmetic every other family is checked against. They run
 * on any processor; OpenBLAS picks its own kernels, so a row's result may
 * differ in the last bits with the rows around it (not batch-invariant). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_isa.h"
#include "cpu_ops.h"

float cpu_act_scalar(float v, int act) {
    switch (act) {
    case ACT_GELU_ERF: return 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    case ACT_GELU_TANH: return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case ACT_RELU: return v > 0 ? v : 0;
    default: return v;
    }
}

void cpu_layernorm_row_generic(float *out, const float *x, const float *w, const float *b, float eps, int32_t C) {
    double mean = 0, var = 0;
    for (int32_t c = 0; c < C; c++) mean += x[c];
    mean /= C;
    for (int32_t c = 0; c < C; c++) {
        double d = x[c] - mean;
        var += d * d;
    }
    var /= C;
    float rstd = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
    for (int32_t c = 0; c < C; c++) out[c] = (x[c] - m) * rstd * w[c] + b[c];
}

static void embed_row_generic(float *row, const float *we, const float *pe, const float *te, int32_t C) {
    for (int32_t c = 0; c < C; c++) row[c] = we[c] + pe[c] + te[c];
}

static void bias_residual_row_generic(float *row, const float *x, const float *bias, const float *r, int32_t C) {
    for (int32_t c = 0; c < C; c++) row[c] = x[c] + bias[c] + r[c];
}

static void bias_act_row_generic(float *y, const float *x, const float *bias, int act, int32_t N) {
    for (int32_t n = 0; n < N; n++) y[n] = cpu_act_scalar(x[n] + bias[n], act);
}

int cpu_attention_head_generic(float *out, const float *qkv, const float *bias, const float *pos_bias, int32_t t0,
                               int32_t L, int32_t h, int32_t NH, int32_t HS, float *scratch) {
    const int32_t C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    float *k = scratch, *v = k + (size_t)L * HS, *p = v + (size_t)L * HS, *q = p + L, *acc = q + HS;
    for (int32_t j = 0; j < L; j++) {
        const float *row = qkv + (size_t)(t0 + j) * 3 * C;
        for (int32_t d = 0; d < HS; d++) {
            k[j * HS + d] = row[C + h * HS + d] + (bias ? bias[C + h * HS + d] : 0.0f);
            v[j * HS + d] = row[2 * C + h * HS + d] + (bias ? bias[2 * C + h * HS + d] : 0.0f);
        }
    }
    for (int32_t i = 0; i < L; i++) {
        const float *row = qkv + (size_t)(t0 + i) * 3 * C + h * HS;
        for (int32_t d = 0; d < HS; d++) q[d] = (row[d] + (bias ? bias[h * HS + d] : 0.0f)) * scale;
        float mx = -INFINITY;
        for (int32_t j = 0; j < L; j++) {
            float dot = 0;
            const float *kj = k + j * HS;
            for (int32_t d = 0; d < HS; d++) dot += q[d] * kj[d];
            if (pos_bias) dot += pos_bias[j - i];
            p[j] = dot;
            if (dot > mx) mx = dot;
        }
        float sum = 0;
        for (int32_t j = 0; j < L; j++) {
            p[j] = expf(p[j] - mx);
            sum += p[j];
        }
        float inv = 1.0f / sum;
        for (int32_t d = 0; d < HS; d++) acc[d] = 0;
        for (int32_t j = 0; j < L; j++) {
            const float *vj = v + j * HS;
            float pj = p[j] * inv;
            for (int32_t d = 0; d < HS; d++) acc[d] += pj * vj[d];
        }
        memcpy(out + (size_t)(t0 + i) * C + h * HS, acc, (size_t)HS * sizeof *acc);
    }
    return 1;
}

/* The matrix product on a tile (rows m0..m1, the features of panels p0..p1)
 * with OpenBLAS into scratch (the residual may be the output), then the
 * epilogue into out. w is unpacked. A tile is one thread's work, so OpenBLAS
 * must not start threads of its own: its OpenMP build sizes its team by
 * omp_get_max_threads() unless omp_in_parallel(), which a team of one thread
 * is not, and then nested teams of every core spun against each other (a
 * one-thread forward pass 30 times slower on a busy machine, measured). The
 * calling task's thread count is set to one for the call, and put back. */
static void linear_tile_generic(float *out, const float *inp, const float *w, const float *bias, const float *res,
                                int act, int32_t m0, int32_t m1, int32_t p0, int32_t p1, int32_t K, int32_t N,
                                float *tile) {
    const int32_t nr = cpu_isa_generic.nr;
    const int32_t n0 = p0 * nr, n1 = p1 * nr < N ? p1 * nr : N, tn = n1 - n0;
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m1 - m0, tn, K, 1.0f, inp + (size_t)m0 * K, K,
                w + (size_t)n0 * K, K, 0.0f, tile, tn);
    omp_set_num_threads(threads);
    for (int32_t m = m0; m < m1; m++) {
        const float *y = tile + (size_t)(m - m0) * tn;
        float *o = out + (size_t)m * N;
        const float *r = res ? res + (size_t)m * N : NULL;
        for (int32_t n = n0; n < n1; n++) {
            float v = cpu_act_scalar(y[n - n0] + bias[n], act);
            o[n] = r ? v + r[n] : v;
        }
    }
}

const cpu_isa cpu_isa_generic = {
    .name = "generic",
    .batch_invariant = 0,
    .packed = 0,
    .nr = 32,
    .tile_rows = 96,
    .layernorm_row = cpu_layernorm_row_generic,
    .embed_row = embed_row_generic,
    .bias_residual_row = bias_residual_row_generic,
    .bias_act_row = bias_act_row_generic,
    .linear_tile = linear_tile_generic,
    .attention_head = cpu_attention_head_generic,
};

