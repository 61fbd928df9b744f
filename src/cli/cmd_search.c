/* ember search: embed a corpus and queries, print the closest corpus entries. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *usage =
    "usage: ember search [options] --corpus FILE (--query TEXT | --queries FILE)...\n"
    "\n"
    "Embed every line of the corpus and each query, then print, for each query,\n"
    "the k corpus lines with the highest cosine similarity.\n"
    "\n"
    "  -c, --corpus FILE        one entry per line (- for stdin)\n"
    "  -q, --query TEXT         a query (repeatable)\n"
    "      --queries FILE       more queries, one per line\n"
    "  -k, --top N              entries per query (default 3)\n"
    "      --json               one JSON line per query instead of text\n" MODEL_OPTIONS_HELP "  -h, --help\n";

int cmd_search(int argc, char **argv) {
    model_opts mo;
    model_opts_init(&mo);
    const char *corpus_path = NULL;
    int32_t k = 3;
    int json = 0;
    str_list queries = {0}, corpus = {0};
    static struct option opts[] = {{"corpus", required_argument, 0, 'c'}, {"query", required_argument, 0, 'q'},
                                   {"queries", required_argument, 0, 'Q'}, {"top", required_argument, 0, 'k'},
                                   {"json", no_argument, 0, 'j'},         {"help", no_argument, 0, 'h'},
                                   MODEL_OPTIONS,                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:q:k:hm:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': corpus_path = optarg; break;
        case 'q':
            if (str_list_add(&queries, optarg, strlen(optarg)) != EMBER_OK) return cli_fail();
            break;
        case 'Q':
            if (str_list_read(&queries, optarg, 0) != EMBER_OK) return cli_fail();
            break;
        case 'k':
            if (!parse_int(optarg, "--top", 1, 1 << 20, &k)) return 2;
            break;
        case 'j': json = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            if (c == '?' || !model_opts_parse(&mo, c, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (optind < argc) die_usage("search", "unexpected argument '%s'", argv[optind]);
    if (!corpus_path) die_usage("search", "--corpus FILE is required");
    if (queries.n == 0) die_usage("search", "give at least one --query or --queries FILE");
    if (str_list_read(&corpus, corpus_path, 0) != EMBER_OK) return cli_fail();
    if (corpus.n == 0) {
        fprintf(stderr, "ember: error: %s: the corpus is empty\n", corpus_path);
        return 1;
    }
    ember_model *m = model_opts_load(&mo);
    if (!m) return 1;
    ember_model_info info;
    ember_model_get_info(m, &info);
    const int32_t D = info.dim;
    float *cv = malloc((size_t)corpus.n * D * sizeof *cv), *qv = malloc((size_t)queries.n * D * sizeof *qv);
    int32_t *order = malloc((size_t)corpus.n * sizeof *order);
    float *score = malloc((size_t)corpus.n * sizeof *score);
    int rc = 1;
    if (!cv || !qv || !order || !score) {
        fprintf(stderr, "ember: error: out of memory\n");
        goto done;
    }
    if (ember_encode(m, (const char *const *)corpus.s, corpus.len, corpus.n, NULL, cv, NULL) != EMBER_OK ||
        ember_encode(m, (const char *const *)queries.s, queries.len, queries.n, NULL, qv, NULL) != EMBER_OK) {
        fprintf(stderr, "ember: error: %s\n", ember_last_error());
        goto done;
    }
    if (k > corpus.n) k = corpus.n;
    for (int32_t q = 0; q < queries.n; q++) {
        for (int32_t i = 0; i < corpus.n; i++) {
            score[i] = ember_cosine(qv + (size_t)q * D, cv + (size_t)i * D, D);
            order[i] = i;
        }
        /* partial selection sort: k is small */
        for (int32_t a = 0; a < k; a++) {
            int32_t best = a;
            for (int32_t b = a + 1; b < corpus.n; b++)
                if (score[order[b]] > score[order[best]]) best = b;
            int32_t t = order[a];
            order[a] = order[best];
            order[best] = t;
        }
        if (json) {
            fputs("{\"query\": ", stdout);
            json_write_string(stdout, queries.s[q], (size_t)queries.len[q]);
            fputs(", \"results\": [", stdout);
            for (int32_t a = 0; a < k; a++) {
                printf("%s{\"index\": %d, \"score\": %.7f, \"text\": ", a ? ", " : "", order[a], score[order[a]]);
                json_write_string(stdout, corpus.s[order[a]], (size_t)corpus.len[order[a]]);
                putchar('}');
            }
            fputs("]}\n", stdout);
        } else {
            printf("%squery: %s\n", q ? "\n" : "", queries.s[q]);
            for (int32_t a = 0; a < k; a++) printf("  %.4f  %s\n", score[order[a]], corpus.s[order[a]]);
        }
    }
    rc = 0;
done:
    free(cv);
    free(qv);
    free(order);
    free(score);
    str_list_free(&queries);
    str_list_free(&corpus);
    ember_model_free(m);
    return rc;
}
