/* ember embed --tokens: every token's last hidden state, with its text and
 * byte offsets. Lines are read (the one line reader: plain, gzip, stdin),
 * encoded a block at a time with ember_encode_tokens, and written as they
 * come: the rows to a float32 .npy (total_tokens x dim), and one JSON line
 * per input line to the index, naming that line's rows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/error.h"
#include "common/npy.h"

/* Lines encoded per call (ember_encode_tokens batches them by the token budget). */
#define TOKENS_BLOCK 256

static void write_index_line(FILE *f, const ember_model *m, int64_t line, int64_t row0,
                             const ember_token_embeddings *e, int32_t i, const ember_text_stats *ts) {
    const int32_t a = e->offsets[i], b = e->offsets[i + 1];
    fprintf(f, "{\"line\": %lld, \"rows\": [%lld, %lld], \"ids\": [", (long long)line, (long long)(row0 + a),
            (long long)(row0 + b));
    for (int32_t k = a; k < b; k++) fprintf(f, k > a ? ", %d" : "%d", e->tokens[k].id);
    fputs("], \"tokens\": [", f);
    for (int32_t k = a; k < b; k++) {
        const char *s = ember_token_text(m, e->tokens[k].id);
        if (k > a) fputs(", ", f);
        json_write_string(f, s ? s : "", s ? strlen(s) : 0);
    }
    fputs("], \"offsets\": [", f);
    for (int32_t k = a; k < b; k++) fprintf(f, k > a ? ", [%d, %d]" : "[%d, %d]", e->tokens[k].start, e->tokens[k].end);
    fprintf(f, "], \"truncated\": %s, \"invalid_utf8\": %d}\n", ts->truncated ? "true" : "false", ts->invalid_utf8);
}

/* Encode the block of lines held in `texts` (first line number `line0`,
 * 1-based), append its rows and index lines, and count it into *t. */
static ember_status encode_block(ember_model *m, const tokens_job *j, const str_list *texts, int64_t line0,
                                 npy_writer *w, FILE *index, ember_embed_totals *t) {
    ember_text_stats *stats = calloc((size_t)texts->n, sizeof *stats);
    if (!stats) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_encode_params p = ember_encode_default_params();
    ember_token_embeddings *e = NULL;
    ember_status st =
        ember_encode_tokens(m, (const char *const *)texts->s, texts->len, texts->n, &p, &e, stats);
    if (st) {
        st = ember_fail(st, "%s: encoding lines %lld..%lld failed: %s", j->input_name, (long long)line0,
                        (long long)(line0 + texts->n - 1), ember_last_error());
        goto done;
    }
    for (int32_t i = 0; i < texts->n; i++) {
        if (stats[i].truncated && !j->truncate) {
            st = ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                            "%s:%lld: the text is %d tokens long, over the model's maximum of %d (--no-truncate is "
                            "set)",
                            j->input_name, (long long)(line0 + i), stats[i].n_tokens_untruncated, j->max_length);
            goto done;
        }
    }
    const int64_t row0 = t->tokens;
    if ((st = npy_write(w, e->data, e->n_tokens))) goto done;
    for (int32_t i = 0; i < texts->n; i++) {
        const int64_t line = line0 + i;
        write_index_line(index, m, line, row0, e, i, &stats[i]);
        if (texts->len[i] == 0) t->empty++;
        if (stats[i].truncated && t->truncated++ == 0) t->first_truncated = line;
        if (stats[i].invalid_utf8 && t->invalid_utf8++ == 0) t->first_invalid = line;
    }
    if (ferror(index)) {
        st = ember_fail(EMBER_ERR_IO, "%s: write failed: %s", j->index, strerror(errno));
        goto done;
    }
    t->rows += texts->n;
    t->tokens += e->n_tokens;
done:
    ember_token_embeddings_free(e);
    free(stats);
    return st;
}

ember_status embed_tokens(ember_model *m, const tokens_job *j, ember_embed_totals *totals) {
    memset(totals, 0, sizeof *totals);
    ember_model_info info;
    ember_model_get_info(m, &info);
    line_reader *r;
    ember_status st = line_reader_open(&r, j->input, j->cancel, j->cancel_user);
    if (st) return st;
    tokens_job job = *j;
    job.input_name = line_reader_name(r);
    job.max_length = info.max_length;
    j = &job;
    npy_writer w;
    FILE *index = NULL;
    if ((st = npy_open(&w, j->output, NPY_F32, info.hidden_size))) {
        line_reader_close(r);
        return st;
    }
    if (!(index = fopen(j->index, "w"))) {
        st = ember_fail(EMBER_ERR_IO, "%s: cannot create: %s", j->index, strerror(errno));
        goto fail;
    }
    str_list block = {0};
    const char *line;
    size_t len;
    int got;
    int64_t line_no = 0;
    while ((got = line_reader_next(r, &line, &len)) > 0) {
        line_no++;
        char *field = NULL;
        if (j->jsonl_field && !(field = jsonl_field(line, len, j->jsonl_field, &len))) {
            st = ember_fail(EMBER_ERR_FORMAT, "%s:%lld: %s", j->input_name, (long long)line_no, ember_last_error());
            break;
        }
        st = str_list_add(&block, field ? field : line, len);
        free(field);
        if (st) break;
        if (block.n == TOKENS_BLOCK) {
            st = encode_block(m, j, &block, line_no - block.n + 1, &w, index, totals);
            str_list_free(&block);
            memset(&block, 0, sizeof block);
            if (st) break;
        }
    }
    if (!st && got < 0) st = line_reader_status(r);
    if (!st && block.n > 0) st = encode_block(m, j, &block, line_no - block.n + 1, &w, index, totals);
    str_list_free(&block);
    line_reader_close(r);
    r = NULL;
    if (st) goto fail;
    if ((st = npy_close(&w))) goto fail_closed;
    if (fclose(index) != 0) {
        index = NULL;
        st = ember_fail(EMBER_ERR_IO, "%s: write failed: %s", j->index, strerror(errno));
        goto fail_closed;
    }
    return EMBER_OK;
fail:
    if (r) line_reader_close(r);
    npy_abandon(&w);
fail_closed:
    if (index) fclose(index);
    /* nothing partial is left behind */
    unlink(j->output);
    unlink(j->index);
    return st;
}
