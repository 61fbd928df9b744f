/* ember rerank: score each line of a file against a query with a
 * cross-encoder (BertForSequenceClassification with one label), best first. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *usage =
    "usage: ember rerank [options] --query TEXT FILE\n"
    "\n"
    "Score each line of FILE (- for stdin; plain or .gz) as the pair (query, line) with\n"
    "a cross-encoder, a BertForSequenceClassification with one label, and print the\n"
    "lines best first (ties by line). Scores are the sigmoid of the logit, as\n"
    "sentence-transformers' CrossEncoder gives them, or the logit (--raw-scores).\n"
    "Pairs over the model's length are cut longest text first.\n"
    "\n"
    "  -q, --query TEXT         the query\n"
    "  -k, --top N              print the best N lines (default: all)\n"
    "      --raw-scores         the classifier's logits, not their sigmoid\n"
    "      --json               one JSON line: {\"query\", \"results\": [{\"index\", \"score\",\n"
    "                           \"text\"}, ...]}; index is the line's, from 0\n" MODEL_OPTIONS_HELP
    "  -h, --help\n";

typedef struct {
    model_opts mo;
    const char *query, *path;
    int32_t k;
    int raw, json;
} rerank_cli;

static int rerank_parse(int argc, char **argv, rerank_cli *c) {
    memset(c, 0, sizeof *c);
    model_opts_init(&c->mo);
    enum { OPT_RAW = 3000 };
    static const struct option opts[] = {{"query", required_argument, 0, 'q'},
                                         {"top", required_argument, 0, 'k'},
                                         {"raw-scores", no_argument, 0, OPT_RAW},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         MODEL_OPTIONS,
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "q:k:hm:", opts, NULL)) != -1) {
        switch (o) {
        case 'q': c->query = optarg; break;
        case 'k':
            if (!parse_int(optarg, "--top", 1, 1 << 30, &c->k)) return 2;
            break;
        case OPT_RAW: c->raw = 1; break;
        case 'j': c->json = 1; break;
        case 'h': fputs(usage, stdout); return -1;
        default:
            if (o == '?' || !model_opts_parse(&c->mo, o, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (!c->query) die_usage("rerank", "give the query with --query TEXT");
    if (optind >= argc) die_usage("rerank", "give the FILE of texts to rank");
    if (optind + 1 < argc) die_usage("rerank", "unexpected argument '%s'", argv[optind + 1]);
    c->path = argv[optind];
    return 0;
}

typedef struct {
    float score;
    int32_t index;
} ranked;

static int by_score(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    return (a->index > b->index) - (a->index < b->index);
}

static int rerank_run(const rerank_cli *c) {
    str_list texts = {0};
    if (str_list_read(&texts, c->path, 0) != EMBER_OK) return cli_fail();
    ember_model *m = model_opts_load(&c->mo);
    const int32_t n = texts.n;
    float *scores = malloc(((size_t)n + 1) * sizeof *scores);
    ranked *r = malloc(((size_t)n + 1) * sizeof *r);
    const char **queries = malloc(((size_t)n + 1) * sizeof *queries);
    int rc = 1;
    if (!m) goto done;
    if (!scores || !r || !queries) {
        fprintf(stderr, "ember: error: out of memory\n");
        goto done;
    }
    ember_model_info info;
    ember_model_get_info(m, &info);
    if (info.num_labels != 1) {
        if (info.num_labels == 0)
            fprintf(stderr, "ember: error: %s is not a cross-encoder (config.json's architectures is not "
                            "BertForSequenceClassification): rerank needs one\n", info.dir);
        else
            fprintf(stderr, "ember: error: %s is a classifier with %d labels; rerank needs a model with one label "
                            "(a reranker)\n", info.dir, info.num_labels);
        goto done;
    }
    for (int32_t i = 0; i < n; i++) queries[i] = c->query;
    ember_score_params sp = ember_score_default_params();
    sp.raw = c->raw;
    if (ember_score_pairs(m, queries, (const char *const *)texts.s, n, &sp, scores, NULL) != EMBER_OK) {
        cli_fail();
        goto done;
    }
    for (int32_t i = 0; i < n; i++) r[i] = (ranked){scores[i], i};
    qsort(r, (size_t)n, sizeof *r, by_score);
    const int32_t k = c->k && c->k < n ? c->k : n;
    if (c->json) {
        fputs("{\"query\": ", stdout);
        json_write_string(stdout, c->query, strlen(c->query));
        fputs(", \"results\": [", stdout);
        for (int32_t i = 0; i < k; i++) {
            printf("%s{\"index\": %d, \"score\": %.7g, \"text\": ", i ? ", " : "", r[i].index, (double)r[i].score);
            json_write_string(stdout, texts.s[r[i].index], (size_t)texts.len[r[i].index]);
            putchar('}');
        }
        fputs("]}\n", stdout);
    } else {
        printf("query: %s\n", c->query);
        for (int32_t i = 0; i < k; i++) printf("  %.4f  %s\n", r[i].score, texts.s[r[i].index]);
    }
    rc = 0;
done:
    free(scores);
    free(r);
    free(queries);
    str_list_free(&texts);
    ember_model_free(m);
    return rc;
}

int cmd_rerank(int argc, char **argv) {
    rerank_cli c;
    int rc = rerank_parse(argc, argv, &c);
    if (rc == 0) rc = rerank_run(&c);
    return rc < 0 ? 0 : rc;
}
