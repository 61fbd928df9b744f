/* Every CUDA kernel against its CPU twin (src/backend/cpu_ops.c), in fp32,
 * fp16 and bf16, on fresh random inputs over many shapes: one token, one
 * sequence of 512, many sequences of mixed lengths, lengths that are not
 * multiples of any tile, hidden sizes that are not multiples of the vector
 * width times the warp. Inputs are rounded to the dtype on the host first,
 * so the CPU reference sees exactly what the GPU sees; output buffers are
 * poisoned with NaN before every run, so an element left unwritten fails.
 * Without a GPU every test skips with "no CUDA device". */
#include <cublas_v2.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_ops.h"
#include "backend/cuda_layout.h"
#include "attention_reference.h"
#include "cuda_test_util.h"
#include "kernels/activation.cuh"
#include "kernels/attention.cuh"
#include "kernels/convert.cuh"
#include "kernels/embed.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/matmul.cuh"
#include "kernels/pool.cuh"

static const ember_dtype DTYPES[] = {EMBER_DTYPE_FP32, EMBER_DTYPE_FP16, EMBER_DTYPE_BF16};
#define N_DTYPES 3

/* Tolerance for one op whose output is rounded once to the dtype. */
typedef struct {
    float atol, rtol;
} tolerance;

static tolerance tol_rounded(ember_dtype dt) {
    switch (dt) {
    case EMBER_DTYPE_FP16: return (tolerance){1e-3f, 2e-3f}; /* half an ulp is 2^-11 relative */
    case EMBER_DTYPE_BF16: return (tolerance){8e-3f, 8e-3f}; /* half an ulp is 2^-8 relative */
    default: return (tolerance){2e-5f, 2e-5f};
    }
}

/* ---- the shapes --------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int32_t S;
    int32_t lens[16];
} length_set;

/* The tensor-core attention picks its query tile by the longest sequence
 * (<= 16: one warp, <= 32: two, else four): the sets cover all three. */
static const length_set FIXED_SETS[] = {
    {"one token", 1, {1}},
    {"short sentences (one-warp tiles)", 6, {16, 3, 9, 1, 12, 5}},
    {"up to 32 tokens (two-warp tiles)", 5, {32, 17, 2, 25, 31}},
    {"one sequence of 512", 1, {512}},
    {"mixed lengths", 15, {1, 7, 16, 17, 31, 33, 64, 65, 100, 127, 129, 200, 255, 257, 3}},
    {"long and short", 3, {511, 2, 384}},
};
#define N_FIXED_SETS ((int)(sizeof FIXED_SETS / sizeof FIXED_SETS[0]))
#define N_SETS (N_FIXED_SETS + 1) /* plus one drawn at random per run */

/* Lengths of set k (the last one random: 1 to 40 sequences of 1 to 300). */
static int32_t *lengths_of_set(int k, int32_t *S, const char **name) {
    int32_t *lens;
    if (k < N_FIXED_SETS) {
        *S = FIXED_SETS[k].S;
        *name = FIXED_SETS[k].name;
        lens = malloc((size_t)*S * sizeof *lens);
        memcpy(lens, FIXED_SETS[k].lens, (size_t)*S * sizeof *lens);
    } else {
        *S = rng_int(1, 40);
        *name = "random lengths";
        lens = malloc((size_t)*S * sizeof *lens);
        for (int32_t s = 0; s < *S; s++) lens[s] = rng_int(1, 300);
    }
    return lens;
}

static int32_t *dev_ints(const int32_t *x, size_t n) {
    int32_t *d = dev_alloc(n * sizeof *d);
    CHECK_CUDA(cudaMemcpy(d, x, n * sizeof *d, cudaMemcpyHostToDevice));
    return d;
}

/* ---- embedding + LayerNorm --------------------------------------------------------- */

Test(cuda_kernels, embed_layernorm) {
    require_cuda();
    const int32_t Cs[] = {64, 136, 384, 768, 1024};
    const int32_t V = 997, P = 512, TV = 2;
    const float eps = 1e-12f;
    int failures = 0;
    for (int di = 0; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        const tolerance tol = tol_rounded(dt);
        for (size_t ci = 0; ci < sizeof Cs / sizeof Cs[0]; ci++) {
            const int32_t C = Cs[ci];
            float *word = random_values((size_t)V * C, -1, 1, dt), *pos_emb = random_values((size_t)P * C, -1, 1, dt),
                  *type_emb = random_values((size_t)TV * C, -1, 1, dt), *ln_w = random_values(C, 0.5f, 1.5f, dt),
                  *ln_b = random_values(C, -0.5f, 0.5f, dt);
            void *d_word = dev_from_f32(word, (size_t)V * C, dt), *d_pos_emb = dev_from_f32(pos_emb, (size_t)P * C, dt),
                 *d_type_emb = dev_from_f32(type_emb, (size_t)TV * C, dt), *d_ln_w = dev_from_f32(ln_w, C, dt),
                 *d_ln_b = dev_from_f32(ln_b, C, dt);
            for (int k = 0; k < N_SETS; k++) {
                int32_t S, T, max_len;
                const char *set;
                int32_t *lens = lengths_of_set(k, &S, &set);
                int32_t *cu = cu_from_lengths(lens, S, &T, &max_len);
                int32_t *ids = malloc((size_t)T * 4), *types = malloc((size_t)T * 4), *pos = malloc((size_t)T * 4);
                for (int32_t s = 0; s < S; s++)
                    for (int32_t t = cu[s]; t < cu[s + 1]; t++) {
                        ids[t] = rng_int(0, V - 1);
                        types[t] = rng_int(0, TV - 1);
                        pos[t] = t - cu[s];
                    }
                float *ref = malloc((size_t)T * C * sizeof *ref);
                embed_layernorm_cpu(ref, ids, types, pos, word, pos_emb, type_emb, ln_w, ln_b, eps, T, C, cpu_kernels_best());
                int32_t *d_ids = dev_ints(ids, T), *d_types = dev_ints(types, T), *d_pos = dev_ints(pos, T);
                void *d_out = dev_alloc((size_t)T * C * dtype_size(dt));
                dev_poison(d_out, (size_t)T * C * dtype_size(dt));
                CHECK_CUDA(embed_layernorm_cuda(d_out, d_ids, d_types, d_pos, d_word, d_pos_emb, d_type_emb, d_ln_w,
                                                d_ln_b, eps, T, C, dt, 0));
                float *got = host_f32_from_dev(d_out, (size_t)T * C, dt);
                char what[160];
                snprintf(what, sizeof what, "embed_layernorm %s C=%d, %s (T=%d)", ember_dtype_str(dt), C, set, T);
                if (count_mismatches(what, got, ref, (size_t)T * C, tol.atol, tol.rtol)) failures++;
                free(got);
                free(ref);
                cudaFree(d_out);
                cudaFree(d_ids);
                cudaFree(d_types);
                cudaFree(d_pos);
                free(ids);
                free(types);
                free(pos);
                free(cu);
                free(lens);
            }
            cudaFree(d_word);
            cudaFree(d_pos_emb);
            cudaFree(d_type_emb);
            cudaFree(d_ln_w);
            cudaFree(d_ln_b);
            free(word);
            free(pos_emb);
            free(type_emb);
            free(ln_w);
            free(ln_b);
        }
    }
    cr_assert_eq(failures, 0, "%d embed_layernorm cases failed (see the log)", failures);
}

/* ---- bias + residual + LayerNorm --------------------------------------------------- */

Test(cuda_kernels, bias_residual_layernorm) {
    require_cuda();
    const int32_t Cs[] = {64, 136, 384, 768, 1024, 2048};
    const int32_t Ts[] = {1, 5, 512, 1999};
    const float eps = 1e-12f;
    int failures = 0;
    for (int di = 0; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        const tolerance tol = tol_rounded(dt);
        const size_t es = dtype_size(dt);
        for (size_t ci = 0; ci < sizeof Cs / sizeof Cs[0]; ci++) {
            for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
                const int32_t C = Cs[ci], T = Ts[ti];
                const size_t n = (size_t)T * C;
                float *inp = random_values(n, -2, 2, dt), *res = random_values(n, -2, 2, dt),
                      *bias = random_values(C, -0.5f, 0.5f, dt), *ln_w = random_values(C, 0.5f, 1.5f, dt),
                      *ln_b = random_values(C, -0.5f, 0.5f, dt);
                float *ref = malloc(n * sizeof *ref);
                bias_residual_layernorm_cpu(ref, inp, bias, res, ln_w, ln_b, eps, T, C, cpu_kernels_best());
                void *d_inp = dev_from_f32(inp, n, dt), *d_res = dev_from_f32(res, n, dt),
                     *d_bias = dev_from_f32(bias, C, dt), *d_w = dev_from_f32(ln_w, C, dt),
                     *d_b = dev_from_f32(ln_b, C, dt), *d_out = dev_alloc(n * es);
                /* separate output, poisoned */
                dev_poison(d_out, n * es);
                CHECK_CUDA(bias_residual_layernorm_cuda(d_out, d_inp, d_bias, d_res, d_w, d_b, eps, T, C, dt, 0));
                float *got = host_f32_from_dev(d_out, n, dt);
                char what[160];
                snprintf(what, sizeof what, "bias_residual_layernorm %s C=%d T=%d", ember_dtype_str(dt), C, T);
                if (count_mismatches(what, got, ref, n, tol.atol, tol.rtol)) failures++;
                free(got);
                /* in place over the residual, as the forward pass runs it */
                CHECK_CUDA(bias_residual_layernorm_cuda(d_res, d_inp, d_bias, d_res, d_w, d_b, eps, T, C, dt, 0));
                got = host_f32_from_dev(d_res, n, dt);
                snprintf(what, sizeof what, "bias_residual_layernorm in place %s C=%d T=%d", ember_dtype_str(dt), C, T);
                if (count_mismatches(what, got, ref, n, tol.atol, tol.rtol)) failures++;
                free(got);
                cudaFree(d_inp);
                cudaFree(d_res);
                cudaFree(d_bias);
                cudaFree(d_w);
                cudaFree(d_b);
                cudaFree(d_out);
                free(inp);
                free(res);
                free(bias);
                free(ln_w);
                free(ln_b);
                free(ref);
            }
        }
    }
    cr_assert_eq(failures, 0, "%d bias_residual_layernorm cases failed (see the log)", failures);
}

Test(cuda_kernels, entry_points_reject_what_they_cannot_do) {
    require_cuda();
    char *d = dev_alloc(1 << 16);
    void *a = d, *b = d + 8192, *c = d + 16384, *o = d + 24576;
    cr_expect_eq(bias_residual_layernorm_cuda(o, a, c, b, c, c, 1e-12f, 1, 100, EMBER_DTYPE_FP16, 0),
                 cudaErrorInvalidValue, "C not a multiple of 8");
    cr_expect_eq(bias_residual_layernorm_cuda(o, a, c, b, c, c, 1e-12f, 1, LAYERNORM_MAX_C + 8, EMBER_DTYPE_FP16, 0),
                 cudaErrorInvalidValue, "C over LAYERNORM_MAX_C");
    cr_expect_eq(bias_residual_layernorm_cuda(d + 2, a, c, b, c, c, 1e-12f, 1, 64, EMBER_DTYPE_FP16, 0),
                 cudaErrorMisalignedAddress, "misaligned output");
    cr_expect_eq(bias_residual_layernorm_cuda(a, a, c, b, c, c, 1e-12f, 1, 64, EMBER_DTYPE_FP16, 0),
                 cudaErrorInvalidValue, "output aliasing the input");
    cr_expect_eq(embed_layernorm_cuda(o, NULL, NULL, NULL, a, b, c, c, c, 1e-12f, 1, 12, EMBER_DTYPE_FP32, 0),
                 cudaErrorInvalidValue, "C not a multiple of 8");
    cr_expect_eq(attention_cuda(o, a, b, NULL, NULL, 1, 1, 2, 20, EMBER_DTYPE_FP16, 0), cudaErrorInvalidValue,
                 "head size not a multiple of 8");
    cr_expect_eq(attention_cuda(o, a, b, NULL, NULL, 1, 1, 1, ATTENTION_MAX_HS + 8, EMBER_DTYPE_FP16, 0),
                 cudaErrorInvalidValue, "head size over ATTENTION_MAX_HS");
    cr_expect_eq(bias_act_cuda(o, a, b, ACT_RELU, 1, 12, EMBER_DTYPE_FP16, 0), cudaErrorInvalidValue,
                 "N not a multiple of 8");
    cudaFree(d);
}

/* ---- bias + activation ----------------------------------------------------------------- */

Test(cuda_kernels, bias_act) {
    require_cuda();
    const int32_t Ns[] = {40, 128, 1536, 3072};
    const int32_t Ts[] = {1, 17, 513};
    const activation acts[] = {ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU};
    const char *act_names[] = {"gelu (erf)", "gelu (tanh)", "relu"};
    int failures = 0;
    for (int di = 0; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        const tolerance tol = tol_rounded(dt);
        const size_t es = dtype_size(dt);
        for (int ai = 0; ai < 3; ai++)
            for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
                for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
                    const int32_t N = Ns[ni], T = Ts[ti];
                    const size_t n = (size_t)T * N;
                    float *inp = random_values(n, -4, 4, dt), *bias = random_values(N, -1, 1, dt);
                    float *ref = malloc(n * sizeof *ref);
                    bias_act_cpu(ref, inp, bias, acts[ai], T, N, cpu_kernels_best());
                    void *d_inp = dev_from_f32(inp, n, dt), *d_bias = dev_from_f32(bias, N, dt),
                         *d_out = dev_alloc(n * es);
                    dev_poison(d_out, n * es);
                    CHECK_CUDA(bias_act_cuda(d_out, d_inp, d_bias, acts[ai], T, N, dt, 0));
                    float *got = host_f32_from_dev(d_out, n, dt);
                    char what[160];
                    snprintf(what, sizeof what, "bias_act %s %s N=%d T=%d", act_names[ai], ember_dtype_str(dt), N, T);
                    if (count_mismatches(what, got, ref, n, tol.atol, tol.rtol)) failures++;
                    free(got);
                    CHECK_CUDA(bias_act_cuda(d_inp, d_inp, d_bias, acts[ai], T, N, dt, 0)); /* in place */
                    got = host_f32_from_dev(d_inp, n, dt);
                    snprintf(what, sizeof what, "bias_act in place %s %s N=%d T=%d", act_names[ai], ember_dtype_str(dt), N,
                             T);
                    if (count_mismatches(what, got, ref, n, tol.atol, tol.rtol)) failures++;
                    free(got);
                    cudaFree(d_inp);
                    cudaFree(d_bias);
                    cudaFree(d_out);
                    free(inp);
                    free(bias);
                    free(ref);
                }
    }
    cr_assert_eq(failures, 0, "%d bias_act cases failed (see the log)", failures);
}

/* ---- attention ---------------------------------------------------------------------- */

/* Tolerance of attention. The tensor-core kernels round their operands and
 * the probabilities to the dtype before the two products; the reference each
 * is held to rounds its operands the same way (see attention_reference), so
 * what is left is P's rounding and the output's. */
static tolerance tol_attention(ember_dtype dt) {
    switch (dt) {
    case EMBER_DTYPE_FP16: return (tolerance){3e-3f, 3e-3f};
    case EMBER_DTYPE_BF16: return (tolerance){1.5e-2f, 1e-2f};
    default: return (tolerance){5e-5f, 1e-4f};
    }
}

/* The three attention kernels, each with its own arithmetic (the CPU
 * reference of each: attention_kernel_reference, attention_reference.h). */
typedef enum { ATT_MMA, ATT_WMMA, ATT_SCALAR } attention_kernel;
static const char *const ATT_NAMES[] = {"mma", "wmma", "scalar"};
static const attention_ref_kernel ATT_REF[] = {ATTENTION_REF_MMA, ATTENTION_REF_WMMA, ATTENTION_REF_SCALAR};

static float *attention_reference(const float *qkv, const float *bias, const float *rel_bias, const int32_t *cu,
                                  int32_t S, int32_t max_len, int32_t NH, int32_t HS, ember_dtype dt,
                                  attention_kernel kernel) {
    float *ref = malloc((size_t)cu[S] * NH * HS * sizeof *ref);
    cr_assert(ref &&
              attention_kernel_reference(ref, qkv, bias, rel_bias, cu, S, max_len, NH, HS, dt, ATT_REF[kernel]) == 0);
    return ref;
}

static cudaError_t run_attention(attention_kernel kernel, void *out, const void *qkv, const void *bias,
                                 const float *rel_bias, const int32_t *cu, int32_t S, int32_t max_seqlen, int32_t NH,
                                 int32_t HS, ember_dtype dt) {
    switch (kernel) {
    case ATT_MMA: return attention_cuda(out, qkv, bias, rel_bias, cu, S, max_seqlen, NH, HS, dt, 0);
    case ATT_WMMA: return attention_wmma_cuda(out, qkv, bias, rel_bias, cu, S, max_seqlen, NH, HS, dt, 0);
    default: return attention_scalar_cuda(out, qkv, bias, rel_bias, cu, S, max_seqlen, NH, HS, dt, 0);
    }
}

Test(cuda_kernels, attention) {
    require_cuda();
    /* (NH, HS): MiniLM's and BERT-base's head sizes on tensor cores, the
     * others on the scalar kernel */
    const int32_t heads[][2] = {{2, 32}, {12, 32}, {12, 64}, {1, 64}, {4, 48}, {2, 128}, {3, 16}};
    int failures = 0;
    for (int di = 0; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        const tolerance tol = tol_attention(dt);
        const size_t es = dtype_size(dt);
        for (size_t hi = 0; hi < sizeof heads / sizeof heads[0]; hi++) {
            const int32_t NH = heads[hi][0], HS = heads[hi][1], C = NH * HS;
            for (int k = 0; k < N_SETS; k++) {
                int32_t S, T, max_len;
                const char *set;
                int32_t *lens = lengths_of_set(k, &S, &set);
                int32_t *cu = cu_from_lengths(lens, S, &T, &max_len);
                float *qkv = random_values((size_t)T * 3 * C, -2, 2, dt);
                float *bias = random_values((size_t)3 * C, -0.5f, 0.5f, dt);
                const int tc = attention_uses_tensor_cores(dt, HS);
                void *d_qkv = dev_from_f32(qkv, (size_t)T * 3 * C, dt), *d_bias = dev_from_f32(bias, (size_t)3 * C, dt),
                     *d_out = dev_alloc((size_t)T * C * es);
                int32_t *d_cu = dev_ints(cu, (size_t)S + 1);
                for (int kernel = ATT_MMA; kernel <= ATT_SCALAR; kernel++) {
                    /* without tensor cores, mma and wmma fall back to the scalar kernel */
                    const attention_kernel runs_as = tc ? (attention_kernel)kernel : ATT_SCALAR;
                    float *ref = attention_reference(qkv, bias, NULL, cu, S, max_len, NH, HS, dt, runs_as);
                    /* max_seqlen only bounds the grid: a larger one must not change anything */
                    const int32_t max_seqlen = k == 4 /* mixed lengths */ ? max_len + 5 : max_len;
                    dev_poison(d_out, (size_t)T * C * es);
                    CHECK_CUDA(run_attention((attention_kernel)kernel, d_out, d_qkv, d_bias, NULL, d_cu, S, max_seqlen,
                                             NH, HS, dt));
                    float *got = host_f32_from_dev(d_out, (size_t)T * C, dt);
                    char what[200];
                    snprintf(what, sizeof what, "attention (%s entry, %s kernel) %s NH=%d HS=%d, %s (S=%d, T=%d)",
                             ATT_NAMES[kernel], ATT_NAMES[runs_as], ember_dtype_str(dt), NH, HS, set, S, T);
                    if (count_mismatches(what, got, ref, (size_t)T * C, tol.atol, tol.rtol)) failures++;
                    free(got);
                    free(ref);
                }
                cudaFree(d_qkv);
                cudaFree(d_bias);
                cudaFree(d_out);
                cudaFree(d_cu);
                free(qkv);
                free(bias);
                free(cu);
                free(lens);
            }
        }
    }
    cr_assert_eq(failures, 0, "%d attention cases failed (see the log)", failures);
}

/* Sharp attention (large scores): the online softmax must rescale correctly
 * when a later key tile holds the maximum. */
Test(cuda_kernels, attention_late_maximum) {
    require_cuda();
    const int32_t NH = 2, HS = 64, C = NH * HS;
    const int32_t lens[] = {300, 70, 129};
    int32_t T, max_len;
    int32_t *cu = cu_from_lengths(lens, 3, &T, &max_len);
    int failures = 0;
    for (int di = 0; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        const tolerance tol = tol_attention(dt);
        float *qkv = random_values((size_t)T * 3 * C, -1, 1, dt), *bias = random_values((size_t)3 * C, 0, 0, dt);
        /* every query aligned with the last key of its sequence, scaled up */
        for (int32_t s = 0; s < 3; s++) {
            const int32_t last = cu[s + 1] - 1;
            for (int32_t t = cu[s]; t < cu[s + 1]; t++)
                for (int32_t d = 0; d < C; d++)
                    qkv[(size_t)t * 3 * C + d] = dtype_round(3.0f * qkv[(size_t)last * 3 * C + C + d], dt);
        }
        float *ref = malloc((size_t)T * C * sizeof *ref);
        attention_cpu(ref, qkv, bias, NULL, cu, 3, max_len, NH, HS, cpu_kernels_best());
        void *d_qkv = dev_from_f32(qkv, (size_t)T * 3 * C, dt), *d_bias = dev_from_f32(bias, (size_t)3 * C, dt),
             *d_out = dev_alloc((size_t)T * C * dtype_size(dt));
        int32_t *d_cu = dev_ints(cu, 4);
        for (int kernel = ATT_MMA; kernel <= ATT_SCALAR; kernel++) {
            dev_poison(d_out, (size_t)T * C * dtype_size(dt));
            CHECK_CUDA(
                run_attention((attention_kernel)kernel, d_out, d_qkv, d_bias, NULL, d_cu, 3, max_len, NH, HS, dt));
            float *got = host_f32_from_dev(d_out, (size_t)T * C, dt);
            char what[120];
            snprintf(what, sizeof what, "attention (%s) with the maximum in the last key tile, %s", ATT_NAMES[kernel],
                     ember_dtype_str(dt));
            if (count_mismatches(what, got, ref, (size_t)T * C, tol.atol, tol.rtol)) failures++;
            free(got);
        }
        free(ref);
        free(qkv);
        free(bias);
        cudaFree(d_qkv);
        cudaFree(d_bias);
        cudaFree(d_out);
        cudaFree(d_cu);
    }
    free(cu);
    cr_assert_eq(failures, 0);
}

/* MPNet's relative position bias, bucketed in the kernels: every kernel and
 * dtype against attention_cpu with the same table, on lengths whose
 * distances reach every bucket (|j - i| under 8, logarithmic, 128 and past). */
Test(cuda_kernels, attention_relative_position_bias) {
    require_cuda();
    const int32_t heads[][2] = {{12, 64}, {2, 32}, {4, 48}}; /* the last on the scalar kernel */
    const int32_t lens[] = {1, 7, 16, 33, 64, 129, 300, 20};
    const int32_t S = (int32_t)(sizeof lens / sizeof *lens);
    int32_t T, max_len;
    int32_t *cu = cu_from_lengths(lens, S, &T, &max_len);
    int32_t *d_cu = dev_ints(cu, (size_t)S + 1);
    int failures = 0;
    for (int di = 0; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        const tolerance tol = tol_attention(dt);
        const size_t es = dtype_size(dt);
        for (size_t hi = 0; hi < sizeof heads / sizeof heads[0]; hi++) {
            const int32_t NH = heads[hi][0], HS = heads[hi][1], C = NH * HS;
            float *qkv = random_values((size_t)T * 3 * C, -2, 2, dt);
            float *bias = random_values((size_t)3 * C, -0.5f, 0.5f, dt);
            /* fp32 (the kernels read it so); large enough to move the softmax a lot */
            float *rel = random_values((size_t)REL_BUCKETS * NH, -4, 4, EMBER_DTYPE_FP32);
            const int tc = attention_uses_tensor_cores(dt, HS);
            void *d_qkv = dev_from_f32(qkv, (size_t)T * 3 * C, dt), *d_bias = dev_from_f32(bias, (size_t)3 * C, dt),
                 *d_rel = dev_from_f32(rel, (size_t)REL_BUCKETS * NH, EMBER_DTYPE_FP32),
                 *d_out = dev_alloc((size_t)T * C * es);
            for (int kernel = ATT_MMA; kernel <= ATT_SCALAR; kernel++) {
                const attention_kernel runs_as = tc ? (attention_kernel)kernel : ATT_SCALAR;
                float *ref = attention_reference(qkv, bias, rel, cu, S, max_len, NH, HS, dt, runs_as);
                dev_poison(d_out, (size_t)T * C * es);
                CHECK_CUDA(run_attention((attention_kernel)kernel, d_out, d_qkv, d_bias, (const float *)d_rel, d_cu, S,
                                         max_len, NH, HS, dt));
                float *got = host_f32_from_dev(d_out, (size_t)T * C, dt);
                char what[200];
                snprintf(what, sizeof what, "attention with position bias (%s entry, %s kernel) %s NH=%d HS=%d",
                         ATT_NAMES[kernel], ATT_NAMES[runs_as], ember_dtype_str(dt), NH, HS);
                if (count_mismatches(what, got, ref, (size_t)T * C, tol.atol, tol.rtol)) failures++;
                /* and the bias matters: without it the output is far off */
                float *plain = attention_reference(qkv, bias, NULL, cu, S, max_len, NH, HS, dt, runs_as);
                cr_expect_gt(max_abs_diff(plain, ref, (size_t)T * C), 0.1f, "%s: the bias changes nothing", what);
                free(plain);
                free(got);
                free(ref);
            }
            cudaFree(d_qkv);
            cudaFree(d_bias);
            cudaFree(d_rel);
            cudaFree(d_out);
            free(qkv);
            free(bias);
            free(rel);
        }
    }
    cudaFree(d_cu);
    free(cu);
    cr_assert_eq(failures, 0, "%d attention cases with the position bias failed (see the log)", failures);
}

/* ---- pooling ---------------------------------------------------------------------------- */

Test(cuda_kernels, pool) {
    require_cuda();
    const int32_t Cs[] = {64, 136, 384, 768};
    const ember_pooling poolings[] = {EMBER_POOLING_CLS, EMBER_POOLING_MEAN, EMBER_POOLING_MAX,
                                      EMBER_POOLING_MEAN_SQRT_LEN};
    const char *names[] = {"cls", "mean", "max", "mean_sqrt_len"};
    int failures = 0;
    for (int di = 0; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        for (size_t ci = 0; ci < sizeof Cs / sizeof Cs[0]; ci++) {
            const int32_t C = Cs[ci];
            for (int k = 0; k < N_SETS; k++) {
                int32_t S, T, max_len;
                const char *set;
                int32_t *lens = lengths_of_set(k, &S, &set);
                int32_t *cu = cu_from_lengths(lens, S, &T, &max_len);
                float *hidden = random_values((size_t)T * C, -3, 3, dt);
                void *d_hidden = dev_from_f32(hidden, (size_t)T * C, dt);
                int32_t *d_cu = dev_ints(cu, (size_t)S + 1);
                float *d_out = dev_alloc((size_t)S * C * sizeof(float));
                float *ref = malloc((size_t)S * C * sizeof *ref);
                for (int pi = 0; pi < 4; pi++)
                    for (int normalize = 0; normalize < 2; normalize++) {
                        pool_cpu(ref, hidden, cu, S, C, poolings[pi], normalize, cpu_kernels_best());
                        dev_poison(d_out, (size_t)S * C * sizeof(float));
                        CHECK_CUDA(pool_cuda(d_out, d_hidden, d_cu, S, C, poolings[pi], normalize, dt, 0));
                        float *got = host_f32_from_dev(d_out, (size_t)S * C, EMBER_DTYPE_FP32);
                        char what[160];
                        snprintf(what, sizeof what, "pool %s%s %s C=%d, %s (S=%d)", names[pi],
                                 normalize ? " + normalize" : "", ember_dtype_str(dt), C, set, S);
                        /* fp32 out and fp32 sums of exactly the CPU's inputs */
                        if (count_mismatches(what, got, ref, (size_t)S * C, 1e-5f, 1e-4f)) failures++;
                        free(got);
                    }
                cudaFree(d_hidden);
                cudaFree(d_cu);
                cudaFree(d_out);
                free(hidden);
                free(ref);
                free(cu);
                free(lens);
            }
        }
    }
    cr_assert_eq(failures, 0, "%d pool cases failed (see the log)", failures);
}

/* ---- the projections through cuBLAS ----------------------------------------------------- */

Test(cuda_kernels, matmul) {
    require_cuda();
    /* (T, K, N): QKV, attention output, FFN up and down of MiniLM / BERT-base, odd sizes */
    const int32_t shapes[][3] = {{1, 64, 192}, {17, 384, 1152}, {513, 768, 3072}, {100, 3072, 768}, {7, 136, 40}};
    cublasHandle_t handle;
    cr_assert_eq(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
    /* cuBLASLt, with the heuristic's choice and tuned (the workspace the backend gives it) */
    const size_t ws_bytes = (size_t)32 << 20;
    void *ws = dev_alloc(ws_bytes);
    cr_assert_eq(cublasSetWorkspace(handle, ws, ws_bytes), CUBLAS_STATUS_SUCCESS);
    matmul_lt *lt[2];
    for (int tune = 0; tune < 2; tune++)
        cr_assert_eq(matmul_lt_create(&lt[tune], handle, ws, ws_bytes, tune), CUBLAS_STATUS_SUCCESS);
    static const char *const PATHS[] = {"cublasGemmEx", "cuBLASLt", "cuBLASLt tuned"};
    int failures = 0;
    for (int di = 0; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        /* fp32 must be true fp32 (TF32 would miss this by ~1e-3) */
        const float rtol = dt == EMBER_DTYPE_FP32 ? 1e-4f : dt == EMBER_DTYPE_FP16 ? 2e-3f : 8e-3f;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int32_t T = shapes[si][0], K = shapes[si][1], N = shapes[si][2];
            float *inp = random_values((size_t)T * K, -1, 1, dt), *w = random_values((size_t)N * K, -1, 1, dt);
            float *ref = malloc((size_t)T * N * sizeof *ref);
            matmul_cpu(ref, inp, w, T, K, N, cpu_kernels_best());
            void *d_inp = dev_from_f32(inp, (size_t)T * K, dt), *d_w = dev_from_f32(w, (size_t)N * K, dt),
                 *d_out = dev_alloc((size_t)T * N * dtype_size(dt));
            for (int path = 0; path < 3; path++) {
                dev_poison(d_out, (size_t)T * N * dtype_size(dt));
                const cublasStatus_t bs = path == 0 ? matmul_cuda(d_out, d_inp, d_w, T, K, N, dt, handle)
                                                    : matmul_lt_cuda(lt[path - 1], d_out, d_inp, d_w, T, K, N, dt, 0);
                cr_assert_eq(bs, CUBLAS_STATUS_SUCCESS, "%s: status %d", PATHS[path], (int)bs);
                float *got = host_f32_from_dev(d_out, (size_t)T * N, dt);
                char what[120];
                snprintf(what, sizeof what, "matmul (%s) %s T=%d K=%d N=%d", PATHS[path], ember_dtype_str(dt), T, K, N);
                /* |ref| is about sqrt(K / 9): scale the absolute part with it */
                if (count_mismatches(what, got, ref, (size_t)T * N, rtol * sqrtf((float)K) / 3, rtol)) failures++;
                free(got);
            }
            free(ref);
            free(inp);
            free(w);
            cudaFree(d_inp);
            cudaFree(d_w);
            cudaFree(d_out);
        }
    }
    for (int tune = 0; tune < 2; tune++) matmul_lt_destroy(lt[tune]);
    cublasDestroy(handle);
    cudaFree(ws);
    cr_assert_eq(failures, 0, "%d matmul cases failed (see the log)", failures);
}

/* ---- conversions ------------------------------------------------------------------------- */

Test(cuda_kernels, convert_matches_the_host_conversion_bit_for_bit) {
    require_cuda();
    const size_t n = 1 << 20;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)rng_next();
        memcpy(&x[i], &bits, 4); /* every class: normals, subnormals, infinities, NaN */
    }
    /* exact ties and the edges of fp16's range */
    const float special[] = {65504.0f, 65519.99f, 65520.0f, 1e-8f, 2.9802322e-8f, 5.9604645e-8f, 1.0009766f,
                             1.0004883f, 1.0014648f, -0.0f, 6.1035156e-5f, 6.0975552e-5f};
    memcpy(x, special, sizeof special);
    float *d_x = dev_alloc(n * sizeof(float));
    CHECK_CUDA(cudaMemcpy(d_x, x, n * sizeof(float), cudaMemcpyHostToDevice));
    uint16_t *host = malloc(n * 2), *dev = malloc(n * 2);
    for (int di = 1; di < N_DTYPES; di++) {
        const ember_dtype dt = DTYPES[di];
        void *d_h = dev_alloc(n * 2);
        CHECK_CUDA(convert_from_f32_cuda(d_h, d_x, (int64_t)n, dt, 0));
        CHECK_CUDA(cudaMemcpy(dev, d_h, n * 2, cudaMemcpyDeviceToHost));
        f32_to_dtype(host, x, n, dt);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            if (isnan(x[i])) { /* any NaN will do */
                const uint16_t exp_mask = dt == EMBER_DTYPE_FP16 ? 0x7c00 : 0x7f80;
                const uint16_t man_mask = dt == EMBER_DTYPE_FP16 ? 0x03ff : 0x007f;
                if ((dev[i] & exp_mask) != exp_mask || !(dev[i] & man_mask)) bad++;
            } else if (dev[i] != host[i]) {
                if (bad < 5)
                    cr_log_error("%s: %.9g -> device 0x%04x, host 0x%04x", ember_dtype_str(dt), x[i], dev[i], host[i]);
                bad++;
            }
        }
        cr_expect_eq(bad, 0, "%s: %zu conversions differ between the GPU and f32_to_dtype", ember_dtype_str(dt), bad);
        /* and back: every 16-bit pattern */
        uint16_t *all = malloc(65536 * 2);
        for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
        CHECK_CUDA(cudaMemcpy(d_h, all, 65536 * 2, cudaMemcpyHostToDevice));
        CHECK_CUDA(convert_to_f32_cuda(d_x, d_h, 65536, dt, 0));
        float *back = malloc(65536 * sizeof *back), *want = malloc(65536 * sizeof *want);
        CHECK_CUDA(cudaMemcpy(back, d_x, 65536 * sizeof(float), cudaMemcpyDeviceToHost));
        dtype_to_f32(want, all, 65536, dt);
        bad = 0;
        for (size_t i = 0; i < 65536; i++)
            if (!(back[i] == want[i] || (isnan(back[i]) && isnan(want[i])))) bad++;
        cr_expect_eq(bad, 0, "%s -> fp32: %zu patterns differ", ember_dtype_str(dt), bad);
        CHECK_CUDA(cudaMemcpy(d_x, x, n * sizeof(float), cudaMemcpyHostToDevice));
        free(all);
        free(back);
        free(want);
        cudaFree(d_h);
    }
    free(x);
    free(host);
    free(dev);
    cudaFree(d_x);
}
