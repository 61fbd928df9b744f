/* Reading a tokenizer from a model directory: tokenizer.json (what the fast
 * tokenizers, and so sentence-transformers, use) or vocab.txt with
 * tokenizer_config.json (the Python BertTokenizer's files). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fileio.h"
#include "tokenizer.h"

static ember_status set_defaults(tokenizer *tok) {
    memset(tok, 0, sizeof *tok);
    tok->clean_text = 1;
    tok->handle_chinese_chars = 1;
    strcpy(tok->prefix, "##");
    tok->max_word_chars = 100;
    tok->unk_id = -1;
    tok->pad_id = 0;
    return EMBER_OK;
}

static int32_t token_id(const tokenizer *tok, const char *text) {
    return text ? str_map_get(&tok->vocab, text, strlen(text)) : -1;
}

static ember_status add_added(tokenizer *tok, const char *text, int32_t id, int special) {
    if (!text || !*text) return EMBER_OK;
    for (int i = 0; i < tok->n_added; i++)
        if (strcmp(tok->added[i].text, text) == 0) return EMBER_OK;
    added_token *a = realloc(tok->added, (size_t)(tok->n_added + 1) * sizeof *a);
    if (!a) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    tok->added = a;
    a += tok->n_added;
    memset(a, 0, sizeof *a);
    a->text = strdup(text);
    a->id = id;
    a->special = special;
    if (!a->text) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    tok->added_first[(uint8_t)text[0]] = 1;
    tok->n_added++;
    return EMBER_OK;
}

/* Make the last added token a normalized one: matched in the normalised text,
 * as its content normalises (tokenizers normalises the pattern too). */
static ember_status make_normalized(tokenizer *tok, const char *path) {
    added_token *a = &tok->added[tok->n_added - 1];
    tokenizer_scratch sc = {0};
    int32_t invalid = 0;
    ember_status st = tokenizer_normalize(tok, a->text, strlen(a->text), &sc, &invalid);
    if (!st && sc.n_cp == 0)
        st = ember_fail(EMBER_ERR_FORMAT, "%s: added token '%s' normalises to nothing", path, a->text);
    if (!st && !(a->norm = malloc(sc.n_cp * sizeof *a->norm)))
        st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    if (!st) {
        memcpy(a->norm, sc.cp, sc.n_cp * sizeof *a->norm);
        a->n_norm = (int32_t)sc.n_cp;
        tok->n_added_norm++;
    }
    tokenizer_scratch_free(&sc);
    /* the raw-text index no longer needs its first byte (unless another token shares it) */
    tok->added_first[(uint8_t)a->text[0]] = 0;
    for (int i = 0; i < tok->n_added; i++)
        if (!tok->added[i].norm) tok->added_first[(uint8_t)tok->added[i].text[0]] = 1;
    return st;
}

/* [CLS] $A [SEP] and [CLS] $A [SEP] $B:1 [SEP]:1 */
static void bert_template(tokenizer *tok, int32_t cls, int32_t sep) {
    template_item s[] = {{-1, cls, 0}, {0, 0, 0}, {-1, sep, 0}};
    template_item p[] = {{-1, cls, 0}, {0, 0, 0}, {-1, sep, 0}, {1, 0, 1}, {-1, sep, 1}};
    memcpy(tok->single, s, sizeof s);
    memcpy(tok->pair, p, sizeof p);
    tok->n_single = 3;
    tok->n_pair = 5;
}

static ember_status read_vocab_txt(tokenizer *tok, const char *path) {
    char *data;
    size_t size;
    ember_status st = file_read_all(path, &data, &size);
    if (st) return st;
    int32_t lines = 0;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    lines += 1;
    tok->id_text = calloc((size_t)lines, sizeof *tok->id_text);
    if (!tok->id_text) {
        free(data);
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    size_t i = 0;
    int32_t n = 0;
    while (i < size) {
        size_t j = i;
        while (j < size && data[j] != '\n') j++;
        size_t e = j;
        /* BertTokenizer's load_vocab strips the trailing newline only */
        if (e > i && data[e - 1] == '\r') e--;
        tok->id_text[n] = strndup(data + i, e - i);
        if (!tok->id_text[n]) {
            free(data);
            return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        }
        n++;
        i = j + 1;
    }
    free(data);
    tok->n_ids = n;
    if (n == 0) return ember_fail(EMBER_ERR_FORMAT, "%s: vocabulary is empty", path);
    return tokenizer_index_vocab(tok);
}

static ember_status finish_specials(tokenizer *tok, const char *where, const char *unk, const char *cls,
                                    const char *sep, const char *pad, const char *mask) {
    tok->unk_id = token_id(tok, unk);
    if (tok->unk_id < 0)
        return ember_fail(EMBER_ERR_FORMAT, "%s: unknown token '%s' is not in the vocabulary", where, unk);
    int32_t cls_id = token_id(tok, cls), sep_id = token_id(tok, sep);
    if (cls_id < 0 || sep_id < 0)
        return ember_fail(EMBER_ERR_FORMAT, "%s: special tokens '%s' / '%s' are not in the vocabulary",
                          where, cls, sep);
    int32_t pad_id = token_id(tok, pad);
    tok->pad_id = pad_id >= 0 ? pad_id : 0;
    bert_template(tok, cls_id, sep_id);
    const char *specials[] = {pad, unk, cls, sep, mask};
    for (int i = 0; i < 5; i++) {
        int32_t id = token_id(tok, specials[i]);
        if (id >= 0) {
            ember_status st = add_added(tok, specials[i], id, 1);
            if (st) return st;
        }
    }
    return EMBER_OK;
}

ember_status tokenizer_load_vocab(tokenizer *tok, const char *vocab_path, int lowercase, int strip_accents,
                                  int handle_chinese_chars) {
    set_defaults(tok);
    tok->lowercase = lowercase;
    tok->strip_accents = strip_accents;
    tok->handle_chinese_chars = handle_chinese_chars;
    ember_status st = read_vocab_txt(tok, vocab_path);
    if (!st) st = finish_specials(tok, vocab_path, "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]");
    if (st) tokenizer_free(tok);
    return st;
}

static json_t *load_json(const char *path, ember_status *st) {
    json_error_t err;
    if ((*st = file_check_regular(path))) return NULL;
    json_t *j = json_load_file(path, 0, &err);
    if (!j)
        *st = ember_fail(EMBER_ERR_FORMAT, "%s: malformed JSON at line %d column %d: %s", path, err.line, err.column,
                         err.text);
    return j;
}

/* A special token named in tokenizer_config.json / special_tokens_map.json:
 * a string, or an object {"content": ...}. */
static const char *special_name(json_t *cfg, json_t *map, const char *key, const char *def) {
    json_t *sources[2] = {cfg, map};
    for (int i = 0; i < 2; i++) {
        json_t *v = sources[i] ? json_object_get(sources[i], key) : NULL;
        if (json_is_string(v)) return json_string_value(v);
        if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
            return json_string_value(json_object_get(v, "content"));
    }
    return def;
}

/* model_max_length, ignoring the "very large" placeholder transformers writes. */
static int32_t read_model_max_length(json_t *cfg) {
    json_t *m = cfg ? json_object_get(cfg, "model_max_length") : NULL;
    if (json_is_integer(m) && json_integer_value(m) > 0 && json_integer_value(m) < 1000000)
        return (int32_t)json_integer_value(m);
    if (json_is_real(m) && json_real_value(m) > 0 && json_real_value(m) < 1e6)
        return (int32_t)json_real_value(m);
    return 0;
}

static ember_status load_vocab_dir(tokenizer *tok, const char *dir) {
    char path[4096];
    ember_status st = EMBER_OK;
    json_t *cfg = NULL, *map = NULL;
    if (path_join(path, sizeof path, dir, "tokenizer_config.json") && file_exists(path)) {
        cfg = load_json(path, &st);
        if (!cfg) return st;
    }
    if (path_join(path, sizeof path, dir, "special_tokens_map.json") && file_exists(path)) {
        map = load_json(path, &st);
        if (!map) {
            json_decref(cfg);
            return st;
        }
    }
    set_defaults(tok);
    json_t *v;
    tok->lowercase = 1; /* BertTokenizer's default */
    if (cfg && json_is_boolean(v = json_object_get(cfg, "do_lower_case"))) tok->lowercase = json_is_true(v);
    tok->strip_accents = tok->lowercase;
    if (cfg && json_is_boolean(v = json_object_get(cfg, "strip_accents"))) tok->strip_accents = json_is_true(v);
    if (cfg && json_is_boolean(v = json_object_get(cfg, "tokenize_chinese_chars")))
        tok->handle_chinese_chars = json_is_true(v);
    if (cfg && json_is_false(json_object_get(cfg, "do_basic_tokenize"))) {
        st = ember_fail(EMBER_ERR_UNSUPPORTED, "%s/tokenizer_config.json: do_basic_tokenize=false is not supported",
                        dir);
        goto done;
    }
    tok->model_max_length = read_model_max_length(cfg);
    if (!path_join(path, sizeof path, dir, "vocab.txt")) {
        st = ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
        goto done;
    }
    st = read_vocab_txt(tok, path);
    if (!st)
        st = finish_specials(tok, path, special_name(cfg, map, "unk_token", "[UNK]"),
                             special_name(cfg, map, "cls_token", "[CLS]"),
                             special_name(cfg, map, "sep_token", "[SEP]"),
                             special_name(cfg, map, "pad_token", "[PAD]"),
                             special_name(cfg, map, "mask_token", "[MASK]"));
done:
    json_decref(cfg);
    json_decref(map);
    return st;
}

/* ---- tokenizer.json ------------------------------------------------------- */

static ember_status parse_template(tokenizer *tok, const char *path, json_t *items, template_item *out,
                                   int *n_out, int cap) {
    if (!json_is_array(items))
        return ember_fail(EMBER_ERR_FORMAT, "%s: post_processor template is not a list", path);
    size_t i;
    json_t *it;
    int n = 0;
    json_array_foreach(items, i, it) {
        if (n == cap) return ember_fail(EMBER_ERR_UNSUPPORTED, "%s: post_processor template too long", path);
        json_t *sp = json_object_get(it, "SpecialToken"), *sq = json_object_get(it, "Sequence");
        if (sp) {
            const char *name = json_string_value(json_object_get(sp, "id"));
            int32_t id = token_id(tok, name);
            if (id < 0)
                return ember_fail(EMBER_ERR_FORMAT, "%s: post_processor token '%s' is not in the vocabulary",
                                  path, name ? name : "?");
            out[n++] = (template_item){-1, id, (int32_t)json_integer_value(json_object_get(sp, "type_id"))};
        } else if (sq) {
            const char *which = json_string_value(json_object_get(sq, "id"));
            if (!which || (strcmp(which, "A") && strcmp(which, "B")))
                return ember_fail(EMBER_ERR_FORMAT, "%s: post_processor sequence id must be A or B", path);
            out[n++] = (template_item){which[0] == 'B', 0,
                                       (int32_t)json_integer_value(json_object_get(sq, "type_id"))};
        } else {
            return ember_fail(EMBER_ERR_FORMAT, "%s: post_processor template item is neither SpecialToken nor Sequence",
                              path);
        }
    }
    *n_out = n;
    return EMBER_OK;
}

/* tokenizer.json's normalizer (BertNormalizer) and pre-tokenizer
 * (BertPreTokenizer). */
static ember_status json_normalizer(tokenizer *tok, json_t *root, const char *path) {
    json_t *norm = json_object_get(root, "normalizer");
    const char *nt = json_string_value(json_object_get(norm, "type"));
    if (!nt || strcmp(nt, "BertNormalizer") != 0)
        return ember_fail(EMBER_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported (only BertNormalizer)", path,
                          nt ? nt : "null");
    tok->clean_text = !json_is_false(json_object_get(norm, "clean_text"));
    tok->handle_chinese_chars = !json_is_false(json_object_get(norm, "handle_chinese_chars"));
    tok->lowercase = !json_is_false(json_object_get(norm, "lowercase"));
    json_t *v = json_object_get(norm, "strip_accents");
    tok->strip_accents = json_is_boolean(v) ? json_is_true(v) : tok->lowercase;
    json_t *pre = json_object_get(root, "pre_tokenizer");
    const char *pt = json_string_value(json_object_get(pre, "type"));
    if (!pt || strcmp(pt, "BertPreTokenizer") != 0)
        return ember_fail(EMBER_ERR_UNSUPPORTED, "%s: pre_tokenizer '%s' is not supported (only BertPreTokenizer)",
                          path, pt ? pt : "null");
    return EMBER_OK;
}

/* The WordPiece model: its settings and the id of every vocabulary entry
 * and added token (added tokens may reach past the vocabulary). */
static ember_status json_wordpiece(tokenizer *tok, json_t *root, const char *path) {
    json_t *model = json_object_get(root, "model"), *v;
    const char *mt = json_string_value(json_object_get(model, "type"));
    if (!mt || strcmp(mt, "WordPiece") != 0)
        return ember_fail(EMBER_ERR_UNSUPPORTED, "%s: tokenizer model '%s' is not supported (only WordPiece)", path,
                          mt ? mt : "null");
    const char *prefix = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    if (prefix) {
        if (strlen(prefix) >= sizeof tok->prefix)
            return ember_fail(EMBER_ERR_FORMAT, "%s: continuing_subword_prefix too long", path);
        strcpy(tok->prefix, prefix);
    }
    if (json_is_integer(v = json_object_get(model, "max_input_chars_per_word")))
        tok->max_word_chars = (int32_t)json_integer_value(v);
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab) || json_object_size(vocab) == 0)
        return ember_fail(EMBER_ERR_FORMAT, "%s: model.vocab is missing or empty", path);
    int32_t max_id = -1;
    const char *key;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 10000000)
            return ember_fail(EMBER_ERR_FORMAT, "%s: vocab entry '%s' has no valid id", path, key);
        if (json_integer_value(v) > max_id) max_id = (int32_t)json_integer_value(v);
    }
    size_t i;
    json_t *added = json_object_get(root, "added_tokens");
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (id > max_id && id < 10000000) max_id = (int32_t)id;
    }
    tok->n_ids = max_id + 1;
    tok->id_text = calloc((size_t)tok->n_ids, sizeof *tok->id_text);
    if (!tok->id_text) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    json_object_foreach(vocab, key, v) {
        int32_t id = (int32_t)json_integer_value(v);
        free(tok->id_text[id]);
        tok->id_text[id] = strdup(key);
    }
    json_array_foreach(added, i, v) {
        const char *content = json_string_value(json_object_get(v, "content"));
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (content && id >= 0 && id < tok->n_ids && !tok->id_text[id]) tok->id_text[id] = strdup(content);
    }
    ember_status st = tokenizer_index_vocab(tok);
    if (st) return st;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    tok->unk_id = token_id(tok, unk ? unk : "[UNK]");
    if (tok->unk_id < 0)
        return ember_fail(EMBER_ERR_FORMAT, "%s: unk_token '%s' is not in the vocabulary", path, unk ? unk : "[UNK]");
    return EMBER_OK;
}

/* The added tokens: matched in the raw text before normalisation, or
 * (normalized) in the normalised text; lstrip / rstrip take the whitespace
 * beside them (raw-text ones). */
static ember_status json_added_tokens(tokenizer *tok, json_t *root, const char *path) {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "added_tokens"), i, v) {
        const char *content = json_string_value(json_object_get(v, "content"));
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (!content || id < 0 || id >= tok->n_ids)
            return ember_fail(EMBER_ERR_FORMAT, "%s: added_tokens[%zu] has no content or a bad id", path, i);
        const int normalized = json_is_true(json_object_get(v, "normalized"));
        const int lstrip = json_is_true(json_object_get(v, "lstrip")), rstrip = json_is_true(json_object_get(v, "rstrip"));
        if (json_is_true(json_object_get(v, "single_word")) || (normalized && (lstrip || rstrip)))
            return ember_fail(EMBER_ERR_UNSUPPORTED,
                              "%s: added token '%s' uses single_word, or lstrip/rstrip with normalized: not supported",
                              path, content);
        const int before = tok->n_added;
        ember_status st = add_added(tok, content, (int32_t)id, json_is_true(json_object_get(v, "special")));
        if (st) return st;
        if (tok->n_added == before) continue; /* a duplicate: the first one stands */
        tok->added[before].lstrip = lstrip;
        tok->added[before].rstrip = rstrip;
        if (normalized && (st = make_normalized(tok, path))) return st;
    }
    return EMBER_OK;
}

/* The padding token: tokenizer_config.json's pad_token, else tokenizer.json's
 * padding, else [PAD] (id 0 when none is in the vocabulary). */
static void json_pad(tokenizer *tok, json_t *root, json_t *cfg) {
    const char *name = special_name(cfg, NULL, "pad_token", NULL);
    if (!name) name = json_string_value(json_object_get(json_object_get(root, "padding"), "pad_token"));
    int32_t pad = token_id(tok, name ? name : "[PAD]");
    tok->pad_id = pad >= 0 ? pad : 0;
}

/* Each sequence of a template exactly once (tokenizers refuses others too):
 * the single template $A, the pair template $A and $B. The encoder counts
 * its output as the pieces plus the special tokens. */
static ember_status check_template(const char *path, const char *which, const template_item *t, int n, int seqs) {
    int count[2] = {0, 0};
    for (int i = 0; i < n; i++)
        if (t[i].sequence >= 0) count[t[i].sequence]++;
    if (count[0] != 1 || count[1] != (seqs == 2))
        return ember_fail(EMBER_ERR_FORMAT,
                          "%s: post_processor's %s template must hold %s exactly once (it has A %d time%s, B %d)",
                          path, which, seqs == 2 ? "sequences A and B" : "sequence A (and no B)", count[0],
                          count[0] == 1 ? "" : "s", count[1]);
    return EMBER_OK;
}

/* The post-processor: TemplateProcessing or BertProcessing. */
static ember_status json_post_processor(tokenizer *tok, json_t *root, const char *path) {
    json_t *post = json_object_get(root, "post_processor");
    const char *ppt = json_string_value(json_object_get(post, "type"));
    if (ppt && strcmp(ppt, "TemplateProcessing") == 0) {
        ember_status st = parse_template(tok, path, json_object_get(post, "single"), tok->single, &tok->n_single, 8);
        if (!st) st = parse_template(tok, path, json_object_get(post, "pair"), tok->pair, &tok->n_pair, 16);
        if (!st) st = check_template(path, "single", tok->single, tok->n_single, 1);
        if (!st) st = check_template(path, "pair", tok->pair, tok->n_pair, 2);
        return st;
    }
    if (ppt && strcmp(ppt, "RobertaProcessing") == 0) {
        /* <s> $A </s> and <s> $A </s> </s> $B </s>, every type id 0 */
        int32_t c = token_id(tok, json_string_value(json_array_get(json_object_get(post, "cls"), 0)));
        int32_t p = token_id(tok, json_string_value(json_array_get(json_object_get(post, "sep"), 0)));
        if (c < 0 || p < 0)
            return ember_fail(EMBER_ERR_FORMAT, "%s: RobertaProcessing cls/sep tokens are not in the vocabulary", path);
        json_t *trim = json_object_get(post, "trim_offsets");
        tok->trim_offsets = !json_is_false(trim);
        if (tok->trim_offsets && json_is_true(json_object_get(post, "add_prefix_space")))
            return ember_fail(EMBER_ERR_UNSUPPORTED,
                              "%s: RobertaProcessing with trim_offsets and add_prefix_space is not supported", path);
        template_item single[] = {{-1, c, 0}, {0, 0, 0}, {-1, p, 0}};
        template_item pair[] = {{-1, c, 0}, {0, 0, 0}, {-1, p, 0}, {-1, p, 0}, {1, 0, 0}, {-1, p, 0}};
        memcpy(tok->single, single, sizeof single);
        memcpy(tok->pair, pair, sizeof pair);
        tok->n_single = 3;
        tok->n_pair = 6;
        return EMBER_OK;
    }
    if (ppt && strcmp(ppt, "BertProcessing") == 0) {
        json_t *cls = json_object_get(post, "cls"), *sep = json_object_get(post, "sep");
        int32_t c = token_id(tok, json_string_value(json_array_get(cls, 0)));
        int32_t s = token_id(tok, json_string_value(json_array_get(sep, 0)));
        if (c < 0 || s < 0)
            return ember_fail(EMBER_ERR_FORMAT, "%s: BertProcessing cls/sep tokens are not in the vocabulary", path);
        bert_template(tok, c, s);
        return EMBER_OK;
    }
    return ember_fail(EMBER_ERR_UNSUPPORTED,
                      "%s: post_processor '%s' is not supported (TemplateProcessing, BertProcessing or "
                      "RobertaProcessing)",
                      path,
                      ppt ? ppt : "null");
}

static ember_status load_tokenizer_json(tokenizer *tok, const char *dir, const char *path) {
    ember_status st = EMBER_OK;
    json_t *root = load_json(path, &st);
    if (!root) return st;
    json_t *cfg = NULL;
    char cpath[4096];
    if (path_join(cpath, sizeof cpath, dir, "tokenizer_config.json") && file_exists(cpath)) {
        cfg = load_json(cpath, &st);
        if (!cfg) {
            json_decref(root);
            return st;
        }
    }
    set_defaults(tok);
    tok->model_max_length = read_model_max_length(cfg);
    if (!(st = json_normalizer(tok, root, path)) && !(st = json_wordpiece(tok, root, path)) &&
        !(st = json_added_tokens(tok, root, path)))
        st = json_post_processor(tok, root, path);
    if (!st) json_pad(tok, root, cfg);
    json_decref(root);
    json_decref(cfg);
    if (st) tokenizer_free(tok);
    return st;
}

ember_status tokenizer_load_dir(tokenizer *tok, const char *dir) {
    char path[4096];
    if (!path_join(path, sizeof path, dir, "tokenizer.json"))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    if (file_exists(path)) return load_tokenizer_json(tok, dir, path);
    if (!path_join(path, sizeof path, dir, "vocab.txt") || !file_exists(path))
        return ember_fail(EMBER_ERR_IO, "%s: no tokenizer.json or vocab.txt in the model directory", dir);
    ember_status st = load_vocab_dir(tok, dir);
    if (st) tokenizer_free(tok);
    return st;
}
