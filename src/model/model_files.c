#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "model.h"

static ember_status json_file(const char *path, json_t **out) {
    json_error_t err;
    *out = NULL;
    ember_status st = file_check_regular(path);
    if (st) return st;
    *out = json_load_file(path, 0, &err);
    if (*out) return EMBER_OK;
    return ember_fail(EMBER_ERR_FORMAT, "%s: malformed JSON at line %d column %d: %s", path, err.line, err.column,
                      err.text);
}

static ember_status get_int(json_t *root, const char *path, const char *key, int required, int32_t def,
                            int32_t lo, int32_t hi, int32_t *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return ember_fail(EMBER_ERR_FORMAT, "%s: '%s' is missing", path, key);
        *out = def;
        return EMBER_OK;
    }
    if (!json_is_integer(v))
        return ember_fail(EMBER_ERR_FORMAT, "%s: '%s' must be an integer", path, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return ember_fail(EMBER_ERR_FORMAT, "%s: '%s' is %lld, outside [%d, %d]", path, key, (long long)x, lo, hi);
    *out = (int32_t)x;
    return EMBER_OK;
}

const char MODEL_ARCHITECTURES[] =
    "bert (BertModel and its sentence-transformers forms: MiniLM, bge, ...; BertForSequenceClassification "
    "cross-encoders), mpnet (MPNetModel: all-mpnet-base-v2)";

const char *architecture_name(architecture a) { return a == ARCH_MPNET ? "mpnet" : "bert"; }

int32_t rel_bucket(int32_t d) {
    /* transformers: n = i - j = -d; n < 0 (a key after the query) adds 16;
     * |n| < 8 is its own bucket; else 8 + floor(log(|n| / 8) / log(16) * 8),
     * at most 15. log(|n| / 8) / log(16) * 8 = 2 log2(|n| / 8) =
     * log2(n^2) - 6, so the floor is that of log2(n^2), in integers (for
     * |n| < 128 the real value is never within 1% of an integer it is not
     * equal to, so float32 rounding in transformers cannot move it:
     * tests/test_model.c checks every distance against PyTorch's buckets). */
    const int32_t base = d > 0 ? 16 : 0;
    const uint32_t a = (uint32_t)(d < 0 ? -(int64_t)d : d);
    if (a < 8) return base + (int32_t)a;
    if (a >= 128) return base + 15;
    return base + 2 + (31 - __builtin_clz(a * a));
}

void model_position_ids(const bert_config *cfg, const int32_t *ids, int32_t n, int32_t *pos) {
    if (cfg->pad_id < 0) {
        for (int32_t k = 0; k < n; k++) pos[k] = k;
        return;
    }
    /* transformers' create_position_ids_from_input_ids: cumsum(ids != pad) * (ids != pad) + pad */
    int32_t count = 0;
    for (int32_t k = 0; k < n; k++) {
        const int real = ids[k] != cfg->pad_id;
        count += real;
        pos[k] = real ? cfg->pad_id + count : cfg->pad_id;
    }
}

/* model_type and what it implies: the architecture, MPNet's fixed settings. */
static ember_status config_arch(bert_config *cfg, json_t *root, const char *path) {
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    if (!mt)
        return ember_fail(EMBER_ERR_FORMAT, "%s: 'model_type' is missing (ember runs %s)", path, MODEL_ARCHITECTURES);
    if (strcmp(mt, "bert") == 0) {
        cfg->arch = ARCH_BERT;
        cfg->pad_id = -1;
        const char *pet = json_string_value(json_object_get(root, "position_embedding_type"));
        if (pet && strcmp(pet, "absolute") != 0)
            return ember_fail(EMBER_ERR_UNSUPPORTED,
                              "%s: position_embedding_type '%s' is not supported (only absolute)", path, pet);
        return EMBER_OK;
    }
    if (strcmp(mt, "mpnet") == 0) {
        cfg->arch = ARCH_MPNET;
        cfg->pad_id = 1; /* transformers' MPNetEmbeddings fixes padding_idx at 1, whatever pad_token_id says */
        return EMBER_OK;
    }
    json_t *archs = json_object_get(root, "architectures");
    const char *an = json_string_value(json_array_get(archs, 0));
    return ember_fail(EMBER_ERR_UNSUPPORTED, "%s: model_type '%s'%s%s%s is not supported; ember runs %s", path, mt,
                      an ? " (" : "", an ? an : "", an ? ")" : "", MODEL_ARCHITECTURES);
}

/* The sizes, in ranges that keep every product far from overflow. */
static ember_status config_sizes(bert_config *cfg, json_t *root, const char *path) {
    ember_status st;
    if ((st = get_int(root, path, "vocab_size", 1, 0, 1, 10000000, &cfg->V)) ||
        (st = get_int(root, path, "hidden_size", 1, 0, 1, 65536, &cfg->C)) ||
        (st = get_int(root, path, "num_hidden_layers", 1, 0, 1, 1024, &cfg->L)) ||
        (st = get_int(root, path, "num_attention_heads", 1, 0, 1, 1024, &cfg->NH)) ||
        (st = get_int(root, path, "intermediate_size", 1, 0, 1, 1 << 20, &cfg->FF)) ||
        (st = get_int(root, path, "max_position_embeddings", 1, 0, 1, 1 << 20, &cfg->P)))
        return st;
    if (cfg->arch == ARCH_MPNET) {
        cfg->TV = 1; /* no token type embeddings: every token is type 0 */
        if ((st = get_int(root, path, "relative_attention_num_buckets", 0, REL_BUCKETS, 1, 1 << 16, &cfg->NB)))
            return st;
        if (cfg->NB < REL_BUCKETS)
            return ember_fail(EMBER_ERR_FORMAT,
                              "%s: relative_attention_num_buckets %d is under the %d buckets MPNet's attention reads",
                              path, cfg->NB, REL_BUCKETS);
        cfg->max_len = cfg->P - cfg->pad_id - 1;
        if (cfg->max_len < 1)
            return ember_fail(EMBER_ERR_FORMAT, "%s: max_position_embeddings %d leaves no position for a token",
                              path, cfg->P);
    } else {
        if ((st = get_int(root, path, "type_vocab_size", 0, 2, 1, 1 << 16, &cfg->TV))) return st;
        cfg->max_len = cfg->P;
    }
    if (cfg->C % cfg->NH != 0)
        return ember_fail(EMBER_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                          cfg->C, cfg->NH);
    cfg->HS = cfg->C / cfg->NH;
    return EMBER_OK;
}

/* layer_norm_eps and hidden_act. */
static ember_status config_numerics(bert_config *cfg, json_t *root, const char *path) {
    json_t *eps = json_object_get(root, "layer_norm_eps");
    cfg->ln_eps = 1e-12f;
    if (eps) {
        if (!json_is_number(eps) || json_number_value(eps) <= 0)
            return ember_fail(EMBER_ERR_FORMAT, "%s: 'layer_norm_eps' must be a positive number", path);
        cfg->ln_eps = (float)json_number_value(eps);
    }
    json_t *act = json_object_get(root, "hidden_act");
    const char *an = act ? json_string_value(act) : "gelu";
    if (!an) return ember_fail(EMBER_ERR_FORMAT, "%s: 'hidden_act' must be a string", path);
    snprintf(cfg->act_name, sizeof cfg->act_name, "%s", an);
    if (strcmp(an, "gelu") == 0) cfg->act = ACT_GELU_ERF;
    else if (strcmp(an, "gelu_new") == 0 || strcmp(an, "gelu_pytorch_tanh") == 0 || strcmp(an, "gelu_fast") == 0)
        cfg->act = ACT_GELU_TANH;
    else if (strcmp(an, "relu") == 0) cfg->act = ACT_RELU;
    else
        return ember_fail(EMBER_ERR_UNSUPPORTED,
                          "%s: hidden_act '%s' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)",
                          path, an);
    return EMBER_OK;
}

ember_status bert_config_load(bert_config *cfg, const char *path) {
    json_t *root;
    ember_status st = json_file(path, &root);
    if (st) return st;
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(root)) st = ember_fail(EMBER_ERR_FORMAT, "%s: not a JSON object", path);
    else if (!(st = config_arch(cfg, root, path)) && !(st = config_sizes(cfg, root, path)))
        st = config_numerics(cfg, root, path);
    json_decref(root);
    return st;
}

/* ---- weights ---------------------------------------------------------------- */

static ember_status find_tensor(const model_files *mf, const char *prefix, const char *name, int ndim, int64_t d0,
                                int64_t d1, const st_tensor **out) {
    char full[256];
    const char *alt = NULL;
    /* old checkpoints name LayerNorm parameters gamma / beta */
    char alt_name[256];
    size_t n = strlen(name);
    if (n > 7 && strcmp(name + n - 7, ".weight") == 0 && strstr(name, "LayerNorm")) {
        snprintf(alt_name, sizeof alt_name, "%.*s.gamma", (int)(n - 7), name);
        alt = alt_name;
    } else if (n > 5 && strcmp(name + n - 5, ".bias") == 0 && strstr(name, "LayerNorm")) {
        snprintf(alt_name, sizeof alt_name, "%.*s.beta", (int)(n - 5), name);
        alt = alt_name;
    }
    const st_tensor *t = NULL;
    const char *names[2] = {name, alt};
    for (int k = 0; k < 2 && !t; k++) {
        if (!names[k]) continue;
        snprintf(full, sizeof full, "%s%s", prefix, names[k]);
        t = safetensors_find(&mf->st, full);
    }
    if (!t)
        return ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s%s' is missing", mf->st.path, prefix, name);
    int64_t want[2] = {d0, d1};
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[128] = "", exp[64] = "";
        size_t g = 0;
        for (int i = 0; i < t->ndim && g < sizeof got - 24; i++)
            g += (size_t)snprintf(got + g, sizeof got - g, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (ndim == 1) snprintf(exp, sizeof exp, "%lld", (long long)d0);
        else snprintf(exp, sizeof exp, "%lld, %lld", (long long)d0, (long long)d1);
        return ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' has wrong shape: got [%s], expected [%s]", mf->st.path,
                          t->name, got, exp);
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return ember_fail(EMBER_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are supported",
                          mf->st.path, t->name, st_dtype_name(t->dtype));
    *out = t;
    return EMBER_OK;
}

/* A layer's tensors as each architecture names them, in bert_layer_tensors'
 * order, with their shapes: 'C' (C, C), 'c' (C), 'U' (FF, C), 'u' (FF), 'D' (C, FF). */
static const char LAYER_SHAPES[16] = {'C', 'c', 'C', 'c', 'C', 'c', 'C', 'c', 'c', 'c', 'U', 'u', 'D', 'c', 'c', 'c'};
static const char *const BERT_LAYER[16] = {
    "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
    "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
    "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"};
static const char *const MPNET_LAYER[16] = {
    "attention.attn.q.weight", "attention.attn.q.bias", "attention.attn.k.weight", "attention.attn.k.bias",
    "attention.attn.v.weight", "attention.attn.v.bias", "attention.attn.o.weight", "attention.attn.o.bias",
    "attention.LayerNorm.weight", "attention.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
    "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"};

static ember_status bind_layer(model_files *mf, const char *prefix, int32_t l, bert_layer_tensors *t) {
    const bert_config *c = &mf->cfg;
    const char *const *names = c->arch == ARCH_MPNET ? MPNET_LAYER : BERT_LAYER;
    const st_tensor **slots[16] = {&t->wq, &t->bq, &t->wk, &t->bk, &t->wv, &t->bv, &t->wo, &t->bo,
                                   &t->ln1_w, &t->ln1_b, &t->w1, &t->b1, &t->w2, &t->b2, &t->ln2_w, &t->ln2_b};
    char p[96];
    snprintf(p, sizeof p, "%sencoder.layer.%d.", prefix, l);
    for (int i = 0; i < 16; i++) {
        const char sh = LAYER_SHAPES[i];
        const int64_t d0 = sh == 'U' || sh == 'u' ? c->FF : c->C, d1 = sh == 'D' ? c->FF : c->C;
        const int ndim = sh >= 'a' ? 1 : 2;
        ember_status st = find_tensor(mf, p, names[i], ndim, d0, ndim == 2 ? d1 : 0, slots[i]);
        if (st) return st;
    }
    return EMBER_OK;
}

static ember_status bind_tensors(model_files *mf) {
    const bert_config *c = &mf->cfg;
    const int mpnet = c->arch == ARCH_MPNET;
    /* BertModel / MPNetModel save without a prefix, BertFor* / MPNetFor* with "bert." / "mpnet." */
    const char *with = mpnet ? "mpnet." : "bert.";
    char probe[64];
    snprintf(probe, sizeof probe, "%sembeddings.word_embeddings.weight", with);
    const char *prefix = safetensors_find(&mf->st, probe) ? with : "";
    bert_tensors *w = &mf->tensors;
    ember_status st;
    if ((st = find_tensor(mf, prefix, "embeddings.word_embeddings.weight", 2, c->V, c->C, &w->word)) ||
        (st = find_tensor(mf, prefix, "embeddings.position_embeddings.weight", 2, c->P, c->C, &w->pos)) ||
        (!mpnet &&
         (st = find_tensor(mf, prefix, "embeddings.token_type_embeddings.weight", 2, c->TV, c->C, &w->type))) ||
        (mpnet &&
         (st = find_tensor(mf, prefix, "encoder.relative_attention_bias.weight", 2, c->NB, c->NH, &w->rel_bias))) ||
        (st = find_tensor(mf, prefix, "embeddings.LayerNorm.weight", 1, c->C, 0, &w->ln_w)) ||
        (st = find_tensor(mf, prefix, "embeddings.LayerNorm.bias", 1, c->C, 0, &w->ln_b)))
        return st;
    w->layers = calloc((size_t)c->L, sizeof *w->layers);
    if (!w->layers) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (int l = 0; l < c->L; l++)
        if ((st = bind_layer(mf, prefix, l, &w->layers[l]))) return st;
    /* A checkpoint with more layers than config.json says is a mismatch too. */
    char extra[128];
    snprintf(extra, sizeof extra, "%sencoder.layer.%d.%s", prefix, c->L, mpnet ? MPNET_LAYER[0] : BERT_LAYER[0]);
    if (safetensors_find(&mf->st, extra))
        return ember_fail(EMBER_ERR_FORMAT, "%s: has tensors for more than the %d layers config.json declares",
                          mf->st.path, c->L);
    return EMBER_OK;
}

/* NaN or Inf in a weight turns every vector it touches into NaN, silently:
 * one pass over the bound tensors at load (exponent bits all ones, read as
 * integers so the scan runs at memory speed), a warning per tensor. */
/* Elements of t whose exponent bits are all ones; *first: the first one's
 * index (-1: none). Counted branch-free in blocks (the loops vectorise), the
 * first looked for only in a block that has one. Little-endian host, as
 * st_tensor_to_f32 assumes. */
static int64_t count_non_finite(const st_tensor *t, int64_t *first) {
    enum { BLOCK = 4096 };
    const uint8_t *p = t->data;
    const int wide = t->dtype == ST_F32;
    const uint32_t mask = wide ? 0x7f800000u : t->dtype == ST_F16 ? 0x7c00u : 0x7f80u;
    int64_t n = 0;
    *first = -1;
    for (int64_t b = 0; b < t->numel; b += BLOCK) {
        const int64_t e = t->numel - b < BLOCK ? t->numel : b + BLOCK;
        int64_t c = 0;
        if (wide) {
            for (int64_t i = b; i < e; i++) {
                uint32_t u;
                memcpy(&u, p + 4 * i, 4);
                c += (u & mask) == mask;
            }
        } else {
            for (int64_t i = b; i < e; i++) {
                uint16_t u;
                memcpy(&u, p + 2 * i, 2);
                c += (u & mask) == mask;
            }
        }
        if (c && *first < 0)
            for (int64_t i = b; i < e && *first < 0; i++) {
                uint32_t u = 0;
                memcpy(&u, p + (wide ? 4 : 2) * i, wide ? 4 : 2);
                if ((u & mask) == mask) *first = i;
            }
        n += c;
    }
    return n;
}

static void warn_non_finite(const model_files *mf, const st_tensor *t) {
    if (!t) return; /* a tensor this architecture has not (MPNet: token types) */
    int64_t first;
    int64_t n = count_non_finite(t, &first);
    if (n > 0)
        ember_log(EMBER_LOG_WARN,
                  "%s: tensor '%s' holds %lld NaN/Inf value%s (the first at element %lld): vectors computed with it "
                  "will be NaN",
                  mf->st.path, t->name, (long long)n, n == 1 ? "" : "s", (long long)first);
}

static void scan_weights(const model_files *mf) {
    const bert_tensors *w = &mf->tensors;
    const st_tensor *emb[] = {w->word, w->pos, w->type, w->ln_w, w->ln_b, w->rel_bias};
    for (size_t i = 0; i < sizeof emb / sizeof emb[0]; i++) warn_non_finite(mf, emb[i]);
    for (int l = 0; l < mf->cfg.L; l++) {
        const bert_layer_tensors *t = &w->layers[l];
        const st_tensor *ts[] = {t->wq, t->bq,    t->wk, t->bk, t->wv, t->bv, t->wo, t->bo,
                                 t->ln1_w, t->ln1_b, t->w1, t->b1, t->w2, t->b2, t->ln2_w, t->ln2_b};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) warn_non_finite(mf, ts[i]);
    }
}

/* ---- sentence-transformers modules ---------------------------------------- */

static ember_status load_pooling(model_files *mf, const char *path) {
    json_t *root;
    ember_status st = json_file(path, &root);
    if (st) return st;
    static const struct {
        const char *key;
        ember_pooling mode;
    } modes[] = {{"pooling_mode_cls_token", EMBER_POOLING_CLS},
                 {"pooling_mode_mean_tokens", EMBER_POOLING_MEAN},
                 {"pooling_mode_max_tokens", EMBER_POOLING_MAX},
                 {"pooling_mode_mean_sqrt_len_tokens", EMBER_POOLING_MEAN_SQRT_LEN},
                 {"pooling_mode_weightedmean_tokens", EMBER_POOLING_DEFAULT},
                 {"pooling_mode_lasttoken", EMBER_POOLING_DEFAULT}};
    int n = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (!json_is_true(json_object_get(root, modes[i].key))) continue;
        if (modes[i].mode == EMBER_POOLING_DEFAULT) {
            st = ember_fail(EMBER_ERR_UNSUPPORTED, "%s: %s is not supported (cls, mean, max, mean_sqrt_len are)", path,
                            modes[i].key);
            goto done;
        }
        mf->pooling = modes[i].mode;
        n++;
    }
    if (n == 0) {
        /* newer sentence-transformers write "pooling_mode": "mean" */
        const char *pm = json_string_value(json_object_get(root, "pooling_mode"));
        if (pm && strcmp(pm, "cls") == 0) mf->pooling = EMBER_POOLING_CLS, n = 1;
        else if (pm && strcmp(pm, "mean") == 0) mf->pooling = EMBER_POOLING_MEAN, n = 1;
        else if (pm && strcmp(pm, "max") == 0) mf->pooling = EMBER_POOLING_MAX, n = 1;
        else if (pm && strcmp(pm, "mean_sqrt_len_tokens") == 0) mf->pooling = EMBER_POOLING_MEAN_SQRT_LEN, n = 1;
    }
    if (n != 1) {
        st = ember_fail(n ? EMBER_ERR_UNSUPPORTED : EMBER_ERR_FORMAT,
                        n ? "%s: several pooling modes at once are not supported" : "%s: no pooling mode is enabled",
                        path);
        goto done;
    }
    json_t *inc = json_object_get(root, "include_prompt");
    if (inc && !json_is_boolean(inc)) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: include_prompt must be true or false", path);
        goto done;
    }
    mf->include_prompt = !inc || json_is_true(inc);
    json_t *dim = json_object_get(root, "word_embedding_dimension");
    if (json_is_integer(dim) && json_integer_value(dim) != mf->cfg.C) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: word_embedding_dimension %lld does not match hidden_size %d", path,
                        (long long)json_integer_value(dim), mf->cfg.C);
        goto done;
    }
done:
    json_decref(root);
    return st;
}

/* The weights of a Dense module: `name` (ndim 1 or 2) of `f`, shape checked,
 * converted to a fresh fp32 array. */
static ember_status dense_tensor(const safetensors_file *f, const char *name, int ndim, int64_t d0, int64_t d1,
                                 float **out) {
    const st_tensor *t = safetensors_find(f, name);
    if (!t) return ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' is missing", f->path, name);
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char want[64];
        if (ndim == 2) snprintf(want, sizeof want, "%lld, %lld", (long long)d0, (long long)d1);
        else snprintf(want, sizeof want, "%lld", (long long)d0);
        return ember_fail(EMBER_ERR_FORMAT, "%s: tensor '%s' has wrong shape: got %d dimensions [%lld, ...], expected [%s]",
                          f->path, name, t->ndim, (long long)t->shape[0], want);
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return ember_fail(EMBER_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are supported",
                          f->path, name, st_dtype_name(t->dtype));
    if (!(*out = malloc((size_t)t->numel * sizeof **out))) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    return st_tensor_to_f32(t, *out);
}

/* A sentence-transformers Dense module in dir/sub: config.json
 * (in_features, out_features, bias, activation_function) and
 * model.safetensors (linear.weight, linear.bias), on vectors of width `in`. */
static ember_status load_dense(post_module *pm, const char *dir, const char *sub, int32_t in) {
    char path[4096], weights[4096];
    if (snprintf(path, sizeof path, "%s/%s/config.json", dir, sub) >= (int)sizeof path ||
        snprintf(weights, sizeof weights, "%s/%s/model.safetensors", dir, sub) >= (int)sizeof weights)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    json_t *root;
    ember_status st = json_file(path, &root);
    if (st) return st;
    pm->kind = POST_DENSE;
    snprintf(pm->name, sizeof pm->name, "%s", sub);
    int32_t has_bias = 1;
    json_t *b = json_object_get(root, "bias");
    if (b && !json_is_boolean(b)) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: 'bias' must be true or false", path);
        goto done;
    }
    if (b) has_bias = json_is_true(b);
    static const char *const io[] = {"module_input_name", "module_output_name"};
    for (int k = 0; k < 2; k++) {
        const char *v = json_string_value(json_object_get(root, io[k]));
        if (v && strcmp(v, "sentence_embedding") != 0) {
            st = ember_fail(EMBER_ERR_UNSUPPORTED, "%s: %s '%s' is not supported (ember runs Dense on the pooled "
                            "vector, 'sentence_embedding')", path, io[k], v);
            goto done;
        }
    }
    if ((st = get_int(root, path, "in_features", 1, 0, 1, 1 << 20, &pm->in)) ||
        (st = get_int(root, path, "out_features", 1, 0, 1, 1 << 20, &pm->out)))
        goto done;
    if (pm->in != in) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: in_features %d does not match the %d-dim vectors the modules before it give",
                        path, pm->in, in);
        goto done;
    }
    /* sentence-transformers' default is Tanh */
    const char *act = json_string_value(json_object_get(root, "activation_function"));
    const char *base = act ? strrchr(act, '.') : NULL;
    base = base ? base + 1 : act ? act : "Tanh";
    static const struct {
        const char *name;
        dense_activation act;
    } acts[] = {{"Identity", DENSE_IDENTITY}, {"Tanh", DENSE_TANH},       {"ReLU", DENSE_RELU},
                {"GELU", DENSE_GELU},         {"Sigmoid", DENSE_SIGMOID}};
    size_t k = 0;
    while (k < sizeof acts / sizeof *acts && strcmp(acts[k].name, base) != 0) k++;
    if (k == sizeof acts / sizeof *acts) {
        st = ember_fail(EMBER_ERR_UNSUPPORTED,
                        "%s: activation_function '%s' is not supported (torch.nn Identity, Tanh, ReLU, GELU, Sigmoid)",
                        path, act);
        goto done;
    }
    pm->act = acts[k].act;
    if (!file_exists(weights)) {
        char bin[4096];
        snprintf(bin, sizeof bin, "%s/%s/pytorch_model.bin", dir, sub);
        st = file_exists(bin) ? ember_fail(EMBER_ERR_UNSUPPORTED,
                                           "%s: the Dense module's weights are in pytorch_model.bin, which ember does not "
                                           "read: save them as model.safetensors (sentence-transformers >= 2.3 does)",
                                           bin)
                              : ember_fail(EMBER_ERR_IO, "%s: no such file (the Dense module's weights)", weights);
        goto done;
    }
    safetensors_file f;
    if ((st = safetensors_open(&f, weights))) goto done;
    if (!(st = dense_tensor(&f, "linear.weight", 2, pm->out, pm->in, &pm->w)) && has_bias)
        st = dense_tensor(&f, "linear.bias", 1, pm->out, 0, &pm->b);
    safetensors_close(&f);
done:
    if (st) {
        free(pm->w);
        free(pm->b);
        pm->w = pm->b = NULL;
    }
    json_decref(root);
    return st;
}

static void describe_modules(model_files *mf, int have_pooling) {
    static const char *const act_names[] = {"Identity", "Tanh", "ReLU", "GELU", "Sigmoid"};
    size_t n = 0, cap = sizeof mf->modules;
    mf->modules[0] = '\0';
    if (have_pooling) n += (size_t)snprintf(mf->modules, cap, "Pooling(%s)", ember_pooling_str(mf->pooling));
    for (int32_t i = 0; i < mf->n_post + mf->normalize && n < cap; i++) {
        const post_module *pm = i < mf->n_post ? &mf->post[i] : NULL;
        const char *sep = n ? " " : "";
        if (pm && pm->kind == POST_DENSE)
            n += (size_t)snprintf(mf->modules + n, cap - n, "%sDense(%d->%d, %s%s)", sep, pm->in, pm->out,
                                  act_names[pm->act], pm->b ? "" : ", no bias");
        else
            n += (size_t)snprintf(mf->modules + n, cap - n, "%sNormalize", sep);
    }
}

/*
 * modules.json: what ember runs is Transformer, then Pooling (CLS when there
 * is none), then Dense and Normalize modules in any order (and Dropout, the
 * identity at inference). Any other module, or these in another order, is
 * an error naming it: nothing is skipped.
 */
static ember_status load_modules(model_files *mf, const char *dir) {
    char path[4096];
    json_t *mods;
    if (!path_join(path, sizeof path, dir, "modules.json"))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    ember_status st = json_file(path, &mods);
    if (st) return st;
    if (!json_is_array(mods)) {
        json_decref(mods);
        return ember_fail(EMBER_ERR_FORMAT, "%s: not a JSON list", path);
    }
    if (!(mf->post = calloc(json_array_size(mods) + 1, sizeof *mf->post))) {
        json_decref(mods);
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    size_t i;
    json_t *m;
    int have_transformer = 0, have_pooling = 0;
    int32_t width = mf->cfg.C;
    json_array_foreach(mods, i, m) {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *sub = json_string_value(json_object_get(m, "path"));
        if (!type) {
            st = ember_fail(EMBER_ERR_FORMAT, "%s: module %zu has no type", path, i);
            break;
        }
        const char *base = strrchr(type, '.');
        base = base ? base + 1 : type;
        const char *misplaced = NULL;
        if (strcmp(base, "Transformer") == 0) {
            if (i != 0) misplaced = "ember runs the Transformer first, once";
            have_transformer = 1;
        } else if (strcmp(base, "Pooling") == 0) {
            if (have_pooling || mf->n_post > 0) misplaced = "ember runs one Pooling, right after the Transformer";
            char pp[4096];
            if (snprintf(pp, sizeof pp, "%s/%s/config.json", dir, sub ? sub : "1_Pooling") >= (int)sizeof pp) {
                st = ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
                break;
            }
            if (!misplaced && (st = load_pooling(mf, pp))) break;
            have_pooling = 1;
        } else if (strcmp(base, "Dense") == 0) {
            if (!have_pooling) misplaced = "a Dense module acts on the pooled vector: it must come after Pooling";
            else if (!sub || !*sub) st = ember_fail(EMBER_ERR_FORMAT, "%s: the Dense module %zu has no path", path, i);
            else if (!(st = load_dense(&mf->post[mf->n_post], dir, sub, width))) width = mf->post[mf->n_post++].out;
            if (st) break;
        } else if (strcmp(base, "Dropout") == 0) {
            if (!have_transformer) misplaced = "ember runs the Transformer first, once";
            /* the identity at inference, where sentence-transformers puts it */
        } else if (strcmp(base, "Normalize") == 0) {
            post_module *pm = &mf->post[mf->n_post++];
            pm->kind = POST_NORMALIZE;
            pm->in = pm->out = width;
            snprintf(pm->name, sizeof pm->name, "%s", sub ? sub : "Normalize");
        } else {
            st = ember_fail(EMBER_ERR_UNSUPPORTED,
                            "%s: sentence-transformers module '%s' is not supported (ember runs Transformer, Pooling, "
                            "Dense, Normalize, Dropout)",
                            path, type);
            break;
        }
        if (misplaced) {
            st = ember_fail(EMBER_ERR_UNSUPPORTED, "%s: module %zu '%s' cannot run where it is: %s", path, i, type,
                            misplaced);
            break;
        }
    }
    json_decref(mods);
    if (st) return st;
    if (!have_transformer) return ember_fail(EMBER_ERR_FORMAT, "%s: no Transformer module", path);
    if (!have_pooling) mf->pooling = EMBER_POOLING_CLS;
    /* a Normalize that ends the list is the model's `normalize` (callers may turn it off) */
    if (mf->n_post > 0 && mf->post[mf->n_post - 1].kind == POST_NORMALIZE) {
        mf->n_post--;
        mf->normalize = 1;
    }
    mf->out_dim = width;
    describe_modules(mf, have_pooling);

    if (!path_join(path, sizeof path, dir, "sentence_bert_config.json")) return EMBER_OK;
    if (!file_exists(path)) return EMBER_OK;
    json_t *sb;
    if ((st = json_file(path, &sb))) return st;
    json_t *v = json_object_get(sb, "max_seq_length");
    if (json_is_integer(v) && json_integer_value(v) > 0) mf->max_seq_length = (int32_t)json_integer_value(v);
    else if (v && !json_is_null(v))
        st = ember_fail(EMBER_ERR_FORMAT, "%s: max_seq_length must be a positive integer", path);
    mf->lowercase_input = json_is_true(json_object_get(sb, "do_lower_case"));
    json_decref(sb);
    return st;
}

/*
 * BertForSequenceClassification (config.json's architectures[0]): BERT's
 * pooler (Dense C->C, tanh, on [CLS]) then the classifier (Linear C->n_labels),
 * run as two modules after CLS pooling, so that the pooled vector is the
 * logits. n_labels is len(id2label) (transformers writes no num_labels).
 * Returns EMBER_OK with mf->n_labels 0 for any other architecture.
 */
static ember_status load_classifier(model_files *mf, const char *config_path) {
    json_t *root;
    ember_status st = json_file(config_path, &root);
    if (st) return st;
    const char *arch = json_string_value(json_array_get(json_object_get(root, "architectures"), 0));
    if (!arch || strcmp(arch, "BertForSequenceClassification") != 0 || mf->cfg.arch != ARCH_BERT) goto done;
    json_t *id2label = json_object_get(root, "id2label");
    int32_t n = 2; /* transformers' default */
    if (json_is_object(id2label) && json_object_size(id2label) > 0) n = (int32_t)json_object_size(id2label);
    else if ((st = get_int(root, config_path, "num_labels", 0, 2, 1, 1 << 16, &n))) goto done;
    const char *pt = json_string_value(json_object_get(root, "problem_type"));
    if (pt && strcmp(pt, "single_label_classification") != 0 && strcmp(pt, "regression") != 0 &&
        strcmp(pt, "multi_label_classification") != 0) {
        st = ember_fail(EMBER_ERR_UNSUPPORTED, "%s: problem_type '%s' is not supported", config_path, pt);
        goto done;
    }
    const int32_t C = mf->cfg.C;
    if (!(mf->labels = calloc((size_t)n, sizeof *mf->labels)) || !(mf->post = calloc(2, sizeof *mf->post))) {
        st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    mf->n_labels = n;
    for (int32_t i = 0; i < n; i++) {
        char key[16], dflt[32];
        snprintf(key, sizeof key, "%d", i);
        snprintf(dflt, sizeof dflt, "LABEL_%d", i);
        const char *name = json_string_value(json_object_get(id2label, key));
        if (!(mf->labels[i] = strdup(name ? name : dflt))) {
            st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
    }
    const char *prefix = safetensors_find(&mf->st, "bert.pooler.dense.weight") ? "bert." : "";
    char w[64], b[64];
    snprintf(w, sizeof w, "%spooler.dense.weight", prefix);
    snprintf(b, sizeof b, "%spooler.dense.bias", prefix);
    post_module *pool = &mf->post[0], *cls = &mf->post[1];
    *pool = (post_module){.kind = POST_DENSE, .name = "pooler", .in = C, .out = C, .act = DENSE_TANH};
    *cls = (post_module){.kind = POST_DENSE, .name = "classifier", .in = C, .out = n, .act = DENSE_IDENTITY};
    mf->n_post = 2; /* freed by model_files_close whatever loads */
    if ((st = dense_tensor(&mf->st, w, 2, C, C, &pool->w)) || (st = dense_tensor(&mf->st, b, 1, C, 0, &pool->b)) ||
        (st = dense_tensor(&mf->st, "classifier.weight", 2, n, C, &cls->w)) ||
        (st = dense_tensor(&mf->st, "classifier.bias", 1, n, 0, &cls->b)))
        goto done;
    mf->pooling = EMBER_POOLING_CLS;
    mf->normalize = 0;
    mf->out_dim = n;
    snprintf(mf->modules, sizeof mf->modules, "Pooler(cls, Dense(%d->%d, Tanh)) Classifier(%d->%d)", C, C, C, n);
done:
    json_decref(root);
    return st;
}

/* config_sentence_transformers.json's prompts and default_prompt_name. */
static ember_status load_prompts(model_files *mf, const char *path) {
    json_t *root;
    ember_status st = json_file(path, &root);
    if (st) return st;
    json_t *prompts = json_object_get(root, "prompts"), *def = json_object_get(root, "default_prompt_name");
    if (prompts && !json_is_null(prompts) && !json_is_object(prompts)) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: prompts must be an object of name: text", path);
        goto done;
    }
    size_t n = json_is_object(prompts) ? json_object_size(prompts) : 0;
    if (n && (!(mf->prompt_names = calloc(n, sizeof *mf->prompt_names)) ||
              !(mf->prompt_texts = calloc(n, sizeof *mf->prompt_texts)))) {
        st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    const char *key;
    json_t *v;
    size_t used = 0;
    json_object_foreach(prompts, key, v) {
        if (!json_is_string(v)) {
            st = ember_fail(EMBER_ERR_FORMAT, "%s: prompt '%s' is not a string", path, key);
            goto done;
        }
        int32_t i = mf->n_prompts;
        if (!(mf->prompt_names[i] = strdup(key)) || !(mf->prompt_texts[i] = strdup(json_string_value(v)))) {
            free(mf->prompt_names[i]);
            st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        mf->n_prompts++;
        int k = snprintf(mf->prompt_list + used, sizeof mf->prompt_list - used, "%s%s", i ? ", " : "", key);
        if (k > 0 && used + (size_t)k < sizeof mf->prompt_list) used += (size_t)k;
    }
    if (def && !json_is_null(def)) {
        const char *name = json_string_value(def);
        if (!name) st = ember_fail(EMBER_ERR_FORMAT, "%s: default_prompt_name must be a string or null", path);
        else if (!model_files_prompt(mf, name))
            st = ember_fail(EMBER_ERR_FORMAT, "%s: default_prompt_name '%s' is not among the prompts (%s)", path,
                            name, mf->n_prompts ? mf->prompt_list : "none");
        else if (!(mf->default_prompt_name = strdup(name)))
            st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
done:
    json_decref(root);
    return st;
}

const char *model_files_prompt(const model_files *mf, const char *name) {
    for (int32_t i = 0; name && i < mf->n_prompts; i++)
        if (strcmp(mf->prompt_names[i], name) == 0) return mf->prompt_texts[i];
    return NULL;
}

ember_status model_files_open(model_files *mf, const char *dir) {
    memset(mf, 0, sizeof *mf);
    char path[4096];
    if (!dir || !*dir) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "no model directory given");
    if (snprintf(mf->dir, sizeof mf->dir, "%s", dir) >= (int)sizeof mf->dir)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    if (!file_exists(dir))
        return ember_fail(EMBER_ERR_IO, "%s: model directory not found (fetch one with weights/fetch.sh)", dir);
    path_join(path, sizeof path, dir, "config.json");
    ember_status st = bert_config_load(&mf->cfg, path);
    if (st) return st;
    path_join(path, sizeof path, dir, "model.safetensors");
    if (!file_exists(path)) {
        char bin[4096];
        path_join(bin, sizeof bin, dir, "pytorch_model.bin");
        return ember_fail(EMBER_ERR_IO, "%s: no model.safetensors%s", dir,
                          file_exists(bin) ? " (pytorch_model.bin is not read: save the model as safetensors)" : "");
    }
    if ((st = safetensors_open(&mf->st, path))) return st;
    if ((st = bind_tensors(mf))) goto fail;
    const double t0 = clock_now();
    scan_weights(mf);
    ember_log(EMBER_LOG_DEBUG, "%s: weights checked for NaN/Inf in %.1f ms", mf->st.path, 1e3 * (clock_now() - t0));
    mf->pooling = EMBER_POOLING_CLS; /* a plain BERT: the [CLS] hidden state */
    mf->normalize = 0;
    mf->out_dim = mf->cfg.C;
    mf->include_prompt = 1;
    path_join(path, sizeof path, dir, "config.json");
    if ((st = load_classifier(mf, path))) goto fail;
    if (mf->n_labels) return EMBER_OK; /* a cross-encoder: sentence-transformers' modules do not apply */
    path_join(path, sizeof path, dir, "modules.json");
    if (file_exists(path) && (st = load_modules(mf, dir))) goto fail;
    path_join(path, sizeof path, dir, "config_sentence_transformers.json");
    if (file_exists(path) && (st = load_prompts(mf, path))) goto fail;
    return EMBER_OK;
fail:
    model_files_close(mf);
    return st;
}

void model_files_close(model_files *mf) {
    for (int32_t i = 0; mf->post && i < mf->n_post; i++) {
        free(mf->post[i].w);
        free(mf->post[i].b);
    }
    free(mf->post);
    mf->post = NULL;
    mf->n_post = 0;
    for (int32_t i = 0; mf->labels && i < mf->n_labels; i++) free(mf->labels[i]);
    free(mf->labels);
    mf->labels = NULL;
    mf->n_labels = 0;
    for (int32_t i = 0; i < mf->n_prompts; i++) {
        free(mf->prompt_names[i]);
        free(mf->prompt_texts[i]);
    }
    free(mf->prompt_names);
    free(mf->prompt_texts);
    free(mf->default_prompt_name);
    mf->prompt_names = mf->prompt_texts = NULL;
    mf->default_prompt_name = NULL;
    mf->n_prompts = 0;
    free(mf->tensors.layers);
    mf->tensors.layers = NULL;
    safetensors_close(&mf->st);
}
