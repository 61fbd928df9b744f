/* The public API (include/ember.h) over the model files, the tokenizer and
 * the backends. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu_ops.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/quantize.h"
#include "ember_internal.h"
#include "model/hub.h"

ember_model_params ember_model_default_params(void) {
    ember_model_params p;
    memset(&p, 0, sizeof p);
    p.device = EMBER_DEVICE_CPU;
    p.dtype = EMBER_DTYPE_FP32;
    return p;
}

ember_tokenize_params ember_tokenize_default_params(void) {
    ember_tokenize_params p;
    memset(&p, 0, sizeof p);
    p.add_special_tokens = 1;
    p.truncate = 1;
    return p;
}

ember_score_params ember_score_default_params(void) {
    ember_score_params p;
    memset(&p, 0, sizeof p);
    p.truncate = 1;
    return p;
}

ember_encode_params ember_encode_default_params(void) {
    ember_encode_params p;
    memset(&p, 0, sizeof p);
    p.truncate = 1;
    return p;
}

int32_t ember_cuda_device_count(void) { return cuda_device_count(); }

static const char *base_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    const char *end = dir + n, *p = end;
    while (p > dir && p[-1] != '/') p--;
    static _Thread_local char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)(end - p), p);
    return buf;
}

ember_status ember_model_load(const char *dir, const ember_model_params *params, ember_model **out) {
    if (!out) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_model_load: out is NULL");
    *out = NULL;
    ember_model_params p = params ? *params : ember_model_default_params();
    if (p.n_threads < 0 || p.max_batch_tokens < 0 || p.max_length < 0 || p.device_index < 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_model_load: negative parameter");
    if (p.device != EMBER_DEVICE_CPU && p.device != EMBER_DEVICE_CUDA && p.device != EMBER_DEVICE_AUTO)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_model_load: unknown device %d", (int)p.device);
    if (p.dtype != EMBER_DTYPE_FP32 && p.dtype != EMBER_DTYPE_FP16 && p.dtype != EMBER_DTYPE_BF16)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_model_load: unknown dtype %d", (int)p.dtype);
    /* Not a path but a model id ("org/name"): the Hugging Face cache, then the hub. */
    char hub_dir[4096], hub_id[256] = "";
    if (dir && !file_exists(dir) && hub_is_id(dir)) {
        ember_status hs = hub_locate(dir, p.revision, HUB_CACHE_THEN_PULL, NULL, NULL, hub_dir, sizeof hub_dir, hub_id,
                                     sizeof hub_id);
        if (hs) return hs;
        dir = hub_dir;
    }
    ember_model *m = calloc(1, sizeof *m);
    if (!m) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = model_files_open(&m->files, dir);
    if (st) {
        free(m);
        return st;
    }
    if ((st = tokenizer_load_dir(&m->tok, dir))) goto fail;
    m->tok.lowercase_input = m->files.lowercase_input;
    snprintf(m->name, sizeof m->name, "%s", hub_id[0] ? hub_id : base_name(dir));
    const bert_config *c = &m->files.cfg;
    if (m->tok.n_ids > c->V) {
        st = ember_fail(EMBER_ERR_FORMAT, "%s: the tokenizer has %d ids but the model's vocab_size is %d", dir,
                        m->tok.n_ids, c->V);
        goto fail;
    }
    /* sentence-transformers' max_seq_length, else the tokenizer's
     * model_max_length, never more than the position embeddings hold. */
    int32_t maxlen = c->max_len;
    if (m->files.max_seq_length > 0 && m->files.max_seq_length < maxlen) maxlen = m->files.max_seq_length;
    else if (m->files.max_seq_length <= 0 && m->tok.model_max_length > 0 && m->tok.model_max_length < maxlen)
        maxlen = m->tok.model_max_length;
    if (p.max_length > 0 && p.max_length < maxlen) maxlen = p.max_length;
    if (maxlen < tokenizer_n_special(&m->tok, 0) + 1) {
        st = ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: max_length %d leaves no room for text", dir, maxlen);
        goto fail;
    }
    m->max_length = maxlen;

    int32_t max_tokens = p.max_batch_tokens;
    int want_cuda = p.device == EMBER_DEVICE_CUDA || (p.device == EMBER_DEVICE_AUTO && cuda_device_count() > 0);
    if (max_tokens == 0) max_tokens = want_cuda ? 32768 : 4096;
    if (max_tokens < maxlen) max_tokens = maxlen;
    if (want_cuda) {
        m->be = cuda_backend_create(c, &m->files.tensors, p.device_index, p.dtype, max_tokens, &p.tuning, &st);
        if (!m->be) goto fail;
    } else {
        if (p.device == EMBER_DEVICE_AUTO)
            ember_log(EMBER_LOG_INFO, "no CUDA device%s: running on the CPU",
                      cuda_device_count() < 0 ? " (CUDA not compiled in)" : "");
        if (p.dtype != EMBER_DTYPE_FP32 && p.device == EMBER_DEVICE_CPU) {
            st = ember_fail(EMBER_ERR_UNSUPPORTED, "the CPU backend computes in fp32 only (asked for %s)",
                            ember_dtype_str(p.dtype));
            goto fail;
        }
        m->be = cpu_backend_create(c, &m->files.tensors, p.n_threads, max_tokens, p.tuning.cpu_kernels, &st);
        if (!m->be) goto fail;
    }
    /* the backend holds its own copy of the weights now */
    safetensors_close(&m->files.st);
    free(m->files.tensors.layers);
    m->files.tensors.layers = NULL;
    m->max_tokens = m->be->max_tokens;
    size_t T = (size_t)m->max_tokens;
    m->ids = malloc(T * sizeof *m->ids);
    m->type_ids = malloc(T * sizeof *m->type_ids);
    m->pos = malloc(T * sizeof *m->pos);
    m->cu_seqlens = malloc((T + 1) * sizeof *m->cu_seqlens);
    m->seq_tokens = malloc(T * sizeof *m->seq_tokens);
    m->pool_skip = calloc(T, sizeof *m->pool_skip);
    if (!m->pool_skip || !m->ids || !m->type_ids || !m->pos || !m->cu_seqlens || !m->seq_tokens) {
        st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->lock_ready = 1;
    ember_log(EMBER_LOG_INFO, "loaded %s: %d layers, hidden %d, %d heads, max_length %d, on %s", m->name, c->L, c->C,
              c->NH, m->max_length, m->be->name);
    *out = m;
    return EMBER_OK;
fail:
    ember_model_free(m);
    return st;
}

void ember_model_free(ember_model *m) {
    if (!m) return;
    if (m->be) m->be->destroy(m->be);
    model_files_close(&m->files);
    tokenizer_free(&m->tok);
    tokenizer_scratch_free(&m->scratch);
    piece_list_free(&m->pieces_a);
    piece_list_free(&m->pieces_b);
    free(m->ids);
    free(m->type_ids);
    free(m->pos);
    free(m->cu_seqlens);
    free(m->seq_tokens);
    free(m->pool_skip);
    free(m->post_buf);
    free(m->pool_hidden);
    free(m->prompt_buf);
    if (m->lock_ready) pthread_mutex_destroy(&m->lock);
    free(m);
}

const char *ember_supported_architectures(void) { return MODEL_ARCHITECTURES; }

ember_status ember_model_get_info(const ember_model *m, ember_model_info *info) {
    if (!m || !info) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_model_get_info: NULL argument");
    memset(info, 0, sizeof *info);
    const bert_config *c = &m->files.cfg;
    info->name = m->name;
    info->dir = m->files.dir;
    info->architecture = architecture_name(c->arch);
    info->dim = m->files.out_dim;
    info->n_layers = c->L;
    info->n_heads = c->NH;
    info->intermediate_size = c->FF;
    info->vocab_size = c->V;
    info->max_length = m->max_length;
    info->max_batch_tokens = m->max_tokens;
    info->pooling = m->files.pooling;
    info->normalize = m->files.normalize;
    info->lowercase = m->tok.lowercase;
    info->device = m->be->device;
    info->device_index = m->be->device_index;
    info->dtype = m->be->dtype;
    snprintf(info->device_name, sizeof info->device_name, "%s", m->be->name);
    /* a Dense module's product is OpenBLAS's, whose rounding may depend on the batch */
    info->batch_invariant = m->be->batch_invariant && m->files.n_post == 0;
    info->hidden_size = c->C;
    info->modules = m->files.modules;
    info->num_labels = m->files.n_labels;
    info->labels = (const char *const *)m->files.labels;
    info->prompts = m->files.prompt_list;
    info->default_prompt_name = m->files.default_prompt_name;
    info->include_prompt = m->files.include_prompt;
    return EMBER_OK;
}

const char *ember_token_text(const ember_model *m, int32_t id) {
    if (!m || id < 0 || id >= m->tok.n_ids) return NULL;
    return m->tok.id_text[id];
}

/* ---- tokenization ---------------------------------------------------------- */

static size_t text_len(const char *s, ptrdiff_t len) { return len < 0 ? strlen(s) : (size_t)len; }

ember_status model_tokenize(const ember_model *m, tokenizer_scratch *scratch, piece_list *a, piece_list *b,
                            const char *text, size_t len, const char *pair, size_t pair_len, int add_special,
                            int truncate, int truncate_left, int32_t max_length, ember_token *out, int32_t capacity,
                            int32_t *n_out, ember_text_stats *stats) {
    return tokenizer_tokenize(&m->tok, scratch, a, b, text, len, pair, pair_len, add_special, truncate,
                              truncate_left, max_length > 0 ? max_length : m->max_length, out, capacity, n_out, stats);
}

/* prompt + text, joined into *buf (grown as needed), as sentence-transformers
 * joins the strings before tokenizing: *text and *len then point at it. */
static ember_status join_prompt(char **buf, size_t *cap, const char *prompt, const char **text, size_t *len) {
    size_t plen = prompt ? strlen(prompt) : 0;
    if (!plen) return EMBER_OK;
    if (plen + *len > *cap) {
        char *nb = realloc(*buf, plen + *len);
        if (!nb) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for a text and its prompt");
        *buf = nb;
        *cap = plen + *len;
    }
    memmove(*buf + plen, *text, *len);
    memcpy(*buf, prompt, plen);
    *text = *buf;
    *len += plen;
    return EMBER_OK;
}

/* ember_tokenize's working memory, one per thread (concurrent calls share
 * no state), kept across calls and freed when the thread ends. */
typedef struct {
    tokenizer_scratch scratch;
    piece_list a, b;
    char *joined; /* prompt + text */
    size_t joined_cap;
} tokenize_state;

static pthread_key_t tokenize_key;
static pthread_once_t tokenize_once = PTHREAD_ONCE_INIT;

static void tokenize_state_free(void *p) {
    tokenize_state *t = p;
    tokenizer_scratch_free(&t->scratch);
    piece_list_free(&t->a);
    piece_list_free(&t->b);
    free(t->joined);
    free(t);
}

static void tokenize_key_init(void) { pthread_key_create(&tokenize_key, tokenize_state_free); }

static tokenize_state *thread_tokenize_state(void) {
    pthread_once(&tokenize_once, tokenize_key_init);
    tokenize_state *t = pthread_getspecific(tokenize_key);
    if (!t && (t = calloc(1, sizeof *t)) && pthread_setspecific(tokenize_key, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

ember_status ember_tokenize(const ember_model *m, const char *text, ptrdiff_t len, const char *pair,
                            ptrdiff_t pair_len, const ember_tokenize_params *params, ember_token *tokens,
                            int32_t capacity, int32_t *n_tokens, ember_text_stats *stats) {
    if (!m || !text || !n_tokens || (capacity > 0 && !tokens) || capacity < 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_tokenize: NULL or negative argument");
    ember_tokenize_params p = params ? *params : ember_tokenize_default_params();
    tokenize_state *ts = thread_tokenize_state();
    if (!ts) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "ember_tokenize: out of memory");
    size_t tlen = text_len(text, len);
    ember_status st = join_prompt(&ts->joined, &ts->joined_cap, p.prompt, &text, &tlen);
    if (st) return st;
    st = model_tokenize(m, &ts->scratch, &ts->a, &ts->b, text, tlen, pair, pair ? text_len(pair, pair_len) : 0,
                        p.add_special_tokens, p.truncate, p.truncate_left, p.max_length, tokens, capacity, n_tokens,
                        stats);
    if (st == EMBER_OK && p.pad_to > *n_tokens) {
        int32_t need = p.pad_to;
        if (need > capacity) {
            *n_tokens = need;
            st = EMBER_ERR_BUFFER_TOO_SMALL;
        } else {
            for (int32_t i = *n_tokens; i < need; i++) tokens[i] = (ember_token){m->tok.pad_id, 0, 0, 1, 0, 0};
            *n_tokens = need;
        }
    }
    if (st == EMBER_ERR_BUFFER_TOO_SMALL)
        ember_fail(st, "ember_tokenize: %d tokens needed, buffer holds %d", *n_tokens, capacity);
    return st;
}

/* ---- encoding ---------------------------------------------------------------- */

float ember_cosine(const float *a, const float *b, int32_t dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int32_t i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa == 0 || bb == 0) return 0;
    return (float)(ab / (sqrt(aa) * sqrt(bb)));
}

static void batch_reset(ember_model *m) {
    m->batch_T = m->batch_S = m->max_seqlen = m->batch_skips = 0;
    m->cu_seqlens[0] = 0;
}

/* Append one sequence to the model's batch buffers (it must fit). */
static void batch_append(ember_model *m, const int32_t *ids, const int32_t *type_ids, const ember_token *tokens,
                         int32_t cnt, int32_t pool_skip) {
    int32_t T = m->batch_T;
    m->pool_skip[m->batch_S] = pool_skip;
    if (pool_skip > 0) m->batch_skips = 1;
    for (int32_t k = 0; k < cnt; k++) {
        m->ids[T + k] = tokens ? tokens[k].id : ids[k];
        m->type_ids[T + k] = tokens ? tokens[k].type_id : type_ids ? type_ids[k] : 0;
    }
    model_position_ids(&m->files.cfg, m->ids + T, cnt, m->pos + T);
    m->batch_T = T + cnt;
    m->cu_seqlens[++m->batch_S] = m->batch_T;
    if (cnt > m->max_seqlen) m->max_seqlen = cnt;
}

/*
 * Tokenize texts [first, n) into the model's batch buffers until the token
 * budget is full; *taken is how many texts went in (>= 1 unless an error).
 */
static ember_status fill_batch(ember_model *m, const char *const *texts, const ptrdiff_t *lens, int32_t first,
                               int32_t n, const ember_encode_params *p, const char *prompt, int32_t pool_skip,
                               ember_text_stats *stats, int32_t *taken) {
    batch_reset(m);
    for (int32_t i = first; i < n; i++) {
        if (!texts[i]) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "text %d is NULL", i);
        int32_t cnt;
        ember_text_stats ts;
        const char *text = texts[i];
        size_t len = text_len(texts[i], lens ? lens[i] : -1);
        ember_status st = join_prompt(&m->prompt_buf, &m->prompt_cap, prompt, &text, &len);
        if (st) return st;
        st = model_tokenize(m, &m->scratch, &m->pieces_a, &m->pieces_b, text, len, NULL, 0, 1, 1, p->truncate_left,
                            m->max_length, m->seq_tokens, m->max_tokens, &cnt, &ts);
        if (st) return st;
        if (!p->truncate && ts.truncated)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                              "text %d is %d tokens long, over the model's maximum of %d (truncation is off)", i,
                              ts.n_tokens_untruncated, m->max_length);
        if (m->batch_T + cnt > m->max_tokens) break; /* the text is tokenized again in the next batch */
        batch_append(m, NULL, NULL, m->seq_tokens, cnt, pool_skip);
        if (stats) stats[i] = ts;
    }
    *taken = m->batch_S;
    return EMBER_OK;
}

static packed_batch current_batch(const ember_model *m) {
    return (packed_batch){m->batch_S, m->batch_T, m->ids, m->type_ids, m->pos, m->cu_seqlens, m->max_seqlen};
}

/*
 * The hidden states (into `hidden`, or the model's own buffer when NULL),
 * then pooled on the host leaving out each sequence's first m->pool_skip
 * tokens: what sentence-transformers' Pooling does with include_prompt false
 * (it zeroes them in the attention mask). A sequence with no token left pools
 * to zeros (its mean divides by the clamped 1e-9).
 */
static ember_status forward_skipping(ember_model *m, const packed_batch *b, float *hidden, float *pooled,
                                     ember_pooling pooling, int normalize) {
    const int32_t C = m->files.cfg.C;
    if (!hidden && !m->pool_hidden &&
        !(m->pool_hidden = malloc((size_t)m->max_tokens * C * sizeof *m->pool_hidden)))
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for %d hidden states", m->max_tokens);
    const float *h = hidden ? hidden : m->pool_hidden;
    ember_status st = m->be->forward(m->be, b, hidden ? hidden : m->pool_hidden, NULL, EMBER_POOLING_CLS, 0);
    if (st) return st;
    for (int32_t s = 0; s < b->S; s++) {
        int32_t start = b->cu_seqlens[s] + m->pool_skip[s], n = b->cu_seqlens[s + 1] - start;
        if (n <= 0) {
            memset(pooled + (size_t)s * C, 0, (size_t)C * sizeof *pooled);
            continue;
        }
        const int32_t cu[2] = {0, n};
        pool_cpu(pooled + (size_t)s * C, h + (size_t)start * C, cu, 1, C, pooling, normalize, cpu_kernels_best());
    }
    return EMBER_OK;
}

/*
 * One forward pass of the packed batch. Pooled vectors then go through the
 * modules after pooling (sentence-transformers' Dense and Normalize), here on
 * the host whichever the backend, so that the CPU and CUDA paths share them;
 * `normalize` is the final L2 normalisation.
 */
static ember_status run_forward(ember_model *m, const packed_batch *b, float *hidden, float *pooled,
                                ember_pooling pooling, int normalize) {
    const model_files *mf = &m->files;
    const int skips = m->batch_skips && pooled;
    if (skips && mf->n_post == 0) return forward_skipping(m, b, hidden, pooled, pooling, normalize);
    if (!pooled || mf->n_post == 0) return m->be->forward(m->be, b, hidden, pooled, pooling, normalize);
    int32_t widest = mf->cfg.C;
    for (int32_t i = 0; i < mf->n_post; i++)
        if (mf->post[i].out > widest) widest = mf->post[i].out;
    const size_t half = (size_t)b->S * (size_t)widest;
    if (2 * half > m->post_cap) {
        float *nb = realloc(m->post_buf, 2 * half * sizeof *nb);
        if (!nb) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for %d pooled vectors", b->S);
        m->post_buf = nb;
        m->post_cap = 2 * half;
    }
    float *cur = m->post_buf, *next = m->post_buf + half;
    ember_status st =
        skips ? forward_skipping(m, b, hidden, cur, pooling, 0) : m->be->forward(m->be, b, hidden, cur, pooling, 0);
    if (st) return st;
    int32_t width = mf->cfg.C;
    for (int32_t i = 0; i < mf->n_post; i++) {
        const post_module *pm = &mf->post[i];
        if (pm->kind == POST_DENSE) {
            dense_cpu(next, cur, pm->w, pm->b, pm->act, b->S, pm->in, pm->out, cpu_kernels_best());
            float *t = cur;
            cur = next;
            next = t;
            width = pm->out;
        } else {
            for (int32_t s = 0; s < b->S; s++) vec_truncate(cur + (size_t)s * width, cur + (size_t)s * width, width, 1);
        }
    }
    for (int32_t s = 0; s < b->S; s++)
        vec_truncate(pooled + (size_t)s * width, cur + (size_t)s * width, width, normalize);
    return EMBER_OK;
}

static void resolve_output(const ember_model *m, const ember_encode_params *p, ember_pooling *pooling,
                           int *normalize) {
    *pooling = p->pooling == EMBER_POOLING_DEFAULT ? m->files.pooling : p->pooling;
    *normalize = p->normalize == EMBER_NORMALIZE_DEFAULT ? m->files.normalize : p->normalize == EMBER_NORMALIZE_ON;
}

static ember_status check_encode_args(const ember_model *m, const char *const *texts, int32_t n,
                                      const ember_encode_params *p) {
    if (!m || (n > 0 && !texts) || n < 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_encode: NULL or negative argument");
    if (p->pooling < EMBER_POOLING_DEFAULT || p->pooling > EMBER_POOLING_MEAN_SQRT_LEN)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_encode: unknown pooling %d", (int)p->pooling);
    if (p->normalize < EMBER_NORMALIZE_DEFAULT || p->normalize > EMBER_NORMALIZE_OFF)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_encode: unknown normalize %d", (int)p->normalize);
    return EMBER_OK;
}

ember_status ember_resolve_prompt(const ember_model *m, const char *prompt_name, const char *prompt,
                                  const char **text, int32_t *pool_skip) {
    if (!m || !text) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_resolve_prompt: NULL argument");
    const model_files *mf = &m->files;
    *text = "";
    if (pool_skip) *pool_skip = 0;
    const char *name = prompt ? NULL : prompt_name ? prompt_name : mf->default_prompt_name;
    if (prompt) *text = prompt;
    else if (name && !(*text = model_files_prompt(mf, name))) {
        *text = "";
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "unknown prompt name '%s': %s%s", name,
                          mf->n_prompts ? "the model's prompts are " : "the model declares no prompts",
                          mf->n_prompts ? mf->prompt_list : " (config_sentence_transformers.json)");
    }
    if (!pool_skip || !**text || mf->include_prompt) return EMBER_OK;
    /* sentence-transformers tokenizes the prompt alone (cut to max_length) and
     * leaves out that many tokens less a final special one */
    ember_token *tok = malloc((size_t)m->max_length * sizeof *tok);
    if (!tok) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    int32_t n = 0;
    ember_status st = ember_tokenize(m, *text, -1, NULL, 0, NULL, tok, m->max_length, &n, NULL);
    if (!st) *pool_skip = n > 0 && tok[n - 1].special ? n - 1 : n;
    free(tok);
    return st;
}

ember_status ember_encode(ember_model *m, const char *const *texts, const ptrdiff_t *lens, int32_t n,
                          const ember_encode_params *params, float *out, ember_text_stats *stats) {
    ember_encode_params p = params ? *params : ember_encode_default_params();
    ember_status st = check_encode_args(m, texts, n, &p);
    if (st) return st;
    if (n > 0 && !out) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_encode: out is NULL");
    ember_pooling pooling;
    int normalize;
    resolve_output(m, &p, &pooling, &normalize);
    const char *prompt;
    int32_t skip;
    if ((st = ember_resolve_prompt(m, p.prompt_name, p.prompt, &prompt, &skip))) return st;
    const int32_t D = m->files.out_dim;
    pthread_mutex_lock(&m->lock);
    for (int32_t i = 0; i < n && !st;) {
        int32_t taken = 0;
        st = fill_batch(m, texts, lens, i, n, &p, prompt, skip, stats, &taken);
        if (st) break;
        packed_batch b = current_batch(m);
        st = run_forward(m, &b, NULL, out + (size_t)i * D, pooling, normalize);
        i += taken;
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

void ember_token_embeddings_free(ember_token_embeddings *e) {
    if (!e) return;
    free(e->offsets);
    free(e->tokens);
    free(e->data);
    free(e);
}

ember_status ember_encode_tokens(ember_model *m, const char *const *texts, const ptrdiff_t *lens, int32_t n,
                                 const ember_encode_params *params, ember_token_embeddings **out,
                                 ember_text_stats *stats) {
    ember_encode_params p = params ? *params : ember_encode_default_params();
    ember_status st = check_encode_args(m, texts, n, &p);
    if (st) return st;
    if (!out) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_encode_tokens: out is NULL");
    *out = NULL;
    const int32_t C = m->files.cfg.C;
    ember_token_embeddings *e = calloc(1, sizeof *e);
    if (!e) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    e->n_texts = n;
    e->dim = C;
    e->offsets = calloc((size_t)n + 1, sizeof *e->offsets);
    size_t cap = 0;
    if (!e->offsets) goto oom;
    pthread_mutex_lock(&m->lock);
    for (int32_t i = 0; i < n && !st;) {
        int32_t taken = 0;
        st = fill_batch(m, texts, lens, i, n, &p, NULL, 0, stats, &taken);
        if (st) break;
        size_t need = (size_t)e->n_tokens + (size_t)m->batch_T;
        if (need > cap) {
            size_t nc = cap ? cap * 2 : 1024;
            while (nc < need) nc *= 2;
            float *d = realloc(e->data, nc * (size_t)C * sizeof *d);
            if (d) e->data = d;
            ember_token *tk = realloc(e->tokens, nc * sizeof *tk);
            if (tk) e->tokens = tk;
            if (!d || !tk) {
                st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for %zu token embeddings", need);
                break;
            }
            cap = nc;
        }
        packed_batch b = current_batch(m);
        st = m->be->forward(m->be, &b, e->data + (size_t)e->n_tokens * C, NULL, EMBER_POOLING_CLS, 0);
        if (st) break;
        /* tokens again, for their offsets (cheap next to the forward pass) */
        for (int32_t k = 0; k < taken; k++) {
            int32_t idx = i + k, cnt;
            st = model_tokenize(m, &m->scratch, &m->pieces_a, &m->pieces_b, texts[idx],
                                text_len(texts[idx], lens ? lens[idx] : -1), NULL, 0, 1, 1, p.truncate_left,
                                m->max_length,
                                e->tokens + e->n_tokens, (int32_t)(cap - (size_t)e->n_tokens), &cnt, NULL);
            if (st) break;
            e->n_tokens += cnt;
            e->offsets[idx + 1] = e->n_tokens;
        }
        i += taken;
    }
    pthread_mutex_unlock(&m->lock);
    if (st) {
        ember_token_embeddings_free(e);
        return st;
    }
    *out = e;
    return EMBER_OK;
oom:
    ember_token_embeddings_free(e);
    return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
}

ember_status ember_encode_sequences(ember_model *m, const ember_sequence *seqs, int32_t n,
                                    const ember_encode_params *params, float *pooled, float *hidden) {
    ember_encode_params p = params ? *params : ember_encode_default_params();
    if (!m || (n > 0 && !seqs) || n < 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_encode_sequences: NULL or negative argument");
    ember_status st = check_encode_args(m, (const char *const *)seqs, n, &p);
    if (st) return st;
    const bert_config *c = &m->files.cfg;
    for (int32_t i = 0; i < n; i++) {
        if (seqs[i].n < 1 || !seqs[i].ids)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "sequence %d is empty", i);
        if (seqs[i].pool_skip < 0)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "sequence %d: pool_skip %d is negative", i,
                              seqs[i].pool_skip);
        if (seqs[i].n > m->max_length && !p.truncate)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                              "sequence %d has %d tokens, over the model's maximum of %d (truncation is off)", i,
                              seqs[i].n, m->max_length);
        for (int32_t k = 0; k < seqs[i].n; k++) {
            if (seqs[i].ids[k] < 0 || seqs[i].ids[k] >= c->V)
                return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "sequence %d: token id %d is outside the vocabulary [0, %d)",
                                  i, seqs[i].ids[k], c->V);
            if (seqs[i].type_ids && (seqs[i].type_ids[k] < 0 || seqs[i].type_ids[k] >= c->TV))
                return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "sequence %d: token type %d is outside [0, %d)", i,
                                  seqs[i].type_ids[k], c->TV);
        }
    }
    ember_pooling pooling;
    int normalize;
    resolve_output(m, &p, &pooling, &normalize);
    const int32_t C = c->C, D = m->files.out_dim;
    size_t hidden_row = 0;
    pthread_mutex_lock(&m->lock);
    for (int32_t i = 0; i < n && !st;) {
        batch_reset(m);
        int32_t first = i;
        while (i < n) {
            int32_t cnt = seqs[i].n < m->max_length ? seqs[i].n : m->max_length;
            int32_t skip = p.truncate_left ? seqs[i].n - cnt : 0;
            if (m->batch_T + cnt > m->max_tokens) break;
            batch_append(m, seqs[i].ids + skip, seqs[i].type_ids ? seqs[i].type_ids + skip : NULL, NULL, cnt,
                         seqs[i].pool_skip);
            i++;
        }
        packed_batch b = current_batch(m);
        st = run_forward(m, &b, hidden ? hidden + hidden_row * C : NULL, pooled ? pooled + (size_t)first * D : NULL,
                         pooling, normalize);
        hidden_row += (size_t)m->batch_T;
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

/* Pairs are tokenized CHUNK at a time, then run as sequences: the forward
 * passes stay as full as ember_encode's. */
ember_status ember_score_pairs(ember_model *m, const char *const *a, const char *const *b, int32_t n,
                               const ember_score_params *params, float *scores, ember_text_stats *stats) {
    enum { CHUNK = 256 };
    ember_score_params p = params ? *params : ember_score_default_params();
    if (!m || n < 0 || (n > 0 && (!a || !scores)))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_score_pairs: NULL or negative argument");
    const int32_t NL = m->files.n_labels, max = m->max_length;
    if (NL == 0)
        return ember_fail(EMBER_ERR_UNSUPPORTED,
                          "%s is not a cross-encoder: config.json's architectures is not BertForSequenceClassification",
                          m->files.dir);
    ember_token *tok = malloc((size_t)max * sizeof *tok);
    int32_t *ids = malloc((size_t)CHUNK * (size_t)max * 2 * sizeof *ids);
    ember_sequence *seqs = malloc(CHUNK * sizeof *seqs);
    ember_status st = EMBER_OK;
    if (!tok || !ids || !seqs) st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "ember_score_pairs: out of memory");
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.truncate = 1; /* cut, then refused below unless truncating */
    tp.truncate_left = p.truncate_left;
    ember_encode_params ep = ember_encode_default_params();
    ep.pooling = EMBER_POOLING_CLS;
    ep.normalize = EMBER_NORMALIZE_OFF;
    for (int32_t i0 = 0; i0 < n && !st; i0 += CHUNK) {
        const int32_t k = n - i0 < CHUNK ? n - i0 : CHUNK;
        for (int32_t j = 0; j < k && !st; j++) {
            const int32_t i = i0 + j;
            const char *second = b ? b[i] : NULL;
            if (!a[i]) {
                st = ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_score_pairs: text %d is NULL", i);
                break;
            }
            ember_text_stats ts;
            int32_t cnt;
            if ((st = ember_tokenize(m, a[i], -1, second, -1, &tp, tok, max, &cnt, &ts))) break;
            if (ts.truncated && !p.truncate) {
                st = ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                                "pair %d has %d tokens, over the model's maximum of %d (truncation is off)", i,
                                ts.n_tokens_untruncated, max);
                break;
            }
            if (stats) stats[i] = ts;
            int32_t *row = ids + (size_t)j * max * 2;
            for (int32_t t = 0; t < cnt; t++) {
                row[t] = tok[t].id;
                row[max + t] = tok[t].type_id;
            }
            seqs[j] = (ember_sequence){.ids = row, .type_ids = row + max, .n = cnt};
        }
        if (!st) st = ember_encode_sequences(m, seqs, k, &ep, scores + (size_t)i0 * NL, NULL);
    }
    if (!st && !p.raw && NL == 1)
        for (int32_t i = 0; i < n; i++) scores[i] = 1.0f / (1.0f + expf(-scores[i]));
    free(tok);
    free(ids);
    free(seqs);
    return st;
}
