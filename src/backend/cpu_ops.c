#include "cpu_ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void layernorm_row(float *out, const float *x, const float *w, const float *b, float eps, int32_t C) {
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

void embed_layernorm_cpu(float *out, const int32_t *ids, const int32_t *type_ids, const int32_t *pos,
                         const float *word, const float *pos_emb, const float *type_emb, const float *ln_w,
                         const float *ln_b, float eps, int32_t T, int32_t C) {
#pragma omp parallel
    {
        float *row = malloc((size_t)C * sizeof *row);
#pragma omp for schedule(static)
        for (int32_t t = 0; t < T; t++) {
            const float *we = word + (size_t)ids[t] * C, *pe = pos_emb + (size_t)pos[t] * C,
                        *te = type_emb + (size_t)type_ids[t] * C;
            for (int32_t c = 0; c < C; c++) row[c] = we[c] + pe[c] + te[c];
            layernorm_row(out + (size_t)t * C, row, ln_w, ln_b, eps, C);
        }
        free(row);
    }
}

void matmul_cpu(float *out, const float *inp, const float *w, int32_t T, int32_t K, int32_t N) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, inp, K, w, K, 0.0f, out, N);
}

void bias_residual_layernorm_cpu(float *out, const float *inp, const float *bias, const float *residual,
                                 const float *ln_w, const float *ln_b, float eps, int32_t T, int32_t C) {
#pragma omp parallel
    {
        float *row = malloc((size_t)C * sizeof *row);
#pragma omp for schedule(static)
        for (int32_t t = 0; t < T; t++) {
            const float *x = inp + (size_t)t * C, *r = residual + (size_t)t * C;
            for (int32_t c = 0; c < C; c++) row[c] = x[c] + bias[c] + r[c];
            layernorm_row(out + (size_t)t * C, row, ln_w, ln_b, eps, C);
        }
        free(row);
    }
}

void bias_act_cpu(float *out, const float *inp, const float *bias, activation act, int32_t T, int32_t N) {
#pragma omp parallel for schedule(static)
    for (int32_t t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * N;
        float *y = out + (size_t)t * N;
        for (int32_t n = 0; n < N; n++) {
            float v = x[n] + bias[n];
            switch (act) {
            case ACT_GELU_ERF: v = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2)); break;
            case ACT_GELU_TANH:
                v = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
                break;
            case ACT_RELU: v = v > 0 ? v : 0; break;
            }
            y[n] = v;
        }
    }
}

void attention_cpu(float *out, const float *qkv, const float *bias, const int32_t *cu_seqlens, int32_t S,
                   int32_t max_seqlen, int32_t NH, int32_t HS) {
    const int32_t C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel
    {
        float *k = malloc((size_t)max_seqlen * HS * sizeof *k);
        float *v = malloc((size_t)max_seqlen * HS * sizeof *v);
        float *p = malloc((size_t)max_seqlen * sizeof *p);
        float *q = malloc((size_t)HS * sizeof *q);
        float *acc = malloc((size_t)HS * sizeof *acc);
#pragma omp for schedule(dynamic, 1)
        for (int32_t sh = 0; sh < S * NH; sh++) {
            int32_t s = sh / NH, h = sh % NH;
            int32_t t0 = cu_seqlens[s], L = cu_seqlens[s + 1] - t0;
            const float *bq = bias + h * HS, *bk = bias + C + h * HS, *bv = bias + 2 * C + h * HS;
            for (int32_t j = 0; j < L; j++) {
                const float *row = qkv + (size_t)(t0 + j) * 3 * C;
                for (int32_t d = 0; d < HS; d++) {
                    k[j * HS + d] = row[C + h * HS + d] + bk[d];
                    v[j * HS + d] = row[2 * C + h * HS + d] + bv[d];
                }
            }
            for (int32_t i = 0; i < L; i++) {
                const float *row = qkv + (size_t)(t0 + i) * 3 * C + h * HS;
                for (int32_t d = 0; d < HS; d++) q[d] = (row[d] + bq[d]) * scale;
                float mx = -INFINITY;
                for (int32_t j = 0; j < L; j++) {
                    float dot = 0;
                    const float *kj = k + j * HS;
                    for (int32_t d = 0; d < HS; d++) dot += q[d] * kj[d];
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
        }
        free(k);
        free(v);
        free(p);
        free(q);
        free(acc);
    }
}

void pool_cpu(float *out, const float *hidden, const int32_t *cu_seqlens, int32_t S, int32_t C,
              ember_pooling pooling, int normalize) {
#pragma omp parallel for schedule(static)
    for (int32_t s = 0; s < S; s++) {
        int32_t t0 = cu_seqlens[s], L = cu_seqlens[s + 1] - t0;
        float *o = out + (size_t)s * C;
        const float *h = hidden + (size_t)t0 * C;
        switch (pooling) {
        case EMBER_POOLING_MAX:
            for (int32_t c = 0; c < C; c++) o[c] = h[c];
            for (int32_t t = 1; t < L; t++)
                for (int32_t c = 0; c < C; c++)
                    if (h[(size_t)t * C + c] > o[c]) o[c] = h[(size_t)t * C + c];
            break;
        case EMBER_POOLING_MEAN:
        case EMBER_POOLING_MEAN_SQRT_LEN: {
            for (int32_t c = 0; c < C; c++) {
                double acc = 0;
                for (int32_t t = 0; t < L; t++) acc += h[(size_t)t * C + c];
                o[c] = (float)(pooling == EMBER_POOLING_MEAN ? acc / L : acc / sqrt((double)L));
            }
            break;
        }
        default: /* CLS */
            memcpy(o, h, (size_t)C * sizeof *o);
            break;
        }
        if (normalize) {
            double n2 = 0;
            for (int32_t c = 0; c < C; c++) n2 += (double)o[c] * o[c];
            double n = sqrt(n2);
            float inv = (float)(1.0 / (n > 1e-12 ? n : 1e-12));
            for (int32_t c = 0; c < C; c++) o[c] *= inv;
        }
    }
}
