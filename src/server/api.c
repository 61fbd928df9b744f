/*
 * The routes' request and answer bodies, on the worker threads:
 * text-embeddings-inference's /embed, /embed_all, /tokenize, /similarity,
 * /rerank and /predict, and OpenAI's /v1/embeddings. /rerank and /predict
 * run a cross-encoder, whose pooled vector is its classifier's logits. Requests are read with jansson; answers are written by
 * hand (strbuf), since they are mostly long lists of floats.
 *
 * Inputs, on every embedding route: a string, a list of strings, a list of
 * token ids (one input) or a list mixing strings and lists of token ids.
 * Token ids are taken as the model's own, special tokens included — what
 * /tokenize returns — and are not re-tokenized.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/quantize.h"
#include "server_internal.h"

typedef struct {
    const char *text; /* a text of len bytes, or */
    size_t len;
    json_t *ids;      /* a list of token ids */
    const char *pair; /* a cross-encoder's second text of pair_len bytes, or NULL */
    size_t pair_len;
} raw_input;

static int64_t utf8_chars(const char *s, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static int all_integers(json_t *a) {
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_integer(v)) return 0;
    return 1;
}

/*
 * TEI's `inputs` / OpenAI's `input` into n raw inputs (*out, malloc'd).
 * Returns n, or -1 after answering the request with the error.
 */
static int32_t parse_inputs(request *r, json_t *root, const char *field, int allow_ids, raw_input **out) {
    server *s = r->srv;
    json_t *v = json_object_get(root, field);
    const char *shape =
        allow_ids ? "a string, a list of strings or a list of token ids" : "a string or a list of strings";
    if (!v) {
        request_fail(r, FAIL_VALIDATION, "missing field `%s` (%s)", field, shape);
        return -1;
    }
    if (json_is_string(v) || (allow_ids && json_is_array(v) && json_array_size(v) > 0 && all_integers(v))) {
        raw_input *in = calloc(1, sizeof *in);
        if (!in) goto oom;
        if (json_is_string(v)) {
            in->text = json_string_value(v);
            in->len = json_string_length(v);
        } else {
            in->ids = v;
        }
        r->batch = 0;
        *out = in;
        return 1;
    }
    if (!json_is_array(v)) {
        request_fail(r, FAIL_VALIDATION, "`%s` must be %s", field, shape);
        return -1;
    }
    size_t n = json_array_size(v);
    r->batch = 1;
    if (n == 0) {
        request_fail(r, FAIL_EMPTY, "`%s` cannot be empty", field);
        return -1;
    }
    if (n > (size_t)s->cfg.max_client_batch_size) {
        request_fail(r, FAIL_BATCH_SIZE, "batch size %zu > maximum allowed batch size %d", n,
                     s->cfg.max_client_batch_size);
        return -1;
    }
    raw_input *in = calloc(n, sizeof *in);
    if (!in) goto oom;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (json_is_string(e)) {
            in[i].text = json_string_value(e);
            in[i].len = json_string_length(e);
        } else if (allow_ids && json_is_array(e)) {
            in[i].ids = e;
        } else {
            free(in);
            request_fail(r, FAIL_VALIDATION, "`%s[%zu]` must be %s", field, i,
                         allow_ids ? "a string or a list of token ids" : "a string");
            return -1;
        }
    }
    *out = in;
    return (int32_t)n;
oom:
    request_fail(r, FAIL_BACKEND, "out of memory reading `%s`", field);
    return -1;
}

static int get_bool(request *r, json_t *root, const char *key, int dflt, int *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 1;
    }
    if (!json_is_boolean(v)) {
        request_fail(r, FAIL_VALIDATION, "`%s` must be true or false", key);
        return 0;
    }
    *out = json_is_true(v);
    return 1;
}

static int get_dimensions(request *r, json_t *root) {
    json_t *v = json_object_get(root, "dimensions");
    r->dimensions = 0;
    if (!v || json_is_null(v)) return 1;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > r->srv->dim) {
        request_fail(r, FAIL_VALIDATION, "`dimensions` must be an integer from 1 to %d (the model's dimension)",
                     r->srv->dim);
        return 0;
    }
    r->dimensions = json_integer_value(v) == r->srv->dim ? 0 : (int32_t)json_integer_value(v);
    return 1;
}

/* Options of TEI's embedding routes. */
static int parse_tei_options(request *r, json_t *root) {
    server *s = r->srv;
    if (!get_bool(r, root, "truncate", s->cfg.auto_truncate, &r->truncate)) return 0;
    json_t *dir = json_object_get(root, "truncation_direction");
    r->truncate_left = 0;
    if (dir && !json_is_null(dir)) {
        /* TEI's enum reads "Left"/"Right"; its documentation says left/right */
        if (json_is_string(dir) && strcasecmp(json_string_value(dir), "left") == 0) r->truncate_left = 1;
        else if (!json_is_string(dir) || strcasecmp(json_string_value(dir), "right") != 0) {
            request_fail(r, FAIL_VALIDATION, "`truncation_direction` must be \"right\" or \"left\"");
            return 0;
        }
    }
    return 1;
}

/*
 * The prompt of an embedding request: its `prompt_name` (TEI's field; an
 * extra body field on OpenAI's route), else the server's default, else the
 * model's. *text is what is put before each input; 0 after answering an
 * unknown name.
 */
static int parse_prompt(request *r, json_t *root, const char **text) {
    const ember_server_config *c = &r->srv->cfg;
    json_t *v = json_object_get(root, "prompt_name");
    ember_status st;
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            request_fail(r, FAIL_VALIDATION, "`prompt_name` must be a string");
            return 0;
        }
        st = ember_resolve_prompt(r->srv->model, json_string_value(v), NULL, text, &r->pool_skip);
    } else {
        st = ember_resolve_prompt(r->srv->model, c->default_prompt_name, c->default_prompt, text, &r->pool_skip);
    }
    if (st) {
        request_fail(r, FAIL_VALIDATION, "`prompt_name`: %s", ember_last_error());
        return 0;
    }
    return 1;
}

/* POST /search's options: k, return_text; the query is embedded as the
 * stored vectors were (cut to their dimension, normalised as they are). */
static int parse_search_options(request *r, json_t *root) {
    server *s = r->srv;
    json_t *k = json_object_get(root, "k");
    r->k = 10;
    if (k && !json_is_null(k)) {
        if (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > 1000) {
            request_fail(r, FAIL_VALIDATION, "`k` must be an integer from 1 to 1000");
            return 0;
        }
        r->k = (int32_t)json_integer_value(k);
    }
    if (!get_bool(r, root, "return_text", 0, &r->return_text)) return 0;
    if (r->return_text && s->corpus.n == 0) {
        request_fail(r, FAIL_VALIDATION, "`return_text`: the server has no corpus (start it with --corpus FILE)");
        return 0;
    }
    r->truncate = 1;
    r->truncate_left = 0;
    r->normalize = s->index_info.normalized;
    r->dimensions = s->index_info.dim < s->dim ? s->index_info.dim : 0;
    return 1;
}

static int parse_openai_options(request *r, json_t *root) {
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_null(model) && !json_is_string(model)) {
        request_fail(r, FAIL_VALIDATION, "`model` must be a string");
        return 0;
    }
    json_t *fmt = json_object_get(root, "encoding_format");
    r->base64 = 0;
    if (fmt && !json_is_null(fmt)) {
        if (json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0) r->base64 = 1;
        else if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "float") != 0) {
            request_fail(r, FAIL_VALIDATION, "`encoding_format` must be \"float\" or \"base64\"");
            return 0;
        }
    }
    r->truncate = r->srv->cfg.auto_truncate;
    r->truncate_left = 0;
    r->normalize = 1;
    return get_dimensions(r, root);
}

/*
 * POST /similarity's body, TEI's (and huggingface_hub's sentence_similarity):
 * {"inputs": {"source_sentence": S, "sentences": [...]}, "parameters":
 * {truncate, truncation_direction, prompt_name}} into n = 1 + len(sentences)
 * raw inputs, the source first. Returns n, or -1 after answering the error.
 */
static int32_t parse_similarity(request *r, json_t *root, raw_input **out) {
    server *s = r->srv;
    json_t *v = json_object_get(root, "inputs");
    json_t *src = json_object_get(v, "source_sentence"), *list = json_object_get(v, "sentences");
    r->batch = 1;
    if (!json_is_object(v) || !json_is_string(src) || !json_is_array(list)) {
        request_fail(r, FAIL_VALIDATION,
                     "`inputs` must be {\"source_sentence\": a string, \"sentences\": a list of strings}");
        return -1;
    }
    size_t m = json_array_size(list);
    if (m == 0) {
        request_fail(r, FAIL_EMPTY, "`inputs.sentences` cannot be empty");
        return -1;
    }
    if (m + 1 > (size_t)s->cfg.max_client_batch_size) {
        request_fail(r, FAIL_BATCH_SIZE, "batch size %zu > maximum allowed batch size %d", m + 1,
                     s->cfg.max_client_batch_size);
        return -1;
    }
    json_t *params = json_object_get(root, "parameters");
    if (params && !json_is_null(params) && !json_is_object(params)) {
        request_fail(r, FAIL_VALIDATION, "`parameters` must be an object");
        return -1;
    }
    json_t *none = json_object();
    int ok = none && parse_tei_options(r, json_is_object(params) ? params : none);
    json_decref(none);
    if (!ok) {
        if (!none) request_fail(r, FAIL_BACKEND, "out of memory reading `parameters`");
        return -1;
    }
    raw_input *in = calloc(m + 1, sizeof *in);
    if (!in) {
        request_fail(r, FAIL_BACKEND, "out of memory reading `inputs`");
        return -1;
    }
    for (size_t i = 0; i <= m; i++) {
        json_t *e = i ? json_array_get(list, i - 1) : src;
        if (!json_is_string(e)) {
            free(in);
            request_fail(r, FAIL_VALIDATION, "`inputs.sentences[%zu]` must be a string", i - 1);
            return -1;
        }
        in[i].text = json_string_value(e);
        in[i].len = json_string_length(e);
    }
    r->normalize = 0;
    r->dimensions = 0;
    *out = in;
    return (int32_t)(m + 1);
}

/* POST /rerank: {query, texts, truncate, truncation_direction, raw_scores,
 * return_text} into one (query, text) pair per text. */
static int32_t parse_rerank(request *r, json_t *root, raw_input **out) {
    server *s = r->srv;
    json_t *q = json_object_get(root, "query"), *texts = json_object_get(root, "texts");
    r->batch = 1;
    if (!json_is_string(q) || !json_is_array(texts)) {
        request_fail(r, FAIL_VALIDATION, "%s", !json_is_string(q) ? "`query` must be a string"
                                                                   : "`texts` must be a list of strings");
        return -1;
    }
    size_t n = json_array_size(texts);
    if (n == 0) {
        request_fail(r, FAIL_EMPTY, "`texts` cannot be empty");
        return -1;
    }
    if (n > (size_t)s->cfg.max_client_batch_size) {
        request_fail(r, FAIL_BATCH_SIZE, "batch size %zu > maximum allowed batch size %d", n,
                     s->cfg.max_client_batch_size);
        return -1;
    }
    if (!parse_tei_options(r, root) || !get_bool(r, root, "raw_scores", 0, &r->raw_scores) ||
        !get_bool(r, root, "return_text", 0, &r->return_text))
        return -1;
    raw_input *in = calloc(n, sizeof *in);
    if (!in) {
        request_fail(r, FAIL_BACKEND, "out of memory reading `texts`");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(texts, i);
        if (!json_is_string(e)) {
            free(in);
            request_fail(r, FAIL_VALIDATION, "`texts[%zu]` must be a string", i);
            return -1;
        }
        in[i] = (raw_input){json_string_value(q), json_string_length(q), NULL, json_string_value(e),
                            json_string_length(e)};
        if (r->return_text && str_list_add(&r->texts, json_string_value(e), json_string_length(e)) != EMBER_OK) {
            free(in);
            request_fail(r, FAIL_BACKEND, "out of memory reading `texts`");
            return -1;
        }
    }
    *out = in;
    return (int32_t)n;
}

/* One of /predict's sequences: a string, or a list of one or two strings (a
 * pair); 0 when it is neither. */
static int predict_sequence(json_t *v, raw_input *in) {
    if (json_is_string(v)) {
        *in = (raw_input){json_string_value(v), json_string_length(v), NULL, NULL, 0};
        return 1;
    }
    size_t k = json_array_size(v);
    if (!json_is_array(v) || k < 1 || k > 2) return 0;
    for (size_t i = 0; i < k; i++)
        if (!json_is_string(json_array_get(v, i))) return 0;
    json_t *a = json_array_get(v, 0), *b = k == 2 ? json_array_get(v, 1) : NULL;
    *in = (raw_input){json_string_value(a), json_string_length(a), NULL, b ? json_string_value(b) : NULL,
                      b ? json_string_length(b) : 0};
    return 1;
}

/* POST /predict: `inputs` is a string, a pair [a, b], or a batch of them
 * as lists ([[a], [a, b], ...]), as TEI reads it. */
static int32_t parse_predict(request *r, json_t *root, raw_input **out) {
    server *s = r->srv;
    static const char shape[] = "`inputs` must be a string, a pair of strings [string, string] or a batch of "
                                "mixed strings and pairs [[string], [string, string], ...]";
    json_t *v = json_object_get(root, "inputs");
    if (!parse_tei_options(r, root) || !get_bool(r, root, "raw_scores", 0, &r->raw_scores)) return -1;
    r->batch = json_is_array(v) && json_is_array(json_array_get(v, 0));
    size_t n = r->batch ? json_array_size(v) : 1;
    if (json_is_array(v) && json_array_size(v) == 0) {
        request_fail(r, FAIL_EMPTY, "`inputs` cannot be empty");
        return -1;
    }
    if (n > (size_t)s->cfg.max_client_batch_size) {
        request_fail(r, FAIL_BATCH_SIZE, "batch size %zu > maximum allowed batch size %d", n,
                     s->cfg.max_client_batch_size);
        return -1;
    }
    raw_input *in = calloc(n, sizeof *in);
    if (!in) {
        request_fail(r, FAIL_BACKEND, "out of memory reading `inputs`");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!predict_sequence(r->batch ? json_array_get(v, i) : v, &in[i])) {
            free(in);
            if (r->batch) request_fail(r, FAIL_VALIDATION, "`inputs[%zu]`: %s", i, shape);
            else request_fail(r, FAIL_VALIDATION, "%s", shape);
            return -1;
        }
    *out = in;
    return (int32_t)n;
}

/* Room for `need` token ids in r->ids / r->type_ids. */
static int ids_room(request *r, int64_t need, int64_t *cap) {
    if (need <= *cap) return 1;
    int64_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    int32_t *a = realloc(r->ids, (size_t)c * sizeof *a);
    if (a) r->ids = a;
    int32_t *b = realloc(r->type_ids, (size_t)c * sizeof *b);
    if (b) r->type_ids = b;
    if (!a || !b) return 0;
    *cap = c;
    return 1;
}

/* Tokenize the inputs of an embedding route into r->ids (or answer with the
 * error and return 0). */
static int tokenize_inputs(request *r, const raw_input *in, const char *field, const char *prompt) {
    server *s = r->srv;
    const int32_t max = s->max_input_length, V = s->info.vocab_size;
    r->off = calloc((size_t)r->n + 1, sizeof *r->off);
    ember_token *tok = malloc((size_t)max * sizeof *tok);
    int64_t cap = 0;
    if (!r->off || !tok) goto oom;
    if (r->pool_skip && !(r->skips = calloc((size_t)r->n, sizeof *r->skips))) goto oom;
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.truncate = 1; /* over-long inputs are cut, counted, and refused below unless truncation is on */
    tp.truncate_left = r->truncate_left;
    tp.prompt = prompt;
    for (int32_t i = 0; i < r->n; i++) {
        int64_t at = r->off[i];
        int32_t cnt = 0;
        if (in[i].text) {
            if (in[i].len == 0) {
                free(tok);
                request_fail(r, FAIL_VALIDATION, "`%s` cannot be empty%s", field,
                             r->batch ? " (an empty string in the list)" : "");
                return 0;
            }
            ember_text_stats st;
            if (ember_tokenize(s->model, in[i].text, (ptrdiff_t)in[i].len, in[i].pair, (ptrdiff_t)in[i].pair_len, &tp,
                               tok, max, &cnt, &st) != EMBER_OK) {
                free(tok);
                request_fail(r, FAIL_TOKENIZER, "input %d: %s", i, ember_last_error());
                return 0;
            }
            if (st.truncated && !r->truncate) {
                free(tok);
                request_fail(r, FAIL_VALIDATION,
                             "`%s` must have less than %d tokens. Given: %d (input %d; set `truncate`)", field, max,
                             st.n_tokens_untruncated, i);
                return 0;
            }
            if (!ids_room(r, at + cnt, &cap)) goto oom;
            for (int32_t k = 0; k < cnt; k++) {
                r->ids[at + k] = tok[k].id;
                r->type_ids[at + k] = tok[k].type_id;
            }
            r->n_chars += utf8_chars(in[i].text, in[i].len) + utf8_chars(in[i].pair ? in[i].pair : "", in[i].pair_len);
            if (r->skips) r->skips[i] = r->pool_skip;
        } else {
            size_t k = json_array_size(in[i].ids);
            if (k == 0) {
                free(tok);
                request_fail(r, FAIL_VALIDATION, "`%s` cannot be empty (an empty list of token ids)", field);
                return 0;
            }
            if (k > (size_t)max && !r->truncate) {
                free(tok);
                request_fail(r, FAIL_VALIDATION,
                             "`%s` must have less than %d tokens. Given: %zu (input %d; set `truncate`)", field, max,
                             k, i);
                return 0;
            }
            cnt = k > (size_t)max ? max : (int32_t)k;
            size_t skip = r->truncate_left ? k - (size_t)cnt : 0;
            if (!ids_room(r, at + cnt, &cap)) goto oom;
            for (int32_t j = 0; j < cnt; j++) {
                json_t *v = json_array_get(in[i].ids, skip + (size_t)j);
                json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
                if (!json_is_integer(v) || id < 0 || id >= V) {
                    free(tok);
                    if (json_is_integer(v))
                        request_fail(r, FAIL_VALIDATION,
                                     "token id %lld (input %d, position %zu) is outside the vocabulary [0, %d)",
                                     (long long)id, i, skip + (size_t)j, V);
                    else
                        request_fail(r, FAIL_VALIDATION, "input %d, position %zu: a token id must be an integer", i,
                                     skip + (size_t)j);
                    return 0;
                }
                r->ids[at + j] = (int32_t)id;
                r->type_ids[at + j] = 0;
            }
            r->n_chars += (int64_t)k;
        }
        r->off[i + 1] = at + cnt;
        metrics_observe(&r->srv->metrics, HIST_INPUT_LENGTH, (double)cnt);
    }
    free(tok);
    r->n_tokens = r->off[r->n];
    return 1;
oom:
    free(tok);
    request_fail(r, FAIL_BACKEND, "out of memory tokenizing %d inputs", r->n);
    return 0;
}

/* POST /tokenize, answered here: TEI's [[{id, text, special, start, stop}]],
 * with byte offsets into the input (as TEI gives them), and no truncation. */
static void tokenize_route(request *r, const raw_input *in) {
    server *s = r->srv;
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.truncate = 0;
    tp.add_special_tokens = r->add_special;
    int32_t cap = s->max_input_length;
    ember_token *tok = malloc((size_t)cap * sizeof *tok);
    strbuf b;
    sb_init(&b, 1024);
    if (!tok) goto oom;
    sb_putc(&b, '[');
    for (int32_t i = 0; i < r->n; i++) {
        if (in[i].len == 0) {
            free(tok);
            sb_free(&b);
            request_fail(r, FAIL_VALIDATION, "`inputs` cannot be empty%s",
                         r->batch ? " (an empty string in the list)" : "");
            return;
        }
        int32_t n;
        ember_status st;
        while ((st = ember_tokenize(s->model, in[i].text, (ptrdiff_t)in[i].len, NULL, 0, &tp, tok, cap, &n, NULL)) ==
               EMBER_ERR_BUFFER_TOO_SMALL) {
            ember_token *t = realloc(tok, (size_t)n * sizeof *t);
            if (!t) goto oom;
            tok = t;
            cap = n;
        }
        if (st != EMBER_OK) {
            free(tok);
            sb_free(&b);
            request_fail(r, FAIL_TOKENIZER, "input %d: %s", i, ember_last_error());
            return;
        }
        if (i) sb_putc(&b, ',');
        sb_putc(&b, '[');
        for (int32_t j = 0; j < n; j++) {
            const ember_token *t = &tok[j];
            if (j) sb_putc(&b, ',');
            sb_puts(&b, "{\"id\":");
            sb_int(&b, t->id);
            sb_puts(&b, ",\"text\":");
            if (t->special) {
                const char *txt = ember_token_text(s->model, t->id);
                sb_json_string(&b, txt ? txt : "", txt ? strlen(txt) : 0);
                sb_puts(&b, ",\"special\":true,\"start\":null,\"stop\":null}");
            } else {
                sb_json_string(&b, in[i].text + t->start, (size_t)(t->end - t->start));
                sb_puts(&b, ",\"special\":false,\"start\":");
                sb_int(&b, t->start);
                sb_puts(&b, ",\"stop\":");
                sb_int(&b, t->end);
                sb_putc(&b, '}');
            }
        }
        sb_putc(&b, ']');
    }
    sb_putc(&b, ']');
    free(tok);
    size_t len = 0;
    char *body = sb_take(&b, &len);
    if (!body) {
        request_fail(r, FAIL_BACKEND, "out of memory writing the tokens");
        return;
    }
    request_reply(r, 200, body, len, "application/json");
    return;
oom:
    free(tok);
    sb_free(&b);
    request_fail(r, FAIL_BACKEND, "out of memory tokenizing");
}

/* The route a request takes with this model (or 0 after answering that the
 * model has none such). / is /rerank for a reranker, /predict for a
 * classifier, as in TEI; for an embedding model TEI answers it with
 * /similarity only when started for that task: here the body says which,
 * `inputs` as an object is a similarity request. */
static int settle_route(request *r, json_t *root) {
    const int32_t labels = r->srv->info.num_labels;
    if (r->at_root && labels) r->route = labels == 1 ? ROUTE_RERANK : ROUTE_PREDICT;
    else if (r->at_root && json_is_object(json_object_get(root, "inputs"))) r->route = ROUTE_SIMILARITY;
    const char *lacks = NULL;
    if (r->route == ROUTE_RERANK && labels != 1) lacks = "a re-ranker";
    else if (r->route == ROUTE_PREDICT && !labels) lacks = "a classifier";
    else if (labels && r->route != ROUTE_RERANK && r->route != ROUTE_PREDICT && r->route != ROUTE_TOKENIZE &&
             r->route != ROUTE_EMBED_ALL)
        lacks = "an embedding";
    if (lacks) request_fail(r, FAIL_BACKEND, "model is not %s model", lacks);
    return !lacks;
}

void api_parse(request *r) {
    server *s = r->srv;
    json_error_t jerr;
    json_t *root = json_loadb(r->body ? r->body : "", r->len, JSON_ALLOW_NUL, &jerr);
    free(r->body);
    r->body = NULL;
    raw_input *in = NULL;
    if (!root) {
        request_fail(r, FAIL_VALIDATION, "failed to parse the request body as JSON: %s (line %d, column %d)", jerr.text,
                     jerr.line, jerr.column);
        return;
    }
    if (!json_is_object(root)) {
        request_fail(r, FAIL_VALIDATION, "the request body must be a JSON object");
        goto done;
    }
    if (r->route == ROUTE_SEARCH && !s->index) {
        request_fail(r, FAIL_NOT_FOUND, "no stored vectors to search: start ember serve with --vectors PATH");
        goto done;
    }
    if (!settle_route(r, root)) goto done;
    const char *field = r->route == ROUTE_OPENAI   ? "input"
                        : r->route == ROUTE_SEARCH ? "query"
                        : r->route == ROUTE_RERANK ? "texts"
                                                   : "inputs";
    double t0 = clock_now();
    int32_t n = r->route == ROUTE_SIMILARITY ? parse_similarity(r, root, &in)
                : r->route == ROUTE_RERANK   ? parse_rerank(r, root, &in)
                : r->route == ROUTE_PREDICT  ? parse_predict(r, root, &in)
                                             : parse_inputs(r, root, field,
                                                            r->route != ROUTE_TOKENIZE && r->route != ROUTE_SEARCH, &in);
    if (n < 0) goto done;
    r->n = n;
    if (r->route == ROUTE_TOKENIZE) {
        if (!get_bool(r, root, "add_special_tokens", 1, &r->add_special)) goto done;
        json_t *prompt = json_object_get(root, "prompt_name");
        if (prompt && !json_is_null(prompt)) {
            request_fail(r, FAIL_VALIDATION, "`prompt_name` is not supported on /tokenize (it is on /embed)");
            goto done;
        }
        tokenize_route(r, in);
        goto done;
    }
    metrics_request(&r->srv->metrics, r->batch);
    switch (r->route) {
    case ROUTE_EMBED:
        if (!parse_tei_options(r, root) || !get_bool(r, root, "normalize", 1, &r->normalize) ||
            !get_dimensions(r, root))
            goto done;
        r->out = r->normalize && !r->dimensions ? OUT_POOLED_NORM : OUT_POOLED_RAW;
        break;
    case ROUTE_EMBED_ALL:
        if (!parse_tei_options(r, root)) goto done;
        r->out = OUT_HIDDEN;
        break;
    case ROUTE_SEARCH:
        if (!parse_search_options(r, root)) goto done;
        r->out = OUT_POOLED_RAW;
        break;
    case ROUTE_SIMILARITY: /* options read with the inputs */
    case ROUTE_RERANK:
    case ROUTE_PREDICT:
        r->out = OUT_POOLED_RAW;
        break;
    default: /* ROUTE_OPENAI */
        if (!parse_openai_options(r, root)) goto done;
        r->out = r->dimensions ? OUT_POOLED_RAW : OUT_POOLED_NORM;
        break;
    }
    const char *prompt;
    if (!parse_prompt(r, root, &prompt) || !tokenize_inputs(r, in, field, prompt)) goto done;
    r->tok_seconds = clock_now() - t0;
    size_t D = (size_t)s->dim;
    if (r->out == OUT_HIDDEN) r->hidden = malloc((size_t)r->n_tokens * (size_t)s->info.hidden_size * sizeof(float));
    else r->pooled = malloc((size_t)r->n * D * sizeof(float));
    if (!r->hidden && !r->pooled) {
        request_fail(r, FAIL_BACKEND, "out of memory for the results of %d inputs", r->n);
        goto done;
    }
    batcher_submit(s, r); /* the model thread owns r now */
done:
    free(in);
    json_decref(root);
}

/* Pooled vector i as answered: cut to `dimensions` and normalised again
 * when asked (into tmp). */
static const float *answer_vector(const request *r, int32_t i, int normalize, float *tmp, int32_t *d) {
    const int32_t D = r->srv->dim;
    const float *v = r->pooled + (size_t)i * D;
    *d = r->dimensions ? r->dimensions : D;
    if (!r->dimensions || !normalize) return v;
    vec_truncate(tmp, v, *d, 1);
    return tmp;
}

/* POST /search's answer into b: per query, its hits as
 * [{"id", "score", "text"}, ...]; a list of those for a list of queries. */
static void search_answer(request *r, strbuf *b) {
    server *s = r->srv;
    const int32_t d = s->index_info.dim, n = r->n, k = r->k;
    float *q = malloc((size_t)n * d * sizeof *q);
    ember_hit *hits = malloc((size_t)n * k * sizeof *hits);
    int32_t *found = malloc((size_t)n * sizeof *found);
    ember_search_params sp = ember_search_default_params();
    sp.k = k;
    if (!q || !hits || !found) {
        b->oom = 1;
    } else {
        for (int32_t i = 0; i < n; i++) {
            const float *v = r->pooled + (size_t)i * s->dim;
            vec_truncate(q + (size_t)i * d, v, d, r->normalize);
        }
        if (ember_search(s->index, q, n, d, &sp, hits, found) != EMBER_OK) b->oom = 1;
    }
    if (r->batch) sb_putc(b, '[');
    for (int32_t i = 0; i < n && !b->oom; i++) {
        sb_puts(b, i ? ",[" : "[");
        for (int32_t j = 0; j < found[i]; j++) {
            const ember_hit *h = &hits[(size_t)i * k + j];
            sb_printf(b, "%s{\"id\":%lld,\"score\":%.7g", j ? "," : "", (long long)h->row, (double)h->score);
            if (r->return_text && h->row < s->corpus.n) {
                sb_puts(b, ",\"text\":");
                sb_json_string(b, s->corpus.s[h->row], (size_t)s->corpus.len[h->row]);
            }
            sb_putc(b, '}');
        }
        sb_putc(b, ']');
    }
    if (r->batch) sb_putc(b, ']');
    free(q);
    free(hits);
    free(found);
}

typedef struct {
    float score;
    int32_t index;
} ranked;

/* Best first; ties by index. */
static int by_score(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    return (a->index > b->index) - (a->index < b->index);
}

/* TEI's scores from logits: the sigmoid of one, the softmax of several. */
static void scores_of(float *out, const float *logits, int32_t k, int raw) {
    if (raw || k == 1) {
        for (int32_t i = 0; i < k; i++) out[i] = raw ? logits[i] : 1.0f / (1.0f + expf(-logits[i]));
        return;
    }
    float max = logits[0], sum = 0;
    for (int32_t i = 1; i < k; i++) max = logits[i] > max ? logits[i] : max;
    for (int32_t i = 0; i < k; i++) sum += out[i] = expf(logits[i] - max);
    for (int32_t i = 0; i < k; i++) out[i] /= sum;
}

/* POST /rerank's answer: [{"index", "text"?, "score"}, ...] best first;
 * POST /predict's: per input [{"score", "label"}, ...] best first. */
static void classify_answer(request *r, strbuf *b) {
    const int32_t NL = r->srv->info.num_labels, n = r->n;
    const int rerank = r->route == ROUTE_RERANK;
    ranked *rk = malloc((size_t)(rerank ? n : NL) * sizeof *rk);
    float *sc = malloc((size_t)NL * sizeof *sc);
    if (!rk || !sc) b->oom = 1;
    if (rerank && !b->oom) {
        for (int32_t i = 0; i < n; i++) {
            scores_of(sc, r->pooled + (size_t)i * NL, 1, r->raw_scores);
            rk[i] = (ranked){sc[0], i};
        }
        qsort(rk, (size_t)n, sizeof *rk, by_score);
        sb_putc(b, '[');
        for (int32_t i = 0; i < n; i++) {
            sb_printf(b, "%s{\"index\":%d", i ? "," : "", rk[i].index);
            if (r->return_text) {
                sb_puts(b, ",\"text\":");
                sb_json_string(b, r->texts.s[rk[i].index], (size_t)r->texts.len[rk[i].index]);
            }
            sb_printf(b, ",\"score\":%.7g}", (double)rk[i].score);
        }
        sb_putc(b, ']');
    }
    if (!rerank && !b->oom) {
        const char *const *labels = r->srv->info.labels;
        if (r->batch) sb_putc(b, '[');
        for (int32_t i = 0; i < n; i++) {
            scores_of(sc, r->pooled + (size_t)i * NL, NL, r->raw_scores);
            for (int32_t j = 0; j < NL; j++) rk[j] = (ranked){sc[j], j};
            qsort(rk, (size_t)NL, sizeof *rk, by_score);
            sb_puts(b, i ? ",[" : "[");
            for (int32_t j = 0; j < NL; j++) {
                sb_printf(b, "%s{\"score\":%.7g,\"label\":", j ? "," : "", (double)rk[j].score);
                sb_json_string(b, labels[rk[j].index], strlen(labels[rk[j].index]));
                sb_putc(b, '}');
            }
            sb_putc(b, ']');
        }
        if (r->batch) sb_putc(b, ']');
    }
    free(rk);
    free(sc);
}

void api_respond(request *r) {
    server *s = r->srv;
    int gone = atomic_load(&r->gone);
    if (gone) {
        if (gone == 2) request_fail(r, FAIL_UNHEALTHY, "the server is shutting down");
        else request_fail(r, FAIL_DISCONNECTED, "the client disconnected");
        return;
    }
    if (atomic_load(&r->failed)) {
        request_fail(r, FAIL_BACKEND, "%s", r->fail_msg);
        return;
    }
    metrics_observe(&r->srv->metrics, HIST_REQUEST_DURATION, clock_now() - r->t_start);
    metrics_observe(&r->srv->metrics, HIST_TOKENIZATION_DURATION, r->tok_seconds);
    metrics_observe(&r->srv->metrics, HIST_QUEUE_DURATION, r->t_first_batch - r->t_queued);
    metrics_observe(&r->srv->metrics, HIST_INFERENCE_DURATION, r->t_last_batch - r->t_first_batch);
    const int32_t D = s->dim;
    strbuf b;
    float *tmp = malloc((size_t)D * sizeof *tmp);
    if (r->route == ROUTE_EMBED_ALL) sb_init(&b, (size_t)r->n_tokens * (size_t)D * 12 + 64);
    else sb_init(&b, (size_t)r->n * ((size_t)D * (r->base64 ? 6 : 12) + 64) + 256);
    if (!tmp) b.oom = 1;
    if (r->route == ROUTE_EMBED) {
        sb_putc(&b, '[');
        for (int32_t i = 0; i < r->n && !b.oom; i++) {
            int32_t d;
            const float *v = answer_vector(r, i, r->normalize, tmp, &d);
            if (i) sb_putc(&b, ',');
            sb_float_array(&b, v, (size_t)d);
        }
        sb_putc(&b, ']');
    } else if (r->route == ROUTE_SEARCH) {
        search_answer(r, &b);
    } else if (r->route == ROUTE_RERANK || r->route == ROUTE_PREDICT) {
        classify_answer(r, &b);
    } else if (r->route == ROUTE_SIMILARITY) {
        /* TEI's: the cosine of the source's embedding with each sentence's */
        float *cos = malloc((size_t)r->n * sizeof *cos);
        if (!cos) b.oom = 1;
        for (int32_t i = 1; i < r->n && cos; i++)
            cos[i - 1] = ember_cosine(r->pooled, r->pooled + (size_t)i * D, D);
        if (cos) sb_float_array(&b, cos, (size_t)r->n - 1);
        free(cos);
    } else if (r->route == ROUTE_EMBED_ALL) {
        sb_putc(&b, '[');
        for (int32_t i = 0; i < r->n && !b.oom; i++) {
            if (i) sb_putc(&b, ',');
            sb_putc(&b, '[');
            const int64_t H = s->info.hidden_size;
            for (int64_t t = r->off[i]; t < r->off[i + 1]; t++) {
                if (t > r->off[i]) sb_putc(&b, ',');
                sb_float_array(&b, r->hidden + t * H, (size_t)H);
            }
            sb_putc(&b, ']');
        }
        sb_putc(&b, ']');
    } else { /* ROUTE_OPENAI */
        sb_puts(&b, "{\"object\":\"list\",\"data\":[");
        for (int32_t i = 0; i < r->n && !b.oom; i++) {
            int32_t d;
            const float *v = answer_vector(r, i, 1, tmp, &d);
            sb_printf(&b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
            if (r->base64) sb_base64_f32(&b, v, (size_t)d);
            else sb_float_array(&b, v, (size_t)d);
            sb_putc(&b, '}');
        }
        sb_puts(&b, "],\"model\":");
        sb_json_string(&b, s->cfg.served_model_name, strlen(s->cfg.served_model_name));
        sb_printf(&b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}", (long long)r->n_tokens,
                  (long long)r->n_tokens);
    }
    free(tmp);
    size_t len = 0;
    char *body = sb_take(&b, &len);
    if (!body) {
        request_fail(r, FAIL_BACKEND, "out of memory writing the answer");
        return;
    }
    metrics_success(&r->srv->metrics, r->batch);
    request_reply(r, 200, body, len, "application/json");
}

static const char *dtype_name(ember_dtype t) {
    return t == EMBER_DTYPE_FP16 ? "float16" : t == EMBER_DTYPE_BF16 ? "bfloat16" : "float32";
}

/* GET /info: TEI's Info, plus the device and the embedding size. */
char *api_info(const server *s, size_t *len) {
    /* TEI's model_type: {"embedding": {pooling}}, or for a cross-encoder
     * {"reranker" (one label) or "classifier": {id2label, label2id}} */
    json_t *mt;
    if (s->info.num_labels) {
        json_t *id2label = json_object(), *label2id = json_object();
        for (int32_t i = 0; i < s->info.num_labels; i++) {
            char key[16];
            snprintf(key, sizeof key, "%d", i);
            json_object_set_new(id2label, key, json_string(s->info.labels[i]));
            json_object_set_new(label2id, s->info.labels[i], json_integer(i));
        }
        mt = json_pack("{s:{s:o, s:o}}", s->info.num_labels == 1 ? "reranker" : "classifier", "id2label", id2label,
                       "label2id", label2id);
    } else {
        mt = json_pack("{s:{s:s}}", "embedding", "pooling", ember_pooling_str(s->info.pooling));
    }
    json_t *o = json_pack("{s:s, s:n, s:s, s:o, s:i, s:i, s:i, s:o, s:i, s:b, s:i, s:s, s:n, s:n, s:s, s:i}",
                          "model_id", s->cfg.served_model_name, "model_sha", "model_dtype", dtype_name(s->info.dtype),
                          "model_type", mt,
                          "max_concurrent_requests", s->cfg.max_concurrent_requests, "max_input_length",
                          s->max_input_length, "max_batch_tokens", s->max_batch_tokens, "max_batch_requests",
                          s->cfg.max_batch_requests > 0 ? json_integer(s->cfg.max_batch_requests) : json_null(),
                          "max_client_batch_size", s->cfg.max_client_batch_size, "auto_truncate",
                          s->cfg.auto_truncate, "tokenization_workers", s->cfg.tokenization_workers, "version",
                          EMBER_VERSION, "sha", "docker_label", "device", s->info.device_name, "embedding_dim", s->dim);
    if (!o) return NULL;
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (t) *len = strlen(t);
    return t;
}
