/* ember embed: one vector per input line, in input order. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *usage =
    "usage: ember embed [options] [INPUT]\n"
    "\n"
    "Embed every line of INPUT (a text file, .gz, or - for stdin; default -) and\n"
    "write one vector per line, in order. Empty lines are embedded as empty texts\n"
    "and counted; over-long lines are truncated to the model's maximum and counted;\n"
    "invalid UTF-8 is replaced and counted. Nothing is skipped.\n"
    "\n"
    "  -o, --output PATH        .npy (float32 N x D) or .jsonl; default: JSONL on stdout\n"
    "      --format F           npy, npy16 (float16) or jsonl (default: from the extension)\n"
    "      --jsonl              INPUT is JSON lines; the text is in --field (default \"text\")\n"
    "      --field NAME         the JSON field holding the text (implies --jsonl)\n"
    "      --pooling P          cls, mean, max or mean_sqrt_len (default: the model's)\n"
    "      --normalize          L2-normalise the vectors (default: as the model says)\n"
    "      --no-normalize       do not\n"
    "      --no-truncate        fail on a text longer than the model's maximum\n"
    "      --batch N            texts handed to the library at a time (default 256)\n"
    "  -q, --quiet              no summary on stderr\n" MODEL_OPTIONS_HELP "  -h, --help\n";

typedef struct {
    char **texts;
    ptrdiff_t *lens;
    int32_t n, cap;
} text_batch;

static void batch_clear(text_batch *b) {
    for (int32_t i = 0; i < b->n; i++) free(b->texts[i]);
    b->n = 0;
}

int cmd_embed(int argc, char **argv) {
    model_opts mo;
    model_opts_init(&mo);
    const char *output = NULL, *format = NULL, *field = NULL;
    int jsonl_in = 0, quiet = 0;
    int32_t batch_size = 256;
    ember_encode_params ep = ember_encode_default_params();
    static struct option opts[] = {{"output", required_argument, 0, 'o'},
                                   {"format", required_argument, 0, 'f'},
                                   {"jsonl", no_argument, 0, 'J'},
                                   {"field", required_argument, 0, 'F'},
                                   {"pooling", required_argument, 0, 'p'},
                                   {"normalize", no_argument, 0, 'N'},
                                   {"no-normalize", no_argument, 0, 'n'},
                                   {"no-truncate", no_argument, 0, 'T'},
                                   {"batch", required_argument, 0, 'b'},
                                   {"quiet", no_argument, 0, 'q'},
                                   {"help", no_argument, 0, 'h'},
                                   MODEL_OPTIONS,
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qhm:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'f': format = optarg; break;
        case 'J': jsonl_in = 1; break;
        case 'F': field = optarg, jsonl_in = 1; break;
        case 'p':
            if (strcmp(optarg, "cls") == 0) ep.pooling = EMBER_POOLING_CLS;
            else if (strcmp(optarg, "mean") == 0) ep.pooling = EMBER_POOLING_MEAN;
            else if (strcmp(optarg, "max") == 0) ep.pooling = EMBER_POOLING_MAX;
            else if (strcmp(optarg, "mean_sqrt_len") == 0) ep.pooling = EMBER_POOLING_MEAN_SQRT_LEN;
            else die_usage("embed", "--pooling must be cls, mean, max or mean_sqrt_len, got '%s'", optarg);
            break;
        case 'N': ep.normalize = EMBER_NORMALIZE_ON; break;
        case 'n': ep.normalize = EMBER_NORMALIZE_OFF; break;
        case 'T': ep.truncate = 0; break;
        case 'b':
            if (!parse_int(optarg, "--batch", 1, 1 << 20, &batch_size)) return 2;
            break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            if (c == '?' || !model_opts_parse(&mo, c, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (argc - optind > 1) die_usage("embed", "one INPUT at most (got %d)", argc - optind);
    const char *input = optind < argc ? argv[optind] : "-";
    if (!field) field = "text";
    size_t ilen = strlen(input);
    if (ilen >= 6 && (strcmp(input + ilen - 6, ".jsonl") == 0 || (ilen >= 9 && strcmp(input + ilen - 9, ".jsonl.gz") == 0)))
        jsonl_in = 1;
    int out_npy = 0, out_f16 = 0;
    if (format) {
        if (strcmp(format, "npy") == 0) out_npy = 1;
        else if (strcmp(format, "npy16") == 0) out_npy = 1, out_f16 = 1;
        else if (strcmp(format, "jsonl") != 0) die_usage("embed", "--format must be npy, npy16 or jsonl, got '%s'", format);
    } else if (output) {
        size_t n = strlen(output);
        out_npy = n >= 4 && strcmp(output + n - 4, ".npy") == 0;
    }
    if (out_npy && (!output || strcmp(output, "-") == 0))
        die_usage("embed", ".npy output needs a file (-o PATH); use --format jsonl for stdout");

    line_reader in;
    if (!line_reader_open(&in, input)) return 1;
    ember_model *m = model_opts_load(&mo);
    if (!m) {
        line_reader_close(&in);
        return 1;
    }
    ember_model_info info;
    ember_model_get_info(m, &info);
    const int32_t D = info.dim;

    npy_writer npy = {0};
    FILE *jout = NULL;
    if (out_npy) {
        if (!npy_open(&npy, output, D, out_f16)) goto fail_early;
    } else if (!output || strcmp(output, "-") == 0) {
        jout = stdout;
    } else if (!(jout = fopen(output, "w"))) {
        perror(output);
        goto fail_early;
    }

    text_batch b = {0};
    b.cap = batch_size;
    b.texts = calloc((size_t)b.cap, sizeof *b.texts);
    b.lens = calloc((size_t)b.cap, sizeof *b.lens);
    float *vecs = malloc((size_t)b.cap * (size_t)D * sizeof *vecs);
    ember_text_stats *stats = calloc((size_t)b.cap, sizeof *stats);
    if (!b.texts || !b.lens || !vecs || !stats) {
        fprintf(stderr, "ember: error: out of memory\n");
        goto fail;
    }
    long rows = 0, empty = 0, truncated = 0, invalid = 0, first_trunc = 0, first_invalid = 0;
    long long tokens = 0;
    double t0 = now_seconds();
    int done = 0, ok = 1;
    while (!done) {
        char *line;
        ptrdiff_t len = line_reader_next(&in, &line);
        if (len == -2) goto fail;
        if (len >= 0) {
            char *text;
            size_t tlen = (size_t)len;
            if (jsonl_in) {
                text = jsonl_field(line, (size_t)len, field, in.path, in.line_no, &tlen);
                if (!text) goto fail;
            } else {
                text = malloc((size_t)len + 1);
                if (!text) goto fail;
                memcpy(text, line, (size_t)len + 1);
            }
            b.texts[b.n] = text;
            b.lens[b.n] = (ptrdiff_t)tlen;
            b.n++;
        } else {
            done = 1;
        }
        if (b.n == b.cap || (done && b.n > 0)) {
            ember_status st = ember_encode(m, (const char *const *)b.texts, b.lens, b.n, &ep, vecs, stats);
            if (st != EMBER_OK) {
                fprintf(stderr, "ember: error: %s: rows %ld-%ld: %s\n", in.path, rows + 1, rows + b.n,
                        ember_last_error());
                goto fail;
            }
            for (int32_t i = 0; i < b.n; i++) {
                long row = rows + i + 1;
                empty += b.lens[i] == 0;
                tokens += stats[i].n_tokens;
                if (stats[i].truncated && !truncated++) first_trunc = row;
                if (stats[i].invalid_utf8 && !invalid++) first_invalid = row;
            }
            if (out_npy) {
                if (!npy_write(&npy, vecs, b.n)) goto fail;
            } else {
                for (int32_t i = 0; i < b.n; i++) {
                    fputs("[", jout);
                    for (int32_t d = 0; d < D; d++) fprintf(jout, d ? ",%.9g" : "%.9g", vecs[(size_t)i * D + d]);
                    fputs("]\n", jout);
                }
                if (ferror(jout)) {
                    fprintf(stderr, "ember: error: %s: write failed\n", output ? output : "<stdout>");
                    goto fail;
                }
            }
            rows += b.n;
            batch_clear(&b);
        }
    }
    if (out_npy) ok = npy_close(&npy);
    else if (jout != stdout) ok = fclose(jout) == 0;
    else ok = fflush(stdout) == 0;
    npy.f = NULL;
    jout = NULL;
    double dt = now_seconds() - t0;
    if (!quiet) {
        fprintf(stderr, "ember embed: %ld rows (%lld tokens) in %.2f s, %.1f rows/s, %d-dim, %s\n", rows, tokens, dt,
                dt > 0 ? rows / dt : 0.0, D, info.device_name);
        if (empty) fprintf(stderr, "ember embed: %ld empty lines embedded as empty texts\n", empty);
        if (truncated)
            fprintf(stderr, "ember embed: %ld texts truncated to %d tokens (first: row %ld)\n", truncated,
                    info.max_length, first_trunc);
        if (invalid)
            fprintf(stderr, "ember embed: %ld texts had invalid UTF-8, replaced by U+FFFD (first: row %ld)\n",
                    invalid, first_invalid);
    }
    batch_clear(&b);
    free(b.texts);
    free(b.lens);
    free(vecs);
    free(stats);
    line_reader_close(&in);
    ember_model_free(m);
    return ok ? 0 : 1;
fail:
    batch_clear(&b);
    free(b.texts);
    free(b.lens);
    free(vecs);
    free(stats);
fail_early:
    if (npy.f) fclose(npy.f);
    if (jout && jout != stdout) fclose(jout);
    line_reader_close(&in);
    ember_model_free(m);
    return 1;
}
