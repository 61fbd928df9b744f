/* ember pull: download a model from the Hugging Face Hub into the Hugging
 * Face cache, and the progress bar --model shows when it downloads. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *usage =
    "usage: ember pull ID [--revision R]\n"
    "\n"
    "Download a model from the Hugging Face Hub into the Hugging Face cache, the one\n"
    "huggingface_hub, transformers and sentence-transformers use ($HF_HUB_CACHE, else\n"
    "$HF_HOME/hub, else ~/.cache/huggingface/hub), and print its directory. Only the\n"
    "files ember reads are fetched: config, safetensors weights (sharded too), tokenizer,\n"
    "sentence-transformers configs and module folders. Files already cached are not\n"
    "fetched again; an interrupted download resumes. Afterwards '--model ID' works\n"
    "offline (HF_HUB_OFFLINE=1), in ember and in Python.\n"
    "\n"
    "ID is org/name (BAAI/bge-small-en-v1.5), or a bare name tried as\n"
    "sentence-transformers does (all-MiniLM-L6-v2: sentence-transformers/all-MiniLM-L6-v2).\n"
    "\n"
    "      --revision R   branch, tag or commit hash (default: main)\n"
    "  -q, --quiet        no progress\n"
    "  -h, --help\n"
    "\n"
    "Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (gated or\n"
    "private models), HF_HUB_OFFLINE=1 (the cache only), HF_HUB_DOWNLOAD_TIMEOUT\n"
    "(seconds without data before giving up, default 10).\n";

typedef struct {
    int tty;
    double t0, last;
    int drawn;
} pull_bar;

static void human(char *out, size_t cap, double bytes) {
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000 && u < 4) bytes /= 1000, u++;
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

/* One line redrawn in place on a terminal; elsewhere one line per file done. */
static int draw(const char *file, int32_t file_no, int32_t n_files, int64_t done, int64_t total, void *user) {
    pull_bar *b = user;
    double now = clock_now();
    int complete = total >= 0 && done == total;
    if (!b->tty) {
        if (complete) {
            char sz[32];
            human(sz, sizeof sz, (double)total);
            fprintf(stderr, "ember: fetched %s (%s) [%d/%d]\n", file, sz, file_no, n_files);
        }
        return 0;
    }
    if (!complete && now - b->last < 0.1) return 0;
    if (b->t0 == 0) b->t0 = now;
    b->last = now;
    char got[32], all[32], rate[32] = "";
    human(got, sizeof got, (double)done);
    human(all, sizeof all, (double)(total >= 0 ? total : 0));
    char bar[32];
    int width = 24, fill = total > 0 ? (int)((double)done / (double)total * width) : 0;
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    if (now > b->t0 + 0.5) {
        human(rate, sizeof rate, (double)done / (now - b->t0));
        strncat(rate, "/s", sizeof rate - strlen(rate) - 1);
    }
    fprintf(stderr, "\r\033[K[%d/%d] %-32.32s [%s] %s / %s  %s", file_no, n_files, file, bar, got,
            total >= 0 ? all : "?", rate);
    b->drawn = 1;
    if (complete) {
        fputc('\n', stderr);
        b->drawn = 0;
        b->t0 = 0;
    }
    return 0;
}

static void bar_end(pull_bar *b) {
    if (b->drawn) fputc('\n', stderr);
    b->drawn = 0;
}

int pull_if_missing(const char *model, const char *revision) {
    struct stat st;
    char dir[4096];
    if (stat(model, &st) == 0) return 1;
    /* not cached: EMBER_ERR_IO; not an id: the load names the missing path */
    if (ember_hub_resolve(model, revision, dir, sizeof dir) != EMBER_ERR_IO) return 1;
    pull_bar b = {.tty = isatty(2)};
    ember_status s = ember_hub_pull(model, revision, draw, &b, dir, sizeof dir);
    bar_end(&b);
    if (s != EMBER_OK) {
        fprintf(stderr, "ember: error: cannot load model: %s\n", ember_last_error());
        return 0;
    }
    return 1;
}

int cmd_pull(int argc, char **argv) {
    const char *revision = NULL;
    int quiet = 0;
    static struct option opts[] = {{"revision", required_argument, 0, 'r'},
                                   {"quiet", no_argument, 0, 'q'},
                                   {"help", no_argument, 0, 'h'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        switch (c) {
        case 'r': revision = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind >= argc) die_usage("pull", "no model id given");
    if (optind + 1 < argc) die_usage("pull", "unexpected argument '%s'", argv[optind + 1]);
    const char *id = argv[optind];
    char dir[4096];
    pull_bar b = {.tty = isatty(2)};
    ember_status s = ember_hub_pull(id, revision, quiet ? NULL : draw, &b, dir, sizeof dir);
    bar_end(&b);
    if (s != EMBER_OK) {
        fprintf(stderr, "ember pull: error: %s\n", ember_last_error());
        return s == EMBER_ERR_INVALID_ARGUMENT ? 2 : 1;
    }
    puts(dir);
    return 0;
}
