/* The streaming engine of ember_embed_file (see pipeline.h for the flow).
 * One mutex guards the hand-offs; the work units are large (a chunk of rows,
 * a batch of tokens, a window), so it is taken a few hundred times a second. */
#include "pipeline.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "common/vec.h"
#include "sink.h"


typedef struct {
    int32_t first, n; /* window-local rows first .. first+n-1 */
    char *text;       /* their bytes, back to back */
    size_t text_len, text_cap;
    size_t *text_off; /* (PIPE_CHUNK_ROWS + 1) */
    int32_t *ids;     /* their token ids, back to back */
    size_t ids_len, ids_cap;
    size_t *id_off; /* (PIPE_CHUNK_ROWS + 1) */
} chunk;

typedef struct {
    int busy;                /* taken by the reader, until written */
    int64_t seq;             /* window number in this run */
    int64_t first_row;       /* global row of its first row */
    int32_t n_rows;          /* rows handed to the tokenizers so far */
    int32_t n_chunks, chunks_done;
    int read_done;           /* the reader has closed it */
    int32_t rows_encoded;
    size_t text_bytes;
    int64_t in_offset; /* the input's stored offset when it closed (progress) */
    chunk *chunks;     /* (cap_chunks) */
    row_info *info;    /* (window) */
    int64_t *keys;     /* (window) sort keys: tokens << 32 | row */
    int32_t *order;    /* (window) rows by length */
    int32_t *cuts;     /* (window + 1) batch b is order[cuts[b] .. cuts[b+1]) */
    float *out;        /* (window, D) */
} window;

typedef struct {
    int32_t slot, index;
} work;

typedef struct {
    work *q;
    int32_t head, len, cap;
} work_queue;

typedef struct {
    const pipeline_opts *o;
    int32_t D, max_length, window_rows, cap_chunks, rows_cap;
    const char *prompt; /* joined before every text ("" none) */
    int32_t pool_skip;  /* the prompt's tokens left out of pooling (include_prompt false) */
    pthread_mutex_t mu;
    pthread_cond_t cv_reader, cv_tok, cv_dev, cv_writer;
    window slots[PIPE_SLOTS];
    work_queue tq; /* chunks to tokenize */
    work_queue bq; /* batches to encode */
    int64_t n_windows;      /* opened by the reader */
    int64_t next_batch_seq; /* the next window to cut into batches */
    int reader_done;
    int reader_stopped; /* the reader ended at the caller's cancel, before the input's end */
    int cancelled;      /* the run stopped at the caller's cancel */
    int64_t start_offset; /* the input's stored offset after the skipped rows (progress) */
    atomic_int abort; /* read without the lock by the line reader's cancel check */
    int has_err;
    ember_status err_status;
    int64_t err_row;
    char err[2048];
    double busy[64];
    int64_t rows_encoded, tokens_encoded; /* by every device, for the progress line */
    line_reader *in;
    const char *in_name;
    int sync_ready; /* the locks exist */
    pthread_t reader_tid;
    int reader_started;
    struct device_arg *dargs;
    pthread_t *tok_tids, *dev_tids;
    int32_t n_tok, started_tok, started_dev;
} pipe_state;

/* ---- small helpers ---------------------------------------------------------- */

static int q_push(work_queue *q, int32_t slot, int32_t index) {
    if (q->len == q->cap) return 0; /* sized so that this cannot happen */
    q->q[(q->head + q->len) % q->cap] = (work){slot, index};
    q->len++;
    return 1;
}

static work q_pop(work_queue *q) {
    work w = q->q[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return w;
}

static void wake_all(pipe_state *p) {
    pthread_cond_broadcast(&p->cv_reader);
    pthread_cond_broadcast(&p->cv_tok);
    pthread_cond_broadcast(&p->cv_dev);
    pthread_cond_broadcast(&p->cv_writer);
}

/* Record a failure (the one of the earliest row wins) and stop everyone.
 * Called with the lock held. */
static void fail_locked(pipe_state *p, int64_t row, ember_status st, const char *fmt, ...) EMBER_PRINTF(4, 5);
static void fail_locked(pipe_state *p, int64_t row, ember_status st, const char *fmt, ...) {
    if (!p->has_err || row < p->err_row) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
        p->err_row = row;
        p->err_status = st;
        p->has_err = 1;
    }
    atomic_store(&p->abort, 1);
    wake_all(p);
}

/* The caller asked to stop. */
static int user_cancelled(const pipe_state *p) { return p->o->cancel && p->o->cancel(p->o->cancel_user); }

/* The line reader's question while it waits for input: stop? */
static int reader_should_stop(void *arg) {
    const pipe_state *p = arg;
    return atomic_load(&p->abort) || user_cancelled(p);
}

/* ---- the reader ------------------------------------------------------------------ */

/* Append the next line to *dst. 1: a line; 0: the end; -1: a read error
 * (recorded) or a stop. */
static int input_line(pipe_state *p, int64_t row, char **dst, size_t *dlen, size_t *dcap) {
    const char *line;
    size_t len;
    int got = line_reader_next(p->in, &line, &len);
    if (got < 0) {
        ember_status st = line_reader_status(p->in);
        pthread_mutex_lock(&p->mu);
        if (st != EMBER_ERR_CANCELLED && !atomic_load(&p->abort)) /* else broken off on purpose */
            fail_locked(p, row, st, "%s", ember_last_error());
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    if (got == 0) return 0;
    if (!vec_grow((void **)dst, dcap, *dlen + len + 1, 1)) {
        pthread_mutex_lock(&p->mu);
        fail_locked(p, row, EMBER_ERR_OUT_OF_MEMORY, "%s:%lld: out of memory", p->in_name, (long long)row + 1);
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    memcpy(*dst + *dlen, line, len);
    *dlen += len;
    return 1;
}

/* Skip the rows an earlier run embedded, checking they are the same lines. */
static int reader_skip(pipe_state *p) {
    const pipeline_opts *o = p->o;
    char *scratch = NULL;
    size_t cap = 0;
    int ok = 1;
    for (int64_t r = 0; r < o->skip_rows; r++) {
        size_t len = 0;
        int got = input_line(p, r, &scratch, &len, &cap);
        if (got < 0 || user_cancelled(p)) {
            ok = 0;
            break;
        }
        if (got == 0) {
            pthread_mutex_lock(&p->mu);
            fail_locked(p, -1, EMBER_ERR_INVALID_ARGUMENT,
                        "%s has %lld lines, but the run being resumed has %lld rows already", p->in_name, (long long)r,
                        (long long)o->skip_rows);
            pthread_mutex_unlock(&p->mu);
            ok = 0;
            break;
        }
    }
    free(scratch);
    const line_reader_pos pos = line_reader_position(p->in);
    if (ok && (pos.crc != o->skip_crc || pos.bytes != o->skip_bytes)) {
        pthread_mutex_lock(&p->mu);
        fail_locked(p, -1, EMBER_ERR_INVALID_ARGUMENT,
                    "%s is not the input of the run being resumed: its first %lld lines are %lld bytes with crc32 "
                    "%08x, the run read %lld bytes with crc32 %08x",
                    p->in_name, (long long)o->skip_rows, (long long)pos.bytes, (unsigned)pos.crc,
                    (long long)o->skip_bytes, (unsigned)o->skip_crc);
        pthread_mutex_unlock(&p->mu);
        ok = 0;
    }
    return ok;
}

static void batch_ready_locked(pipe_state *p);

/* The next free window slot, taken; NULL when the run is aborting. */
static window *window_take(pipe_state *p, int64_t first_row) {
    pthread_mutex_lock(&p->mu);
    window *w = NULL;
    while (!atomic_load(&p->abort)) {
        for (int i = 0; i < PIPE_SLOTS && !w; i++)
            if (!p->slots[i].busy) w = &p->slots[i];
        if (w) break;
        pthread_cond_wait(&p->cv_reader, &p->mu);
    }
    if (w) {
        w->busy = 1;
        w->seq = p->n_windows++;
        w->first_row = first_row;
        w->n_rows = w->n_chunks = w->chunks_done = w->rows_encoded = 0;
        w->read_done = 0;
        w->text_bytes = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return w;
}

/* Fill window w with lines from *row on, chunk by chunk, each handed to the
 * tokenizers as soon as it is read; returns 1 when the input is over (or
 * the run stops), and the rows read in *n_rows. */
static int window_read(pipe_state *p, window *w, int64_t *row, int32_t *n_rows) {
    const pipeline_opts *o = p->o;
    const int32_t slot = (int32_t)(w - p->slots);
    int32_t rows = 0, limit = p->window_rows;
    if (o->align_rows > 0 && o->align_rows - *row % o->align_rows < limit)
        limit = (int32_t)(o->align_rows - *row % o->align_rows);
    int end = 0;
    while (!end && rows < limit && w->text_bytes < PIPE_WINDOW_BYTES) {
        chunk *c = &w->chunks[w->n_chunks];
        c->first = rows;
        c->n = 0;
        c->text_len = 0;
        c->text_off[0] = 0;
        while (c->n < PIPE_CHUNK_ROWS && rows + c->n < limit && w->text_bytes + c->text_len < PIPE_WINDOW_BYTES) {
            if (user_cancelled(p) || input_line(p, *row + c->n, &c->text, &c->text_len, &c->text_cap) <= 0) {
                end = 1;
                break;
            }
            const line_reader_pos pos = line_reader_position(p->in);
            row_info *ri = &w->info[rows + c->n];
            ri->in_crc = pos.crc;
            ri->in_bytes = pos.bytes;
            c->n++;
            c->text_off[c->n] = c->text_len;
        }
        w->text_bytes += c->text_len;
        rows += c->n;
        *row += c->n;
        if (c->n > 0) {
            pthread_mutex_lock(&p->mu);
            w->n_rows = rows;
            w->n_chunks++;
            q_push(&p->tq, slot, w->n_chunks - 1);
            pthread_cond_signal(&p->cv_tok);
            pthread_mutex_unlock(&p->mu);
        }
    }
    *n_rows = rows;
    return end;
}

static void *reader_main(void *arg) {
    pipe_state *p = arg;
    const pipeline_opts *o = p->o;
    int64_t row = o->skip_rows;
    int end = o->skip_rows > 0 && !reader_skip(p);
    pthread_mutex_lock(&p->mu);
    p->start_offset = line_reader_position(p->in).offset;
    pthread_mutex_unlock(&p->mu);
    while (!end) {
        window *w = window_take(p, row);
        if (!w) break;
        int32_t rows;
        end = window_read(p, w, &row, &rows);
        pthread_mutex_lock(&p->mu);
        w->read_done = 1;
        w->in_offset = line_reader_position(p->in).offset;
        if (rows == 0) { /* the input ended just as the window opened */
            w->busy = 0;
            p->n_windows--;
        } else {
            batch_ready_locked(p);
        }
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    /* rows were left unread: the run must not pass for complete */
    if (user_cancelled(p) && !line_reader_position(p->in).eof) p->reader_stopped = 1;
    p->reader_done = 1;
    wake_all(p);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the batcher (runs in whichever thread completes a window) ----------------- */

static int key_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Cut every window that is read and tokenized, in window order, into batches:
 * rows sorted by length (ties by position: the cut is a function of the
 * window alone), each batch as many as fit the token budget. */
static void batch_ready_locked(pipe_state *p) {
    const pipeline_opts *o = p->o;
    for (;;) {
        window *w = NULL;
        int32_t slot = -1;
        for (int i = 0; i < PIPE_SLOTS; i++)
            if (p->slots[i].busy && p->slots[i].seq == p->next_batch_seq) w = &p->slots[i], slot = i;
        if (!w || !w->read_done || w->chunks_done < w->n_chunks || atomic_load(&p->abort)) return;
        for (int32_t r = 0; r < w->n_rows; r++) w->keys[r] = (int64_t)w->info[r].n_tokens << 32 | r;
        qsort(w->keys, (size_t)w->n_rows, sizeof *w->keys, key_cmp);
        for (int32_t r = 0; r < w->n_rows; r++) w->order[r] = (int32_t)(w->keys[r] & 0xffffffff);
        int32_t nb = 0;
        w->cuts[0] = 0;
        for (int32_t i = 0; i < w->n_rows;) {
            int64_t T = 0;
            int32_t start = i;
            while (i < w->n_rows && (i == start || T + w->info[w->order[i]].n_tokens <= o->token_budget) &&
                   i - start < p->rows_cap) {
                T += w->info[w->order[i]].n_tokens;
                i++;
            }
            w->cuts[++nb] = i;
            q_push(&p->bq, slot, nb - 1);
        }
        p->next_batch_seq++;
        pthread_cond_broadcast(&p->cv_dev);
    }
}

/* ---- tokenizer threads ------------------------------------------------------------ */

/* Tokenize one chunk into its id arena and its rows' row_info; 0 on a
 * failure (recorded). */
static int tokenize_chunk(pipe_state *p, window *w, chunk *c, ember_token **tok, int32_t *tok_cap) {
    const pipeline_opts *o = p->o;
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.truncate_left = o->encode.truncate_left;
    tp.prompt = p->prompt;
    c->ids_len = 0;
    for (int32_t k = 0; k < c->n; k++) {
        int64_t row = w->first_row + c->first + k;
        const char *text = c->text + c->text_off[k];
        size_t len = c->text_off[k + 1] - c->text_off[k];
        char *owned = NULL;
        if (o->jsonl_field && !(text = owned = jsonl_field(text, len, o->jsonl_field, &len))) {
            pthread_mutex_lock(&p->mu);
            fail_locked(p, row, EMBER_ERR_FORMAT, "%s:%lld: %s", p->in_name, (long long)row + 1, ember_last_error());
            pthread_mutex_unlock(&p->mu);
            return 0;
        }
        int32_t n = 0;
        ember_text_stats ts;
        ember_status st;
        while ((st = ember_tokenize(o->models[0], text, (ptrdiff_t)len, NULL, 0, &tp, *tok, *tok_cap, &n, &ts)) ==
               EMBER_ERR_BUFFER_TOO_SMALL) {
            ember_token *t = realloc(*tok, (size_t)n * sizeof *t);
            if (!t) break;
            *tok = t;
            *tok_cap = n;
        }
        free(owned);
        if (st != EMBER_OK || (!o->encode.truncate && ts.truncated)) {
            pthread_mutex_lock(&p->mu);
            if (st != EMBER_OK)
                fail_locked(p, row, st, "%s:%lld: cannot tokenize: %s", p->in_name, (long long)row + 1,
                            ember_last_error());
            else
                fail_locked(p, row, EMBER_ERR_INVALID_ARGUMENT,
                            "%s:%lld: the text is %d tokens long, over the model's maximum of %d (--no-truncate is "
                            "set; without it the text is cut and counted)",
                            p->in_name, (long long)row + 1, ts.n_tokens_untruncated, p->max_length);
            pthread_mutex_unlock(&p->mu);
            return 0;
        }
        if (!vec_grow((void **)&c->ids, &c->ids_cap, c->ids_len + (size_t)n, sizeof *c->ids)) {
            pthread_mutex_lock(&p->mu);
            fail_locked(p, row, EMBER_ERR_OUT_OF_MEMORY, "%s:%lld: out of memory", p->in_name, (long long)row + 1);
            pthread_mutex_unlock(&p->mu);
            return 0;
        }
        c->id_off[k] = c->ids_len;
        for (int32_t j = 0; j < n; j++) c->ids[c->ids_len + (size_t)j] = (*tok)[j].id;
        c->ids_len += (size_t)n;
        row_info *ri = &w->info[c->first + k];
        ri->n_tokens = n;
        ri->truncated = ts.truncated != 0;
        ri->invalid_utf8 = ts.invalid_utf8 > 0;
        ri->empty = len == 0;
    }
    c->id_off[c->n] = c->ids_len;
    return 1;
}

static void *tokenizer_main(void *arg) {
    pipe_state *p = arg;
    int32_t tok_cap = p->max_length + 2;
    ember_token *tok = malloc((size_t)tok_cap * sizeof *tok);
    pthread_mutex_lock(&p->mu);
    if (!tok) fail_locked(p, -1, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (;;) {
        while (!atomic_load(&p->abort) && p->tq.len == 0 && !p->reader_done) pthread_cond_wait(&p->cv_tok, &p->mu);
        if (atomic_load(&p->abort) || p->tq.len == 0) break;
        work wk = q_pop(&p->tq);
        pthread_mutex_unlock(&p->mu);
        window *w = &p->slots[wk.slot];
        int ok = tokenize_chunk(p, w, &w->chunks[wk.index], &tok, &tok_cap);
        pthread_mutex_lock(&p->mu);
        if (!ok) break;
        w->chunks_done++;
        batch_ready_locked(p);
    }
    pthread_mutex_unlock(&p->mu);
    free(tok);
    return NULL;
}

/* ---- device threads ------------------------------------------------------------------ */

typedef struct device_arg {
    pipe_state *p;
    int32_t index;
} device_arg;

static void *device_main(void *arg) {
    pipe_state *p = ((device_arg *)arg)->p;
    const int32_t di = ((device_arg *)arg)->index;
    const pipeline_opts *o = p->o;
    ember_model *m = o->models[di];
    const int32_t D = p->D;
    ember_sequence *seqs = malloc((size_t)p->rows_cap * sizeof *seqs);
    float *pooled = malloc((size_t)p->rows_cap * (size_t)D * sizeof *pooled);
    double busy = 0;
    pthread_mutex_lock(&p->mu);
    if (!seqs || !pooled)
        fail_locked(p, -1, EMBER_ERR_OUT_OF_MEMORY, "out of memory for a batch of %d rows", p->rows_cap);
    for (;;) {
        while (!atomic_load(&p->abort) && p->bq.len == 0 && !(p->reader_done && p->next_batch_seq == p->n_windows))
            pthread_cond_wait(&p->cv_dev, &p->mu);
        if (atomic_load(&p->abort) || p->bq.len == 0) break;
        work wk = q_pop(&p->bq);
        pthread_mutex_unlock(&p->mu);
        window *w = &p->slots[wk.slot];
        const int32_t *rows = w->order + w->cuts[wk.index];
        const int32_t n = w->cuts[wk.index + 1] - w->cuts[wk.index];
        int64_t T = 0;
        for (int32_t i = 0; i < n; i++) {
            const chunk *c = &w->chunks[rows[i] / PIPE_CHUNK_ROWS];
            int32_t k = rows[i] - c->first;
            seqs[i] = (ember_sequence){c->ids + c->id_off[k], NULL, (int32_t)(c->id_off[k + 1] - c->id_off[k]),
                                       p->pool_skip};
            T += seqs[i].n;
        }
        double t0 = clock_now();
        ember_status st = ember_encode_sequences(m, seqs, n, &o->encode, pooled, NULL);
        busy += clock_now() - t0;
        if (st == EMBER_OK)
            for (int32_t i = 0; i < n; i++)
                memcpy(w->out + (size_t)rows[i] * D, pooled + (size_t)i * D, (size_t)D * sizeof *pooled);
        pthread_mutex_lock(&p->mu);
        if (st != EMBER_OK) {
            int64_t first = w->first_row + rows[0];
            fail_locked(p, first, st, "%s: encoding a batch of %d texts (line %lld among them) failed: %s", p->in_name,
                        n, (long long)first + 1, ember_last_error());
            break;
        }
        w->rows_encoded += n;
        p->rows_encoded += n;
        p->tokens_encoded += T;
        if (w->rows_encoded == w->n_rows) pthread_cond_signal(&p->cv_writer);
    }
    if (di < 64) p->busy[di] = busy;
    pthread_mutex_unlock(&p->mu);
    free(seqs);
    free(pooled);
    return NULL;
}

/* ---- set-up and the writer (the calling thread) ------------------------------------- */

static void slots_free(pipe_state *p) {
    for (int i = 0; i < PIPE_SLOTS; i++) {
        window *w = &p->slots[i];
        if (w->chunks)
            for (int32_t c = 0; c < p->cap_chunks; c++) {
                free(w->chunks[c].text);
                free(w->chunks[c].text_off);
                free(w->chunks[c].ids);
                free(w->chunks[c].id_off);
            }
        free(w->chunks);
        free(w->info);
        free(w->keys);
        free(w->order);
        free(w->cuts);
        free(w->out);
    }
}

static int slots_alloc(pipe_state *p) {
    const size_t W = (size_t)p->window_rows;
    for (int i = 0; i < PIPE_SLOTS; i++) {
        window *w = &p->slots[i];
        w->chunks = calloc((size_t)p->cap_chunks, sizeof *w->chunks);
        w->info = calloc(W, sizeof *w->info);
        w->keys = malloc(W * sizeof *w->keys);
        w->order = malloc(W * sizeof *w->order);
        w->cuts = malloc((W + 1) * sizeof *w->cuts);
        w->out = malloc(W * (size_t)p->D * sizeof *w->out);
        if (!w->chunks || !w->info || !w->keys || !w->order || !w->cuts || !w->out) return 0;
        for (int32_t c = 0; c < p->cap_chunks; c++) {
            w->chunks[c].text_off = malloc((PIPE_CHUNK_ROWS + 1) * sizeof(size_t));
            w->chunks[c].id_off = malloc((PIPE_CHUNK_ROWS + 1) * sizeof(size_t));
            if (!w->chunks[c].text_off || !w->chunks[c].id_off) return 0;
        }
    }
    return 1;
}

/* Ready to write: the window numbered seq, complete. Lock held. */
static window *window_done_locked(pipe_state *p, int64_t seq) {
    for (int i = 0; i < PIPE_SLOTS; i++) {
        window *w = &p->slots[i];
        if (w->busy && w->seq == seq)
            return w->read_done && w->chunks_done == w->n_chunks && p->next_batch_seq > seq &&
                           w->rows_encoded == w->n_rows
                       ? w
                       : NULL;
    }
    return NULL;
}

/* ---- set-up and tear-down ------------------------------------------------------------ */

/* Sizes, queues, window slots, the input, the locks. */
static ember_status pipe_setup(pipe_state *p, const pipeline_opts *o) {
    p->o = o;
    ember_model_info info;
    ember_model_get_info(o->models[0], &info);
    p->D = info.dim;
    p->max_length = info.max_length;
    ember_status st = ember_resolve_prompt(o->models[0], o->encode.prompt_name, o->encode.prompt, &p->prompt,
                                           &p->pool_skip);
    if (st) return st;
    p->window_rows = o->window;
    p->cap_chunks = (o->window + PIPE_CHUNK_ROWS - 1) / PIPE_CHUNK_ROWS;
    /* a batch holds at most budget / 2 rows: every sequence has [CLS] and [SEP] */
    p->rows_cap = o->token_budget / 2 + 1;
    if (o->max_batch_rows > 0 && o->max_batch_rows < p->rows_cap) p->rows_cap = o->max_batch_rows;
    if (p->rows_cap > o->window) p->rows_cap = o->window;
    p->tq.cap = PIPE_SLOTS * p->cap_chunks;
    p->bq.cap = PIPE_SLOTS * o->window;
    p->tq.q = malloc((size_t)p->tq.cap * sizeof *p->tq.q);
    p->bq.q = malloc((size_t)p->bq.cap * sizeof *p->bq.q);
    if (!p->tq.q || !p->bq.q || !slots_alloc(p))
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for the pipeline (--window %d)", o->window);
    st = line_reader_open(&p->in, o->input, reader_should_stop, p);
    if (st) return st;
    p->in_name = line_reader_name(p->in);
    if (pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->cv_reader, NULL) ||
        pthread_cond_init(&p->cv_tok, NULL) || pthread_cond_init(&p->cv_dev, NULL) || clock_cond_init(&p->cv_writer))
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "cannot create the pipeline's locks");
    p->sync_ready = 1;
    return EMBER_OK;
}

static void pipe_free(pipe_state *p) {
    if (p->sync_ready) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv_reader);
        pthread_cond_destroy(&p->cv_tok);
        pthread_cond_destroy(&p->cv_dev);
        pthread_cond_destroy(&p->cv_writer);
    }
    line_reader_close(p->in);
    slots_free(p);
    free(p->tq.q);
    free(p->bq.q);
    free(p->tok_tids);
    free(p->dev_tids);
    free(p->dargs);
    free(p);
}

/* The reader, the tokenizers and one thread per model, with SIGINT and
 * SIGTERM blocked so that they reach the caller's threads only. */
static void threads_start(pipe_state *p) {
    const pipeline_opts *o = p->o;
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    p->n_tok = o->tokenizer_threads > 0 ? o->tokenizer_threads : 1;
    p->tok_tids = calloc((size_t)p->n_tok, sizeof *p->tok_tids);
    p->dev_tids = calloc((size_t)o->n_models, sizeof *p->dev_tids);
    p->dargs = calloc((size_t)o->n_models, sizeof *p->dargs);
    if (p->tok_tids && p->dev_tids && p->dargs) {
        p->reader_started = pthread_create(&p->reader_tid, NULL, reader_main, p) == 0;
        for (; p->reader_started && p->started_tok < p->n_tok; p->started_tok++)
            if (pthread_create(&p->tok_tids[p->started_tok], NULL, tokenizer_main, p) != 0) break;
        for (; p->reader_started && p->started_dev < o->n_models; p->started_dev++) {
            p->dargs[p->started_dev] = (device_arg){p, p->started_dev};
            if (pthread_create(&p->dev_tids[p->started_dev], NULL, device_main, &p->dargs[p->started_dev]) != 0)
                break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    pthread_mutex_lock(&p->mu);
    if (!p->reader_started || p->started_tok < p->n_tok || p->started_dev < o->n_models)
        fail_locked(p, -1, EMBER_ERR_OUT_OF_MEMORY, "cannot start the pipeline's threads");
    pthread_mutex_unlock(&p->mu);
}

/* Every thread stops on its own once the run is over or aborted (the reader
 * asks reader_should_stop while it waits for input). */
static void threads_join(pipe_state *p) {
    if (p->reader_started) pthread_join(p->reader_tid, NULL);
    for (int32_t i = 0; i < p->started_tok; i++) pthread_join(p->tok_tids[i], NULL);
    for (int32_t i = 0; i < p->started_dev; i++) pthread_join(p->dev_tids[i], NULL);
}

/* ---- the writer (the calling thread) -------------------------------------------------- */

typedef struct {
    ember_embed_progress now;
    double t0, last;
} progress_clock;

static void progress_report(const pipe_state *p, progress_clock *pc, int64_t rows, int64_t tokens, int64_t bytes,
                            int done) {
    const pipeline_opts *o = p->o;
    if (!o->progress) return;
    const double t = clock_now(), every = o->progress_interval > 0 ? o->progress_interval : 0.25;
    if (!done && t - pc->last < every) return;
    pc->last = t;
    pc->now.rows = rows;
    pc->now.tokens = tokens;
    pc->now.input_bytes = bytes;
    pc->now.elapsed = t - pc->t0;
    pc->now.done = done;
    o->progress(&pc->now, o->progress_user);
}

/* The next window in input order once it is encoded; NULL when the stream is
 * over or aborted. Reports progress while it waits, and turns the caller's
 * cancel into an abort. */
static window *next_window(pipe_state *p, int64_t next, progress_clock *pc, int64_t bytes_at) {
    pthread_mutex_lock(&p->mu);
    window *w = NULL;
    while (!atomic_load(&p->abort)) {
        if ((w = window_done_locked(p, next))) break;
        if (p->reader_done && next == p->n_windows) {
            /* the writer may not have seen the stop (windows were ready
             * every time it looked), but the reader did */
            if (p->reader_stopped) p->cancelled = 1;
            break;
        }
        struct timespec ts = clock_deadline(0.1);
        pthread_cond_timedwait(&p->cv_writer, &p->mu, &ts);
        if (!atomic_load(&p->abort) && user_cancelled(p)) {
            p->cancelled = 1;
            atomic_store(&p->abort, 1);
            wake_all(p);
        }
        if (!atomic_load(&p->abort)) {
            int64_t er = p->rows_encoded, et = p->tokens_encoded;
            pthread_mutex_unlock(&p->mu);
            progress_report(p, pc, er, et, bytes_at, 0);
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return w;
}

/* Windows in order, rows in order, into the sink. */
static void write_windows(pipe_state *p, pipeline_result *res) {
    const pipeline_opts *o = p->o;
    progress_clock pc;
    memset(&pc, 0, sizeof pc);
    pc.t0 = pc.last = clock_now();
    pc.now.rows_before = o->skip_rows;
    pc.now.input_size = line_reader_size(p->in);
    pc.now.input_start = -1;
    int64_t next = 0, rows = 0, tokens = 0, bytes_at = -1;
    window *w;
    while ((w = next_window(p, next, &pc, bytes_at))) {
        if (!sink_write(o->out, w->out, w->info, w->n_rows)) {
            pthread_mutex_lock(&p->mu);
            /* a write that a stop signal broke off (EINTR on a pipe) */
            if (user_cancelled(p)) {
                p->cancelled = 1;
                atomic_store(&p->abort, 1);
                wake_all(p);
            } else {
                fail_locked(p, -1, ember_error_status(), "%s", ember_last_error());
            }
            pthread_mutex_unlock(&p->mu);
            break;
        }
        rows += w->n_rows;
        for (int32_t r = 0; r < w->n_rows; r++) tokens += w->info[r].n_tokens;
        bytes_at = w->in_offset;
        pthread_mutex_lock(&p->mu);
        if (next == 0) pc.now.input_start = p->start_offset;
        w->busy = 0;
        pthread_cond_signal(&p->cv_reader);
        int64_t er = p->rows_encoded, et = p->tokens_encoded;
        pthread_mutex_unlock(&p->mu);
        next++;
        /* also here: on a fast device the next window may always be ready */
        progress_report(p, &pc, er, et, bytes_at, 0);
    }
    res->elapsed = clock_now() - pc.t0;
    res->rows = rows;
    res->tokens = tokens;
    progress_report(p, &pc, rows, tokens, bytes_at, 1);
}

ember_status pipeline_run(const pipeline_opts *o, pipeline_result *res) {
    memset(res, 0, sizeof *res);
    pipe_state *p = calloc(1, sizeof *p);
    if (!p) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = pipe_setup(p, o);
    if (st) {
        pipe_free(p);
        return st;
    }
    threads_start(p);
    write_windows(p, res);
    threads_join(p);
    res->n_busy = o->n_models < 64 ? o->n_models : 64;
    for (int32_t i = 0; i < res->n_busy; i++) res->busy[i] = p->busy[i];
    if (p->has_err) st = ember_fail(p->err_status ? p->err_status : EMBER_ERR_IO, "%s", p->err);
    else if (p->cancelled) st = ember_fail(EMBER_ERR_CANCELLED, "cancelled");
    else if (atomic_load(&p->abort)) st = ember_fail(EMBER_ERR_IO, "the pipeline stopped without a reason (a bug)");
    pipe_free(p);
    return st;
}
