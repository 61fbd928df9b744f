/* The `ember` command-line program: subcommands over include/ember.h (and
 * src/common for reading lines and writing JSON). It parses, prints, and
 * decides how signals stop a command; the library does none of that. */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/clock.h"
#include "common/jsonl.h"
#include "common/lines.h"
#include "common/vec.h"
#include "ember.h"

int cmd_embed(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_rerank(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_pull(int argc, char **argv);

/* Options every model-using command takes. */
typedef struct {
    const char *model_dir;
    ember_model_params params;
    int verbose;
} model_opts;

/* getopt_long entries for the model options, with ids >= 1000. */
#define MODEL_OPTIONS                                                                                               \
    {"model", required_argument, 0, 1000}, {"device", required_argument, 0, 1001},                                  \
        {"dtype", required_argument, 0, 1002}, {"threads", required_argument, 0, 1003},                             \
        {"max-batch-tokens", required_argument, 0, 1004}, {"max-length", required_argument, 0, 1005},               \
        {"verbose", no_argument, 0, 1006}, {"revision", required_argument, 0, 1007}

#define MODEL_OPTIONS_HELP                                                                                          \
    "  -m, --model DIR|ID       model directory, or Hugging Face model id (org/name) from the\n"                   \
    "                           Hugging Face cache, downloaded when missing\n"                                   \
    "                           (default: $EMBER_MODEL or weights/all-MiniLM-L6-v2)\n"                           \
    "      --revision R         branch, tag or commit of a model id (default: main)\n"                            \
    "      --device D           cpu, cuda, cuda:N or auto (default: cpu)\n"                                        \
    "      --dtype T            fp32, fp16 or bf16 (default: fp32; the CPU runs fp32 only)\n"                      \
    "      --threads N          CPU threads (default: every core)\n"                                                \
    "      --max-batch-tokens N tokens per forward pass (default: 4096 on the CPU, 32768 on a GPU)\n"              \
    "      --max-length N       cut texts to N tokens (default and limit: the model's)\n"                           \
    "      --verbose            log what the library does\n"

void model_opts_init(model_opts *o);
/* Handle one model option (id from MODEL_OPTIONS, or 'm'); 0 on a bad value. */
int model_opts_parse(model_opts *o, int id, const char *arg);
/* Load the model, printing a clear error; NULL on failure. */
ember_model *model_opts_load(const model_opts *o);
/* A --model that is no path: find it in the Hugging Face cache or download
 * it, with a progress bar on a terminal (cmd_pull.c). 0 after printing an
 * error; 1 otherwise (also when `model` is no id: loading then says why). */
int pull_if_missing(const char *model, const char *revision);

int parse_int(const char *s, const char *what, long lo, long hi, int32_t *out);
void die_usage(const char *cmd, const char *fmt, ...);

/* Print "ember: error: <the library's last error>" and return 1 (the exit
 * status of a failed command). */
int cli_fail(void);

/* ember embed --tokens (embed_tokens.c): every token's last hidden state of
 * each line of `input`, rows to `output` (.npy float32, total tokens x
 * hidden size) and one JSON line per input line to `index`. Empty lines,
 * truncation and invalid UTF-8 are counted into *totals as ember_embed_file
 * counts them; on failure neither file is left. */
typedef struct {
    const char *input;       /* a path (plain or gzip) or "-" */
    const char *jsonl_field; /* NULL: each line is a text */
    const char *output, *index;
    int truncate;            /* 0: an over-long line is an error naming it */
    cancel_fn cancel;
    void *cancel_user;
    const char *input_name;  /* set inside: the input's name in messages */
    int32_t max_length;      /* set inside */
} tokens_job;
ember_status embed_tokens(ember_model *m, const tokens_job *job, ember_embed_totals *totals);

/* The line that ember embed draws on stderr while it runs. */
typedef struct {
    int mode;  /* 0: none, 1: one line redrawn in place (a terminal), 2: a line every 10 s */
    int drawn; /* a line is on the terminal and needs clearing */
    double last;
} progress_line;

/* An ember_embed_progress_fn; user: a progress_line. */
void progress_draw(const ember_embed_progress *p, void *user);
/* Clear the redrawn line, so that what follows starts on a clean one. */
void progress_clear(progress_line *pl);

#endif
