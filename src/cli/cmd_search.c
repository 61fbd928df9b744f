/* ember search: the closest corpus entries to each query, by inner product
 * (cosine on normalised vectors). Over vectors ember embed stored
 * (--vectors: nothing re-embedded, the corpus file only shows the lines), or
 * over a small corpus embedded on the spot (--corpus alone). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/npy.h"
#include "common/quantize.h"

static const char *usage =
    "usage: ember search [options] (--vectors PATH | --corpus FILE) (-q TEXT | --queries FILE)...\n"
    "\n"
    "Print, for each query, the k corpus entries with the highest inner product\n"
    "(cosine similarity for normalised vectors), best first, ties by row.\n"
    "\n"
    "  -V, --vectors PATH       search what 'ember embed' stored: a directory of shards\n"
    "                           (its manifest says the model, dimensions and precision)\n"
    "                           or one .npy; nothing is re-embedded. int8, uint8, binary\n"
    "                           and ubinary vectors are searched as sentence-transformers\n"
    "                           does, then rescored (--rescore)\n"
    "  -c, --corpus FILE        one entry per line (- for stdin): with --vectors, the lines\n"
    "                           shown for the rows found; alone, embedded now and searched\n"
    "  -q, --query TEXT         a query (repeatable)\n"
    "      --queries FILE       more queries, one per line\n"
    "      --query-vectors F    queries already embedded: a .npy of float32 rows\n"
    "      --prompt-name NAME   put the model's prompt NAME (config_sentence_transformers.json's\n"
    "                           prompts, e.g. \"query\") before each query (default: the model's\n"
    "                           default_prompt_name; a corpus embedded now gets that default)\n"
    "      --prompt TEXT        put TEXT before each query (\"\": none)\n"
    "  -k, --top N              entries per query (default 3)\n"
    "      --rescore R          compact vectors: rescore R x k candidates with the float\n"
    "                           query (default 4; 0: the compact scores as they are)\n"
    "      --rescore-vectors P  ... against these float vectors of the same corpus (a float32\n"
    "                           or float16 run) instead of the compact ones as stored\n"
    "      --json               one JSON line per query instead of text\n" MODEL_OPTIONS_HELP
    "                           (--threads also sets the search's threads)\n"
    "  -h, --help\n";

typedef struct {
    model_opts mo;
    const char *corpus_path, *vectors, *query_vectors, *rescore_vectors;
    str_list queries;
    const char *prompt, *prompt_name; /* the queries' */
    int32_t k, rescore;
    int json;
} search_cli;

static int search_parse(int argc, char **argv, search_cli *c) {
    memset(c, 0, sizeof *c);
    model_opts_init(&c->mo);
    c->k = 3;
    c->rescore = 4;
    enum { OPT_QUERY_VECTORS = 3000, OPT_RESCORE, OPT_RESCORE_VECTORS, OPT_PROMPT, OPT_PROMPT_NAME };
    static const struct option opts[] = {{"corpus", required_argument, 0, 'c'},
                                         {"vectors", required_argument, 0, 'V'},
                                         {"query", required_argument, 0, 'q'},
                                         {"queries", required_argument, 0, 'Q'},
                                         {"query-vectors", required_argument, 0, OPT_QUERY_VECTORS},
                                         {"top", required_argument, 0, 'k'},
                                         {"rescore", required_argument, 0, OPT_RESCORE},
                                         {"rescore-vectors", required_argument, 0, OPT_RESCORE_VECTORS},
                                         {"json", no_argument, 0, 'j'},
                                         {"prompt", required_argument, 0, OPT_PROMPT},
                                         {"prompt-name", required_argument, 0, OPT_PROMPT_NAME},
                                         {"help", no_argument, 0, 'h'},
                                         MODEL_OPTIONS,
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:V:q:k:hm:", opts, NULL)) != -1) {
        switch (o) {
        case 'c': c->corpus_path = optarg; break;
        case 'V': c->vectors = optarg; break;
        case 'q':
            if (str_list_add(&c->queries, optarg, strlen(optarg)) != EMBER_OK) return cli_fail();
            break;
        case 'Q':
            if (str_list_read(&c->queries, optarg, 0) != EMBER_OK) return cli_fail();
            break;
        case OPT_QUERY_VECTORS: c->query_vectors = optarg; break;
        case 'k':
            if (!parse_int(optarg, "--top", 1, 1 << 20, &c->k)) return 2;
            break;
        case OPT_RESCORE:
            if (!parse_int(optarg, "--rescore", 0, 1000, &c->rescore)) return 2;
            break;
        case OPT_RESCORE_VECTORS: c->rescore_vectors = optarg; break;
        case 'j': c->json = 1; break;
        case OPT_PROMPT: c->prompt = optarg; break;
        case OPT_PROMPT_NAME: c->prompt_name = optarg; break;
        case 'h': fputs(usage, stdout); return -1;
        default:
            if (o == '?' || !model_opts_parse(&c->mo, o, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (optind < argc) die_usage("search", "unexpected argument '%s'", argv[optind]);
    if (!c->vectors && !c->corpus_path) die_usage("search", "give --vectors PATH or --corpus FILE");
    if (c->query_vectors && c->queries.n) die_usage("search", "give query texts or --query-vectors, not both");
    if (c->query_vectors && (c->prompt || c->prompt_name))
        die_usage("search", "--prompt and --prompt-name are for query texts, not --query-vectors");
    if (c->query_vectors && !c->vectors) die_usage("search", "--query-vectors searches --vectors");
    if (!c->query_vectors && c->queries.n == 0) die_usage("search", "give at least one --query or --queries FILE");
    return 0;
}

/* ---- the queries ---------------------------------------------------------------------- */

/* The queries as the index holds its vectors: embedded with the model that
 * made them (pooled as they were), cut to the index's dimension. */
static float *queries_embed(const search_cli *c, const ember_index_info *ix) {
    ember_model *m = model_opts_load(&c->mo);
    if (!m) return NULL;
    ember_model_info mi;
    ember_model_get_info(m, &mi);
    float *q = NULL;
    if (ix->model_name && strcmp(ix->model_name, mi.name) != 0) {
        fprintf(stderr, "ember: error: %s holds vectors of the model %s; the queries would be embedded with %s "
                        "(give it with --model)\n", c->vectors, ix->model_name, mi.name);
        goto done;
    }
    if ((ix->model_dim && ix->model_dim != mi.dim) || ix->dim > mi.dim) {
        fprintf(stderr, "ember: error: %s holds %d-dim vectors of a %d-dim model; %s is %d-dim\n", c->vectors, ix->dim,
                ix->model_dim, mi.name, mi.dim);
        goto done;
    }
    ember_encode_params ep = ember_encode_default_params();
    ep.pooling = ix->pooling;
    ep.prompt = c->prompt;
    ep.prompt_name = c->prompt_name;
    if (!(q = malloc((size_t)c->queries.n * mi.dim * sizeof *q))) {
        fprintf(stderr, "ember: error: out of memory\n");
        goto done;
    }
    if (ember_encode(m, (const char *const *)c->queries.s, c->queries.len, c->queries.n, &ep, q, NULL) != EMBER_OK) {
        cli_fail();
        free(q);
        q = NULL;
        goto done;
    }
    for (int32_t i = 0; i < c->queries.n; i++)
        vec_truncate(q + (size_t)i * ix->dim, q + (size_t)i * mi.dim, ix->dim, ix->normalized);
done:
    ember_model_free(m);
    return q;
}

static float *queries_load(const search_cli *c, const ember_index_info *ix, int32_t *n) {
    npy_file f;
    if (npy_map(&f, c->query_vectors) != EMBER_OK) {
        cli_fail();
        return NULL;
    }
    float *q = NULL;
    if (f.type != NPY_F32 || f.cols != ix->dim)
        fprintf(stderr, "ember: error: %s: the queries must be float32 rows of %d dimensions (the index's); it holds "
                        "%lld x %lld\n", c->query_vectors, ix->dim, (long long)f.rows, (long long)f.cols);
    else if (!(q = malloc((size_t)(f.rows ? f.rows : 1) * ix->dim * sizeof *q)))
        fprintf(stderr, "ember: error: out of memory\n");
    else {
        memcpy(q, f.data, (size_t)f.rows * ix->dim * sizeof *q);
        *n = (int32_t)f.rows;
    }
    npy_unmap(&f);
    return q;
}

/* ---- the answer ---------------------------------------------------------------------- */

/* The lines of the rows found, read in one pass over the corpus. */
static char **lines_of(const char *path, const ember_hit *hits, const int32_t *found, int32_t n, int32_t k,
                       int64_t *n_text) {
    int64_t *rows = malloc(((size_t)n * k + 1) * sizeof *rows), m = 0, max = -1;
    for (int32_t q = 0; q < n; q++)
        for (int32_t i = 0; i < found[q]; i++) {
            rows[m++] = hits[(size_t)q * k + i].row;
            if (hits[(size_t)q * k + i].row > max) max = hits[(size_t)q * k + i].row;
        }
    char **text = calloc((size_t)max + 2, sizeof *text);
    *n_text = max + 1;
    line_reader *r;
    if (!text || line_reader_open(&r, path, NULL, NULL) != EMBER_OK) {
        free(rows);
        free(text);
        return NULL;
    }
    char *want = calloc((size_t)max + 2, 1);
    for (int64_t i = 0; i < m; i++) want[rows[i]] = 1;
    const char *line;
    size_t len;
    for (int64_t row = 0; row <= max && line_reader_next(r, &line, &len) > 0; row++)
        if (want[row]) text[row] = strdup(line);
    line_reader_close(r);
    free(want);
    free(rows);
    return text;
}

static void print_results(const search_cli *c, int32_t n, const ember_hit *hits, const int32_t *found, char **text) {
    for (int32_t q = 0; q < n; q++) {
        const char *qtext = c->queries.n ? c->queries.s[q] : NULL;
        if (c->json) {
            fputs("{\"query\": ", stdout);
            if (qtext) json_write_string(stdout, qtext, strlen(qtext));
            else printf("%d", q);
            fputs(", \"results\": [", stdout);
            for (int32_t i = 0; i < found[q]; i++) {
                const ember_hit *h = &hits[(size_t)q * c->k + i];
                printf("%s{\"index\": %lld, \"score\": %.7f", i ? ", " : "", (long long)h->row, h->score);
                if (text && text[h->row]) {
                    fputs(", \"text\": ", stdout);
                    json_write_string(stdout, text[h->row], strlen(text[h->row]));
                }
                putchar('}');
            }
            fputs("]}\n", stdout);
        } else {
            if (qtext) printf("%squery: %s\n", q ? "\n" : "", qtext);
            else printf("%squery %d\n", q ? "\n" : "", q);
            for (int32_t i = 0; i < found[q]; i++) {
                const ember_hit *h = &hits[(size_t)q * c->k + i];
                if (text && text[h->row]) printf("  %.4f  %s\n", h->score, text[h->row]);
                else printf("  %.4f  row %lld\n", h->score, (long long)h->row);
            }
        }
    }
}

/* Search --vectors with the queries; the exit status. */
static int search_vectors(search_cli *c) {
    ember_index *ix = NULL, *rv = NULL;
    if (ember_index_open(c->vectors, &ix) != EMBER_OK) return cli_fail();
    if (c->rescore_vectors && ember_index_open(c->rescore_vectors, &rv) != EMBER_OK) {
        ember_index_free(ix);
        return cli_fail();
    }
    ember_index_info info;
    ember_index_get_info(ix, &info);
    if (!info.complete)
        fprintf(stderr, "ember search: note: %s is an unfinished run: searching its %lld rows in %d shards\n",
                c->vectors, (long long)info.rows, info.n_shards);
    int32_t n = c->queries.n;
    float *q = c->query_vectors ? queries_load(c, &info, &n) : queries_embed(c, &info);
    ember_hit *hits = q ? malloc(((size_t)n * c->k + 1) * sizeof *hits) : NULL;
    int32_t *found = q ? malloc(((size_t)n + 1) * sizeof *found) : NULL;
    int rc = 1;
    ember_search_params sp = ember_search_default_params();
    sp.k = c->k;
    sp.rescore = c->rescore;
    sp.n_threads = c->mo.params.n_threads;
    sp.rescore_vectors = rv;
    if (hits && found) {
        if (ember_search(ix, q, n, info.dim, &sp, hits, found) != EMBER_OK) {
            cli_fail();
        } else {
            int64_t n_text = 0;
            char **text = c->corpus_path ? lines_of(c->corpus_path, hits, found, n, c->k, &n_text) : NULL;
            print_results(c, n, hits, found, text);
            for (int64_t i = 0; text && i < n_text; i++) free(text[i]);
            free(text);
            rc = 0;
        }
    }
    free(q);
    free(hits);
    free(found);
    ember_index_free(ix);
    ember_index_free(rv);
    return rc;
}

/* Embed --corpus and the queries, then search the corpus in memory. */
static int search_corpus(search_cli *c) {
    str_list corpus = {0};
    if (str_list_read(&corpus, c->corpus_path, 0) != EMBER_OK) return cli_fail();
    if (corpus.n == 0) {
        fprintf(stderr, "ember: error: %s: the corpus is empty\n", c->corpus_path);
        str_list_free(&corpus);
        return 1;
    }
    ember_model *m = model_opts_load(&c->mo);
    int rc = 1;
    float *cv = NULL, *qv = NULL;
    ember_index *ix = NULL;
    ember_hit *hits = NULL;
    int32_t *found = NULL;
    if (!m) goto done;
    ember_model_info info;
    ember_model_get_info(m, &info);
    const int32_t D = info.dim, n = c->queries.n;
    cv = malloc((size_t)corpus.n * D * sizeof *cv);
    qv = malloc((size_t)n * D * sizeof *qv);
    hits = malloc((size_t)n * c->k * sizeof *hits);
    found = malloc((size_t)n * sizeof *found);
    if (!cv || !qv || !hits || !found) {
        fprintf(stderr, "ember: error: out of memory\n");
        goto done;
    }
    /* normalised: the inner product is the cosine, whatever the model's own default */
    ember_encode_params ep = ember_encode_default_params();
    ep.normalize = EMBER_NORMALIZE_ON;
    ember_encode_params qp = ep;
    qp.prompt = c->prompt;
    qp.prompt_name = c->prompt_name;
    if (ember_encode(m, (const char *const *)corpus.s, corpus.len, corpus.n, &ep, cv, NULL) != EMBER_OK ||
        ember_encode(m, (const char *const *)c->queries.s, c->queries.len, n, &qp, qv, NULL) != EMBER_OK ||
        ember_index_wrap(cv, corpus.n, D, &ix) != EMBER_OK) {
        cli_fail();
        goto done;
    }
    ember_search_params sp = ember_search_default_params();
    sp.k = c->k;
    sp.n_threads = c->mo.params.n_threads;
    if (ember_search(ix, qv, n, D, &sp, hits, found) != EMBER_OK) {
        cli_fail();
        goto done;
    }
    print_results(c, n, hits, found, corpus.s);
    rc = 0;
done:
    ember_index_free(ix);
    free(cv);
    free(qv);
    free(hits);
    free(found);
    str_list_free(&corpus);
    ember_model_free(m);
    return rc;
}

int cmd_search(int argc, char **argv) {
    search_cli c;
    int rc = search_parse(argc, argv, &c);
    if (rc == 0) rc = c.vectors ? search_vectors(&c) : search_corpus(&c);
    str_list_free(&c.queries);
    return rc < 0 ? 0 : rc;
}
