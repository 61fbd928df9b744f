/* The tokenizer against Hugging Face `tokenizers`: every code point, every
 * STS-B sentence in seven languages and a stress set, for an uncased and a
 * cased vocabulary — ids (and type ids, offsets, special mask) identical. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#define TOKDATA SRC_PATH("tests/data/tokenizer/")
#define CASED_VOCAB TOKDATA "cased-vocab.txt"

static void load_uncased_json(tokenizer *t) {
    REQUIRE_MINILM();
    cr_assert_eq(tokenizer_load_dir(t, MINILM_DIR), EMBER_OK, "%s", ember_last_error());
}

static void load_uncased_vocab(tokenizer *t) {
    REQUIRE_MINILM();
    cr_assert_eq(tokenizer_load_vocab(t, MINILM_DIR "/vocab.txt", 1, 1, 1), EMBER_OK, "%s", ember_last_error());
}

/* all-mpnet-base-v2's tokenizer (RobertaProcessing, <mask> with lstrip): its
 * tokenizer files are committed (tokenizer.json gzipped, tests/data/tokenizer/mpnet;
 * the model itself is not fetched by tools/setup.sh), unpacked to a temporary
 * directory and loaded as the model's directory would be. */
static void load_mpnet(tokenizer *t) {
    char *d = copy_dir(TOKDATA "mpnet");
    size_t n;
    char **json = read_lines(TOKDATA "mpnet/tokenizer.json.gz", &n);
    cr_assert_eq(n, 1, "tokenizer.json is one line");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", d);
    write_file(path, json[0]);
    free_lines(json, n);
    cr_assert_eq(tokenizer_load_dir(t, d), EMBER_OK, "%s", ember_last_error());
    remove_dir(d);
}

static void load_cased(tokenizer *t) {
    cr_assert_eq(tokenizer_load_vocab(t, CASED_VOCAB, 0, 0, 1), EMBER_OK, "%s", ember_last_error());
}

/* ---- every code point --------------------------------------------------- */

static void norm_one(const tokenizer *t, tokenizer_scratch *s, int32_t cp, int32_t *out, size_t *n) {
    char buf[4];
    int len = utf8_encode(cp, buf);
    int32_t invalid = 0;
    cr_assert_eq(tokenizer_normalize(t, buf, (size_t)len, s, &invalid), EMBER_OK);
    cr_assert_eq(invalid, 0);
    for (size_t i = 0; i < s->n_cp; i++) out[i] = s->cp[i];
    *n = s->n_cp;
}

static size_t parse_hex_list(const char *p, int32_t *out) {
    size_t n = 0;
    if (p[0] == '-') return 0;
    while (*p) {
        char *end;
        out[n++] = (int32_t)strtol(p, &end, 16);
        if (end == p) break;
        p = end;
        while (*p == ' ') p++;
    }
    return n;
}

Test(unicode, every_code_point_as_tokenizers) {
    static uint8_t want_class[0x110000];
    static int32_t strip_to[0x110000][4], lower_to[0x110000][4];
    static uint8_t strip_n[0x110000], lower_n[0x110000], has_strip[0x110000], has_lower[0x110000];
    size_t n;
    char **lines = read_lines(TOKDATA "codepoints.tsv", &n);
    size_t runs = 0;
    for (size_t i = 0; i < n; i++) {
        const char *l = lines[i];
        if (l[0] == 'R') {
            unsigned a, b;
            char k, j, p;
            cr_assert_eq(sscanf(l, "R %x %x %c %c %c", &a, &b, &k, &j, &p), 5, "line %zu", i);
            uint8_t c = (uint8_t)((k == 'r' ? UC_REMOVE : 0) | (k == 's' ? UC_SPACE : 0) | (j == '1' ? UC_CJK : 0) |
                                  (p == 'p' ? UC_PUNCT : 0) | (p == 'w' ? UC_WS : 0));
            for (unsigned cp = a; cp <= b; cp++) want_class[cp] = c;
            runs++;
        } else if (l[0] == 'S' || l[0] == 'L') {
            unsigned cp;
            int at;
            cr_assert_eq(sscanf(l + 2, "%x%n", &cp, &at), 1);
            int32_t tmp[8];
            size_t k = parse_hex_list(l + 2 + at + 1, tmp);
            cr_assert(k <= 4);
            if (l[0] == 'S') {
                memcpy(strip_to[cp], tmp, k * sizeof *tmp);
                strip_n[cp] = (uint8_t)k;
                has_strip[cp] = 1;
            } else {
                memcpy(lower_to[cp], tmp, k * sizeof *tmp);
                lower_n[cp] = (uint8_t)k;
                has_lower[cp] = 1;
            }
        }
    }
    free_lines(lines, n);
    cr_assert_gt(runs, 100, "codepoints.tsv looks empty");

    tokenizer clean = {0}, cjk = {0}, strip = {0}, lower = {0};
    clean.clean_text = 1;
    cjk.handle_chinese_chars = 1;
    strip.strip_accents = 1;
    lower.lowercase = 1;
    tokenizer_scratch s = {0};
    long bad = 0;
    const uint8_t pre_mask = UC_PUNCT | UC_WS;
    for (int32_t cp = 0; cp < 0x110000 && bad < 20; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        int32_t out[16];
        size_t k;
        uint8_t w = want_class[cp];
        /* clean_text */
        norm_one(&clean, &s, cp, out, &k);
        int ok = (w & UC_REMOVE) ? k == 0 : (w & UC_SPACE) ? (k == 1 && out[0] == ' ') : (k == 1 && out[0] == cp);
        /* handle_chinese_chars */
        norm_one(&cjk, &s, cp, out, &k);
        ok = ok && ((w & UC_CJK) ? (k == 3 && out[0] == ' ' && out[1] == cp && out[2] == ' ') : (k == 1 && out[0] == cp));
        /* the pre-tokenizer's classes */
        ok = ok && (unicode_class(cp) & pre_mask) == (w & pre_mask);
        if (!ok) {
            cr_log_error("U+%04X: class %02x, tokenizers %02x", cp, unicode_class(cp), w);
            bad++;
            continue;
        }
        /* strip_accents: NFD, then drop nonspacing marks */
        norm_one(&strip, &s, cp, out, &k);
        const int32_t *exp = has_strip[cp] ? strip_to[cp] : &cp;
        size_t ek = has_strip[cp] ? strip_n[cp] : 1;
        if (k != ek || memcmp(out, exp, k * sizeof *out) != 0) {
            cr_log_error("U+%04X: strip_accents gives %zu code points (first U+%04X), tokenizers %zu (first U+%04X)",
                         cp, k, k ? out[0] : 0, ek, ek ? exp[0] : 0);
            bad++;
        }
        norm_one(&lower, &s, cp, out, &k);
        exp = has_lower[cp] ? lower_to[cp] : &cp;
        ek = has_lower[cp] ? lower_n[cp] : 1;
        if (k != ek || memcmp(out, exp, k * sizeof *out) != 0) {
            cr_log_error("U+%04X: lowercase gives U+%04X (%zu), tokenizers U+%04X (%zu)", cp, k ? out[0] : 0, k,
                         ek ? exp[0] : 0, ek);
            bad++;
        }
    }
    tokenizer_scratch_free(&s);
    cr_assert_eq(bad, 0, "%ld code points differ from tokenizers (first ones logged)", bad);
}

/* ---- STS-B, seven languages ---------------------------------------------------- */

static const char *stsb_files[] = {"stsb-de-test.csv", "stsb-en-test.csv", "stsb-es-test.csv", "stsb-fr-test.csv",
                                   "stsb-ja-test.csv", "stsb-ru-test.csv", "stsb-zh-test.csv"};

static void check_stsb(tokenizer *t, const char *ref_path) {
    size_t n_ref;
    char **ref = read_lines(ref_path, &n_ref);
    tokenizer_scratch s = {0};
    piece_list a = {0}, b = {0};
    ember_token toks[1024];
    int32_t want[1024];
    size_t k = 0, bad = 0;
    for (size_t f = 0; f < sizeof stsb_files / sizeof *stsb_files; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", STSB_DIR, stsb_files[f]);
        size_t rows;
        stsb_row *r = stsb_read(path, &rows);
        cr_assert_eq(rows, 1379, "%s: %zu rows", path, rows);
        for (size_t i = 0; i < rows; i++) {
            const char *sent[2] = {r[i].s1, r[i].s2};
            for (int j = 0; j < 2; j++, k++) {
                cr_assert_lt(k, n_ref, "%s has fewer lines than the sentences", ref_path);
                int32_t n;
                cr_assert_eq(tokenizer_tokenize(t, &s, &a, &b, sent[j], strlen(sent[j]), NULL, 0, 1, 0, 0, 0, toks,
                                                1024, &n, NULL),
                             EMBER_OK);
                size_t nw = parse_ids(ref[k], want, 1024);
                int same = (size_t)n == nw;
                for (int32_t q = 0; same && q < n; q++) same = toks[q].id == want[q];
                if (!same && bad++ < 5)
                    cr_log_error("%s row %zu sentence %d: '%s': %d ids, Hugging Face %zu (%s)", stsb_files[f], i + 1,
                                 j + 1, sent[j], n, nw, ref[k]);
            }
        }
        stsb_free(r, rows);
    }
    cr_assert_eq(k, n_ref, "%zu sentences, %zu reference lines", k, n_ref);
    cr_assert_eq(bad, 0, "%zu of %zu STS-B sentences tokenized differently from Hugging Face", bad, k);
    tokenizer_scratch_free(&s);
    piece_list_free(&a);
    piece_list_free(&b);
    free_lines(ref, n_ref);
}

Test(stsb, uncased_tokenizer_json) {
    tokenizer t;
    load_uncased_json(&t);
    check_stsb(&t, TOKDATA "stsb-uncased.txt.gz");
    tokenizer_free(&t);
}

Test(stsb, uncased_vocab_txt) {
    tokenizer t;
    load_uncased_vocab(&t);
    check_stsb(&t, TOKDATA "stsb-uncased.txt.gz");
    tokenizer_free(&t);
}

Test(stsb, cased) {
    tokenizer t;
    load_cased(&t);
    check_stsb(&t, TOKDATA "stsb-cased.txt.gz");
    tokenizer_free(&t);
}

Test(stsb, mpnet) {
    tokenizer t;
    load_mpnet(&t);
    check_stsb(&t, TOKDATA "stsb-mpnet.txt.gz");
    tokenizer_free(&t);
}

/* ---- the stress set --------------------------------------------------------------- */

static int int_array_eq(json_t *arr, const ember_token *t, int32_t n, int what) {
    if (!json_is_array(arr) || json_array_size(arr) != (size_t)n) return 0;
    for (int32_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, (size_t)i);
        if (what == 3) {
            if (json_integer_value(json_array_get(v, 0)) != t[i].start ||
                json_integer_value(json_array_get(v, 1)) != t[i].end)
                return 0;
            continue;
        }
        int32_t got = what == 0 ? t[i].id : what == 1 ? t[i].type_id : t[i].special;
        if (json_integer_value(v) != got) return 0;
    }
    return 1;
}

static void check_stress(tokenizer *t, const char *ref_path) {
    size_t n;
    char **lines = read_lines(ref_path, &n);
    cr_assert_gt(n, 500);
    tokenizer_scratch s = {0};
    piece_list a = {0}, b = {0};
    int32_t cap = 20000;
    ember_token *toks = malloc((size_t)cap * sizeof *toks);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        json_error_t err;
        json_t *c = json_loads(lines[i], JSON_ALLOW_NUL, &err);
        cr_assert(c, "%s:%zu: %s", ref_path, i + 1, err.text);
        char *text;
        size_t len;
        json_t *hex = json_object_get(c, "hex");
        if (hex) {
            const char *h = json_string_value(hex);
            len = strlen(h) / 2;
            text = malloc(len + 1);
            for (size_t q = 0; q < len; q++) sscanf(h + 2 * q, "%2hhx", (unsigned char *)&text[q]);
        } else {
            len = json_string_length(json_object_get(c, "text"));
            text = malloc(len + 1);
            memcpy(text, json_string_value(json_object_get(c, "text")), len);
        }
        text[len] = '\0';
        json_t *pair = json_object_get(c, "pair"), *ml = json_object_get(c, "max_length");
        int32_t nt;
        ember_text_stats st;
        ember_status rc = tokenizer_tokenize(t, &s, &a, &b, text, len, pair ? json_string_value(pair) : NULL,
                                             pair ? json_string_length(pair) : 0, 1, ml != NULL,
                                             json_is_true(json_object_get(c, "left")),
                                             ml ? (int32_t)json_integer_value(ml) : 0, toks, cap, &nt, &st);
        cr_assert_eq(rc, EMBER_OK, "case %zu", i + 1);
        const char *what = NULL;
        if (!int_array_eq(json_object_get(c, "ids"), toks, nt, 0)) what = "ids";
        else if (!int_array_eq(json_object_get(c, "type_ids"), toks, nt, 1)) what = "type_ids";
        else if (!int_array_eq(json_object_get(c, "special"), toks, nt, 2)) what = "special tokens mask";
        else if (json_object_get(c, "offsets") && !int_array_eq(json_object_get(c, "offsets"), toks, nt, 3))
            what = "offsets";
        if (hex && !what && st.invalid_utf8 == 0) what = "invalid UTF-8 count (0)";
        if (what && bad++ < 8) {
            char ours[512];
            size_t o = 0;
            for (int32_t q = 0; q < nt && o < sizeof ours - 32; q++)
                o += (size_t)snprintf(ours + o, sizeof ours - o, "%d(%d,%d) ", toks[q].id, toks[q].start, toks[q].end);
            cr_log_error("%s case %zu: %s differ\n  case: %.300s\n  ember: %s", ref_path, i + 1, what, lines[i], ours);
        }
        free(text);
        json_decref(c);
    }
    cr_assert_eq(bad, 0, "%zu of %zu stress cases differ from Hugging Face", bad, n);
    free(toks);
    tokenizer_scratch_free(&s);
    piece_list_free(&a);
    piece_list_free(&b);
    free_lines(lines, n);
}

Test(stress, uncased) {
    tokenizer t;
    load_uncased_json(&t);
    check_stress(&t, TOKDATA "stress-uncased.jsonl.gz");
    tokenizer_free(&t);
}

Test(stress, cased) {
    tokenizer t;
    load_cased(&t);
    check_stress(&t, TOKDATA "stress-cased.jsonl.gz");
    tokenizer_free(&t);
}

Test(stress, mpnet) {
    tokenizer t;
    load_mpnet(&t);
    check_stress(&t, TOKDATA "stress-mpnet.jsonl.gz");
    tokenizer_free(&t);
}

/* ---- llama.cpp's WordPiece cases (bge / bert-base-uncased vocabulary) ---------------- */

Test(wordpiece, bge_cases) {
    tokenizer t;
    load_uncased_json(&t);
    size_t size;
    char *inp = read_file(SRC_PATH("../shared/data/wordpiece-bge/cases.inp"), &size);
    size_t n_out;
    char **out = read_lines(SRC_PATH("../shared/data/wordpiece-bge/cases.out"), &n_out);
    const char *sep = "\n__ggml_vocab_test__\n";
    tokenizer_scratch s = {0};
    piece_list a = {0}, b = {0};
    ember_token toks[4096];
    int32_t want[4096];
    char *p = inp;
    size_t k = 0;
    for (;;) {
        char *e = strstr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!e && len > 0 && p[len - 1] == '\n') len--;
        if (!e && k == n_out) break;
        cr_assert_lt(k, n_out, "more inputs than outputs");
        int32_t n;
        cr_assert_eq(tokenizer_tokenize(&t, &s, &a, &b, p, len, NULL, 0, 0, 0, 0, 0, toks, 4096, &n, NULL), EMBER_OK);
        size_t nw = parse_ids(out[k], want, 4096);
        int same = (size_t)n == nw;
        for (int32_t q = 0; same && q < n; q++) same = toks[q].id == want[q];
        cr_expect(same, "case %zu ('%.*s'): %d ids, expected %zu: %s", k + 1, (int)len, p, n, nw, out[k]);
        k++;
        if (!e) break;
        p = e + strlen(sep);
    }
    cr_assert_eq(k, n_out, "%zu cases, %zu expected outputs", k, n_out);
    cr_assert_geq(k, 39);
    tokenizer_scratch_free(&s);
    piece_list_free(&a);
    piece_list_free(&b);
    free(inp);
    free_lines(out, n_out);
    tokenizer_free(&t);
}

/* ---- a post-processor template without its sequence (found by fuzz_tokenizer_files) ---- */

/* tokenizer.json whose TemplateProcessing holds `single` and `pair` as given. */
static ember_status load_template(const char *single, const char *pair) {
    char *d = copy_dir(TOKDATA "mpnet");
    char json[2048], path[4096];
    snprintf(json, sizeof json,
             "{\"added_tokens\": [], \"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": true},"
             " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
             " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": %s, \"pair\": %s},"
             " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": \"##\","
             " \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2, \"a\": 3}}}",
             single, pair);
    snprintf(path, sizeof path, "%s/tokenizer.json", d);
    write_file(path, json);
    tokenizer t;
    memset(&t, 0, sizeof t);
    ember_status st = tokenizer_load_dir(&t, d);
    if (st == EMBER_OK) tokenizer_free(&t);
    remove_dir(d);
    return st;
}

Test(template, each_sequence_exactly_once) {
    const char *cls = "{\"SpecialToken\": {\"id\": \"[CLS]\", \"type_id\": 0}}";
    const char *sep = "{\"SpecialToken\": {\"id\": \"[SEP]\", \"type_id\": 0}}";
    const char *A = "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}", *B = "{\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}";
    char single[512], pair[1024], no_a[512], two_a[512], pair_no_b[1024];
    snprintf(single, sizeof single, "[%s, %s, %s]", cls, A, sep);
    snprintf(pair, sizeof pair, "[%s, %s, %s, %s, %s]", cls, A, sep, B, sep);
    snprintf(no_a, sizeof no_a, "[%s, %s]", cls, sep);
    snprintf(two_a, sizeof two_a, "[%s, %s, %s]", A, sep, A);
    snprintf(pair_no_b, sizeof pair_no_b, "[%s, %s, %s]", cls, A, sep);
    cr_assert_eq(load_template(single, pair), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(load_template(no_a, pair), EMBER_ERR_FORMAT);
    cr_assert(strstr(ember_last_error(), "single template must hold sequence A"), "%s", ember_last_error());
    cr_assert_eq(load_template(two_a, pair), EMBER_ERR_FORMAT);
    cr_assert(strstr(ember_last_error(), "A 2 times"), "%s", ember_last_error());
    cr_assert_eq(load_template(single, pair_no_b), EMBER_ERR_FORMAT);
    cr_assert(strstr(ember_last_error(), "pair template must hold sequences A and B"), "%s", ember_last_error());
}
