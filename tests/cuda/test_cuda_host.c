/* The host side of the CUDA backend, which needs no GPU: fp16 / bf16
 * conversion, the parameter slab (q/k/v stacked, every weight where the
 * layout says, in the compute dtype), the workspace sized from the token
 * budget, the checks of models and batches, and the errors when CUDA is
 * asked for where there is none. Label cpu: runs on every machine that
 * builds the CUDA backend. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda_layout.h"
#include "cuda_test_util.h"
#include "model/model.h"

/* ---- conversions ---------------------------------------------------------------------------- */

static float from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

Test(cuda_host, f16_round_trips_every_pattern) {
    for (uint32_t h = 0; h < 65536; h++) {
        float x = f16_to_f32((uint16_t)h);
        uint16_t back = f16_from_f32(x);
        if (isnan(x))
            cr_assert((back & 0x7c00) == 0x7c00 && (back & 0x3ff), "NaN 0x%04x came back as 0x%04x", h, back);
        else
            cr_assert_eq(back, h, "0x%04x -> %g -> 0x%04x", h, x, back);
    }
}

Test(cuda_host, bf16_round_trips_every_pattern) {
    for (uint32_t h = 0; h < 65536; h++) {
        float x = bf16_to_f32((uint16_t)h);
        uint16_t back = bf16_from_f32(x);
        if (isnan(x))
            cr_assert((back & 0x7f80) == 0x7f80 && (back & 0x7f), "NaN 0x%04x came back as 0x%04x", h, back);
        else
            cr_assert_eq(back, h, "0x%04x -> %g -> 0x%04x", h, x, back);
    }
}

Test(cuda_host, f16_rounds_to_nearest_even) {
    const struct {
        float x;
        uint16_t h;
    } cases[] = {
        {1.0f, 0x3c00},
        {1.0f + 0x1p-11f, 0x3c00},     /* tie: to the even 1.0 */
        {1.0f + 3 * 0x1p-11f, 0x3c02}, /* tie: to the even 1 + 2^-9 */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},
        {65504.0f, 0x7bff},
        {65519.99f, 0x7bff},
        {65520.0f, 0x7c00}, /* tie between 65504 and 2^16: the even one overflows */
        {1e6f, 0x7c00},
        {-1e6f, 0xfc00},
        {INFINITY, 0x7c00},
        {-0.0f, 0x8000},
        {0x1p-14f, 0x0400},           /* the smallest normal */
        {0x1p-14f - 0x1p-25f, 0x0400}, /* tie between 0x3ff and 0x400 */
        {0x1p-24f, 0x0001},           /* the smallest subnormal */
        {0x1p-25f, 0x0000},           /* tie between 0 and 2^-24: to 0 */
        {0x1p-25f * 1.0001f, 0x0001},
        {3 * 0x1p-25f, 0x0002}, /* tie between 1 and 2 ulps: to 2 */
        {1e-30f, 0x0000},
        {-0.33325195f, 0xb555},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(f16_from_f32(cases[i].x), cases[i].h, "%a -> 0x%04x, expected 0x%04x", cases[i].x,
                     f16_from_f32(cases[i].x), cases[i].h);
    cr_assert(isnan(f16_to_f32(f16_from_f32(NAN))));
    /* random values over fp16's whole range: nothing representable is nearer */
    for (int k = 0; k < 200000; k++) {
        const float x = from_bits((uint32_t)rng_int(0x32000000, 0x47800000)) * (rng_next() & 1 ? -1.0f : 1.0f);
        const uint16_t h = f16_from_f32(x), m = h & 0x7fff;
        const double ax = fabs((double)x);
        if (m == 0x7c00) {
            cr_assert(ax >= 65520.0, "%a overflowed to infinity", x);
            continue;
        }
        const double y = fabs((double)f16_to_f32(h));
        const double d = fabs(ax - y);
        const double below = m > 0 ? f16_to_f32((uint16_t)(m - 1)) : -1;
        const double above = m < 0x7bff ? f16_to_f32((uint16_t)(m + 1)) : 65536.0;
        cr_assert(d <= ax - below || below < 0, "%a -> %a, but %a is nearer", x, y, below);
        cr_assert(d <= above - ax, "%a -> %a, but %a is nearer", x, y, above);
        if (d == above - ax || (below >= 0 && d == ax - below)) cr_assert((m & 1) == 0, "%a: tie not to even", x);
    }
}

Test(cuda_host, bf16_rounds_to_nearest_even) {
    cr_expect_eq(bf16_from_f32(1.0f), 0x3f80);
    cr_expect_eq(bf16_from_f32(1.0f + 0x1p-8f), 0x3f80);     /* tie: to even */
    cr_expect_eq(bf16_from_f32(1.0f + 3 * 0x1p-8f), 0x3f82); /* tie: to even */
    cr_expect_eq(bf16_from_f32(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    cr_expect_eq(bf16_from_f32(FLT_MAX), 0x7f80);
    cr_expect_eq(bf16_from_f32(-INFINITY), 0xff80);
    cr_expect_eq(bf16_from_f32(-0.0f), 0x8000);
    cr_assert(isnan(bf16_to_f32(bf16_from_f32(NAN))));
    for (int k = 0; k < 200000; k++) {
        const float x = from_bits((uint32_t)rng_int(0x00800000, 0x7f000000));
        const uint16_t h = bf16_from_f32(x);
        const double y = bf16_to_f32(h), below = bf16_to_f32((uint16_t)(h - 1)), above = bf16_to_f32((uint16_t)(h + 1));
        const double d = fabs((double)x - y);
        cr_assert(d <= (double)x - below && d <= above - (double)x, "%a -> %a is not the nearest", x, y);
        if (d == (double)x - below || d == above - (double)x) cr_assert((h & 1) == 0, "%a: tie not to even", x);
    }
}

/* ---- configurations ---------------------------------------------------------------------------- */

static bert_config minilm_like(void) {
    bert_config c = {.V = 30522, .C = 384, .L = 6, .NH = 12, .HS = 32, .FF = 1536, .P = 512, .TV = 2,
                     .ln_eps = 1e-12f, .act = ACT_GELU_ERF};
    strcpy(c.act_name, "gelu");
    return c;
}

static void expect_unsupported(bert_config c, ember_dtype dt, int32_t max_tokens, ember_status want,
                               const char *words) {
    ember_status st = cuda_config_check(&c, dt, max_tokens);
    cr_expect_eq(st, want, "status %d for '%s' (message: %s)", (int)st, words, ember_last_error());
    cr_expect(strstr(ember_last_error(), words) != NULL, "message '%s' does not name '%s'", ember_last_error(), words);
}

Test(cuda_host, config_check_names_the_limit) {
    bert_config c = minilm_like();
    for (int dt = 0; dt < 3; dt++) cr_expect_eq(cuda_config_check(&c, (ember_dtype)dt, 32768), EMBER_OK);
    bert_config base = c;
    base.C = 768;
    base.HS = 64;
    base.FF = 3072;
    cr_expect_eq(cuda_config_check(&base, EMBER_DTYPE_FP16, 32768), EMBER_OK);

    bert_config x = c;
    x.NH = 16;
    x.HS = 24; /* 384 = 16 x 24: fine, the scalar kernel */
    cr_expect_eq(cuda_config_check(&x, EMBER_DTYPE_FP16, 1024), EMBER_OK);
    x = c;
    x.C = 200;
    x.NH = 10;
    x.HS = 20;
    expect_unsupported(x, EMBER_DTYPE_FP16, 1024, EMBER_ERR_UNSUPPORTED, "head size 20");
    x = c;
    x.C = 512;
    x.NH = 2;
    x.HS = 256;
    expect_unsupported(x, EMBER_DTYPE_BF16, 1024, EMBER_ERR_UNSUPPORTED, "head size 256");
    x = c;
    x.C = 4096;
    x.NH = 32;
    x.HS = 128;
    expect_unsupported(x, EMBER_DTYPE_FP16, 1024, EMBER_ERR_UNSUPPORTED, "hidden size 4096");
    x = c;
    x.FF = 1000 + 2;
    expect_unsupported(x, EMBER_DTYPE_FP16, 1024, EMBER_ERR_UNSUPPORTED, "intermediate size 1002");
    x = c;
    x.NH = 5; /* 5 x 32 != 384 */
    expect_unsupported(x, EMBER_DTYPE_FP16, 1024, EMBER_ERR_INVALID_ARGUMENT, "inconsistent config");
    expect_unsupported(c, EMBER_DTYPE_FP16, 0, EMBER_ERR_INVALID_ARGUMENT, "max_batch_tokens 0");
    expect_unsupported(c, (ember_dtype)7, 1024, EMBER_ERR_INVALID_ARGUMENT, "unknown dtype");
}

/* ---- the slabs ------------------------------------------------------------------------------------ */

typedef struct {
    size_t off, bytes;
} region;

static int region_cmp(const void *a, const void *b) {
    const region *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Every region aligned, none overlapping, all inside total. */
static void check_regions(region *r, size_t n, size_t total, const char *what) {
    qsort(r, n, sizeof *r, region_cmp);
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(r[i].off % CUDA_SLAB_ALIGN, 0, "%s: region %zu at %zu is not aligned", what, i, r[i].off);
        if (i) cr_assert(r[i].off >= r[i - 1].off + r[i - 1].bytes, "%s: regions %zu and %zu overlap", what, i - 1, i);
        sum += r[i].bytes;
    }
    cr_assert(r[n - 1].off + r[n - 1].bytes <= total, "%s: the last region ends past the slab", what);
    cr_assert(total <= sum + (n + 1) * CUDA_SLAB_ALIGN, "%s: %zu bytes for %zu of data: too much padding", what, total,
              sum);
}

Test(cuda_host, param_layout_is_aligned_and_disjoint) {
    const bert_config c = minilm_like();
    for (int d = 0; d < 3; d++) {
        const ember_dtype dt = (ember_dtype)d;
        const size_t es = dtype_size(dt), C = (size_t)c.C, FF = (size_t)c.FF;
        cuda_param_layout lay;
        cr_assert_eq(cuda_param_layout_init(&lay, &c, dt), EMBER_OK);
        region r[5 + 12 * 6];
        size_t n = 0;
        r[n++] = (region){lay.word, (size_t)c.V * C * es};
        r[n++] = (region){lay.pos, (size_t)c.P * C * es};
        r[n++] = (region){lay.type, (size_t)c.TV * C * es};
        r[n++] = (region){lay.ln_w, C * es};
        r[n++] = (region){lay.ln_b, C * es};
        for (int l = 0; l < c.L; l++) {
            const cuda_layer_offsets *o = &lay.layers[l];
            r[n++] = (region){o->wqkv, 3 * C * C * es};
            r[n++] = (region){o->bqkv, 3 * C * es};
            r[n++] = (region){o->wo, C * C * es};
            r[n++] = (region){o->bo, C * es};
            r[n++] = (region){o->ln1_w, C * es};
            r[n++] = (region){o->ln1_b, C * es};
            r[n++] = (region){o->w1, FF * C * es};
            r[n++] = (region){o->b1, FF * es};
            r[n++] = (region){o->w2, C * FF * es};
            r[n++] = (region){o->b2, C * es};
            r[n++] = (region){o->ln2_w, C * es};
            r[n++] = (region){o->ln2_b, C * es};
        }
        check_regions(r, n, lay.bytes, ember_dtype_str(dt));
        cuda_param_layout_free(&lay);
    }
}

/* slab bytes at off hold tensor t converted to dtype, bit for bit */
static void expect_tensor_at(const uint8_t *slab, size_t off, const st_tensor *t, ember_dtype dt) {
    float *f = malloc((size_t)t->numel * sizeof *f);
    uint8_t *want = malloc((size_t)t->numel * dtype_size(dt));
    cr_assert_eq(st_tensor_to_f32(t, f), EMBER_OK);
    f32_to_dtype(want, f, (size_t)t->numel, dt);
    cr_expect(memcmp(slab + off, want, (size_t)t->numel * dtype_size(dt)) == 0, "tensor '%s' (%s) is not at %zu",
              t->name, ember_dtype_str(dt), off);
    free(f);
    free(want);
}

Test(cuda_host, params_pack_puts_every_weight_where_the_layout_says) {
    const char *dir = require_path("EMBER_TINY_DIR", TINY_DIR, "the tiny model is written by tools/make_tiny_bert.py");
    model_files mf;
    cr_assert_eq(model_files_open(&mf, dir), EMBER_OK, "%s", ember_last_error());
    const bert_config *c = &mf.cfg;
    const bert_tensors *w = &mf.tensors;
    for (int d = 0; d < 3; d++) {
        const ember_dtype dt = (ember_dtype)d;
        const size_t es = dtype_size(dt), CC = (size_t)c->C * c->C * es, Cb = (size_t)c->C * es;
        cuda_param_layout lay;
        cr_assert_eq(cuda_param_layout_init(&lay, c, dt), EMBER_OK);
        uint8_t *slab = malloc(lay.bytes);
        memset(slab, 0xab, lay.bytes);
        cr_assert_eq(cuda_params_pack(slab, &lay, c, w), EMBER_OK, "%s", ember_last_error());
        expect_tensor_at(slab, lay.word, w->word, dt);
        expect_tensor_at(slab, lay.pos, w->pos, dt);
        expect_tensor_at(slab, lay.type, w->type, dt);
        expect_tensor_at(slab, lay.ln_w, w->ln_w, dt);
        expect_tensor_at(slab, lay.ln_b, w->ln_b, dt);
        for (int l = 0; l < c->L; l++) {
            const cuda_layer_offsets *o = &lay.layers[l];
            const bert_layer_tensors *t = &w->layers[l];
            /* q, k, v stacked: one GEMM gives [q | k | v] per token */
            expect_tensor_at(slab, o->wqkv, t->wq, dt);
            expect_tensor_at(slab, o->wqkv + CC, t->wk, dt);
            expect_tensor_at(slab, o->wqkv + 2 * CC, t->wv, dt);
            expect_tensor_at(slab, o->bqkv, t->bq, dt);
            expect_tensor_at(slab, o->bqkv + Cb, t->bk, dt);
            expect_tensor_at(slab, o->bqkv + 2 * Cb, t->bv, dt);
            expect_tensor_at(slab, o->wo, t->wo, dt);
            expect_tensor_at(slab, o->bo, t->bo, dt);
            expect_tensor_at(slab, o->ln1_w, t->ln1_w, dt);
            expect_tensor_at(slab, o->ln1_b, t->ln1_b, dt);
            expect_tensor_at(slab, o->w1, t->w1, dt);
            expect_tensor_at(slab, o->b1, t->b1, dt);
            expect_tensor_at(slab, o->w2, t->w2, dt);
            expect_tensor_at(slab, o->b2, t->b2, dt);
            expect_tensor_at(slab, o->ln2_w, t->ln2_w, dt);
            expect_tensor_at(slab, o->ln2_b, t->ln2_b, dt);
        }
        free(slab);
        cuda_param_layout_free(&lay);
    }
    model_files_close(&mf);
}

Test(cuda_host, workspace_layout_fits_the_token_budget) {
    const bert_config c = minilm_like();
    const int32_t budgets[] = {1, 100, 32768};
    for (int d = 0; d < 3; d++)
        for (int b = 0; b < 3; b++) {
            const ember_dtype dt = (ember_dtype)d;
            const size_t T = (size_t)budgets[b], es = dtype_size(dt), C = (size_t)c.C;
            cuda_workspace_layout ws;
            cuda_workspace_layout_init(&ws, &c, dt, budgets[b]);
            cr_assert_eq(ws.max_tokens, budgets[b]);
            region r[] = {{ws.x, T * C * es},   {ws.qkv, T * 3 * C * es},        {ws.att, T * C * es},
                          {ws.tmp, T * C * es}, {ws.ff, T * (size_t)c.FF * es},   {ws.out32, T * C * 4},
                          {ws.ints, cuda_batch_ints(budgets[b], budgets[b]) * 4}};
            check_regions(r, sizeof r / sizeof r[0], ws.bytes, "workspace");
        }
}

/* ---- batches ---------------------------------------------------------------------------------------- */

Test(cuda_host, batch_check_and_stage) {
    const bert_config c = minilm_like();
    const int32_t ids[] = {101, 7592, 102, 101, 102, 101, 2023, 2003, 102};
    const int32_t types[] = {0, 0, 0, 0, 0, 0, 0, 1, 1};
    const int32_t pos[] = {0, 1, 2, 0, 1, 0, 1, 2, 3};
    const int32_t cu[] = {0, 3, 5, 9};
    packed_batch b = {3, 9, ids, types, pos, cu, 0};
    int32_t max_seqlen = -1;
    cr_assert_eq(cuda_batch_check(&b, &c, 16, &max_seqlen), EMBER_OK, "%s", ember_last_error());
    cr_expect_eq(max_seqlen, 4, "the longest sequence is recomputed, not trusted");
    int32_t staged[3 * 9 + 4];
    cr_assert_eq(cuda_batch_ints(9, 3), sizeof staged / sizeof staged[0]);
    cuda_batch_stage(staged, &b);
    cr_expect(memcmp(staged, ids, sizeof ids) == 0);
    cr_expect(memcmp(staged + 9, types, sizeof types) == 0);
    cr_expect(memcmp(staged + 18, pos, sizeof pos) == 0);
    cr_expect(memcmp(staged + 27, cu, sizeof cu) == 0);
    packed_batch nt = {3, 9, ids, NULL, pos, cu, 4}; /* no type ids: all 0 */
    cuda_batch_stage(staged, &nt);
    for (int i = 0; i < 9; i++) cr_expect_eq(staged[9 + i], 0);

    cr_expect_eq(cuda_batch_check(&b, &c, 8, &max_seqlen), EMBER_ERR_INVALID_ARGUMENT, "over the token budget");
    const int32_t cu_empty[] = {0, 3, 3, 9};
    packed_batch e = {3, 9, ids, types, pos, cu_empty, 6};
    cr_expect_eq(cuda_batch_check(&e, &c, 16, &max_seqlen), EMBER_ERR_INVALID_ARGUMENT, "an empty sequence");
    const int32_t cu_short[] = {0, 3, 5, 8};
    packed_batch s = {3, 9, ids, types, pos, cu_short, 4};
    cr_expect_eq(cuda_batch_check(&s, &c, 16, &max_seqlen), EMBER_ERR_INVALID_ARGUMENT, "cu_seqlens short of T");
    const int32_t bad_id[] = {101, 7592, 102, 101, 102, 101, 30522, 2003, 102};
    packed_batch i = {3, 9, bad_id, types, pos, cu, 4};
    cr_expect_eq(cuda_batch_check(&i, &c, 16, &max_seqlen), EMBER_ERR_INVALID_ARGUMENT, "an id past the vocabulary");
    const int32_t bad_pos[] = {0, 1, 2, 0, 1, 0, 1, 2, 512};
    packed_batch p = {3, 9, ids, types, bad_pos, cu, 4};
    cr_expect_eq(cuda_batch_check(&p, &c, 16, &max_seqlen), EMBER_ERR_INVALID_ARGUMENT, "a position past P");
    const int32_t bad_type[] = {0, 0, 0, 0, 0, 0, 0, 1, 2};
    packed_batch t = {3, 9, ids, bad_type, pos, cu, 4};
    cr_expect_eq(cuda_batch_check(&t, &c, 16, &max_seqlen), EMBER_ERR_INVALID_ARGUMENT, "a type past TV");
}

/* ---- asking for CUDA -------------------------------------------------------------------------------- */

Test(cuda_host, a_missing_device_is_a_clear_error) {
    const int32_t n = cuda_device_count();
    cr_assert_geq(n, 0, "built with CUDA: the count is never -1");
    const char *dir = require_path("EMBER_TINY_DIR", TINY_DIR, "the tiny model is written by tools/make_tiny_bert.py");
    model_files mf;
    cr_assert_eq(model_files_open(&mf, dir), EMBER_OK, "%s", ember_last_error());
    ember_status st = EMBER_OK;
    backend *be = cuda_backend_create(&mf.cfg, &mf.tensors, n, EMBER_DTYPE_FP16, 1024, NULL, &st);
    cr_expect_null(be, "device index %d of %d devices", n, n);
    cr_expect_eq(st, EMBER_ERR_NO_DEVICE);
    cr_expect(strncmp(ember_last_error(), "no CUDA device", 14) == 0, "message: %s", ember_last_error());
    if (be) be->destroy(be);
    model_files_close(&mf);
}

static char logged[4096];
static void capture_log(ember_log_level level, const char *message, void *user) {
    (void)level;
    (void)user;
    strncat(logged, message, sizeof logged - strlen(logged) - 2);
    strcat(logged, "\n");
}

Test(cuda_host, cuda_without_a_device_fails_and_auto_falls_back) {
    const int32_t n = cuda_device_count();
    const char *dir = require_path("EMBER_TINY_DIR", TINY_DIR, "the tiny model is written by tools/make_tiny_bert.py");
    ember_model_params p = ember_model_default_params();
    ember_model *m = NULL;
    if (n == 0) {
        p.device = EMBER_DEVICE_CUDA;
        p.dtype = EMBER_DTYPE_FP16;
        cr_expect_eq(ember_model_load(dir, &p, &m), EMBER_ERR_NO_DEVICE);
        cr_expect_null(m);
        cr_expect(strncmp(ember_last_error(), "no CUDA device", 14) == 0, "message: %s", ember_last_error());
    }
    p.device = EMBER_DEVICE_CUDA;
    p.device_index = n + 3;
    cr_expect_eq(ember_model_load(dir, &p, &m), EMBER_ERR_NO_DEVICE, "cuda:%d of %d devices", n + 3, n);
    cr_expect(strstr(ember_last_error(), "no CUDA device") != NULL, "message: %s", ember_last_error());

    logged[0] = '\0';
    ember_log_set(capture_log, NULL);
    p = ember_model_default_params();
    p.device = EMBER_DEVICE_AUTO;
    cr_assert_eq(ember_model_load(dir, &p, &m), EMBER_OK, "%s", ember_last_error());
    ember_log_set(NULL, NULL);
    ember_model_info info;
    ember_model_get_info(m, &info);
    if (n == 0) {
        cr_expect_eq(info.device, EMBER_DEVICE_CPU);
        cr_expect(strstr(logged, "no CUDA device") != NULL, "auto must say it fell back; log: %s", logged);
    } else {
        cr_expect_eq(info.device, EMBER_DEVICE_CUDA);
    }
    float v[64];
    const char *text = "hello";
    cr_expect_eq(ember_encode(m, &text, NULL, 1, NULL, v, NULL), EMBER_OK, "%s", ember_last_error());
    ember_model_free(m);
}
