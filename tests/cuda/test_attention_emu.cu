/* The mma.sync attention kernel (kernels/attention_mma.inc) on the CPU.
 *
 * The kernel's body is compiled here for the host, with each warp-wide
 * instruction it uses emulated as the PTX ISA defines it: a block runs as
 * one thread per lane, and ldmatrix, mma.m16n8k16 and shfl.xor exchange
 * their operands through the warp's slots between two barriers. So the
 * fragment layouts, the index arithmetic over packed sequences, the masking
 * of the last key tile and the online softmax are checked on every machine,
 * GPU or not (label cpu); test_cuda_kernels checks the real instructions.
 *
 * The emulation also checks what the hardware would not report: every
 * ldmatrix row address 16-byte aligned and inside the block's shared memory,
 * every cp.async inside it, every warp-wide instruction reached by all 32
 * lanes (a divergent one deadlocks: the barrier gives up after 60 s and the
 * test fails), and no read of a cp.async destination before the wait_group
 * that completes it (the bytes land only then; NaN until). Shared memory
 * starts as 0xff bytes (NaN in fp16 and bf16). Not checked: a missing
 * __syncthreads between a thread's plain shared-memory write and another
 * thread's read (the emulated threads are not in lockstep, but nothing
 * detects the race); global reads past the end of the buffers. */
#include <criterion/criterion.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

extern "C" {
#include "backend/cuda_layout.h"
#include "attention_reference.h"
#include "cuda_test_util.h"
}

/* ---- the emulated block ------------------------------------------------------------ */

namespace {

class emu_barrier {
  public:
    explicit emu_barrier(int n) : n_(n) {}
    void wait() {
        std::unique_lock<std::mutex> lock(mu_);
        const unsigned gen = gen_;
        if (++count_ == n_) {
            count_ = 0;
            gen_++;
            cv_.notify_all();
            return;
        }
        if (!cv_.wait_for(lock, std::chrono::seconds(60), [&] { return gen_ != gen; })) {
            fprintf(stderr, "emulator: a barrier of %d threads timed out with %d arrived: a warp-wide instruction or "
                            "__syncthreads not reached by every thread\n",
                    n_, count_);
            abort();
        }
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    int n_, count_ = 0;
    unsigned gen_ = 0;
};

struct emu_warp {
    emu_barrier bar{32};
    const void *ptr[32];
    uint32_t a[32][4], b[32][2];
    float f[32];
};

struct emu_block {
    explicit emu_block(int nw, size_t smem_bytes) : bar(nw * 32), warps(nw), smem(smem_bytes, 0xff) {}
    emu_barrier bar;
    std::vector<emu_warp> warps;
    std::vector<unsigned char> smem;
};

thread_local emu_block *tl_block;
thread_local int tl_tid;

emu_warp &cur_warp() { return tl_block->warps[tl_tid / 32]; }
int cur_lane() { return tl_tid % 32; }

void emu_fail(const char *what) {
    fprintf(stderr, "emulator: thread %d: %s\n", tl_tid, what);
    abort();
}

/* p .. p + bytes inside the block's shared memory, 16-byte aligned */
void check_smem(const void *p, size_t bytes, const char *what) {
    const unsigned char *c = static_cast<const unsigned char *>(p), *base = tl_block->smem.data();
    if (c < base || c + bytes > base + tl_block->smem.size()) emu_fail(what);
    if ((reinterpret_cast<uintptr_t>(c) - reinterpret_cast<uintptr_t>(base)) % 16 != 0) emu_fail(what);
}

template <typename D> float bits_to_f32(uint16_t bits);
template <> float bits_to_f32<__half>(uint16_t bits) {
    __half v;
    memcpy((void *)&v, &bits, 2);
    return __half2float(v);
}
template <> float bits_to_f32<__nv_bfloat16>(uint16_t bits) {
    __nv_bfloat16 v;
    memcpy((void *)&v, &bits, 2);
    return __bfloat162float(v);
}

} // namespace

/* ---- the primitives attention_mma.inc expects ---------------------------------------- */

static inline float attn_to_f32(__half x) { return __half2float(x); }
static inline float attn_to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename D> static inline D attn_from_f32(float x);
template <> inline __half attn_from_f32<__half>(float x) { return __float2half_rn(x); }
template <> inline __nv_bfloat16 attn_from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

template <typename D> static inline void attn_load8(float (&v)[8], const D *p) {
    if (reinterpret_cast<uintptr_t>(p) % 16) emu_fail("attn_load8: unaligned");
    D x[8];
    memcpy((void *)x, p, 16);
    for (int i = 0; i < 8; i++) v[i] = attn_to_f32(x[i]);
}
template <typename D> static inline void attn_store8(D *p, const float (&v)[8]) {
    check_smem(p, 16, "attn_store8: outside shared memory or unaligned");
    D x[8];
    for (int i = 0; i < 8; i++) x[i] = attn_from_f32<D>(v[i]);
    memcpy((void *)p, (const void *)x, 16);
}
template <typename D> static inline void attn_store2(D *p, uint32_t v) {
    if (reinterpret_cast<uintptr_t>(p) % 4) emu_fail("attn_store2: unaligned");
    memcpy((void *)p, &v, 4);
}

static inline void attn_ldsm_x4(uint32_t (&r)[4], const void *p) {
    check_smem(p, 16, "ldmatrix: row address outside shared memory or unaligned");
    emu_warp &w = cur_warp();
    const int lane = cur_lane();
    w.ptr[lane] = p;
    w.bar.wait();
    for (int i = 0; i < 4; i++) {
        const uint16_t *row = static_cast<const uint16_t *>(w.ptr[8 * i + lane / 4]);
        r[i] = row[2 * (lane % 4)] | (uint32_t)row[2 * (lane % 4) + 1] << 16;
    }
    w.bar.wait();
}

static inline void attn_ldsm_x4_t(uint32_t (&r)[4], const void *p) {
    check_smem(p, 16, "ldmatrix.trans: row address outside shared memory or unaligned");
    emu_warp &w = cur_warp();
    const int lane = cur_lane();
    w.ptr[lane] = p;
    w.bar.wait();
    for (int i = 0; i < 4; i++) {
        const uint16_t *r0 = static_cast<const uint16_t *>(w.ptr[8 * i + 2 * (lane % 4)]);
        const uint16_t *r1 = static_cast<const uint16_t *>(w.ptr[8 * i + 2 * (lane % 4) + 1]);
        r[i] = r0[lane / 4] | (uint32_t)r1[lane / 4] << 16;
    }
    w.bar.wait();
}

template <typename D> static inline void attn_mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    emu_warp &w = cur_warp();
    const int lane = cur_lane();
    memcpy(w.a[lane], a, sizeof w.a[lane]);
    w.b[lane][0] = b0;
    w.b[lane][1] = b1;
    w.bar.wait();
    auto A = [&](int r, int k) {
        const int l = (r % 8) * 4 + (k % 8) / 2, reg = (r >= 8) + 2 * (k >= 8);
        return bits_to_f32<D>((uint16_t)(w.a[l][reg] >> (16 * (k % 2))));
    };
    auto B = [&](int k, int n) {
        const int l = n * 4 + (k % 8) / 2, reg = k >= 8;
        return bits_to_f32<D>((uint16_t)(w.b[l][reg] >> (16 * (k % 2))));
    };
    const int g = lane / 4, t = lane % 4;
    float acc[4] = {0, 0, 0, 0};
    for (int k = 0; k < 16; k++) {
        acc[0] += A(g, k) * B(k, 2 * t);
        acc[1] += A(g, k) * B(k, 2 * t + 1);
        acc[2] += A(g + 8, k) * B(k, 2 * t);
        acc[3] += A(g + 8, k) * B(k, 2 * t + 1);
    }
    w.bar.wait();
    for (int i = 0; i < 4; i++) d[i] += acc[i];
}

static inline float attn_shfl_xor(float v, int mask) {
    emu_warp &w = cur_warp();
    const int lane = cur_lane();
    w.f[lane] = v;
    w.bar.wait();
    const float r = w.f[lane ^ mask];
    w.bar.wait();
    return r;
}

static inline void attn_block_sync() { tl_block->bar.wait(); }

/* cp.async as the hardware may run it: the bytes land only when a
 * cp.async.wait_group lets their group complete; until then the destination
 * holds 0xff bytes (NaN), so a read that runs ahead of its wait shows. The
 * source is read at issue (it is never written during the kernel). */
namespace {
struct emu_copy {
    void *dst;
    unsigned char data[16];
};
thread_local std::vector<emu_copy> tl_uncommitted;
thread_local std::vector<std::vector<emu_copy>> tl_groups; /* committed, oldest first */
} // namespace

static inline void attn_cp_async16(void *dst, const void *src, bool valid) {
    check_smem(dst, 16, "cp.async: destination outside shared memory or unaligned");
    if (reinterpret_cast<uintptr_t>(src) % 16) emu_fail("cp.async: unaligned source");
    emu_copy c;
    c.dst = dst;
    if (valid)
        memcpy(c.data, src, 16);
    else
        memset(c.data, 0, 16);
    memset(dst, 0xff, 16);
    tl_uncommitted.push_back(c);
}
static inline void attn_cp_async_commit() {
    tl_groups.push_back(std::move(tl_uncommitted));
    tl_uncommitted.clear();
}
/* wait_group N: every committed group but the N most recent has landed */
template <int N> static inline void attn_cp_async_wait() {
    while (tl_groups.size() > (size_t)N) {
        for (const emu_copy &c : tl_groups.front()) memcpy(c.dst, c.data, 16);
        tl_groups.erase(tl_groups.begin());
    }
}

static inline float attn_exp2(float x) { return exp2f(x); }

#define ATTN_FN static inline /* the .inc's #pragma unroll means nothing to the host compiler (-Wno-unknown-pragmas) */
#include "kernels/attention_mma.inc"
#undef ATTN_FN

/* ---- launching it ------------------------------------------------------------------ */

template <typename D, int HS, int NW, int BK>
static void emu_launch(D *out, const D *qkv, const D *bias, const float *rel_bias, const int32_t *cu, int32_t S,
                       int32_t max_seqlen, int32_t NH) {
    using cfg = attn_mma_cfg<D, HS, NW, BK>;
    const int qtiles = (max_seqlen + cfg::BQ - 1) / cfg::BQ;
    const float scale_log2 = 1.4426950408889634f / sqrtf((float)HS);
    for (int s = 0; s < S; s++)
        for (int h = 0; h < NH; h++)
            for (int qt = 0; qt < qtiles; qt++) {
                emu_block blk(NW, cfg::smem);
                std::vector<std::thread> threads;
                for (int tid = 0; tid < NW * 32; tid++)
                    threads.emplace_back([&, tid] {
                        tl_block = &blk;
                        tl_tid = tid;
                        if (rel_bias)
                            attention_mma_block<D, HS, NW, BK, true>(out, qkv, bias, rel_bias, cu, NH, scale_log2, s,
                                                                     h, qt, tid, blk.smem.data());
                        else
                            attention_mma_block<D, HS, NW, BK, false>(out, qkv, bias, rel_bias, cu, NH, scale_log2, s,
                                                                      h, qt, tid, blk.smem.data());
                    });
                for (auto &t : threads) t.join();
            }
}

/* The dispatch of attention_cuda: tiles by the longest sequence. */
template <typename D, int HS>
static void emu_attention(D *out, const D *qkv, const D *bias, const float *rel_bias, const int32_t *cu, int32_t S,
                          int32_t max_seqlen, int32_t NH) {
    switch (attn_mma_warps(max_seqlen)) {
    case 1: emu_launch<D, HS, 1, 16>(out, qkv, bias, rel_bias, cu, S, max_seqlen, NH); break;
    case 2: emu_launch<D, HS, 2, 32>(out, qkv, bias, rel_bias, cu, S, max_seqlen, NH); break;
    default: emu_launch<D, HS, 4, 64>(out, qkv, bias, rel_bias, cu, S, max_seqlen, NH); break;
    }
}

template <typename D> static std::vector<D> to_dtype(const float *x, size_t n) {
    std::vector<D> v(n);
    for (size_t i = 0; i < n; i++) v[i] = attn_from_f32<D>(x[i]);
    return v;
}

template <typename D, int HS>
static int run_case(const char *set, const int32_t *lens, int32_t S, int32_t NH, ember_dtype dt, int extra_grid,
                    bool with_rel_bias = false) {
    int32_t T, max_len;
    int32_t *cu = cu_from_lengths(lens, S, &T, &max_len);
    const int32_t C = NH * HS;
    /* sharp scores now and then, so that later key tiles raise the maximum */
    const float range = rng_int(0, 1) ? 2.0f : 6.0f;
    float *qkv = random_values((size_t)T * 3 * C, -range, range, dt);
    float *bias = random_values((size_t)3 * C, -0.5f, 0.5f, dt);
    std::vector<D> d_qkv = to_dtype<D>(qkv, (size_t)T * 3 * C), d_bias = to_dtype<D>(bias, (size_t)3 * C);
    /* MPNet's table (32, NH), fp32; wide enough to reorder a row's scores */
    float *rel = with_rel_bias ? random_values((size_t)REL_BUCKETS * NH, -4.0f, 4.0f, EMBER_DTYPE_FP32) : NULL;
    std::vector<D> d_out((size_t)T * C);
    memset((void *)d_out.data(), 0xff, d_out.size() * sizeof(D)); /* NaN: an element never written shows */
    emu_attention<D, HS>(d_out.data(), d_qkv.data(), d_bias.data(), rel, cu, S, max_len + extra_grid, NH);
    std::vector<float> got((size_t)T * C);
    for (size_t i = 0; i < got.size(); i++) got[i] = attn_to_f32(d_out[i]);
    /* the kernel's arithmetic, exactly: q + b_q rounded to the dtype, k and v as stored, then + b_v */
    float *ref = (float *)malloc(got.size() * sizeof(float));
    cr_assert(ref &&
              attention_kernel_reference(ref, qkv, bias, rel, cu, S, max_len, NH, HS, dt, ATTENTION_REF_MMA) == 0);
    char what[200];
    snprintf(what, sizeof what, "emulated mma attention %s NH=%d HS=%d, %s%s (S=%d, T=%d, scores up to ~%.0f)",
             ember_dtype_str(dt), NH, HS, set, rel ? ", position bias" : "", S, T,
             range * range * HS / sqrtf((float)HS));
    const float atol = dt == EMBER_DTYPE_FP16 ? 3e-3f : 1.5e-2f, rtol = dt == EMBER_DTYPE_FP16 ? 3e-3f : 1e-2f;
    size_t bad = count_mismatches(what, got.data(), ref, got.size(), atol, rtol);
    if (rel) { /* the bias must matter, or the comparison above proves nothing about it */
        float *plain = (float *)malloc(got.size() * sizeof(float));
        cr_assert(plain && attention_kernel_reference(plain, qkv, bias, NULL, cu, S, max_len, NH, HS, dt,
                                                      ATTENTION_REF_MMA) == 0);
        if (T > 1 && max_abs_diff(plain, ref, got.size()) < 0.05f) {
            cr_log_error("%s: the position bias hardly changes the reference", what);
            bad++;
        }
        free(plain);
        free(rel);
    }
    free(ref);
    free(qkv);
    free(bias);
    free(cu);
    return bad != 0;
}

/* Lengths that reach each tile configuration (longest <= 16: one warp, 16
 * keys; <= 32: two warps, 32 keys; else four warps, 64 keys), partial and
 * full tiles, a single token, and sequences over several key tiles. */
static const struct {
    const char *name;
    int32_t S, lens[12];
} SETS[] = {
    {"one token", 1, {1}},
    {"up to 16 tokens", 4, {16, 3, 9, 1}},
    {"up to 32 tokens", 4, {32, 17, 2, 25}},
    {"mixed lengths", 9, {1, 15, 33, 64, 65, 100, 129, 7, 48}},
};

Test(attention_emu, fp16_head_size_64) {
    int failures = 0;
    for (const auto &set : SETS)
        failures += run_case<__half, 64>(set.name, set.lens, set.S, 2, EMBER_DTYPE_FP16, 0);
    cr_assert_eq(failures, 0, "%d emulated attention cases failed (see the log)", failures);
}

Test(attention_emu, bf16_head_size_32) {
    int failures = 0;
    for (const auto &set : SETS)
        failures += run_case<__nv_bfloat16, 32>(set.name, set.lens, set.S, 3, EMBER_DTYPE_BF16, 0);
    cr_assert_eq(failures, 0, "%d emulated attention cases failed (see the log)", failures);
}

/* The kernels' bucket function against the model's (src/model), at every
 * distance a 2048-token sequence has. */
Test(attention_emu, rel_bucket_as_the_model) {
    for (int d = -2047; d <= 2047; d++)
        cr_assert_eq(attn_rel_bucket(d), rel_bucket(d), "distance %d: kernel bucket %d, model %d", d,
                     attn_rel_bucket(d), rel_bucket(d));
}

/* MPNet's relative position bias, bucketed inside the kernel body: every
 * tile configuration, distances past 128 ("mixed lengths" has 129 tokens). */
Test(attention_emu, relative_position_bias) {
    int failures = 0;
    for (const auto &set : SETS) {
        failures += run_case<__half, 64>(set.name, set.lens, set.S, 2, EMBER_DTYPE_FP16, 0, true);
        failures += run_case<__nv_bfloat16, 32>(set.name, set.lens, set.S, 2, EMBER_DTYPE_BF16, 0, true);
    }
    const int32_t lens[] = {200, 3};
    failures += run_case<__half, 32>("a long sequence", lens, 2, 1, EMBER_DTYPE_FP16, 9, true);
    cr_assert_eq(failures, 0, "%d emulated attention cases with the position bias failed (see the log)", failures);
}

Test(attention_emu, grid_larger_than_needed) {
    /* max_seqlen only bounds the grid: the extra query tiles must do nothing */
    const int32_t lens[] = {70, 5, 130};
    const int a = run_case<__half, 32>("grid over the longest", lens, 3, 1, EMBER_DTYPE_FP16, 70);
    const int b = run_case<__nv_bfloat16, 64>("grid over the longest", lens, 3, 1, EMBER_DTYPE_BF16, 70);
    cr_assert_eq(a + b, 0, "%d emulated attention cases failed (see the log)", a + b);
}
