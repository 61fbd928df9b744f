/* ember tokenize: the model's tokens of each text, as JSON lines. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *usage =
    "usage: ember tokenize [options] [TEXT...]\n"
    "\n"
    "Tokenize each TEXT (or, with none, each line of --input / stdin) exactly as\n"
    "Hugging Face tokenizers does for the model, and print one JSON line per text:\n"
    "  {\"ids\": [...], \"tokens\": [...], \"type_ids\": [...], \"offsets\": [[start, end], ...]}\n"
    "Offsets are byte offsets into the text.\n"
    "\n"
    "  -i, --input PATH         read texts from PATH (- for stdin)\n"
    "      --pair TEXT          tokenize each text as a pair with TEXT\n"
    "      --ids                print only the ids, space separated\n"
    "      --no-special         no [CLS] / [SEP]\n"
    "      --no-truncate        keep every token\n" MODEL_OPTIONS_HELP "  -h, --help\n";

static int print_one(ember_model *m, const char *text, size_t len, const char *pair, const ember_tokenize_params *tp,
                     int ids_only, ember_token **buf, int32_t *cap) {
    int32_t n;
    ember_text_stats stats;
    ember_status st;
    while ((st = ember_tokenize(m, text, (ptrdiff_t)len, pair, -1, tp, *buf, *cap, &n, &stats)) ==
           EMBER_ERR_BUFFER_TOO_SMALL) {
        ember_token *nb = realloc(*buf, (size_t)n * sizeof *nb);
        if (!nb) return 0;
        *buf = nb;
        *cap = n;
    }
    if (st != EMBER_OK) {
        fprintf(stderr, "ember: error: %s\n", ember_last_error());
        return 0;
    }
    ember_token *t = *buf;
    if (ids_only) {
        for (int32_t i = 0; i < n; i++) printf(i ? " %d" : "%d", t[i].id);
        putchar('\n');
        return 1;
    }
    fputs("{\"ids\": [", stdout);
    for (int32_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", t[i].id);
    fputs("], \"tokens\": [", stdout);
    for (int32_t i = 0; i < n; i++) {
        const char *s = ember_token_text(m, t[i].id);
        if (i) fputs(", ", stdout);
        json_write_string(stdout, s ? s : "", s ? strlen(s) : 0);
    }
    fputs("], \"type_ids\": [", stdout);
    for (int32_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", t[i].type_id);
    fputs("], \"offsets\": [", stdout);
    for (int32_t i = 0; i < n; i++) printf(i ? ", [%d, %d]" : "[%d, %d]", t[i].start, t[i].end);
    printf("], \"truncated\": %s, \"invalid_utf8\": %d}\n", stats.truncated ? "true" : "false", stats.invalid_utf8);
    return 1;
}

int cmd_tokenize(int argc, char **argv) {
    model_opts mo;
    model_opts_init(&mo);
    const char *input = NULL, *pair = NULL;
    int ids_only = 0;
    ember_tokenize_params tp = ember_tokenize_default_params();
    static struct option opts[] = {{"input", required_argument, 0, 'i'},  {"pair", required_argument, 0, 'P'},
                                   {"ids", no_argument, 0, 'I'},          {"no-special", no_argument, 0, 'S'},
                                   {"no-truncate", no_argument, 0, 'T'},  {"help", no_argument, 0, 'h'},
                                   MODEL_OPTIONS,                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "i:hm:", opts, NULL)) != -1) {
        switch (c) {
        case 'i': input = optarg; break;
        case 'P': pair = optarg; break;
        case 'I': ids_only = 1; break;
        case 'S': tp.add_special_tokens = 0; break;
        case 'T': tp.truncate = 0; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            if (c == '?' || !model_opts_parse(&mo, c, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (input && optind < argc) die_usage("tokenize", "give TEXT arguments or --input, not both");
    ember_model *m = model_opts_load(&mo);
    if (!m) return 1;
    ember_token *buf = NULL;
    int32_t cap = 0;
    int ok = 1;
    if (optind < argc) {
        for (int i = optind; i < argc && ok; i++)
            ok = print_one(m, argv[i], strlen(argv[i]), pair, &tp, ids_only, &buf, &cap);
    } else {
        line_reader *r;
        if (line_reader_open(&r, input ? input : "-", NULL, NULL) != EMBER_OK) {
            cli_fail();
            ok = 0;
        } else {
            const char *line;
            size_t len;
            int got = 0;
            while (ok && (got = line_reader_next(r, &line, &len)) > 0)
                ok = print_one(m, line, len, pair, &tp, ids_only, &buf, &cap);
            if (ok && got < 0) {
                line_reader_status(r);
                cli_fail();
                ok = 0;
            }
            line_reader_close(r);
        }
    }
    free(buf);
    ember_model_free(m);
    return ok ? 0 : 1;
}
