/* ember: embed, search and tokenize text with BERT-family encoders. */
#include <string.h>

#include "cli.h"

static const char *usage =
    "usage: ember <command> [options]\n"
    "\n"
    "commands:\n"
    "  embed      embed each line of a file (text, JSONL, .gz or stdin) to .npy or JSONL;\n"
    "             --tokens: every token's vector, with its text and byte offsets\n"
    "  search     embed a corpus and queries, print the closest entries by cosine\n"
    "  rerank     score lines against a query with a cross-encoder, best first\n"
    "  tokenize   print the model's tokens of texts\n"
    "  info       describe a model directory\n"
    "  bench      measure tokenization and encoding throughput and latency\n"
    "  serve      an HTTP embedding server (text-embeddings-inference and OpenAI routes)\n"
    "  pull       download a model from the Hugging Face Hub into the Hugging Face cache\n"
    "\n"
    "'ember <command> --help' describes each. The default model is $EMBER_MODEL,\n"
    "else weights/all-MiniLM-L6-v2 (fetch it with weights/fetch.sh). --model also\n"
    "takes a Hugging Face model id, e.g. sentence-transformers/all-MiniLM-L6-v2.\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("ember %s\n", EMBER_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"embed", cmd_embed}, {"search", cmd_search}, {"rerank", cmd_rerank}, {"tokenize", cmd_tokenize}, {"info", cmd_info},
                  {"bench", cmd_bench},  {"serve", cmd_serve},   {"pull", cmd_pull}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ember: error: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
