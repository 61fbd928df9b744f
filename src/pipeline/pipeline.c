/* The streaming engine of `ember embed` (see pipeline.h for the flow). One
 * mutex guards the hand-offs; the work units are large (a chunk of rows, a
 * batch of tokens, a window), so it is taken a few hundred times a second. */
#include "pipeline.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cli/cli.h"
#include "progress.h"
#include "sink.h"

#define READ_BUF (1 << 16)

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
    gzFile gz;
    const char *name;
    unsigned char *buf;
    size_t len, pos;
    int eof;
    uint32_t crc; /* of the lines read, each as its bytes and "\n" */
    int64_t bytes;
    int64_t lines;
} input;

typedef struct {
    const pipeline_opts *o;
    int32_t D, max_length, window_rows, cap_chunks, rows_cap;
    pthread_mutex_t mu;
    pthread_cond_t cv_reader, cv_tok, cv_dev, cv_writer;
    window slots[PIPE_SLOTS];
    work_queue tq; /* chunks to tokenize */
    work_queue bq; /* batches to encode */
    int64_t n_windows;      /* opened by the reader */
    int64_t next_batch_seq; /* the next window to cut into batches */
    int reader_done, reader_exited;
    int reader_stopped; /* the reader ended at *o->stop, before the input's end */
    int64_t start_offset; /* the input's stored offset after the skipped rows (progress) */
    int abort;
    int has_err;
    int64_t err_row;
    char err[2048];
    double busy[64];
    int64_t rows_encoded, tokens_encoded; /* by every device, for the progress line */
    input in;
    pthread_t reader_tid;
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
static void fail_locked(pipe_state *p, int64_t row, const char *fmt, ...) {
    if (!p->has_err || row < p->err_row) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
        p->err_row = row;
        p->has_err = 1;
    }
    p->abort = 1;
    wake_all(p);
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *n = realloc(*buf, c * elem);
    if (!n) return 0;
    *buf = n;
    *cap = c;
    return 1;
}

/* ---- the reader ------------------------------------------------------------------ */

/* Append the next line (without "\n" or "\r\n") to *dst. 1: a line; 0: the
 * end; -1: a read error or an interruption (the caller tells which). */
static int input_line(input *in, char **dst, size_t *dlen, size_t *dcap) {
    size_t start = *dlen;
    int any = 0;
    for (;;) {
        if (in->pos == in->len) {
            if (in->eof) break;
            int got = gzread(in->gz, in->buf, READ_BUF);
            if (got < 0) return -1;
            if (got == 0) {
                int err;
                gzerror(in->gz, &err);
                /* zlib reports a gzip stream cut short only here */
                if (err != Z_OK) return -1;
                in->eof = 1;
                break;
            }
            in->len = (size_t)got;
            in->pos = 0;
        }
        any = 1;
        unsigned char *s = in->buf + in->pos;
        size_t avail = in->len - in->pos;
        unsigned char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        if (!grow((void **)dst, dcap, *dlen + take + 1, 1)) return -1;
        memcpy(*dst + *dlen, s, take);
        *dlen += take;
        in->pos += take + (nl ? 1 : 0);
        if (nl) break;
    }
    if (!any) return 0;
    if (*dlen > start && (*dst)[*dlen - 1] == '\r') (*dlen)--;
    in->crc = (uint32_t)crc32(in->crc, (const Bytef *)*dst + start, (uInt)(*dlen - start));
    in->crc = (uint32_t)crc32(in->crc, (const Bytef *)"\n", 1);
    in->bytes += (int64_t)(*dlen - start) + 1;
    in->lines++;
    return 1;
}

static void reader_error(pipe_state *p, int64_t row) {
    if (*p->o->stop) return; /* interrupted, not broken */
    int err = Z_OK;
    const char *msg = gzerror(p->in.gz, &err);
    if (err == Z_ERRNO) msg = strerror(errno);
    pthread_mutex_lock(&p->mu);
    if (!p->abort) /* else the read was broken off on purpose */
        fail_locked(p, row, "%s: read error at line %lld: %s", p->in.name, (long long)row + 1,
                    err == Z_BUF_ERROR ? "the gzip stream ends early (a truncated file?)" : msg);
    pthread_mutex_unlock(&p->mu);
}

/* Skip the rows an earlier run embedded, checking they are the same lines. */
static int reader_skip(pipe_state *p) {
    const pipeline_opts *o = p->o;
    char *scratch = NULL;
    size_t cap = 0;
    int ok = 1;
    for (int64_t r = 0; r < o->skip_rows; r++) {
        size_t len = 0;
        int got = input_line(&p->in, &scratch, &len, &cap);
        if (got < 0) {
            reader_error(p, r);
            ok = 0;
            break;
        }
        if (got == 0 || *o->stop) {
            if (got == 0) {
                pthread_mutex_lock(&p->mu);
                fail_locked(p, -1, "%s has %lld lines, but the run being resumed has %lld rows already", p->in.name,
                            (long long)r, (long long)o->skip_rows);
                pthread_mutex_unlock(&p->mu);
            }
            ok = 0;
            break;
        }
    }
    free(scratch);
    if (ok && (p->in.crc != o->skip_crc || p->in.bytes != o->skip_bytes)) {
        pthread_mutex_lock(&p->mu);
        fail_locked(p, -1,
                    "%s is not the input of the run being resumed: its first %lld lines are %lld bytes with crc32 "
                    "%08x, the run read %lld bytes with crc32 %08x",
                    p->in.name, (long long)o->skip_rows, (long long)p->in.bytes, (unsigned)p->in.crc,
                    (long long)o->skip_bytes, (unsigned)o->skip_crc);
        pthread_mutex_unlock(&p->mu);
        ok = 0;
    }
    return ok;
}

static void batch_ready_locked(pipe_state *p);

static void *reader_main(void *arg) {
    pipe_state *p = arg;
    const pipeline_opts *o = p->o;
    /* the writer interrupts a blocked read with SIGUSR1 (see pipeline_run) */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    int64_t row = o->skip_rows;
    int end = o->skip_rows > 0 && !reader_skip(p);
    pthread_mutex_lock(&p->mu);
    p->start_offset = gzoffset(p->in.gz);
    pthread_mutex_unlock(&p->mu);
    while (!end) {
        pthread_mutex_lock(&p->mu);
        window *w = NULL;
        while (!p->abort) {
            for (int i = 0; i < PIPE_SLOTS && !w; i++)
                if (!p->slots[i].busy) w = &p->slots[i];
            if (w) break;
            pthread_cond_wait(&p->cv_reader, &p->mu);
        }
        if (p->abort) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        int32_t slot = (int32_t)(w - p->slots);
        w->busy = 1;
        w->seq = p->n_windows++;
        w->first_row = row;
        w->n_rows = w->n_chunks = w->chunks_done = w->rows_encoded = 0;
        w->read_done = 0;
        w->text_bytes = 0;
        pthread_mutex_unlock(&p->mu);

        int32_t rows = 0, limit = p->window_rows;
        if (o->align_rows > 0 && o->align_rows - row % o->align_rows < limit)
            limit = (int32_t)(o->align_rows - row % o->align_rows);
        while (!end && rows < limit && w->text_bytes < PIPE_WINDOW_BYTES) {
            chunk *c = &w->chunks[w->n_chunks];
            c->first = rows;
            c->n = 0;
            c->text_len = 0;
            c->text_off[0] = 0;
            while (c->n < PIPE_CHUNK_ROWS && rows + c->n < limit &&
                   w->text_bytes + c->text_len < PIPE_WINDOW_BYTES) {
                if (*o->stop) {
                    end = 1;
                    break;
                }
                int got = input_line(&p->in, &c->text, &c->text_len, &c->text_cap);
                if (got <= 0) {
                    if (got < 0) reader_error(p, row + c->n);
                    end = 1;
                    break;
                }
                row_info *ri = &w->info[rows + c->n];
                ri->in_crc = p->in.crc;
                ri->in_bytes = p->in.bytes;
                c->n++;
                c->text_off[c->n] = c->text_len;
            }
            w->text_bytes += c->text_len;
            rows += c->n;
            row += c->n;
            if (c->n > 0) {
                pthread_mutex_lock(&p->mu);
                w->n_rows = rows;
                w->n_chunks++;
                q_push(&p->tq, slot, w->n_chunks - 1);
                pthread_cond_signal(&p->cv_tok);
                pthread_mutex_unlock(&p->mu);
            }
        }
        pthread_mutex_lock(&p->mu);
        w->read_done = 1;
        w->in_offset = gzoffset(p->in.gz);
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
    if (*o->stop && !p->in.eof) p->reader_stopped = 1;
    p->reader_done = 1;
    p->reader_exited = 1;
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
        if (!w || !w->read_done || w->chunks_done < w->n_chunks || p->abort) return;
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

/* The text of a JSON line's field, or NULL with *msg set. */
static char *json_text(const char *line, size_t len, const char *field, size_t *out_len, char *msg, size_t cap) {
    json_error_t err;
    json_t *root = json_loadb(line, len, 0, &err);
    if (!root) {
        snprintf(msg, cap, "malformed JSON at column %d: %s", err.column, err.text);
        return NULL;
    }
    json_t *v = json_is_object(root) ? json_object_get(root, field) : NULL;
    char *s = NULL;
    if (!json_is_string(v)) {
        snprintf(msg, cap, "%s (the text is read from the field '%s'; set it with --field)",
                 !json_is_object(root) ? "not a JSON object"
                 : v                   ? "the text field is not a string"
                                       : "the text field is missing",
                 field);
    } else {
        size_t n = json_string_length(v);
        s = malloc(n + 1);
        if (s) {
            memcpy(s, json_string_value(v), n);
            s[n] = '\0';
            *out_len = n;
        } else {
            snprintf(msg, cap, "out of memory");
        }
    }
    json_decref(root);
    return s;
}

/* Tokenize one chunk into its id arena and its rows' row_info; 0 on a
 * failure (recorded). */
static int tokenize_chunk(pipe_state *p, window *w, chunk *c, ember_token **tok, int32_t *tok_cap) {
    const pipeline_opts *o = p->o;
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.truncate_left = o->encode.truncate_left;
    c->ids_len = 0;
    char msg[1024];
    for (int32_t k = 0; k < c->n; k++) {
        int64_t row = w->first_row + c->first + k;
        const char *text = c->text + c->text_off[k];
        size_t len = c->text_off[k + 1] - c->text_off[k];
        char *owned = NULL;
        if (o->jsonl && !(text = owned = json_text(text, len, o->field, &len, msg, sizeof msg))) {
            pthread_mutex_lock(&p->mu);
            fail_locked(p, row, "%s:%lld: %s", p->in.name, (long long)row + 1, msg);
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
                fail_locked(p, row, "%s:%lld: cannot tokenize: %s", p->in.name, (long long)row + 1, ember_last_error());
            else
                fail_locked(p, row,
                            "%s:%lld: the text is %d tokens long, over the model's maximum of %d (--no-truncate is "
                            "set; without it the text is cut and counted)",
                            p->in.name, (long long)row + 1, ts.n_tokens_untruncated, p->max_length);
            pthread_mutex_unlock(&p->mu);
            return 0;
        }
        if (!grow((void **)&c->ids, &c->ids_cap, c->ids_len + (size_t)n, sizeof *c->ids)) {
            pthread_mutex_lock(&p->mu);
            fail_locked(p, row, "%s:%lld: out of memory", p->in.name, (long long)row + 1);
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
    if (!tok) fail_locked(p, -1, "out of memory");
    for (;;) {
        while (!p->abort && p->tq.len == 0 && !p->reader_done) pthread_cond_wait(&p->cv_tok, &p->mu);
        if (p->abort || p->tq.len == 0) break;
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

typedef struct {
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
    if (!seqs || !pooled) fail_locked(p, -1, "out of memory for a batch of %d rows", p->rows_cap);
    for (;;) {
        while (!p->abort && p->bq.len == 0 && !(p->reader_done && p->next_batch_seq == p->n_windows))
            pthread_cond_wait(&p->cv_dev, &p->mu);
        if (p->abort || p->bq.len == 0) break;
        work wk = q_pop(&p->bq);
        pthread_mutex_unlock(&p->mu);
        window *w = &p->slots[wk.slot];
        const int32_t *rows = w->order + w->cuts[wk.index];
        const int32_t n = w->cuts[wk.index + 1] - w->cuts[wk.index];
        int64_t T = 0;
        for (int32_t i = 0; i < n; i++) {
            const chunk *c = &w->chunks[rows[i] / PIPE_CHUNK_ROWS];
            int32_t k = rows[i] - c->first;
            seqs[i] = (ember_sequence){c->ids + c->id_off[k], NULL, (int32_t)(c->id_off[k + 1] - c->id_off[k])};
            T += seqs[i].n;
        }
        double t0 = now_seconds();
        ember_status st = ember_encode_sequences(m, seqs, n, &o->encode, pooled, NULL);
        busy += now_seconds() - t0;
        if (st == EMBER_OK)
            for (int32_t i = 0; i < n; i++)
                memcpy(w->out + (size_t)rows[i] * D, pooled + (size_t)i * D, (size_t)D * sizeof *pooled);
        pthread_mutex_lock(&p->mu);
        if (st != EMBER_OK) {
            int64_t first = w->first_row + rows[0];
            fail_locked(p, first, "%s: encoding a batch of %d texts (line %lld among them) failed: %s", p->in.name, n,
                        (long long)first + 1, ember_last_error());
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

static void on_sigusr1(int sig) { (void)sig; }

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

static int64_t input_size(const char *path) {
    struct stat st;
    int r = strcmp(path, "-") == 0 ? fstat(0, &st) : stat(path, &st);
    return r == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
}

int pipeline_run(const pipeline_opts *o, pipeline_result *res) {
    memset(res, 0, sizeof *res);
    pipe_state *p = calloc(1, sizeof *p);
    if (!p) {
        fprintf(stderr, "ember: error: out of memory\n");
        return 0;
    }
    p->o = o;
    ember_model_info info;
    ember_model_get_info(o->models[0], &info);
    p->D = info.dim;
    p->max_length = info.max_length;
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
    p->in.buf = malloc(READ_BUF);
    int ok = p->tq.q && p->bq.q && p->in.buf && slots_alloc(p);
    if (!ok) {
        fprintf(stderr, "ember: error: out of memory for the pipeline (--window %d)\n", o->window);
        goto out_free;
    }
    /* the input */
    if (strcmp(o->input, "-") == 0) {
        p->in.name = "<stdin>";
        p->in.gz = gzdopen(0, "rb");
    } else {
        p->in.name = o->input;
        FILE *probe = fopen(o->input, "rb");
        if (!probe) {
            fprintf(stderr, "ember: error: %s: cannot open: %s\n", o->input, strerror(errno));
            ok = 0;
            goto out_free;
        }
        fclose(probe);
        p->in.gz = gzopen(o->input, "rb");
    }
    if (!p->in.gz) {
        fprintf(stderr, "ember: error: %s: cannot open\n", p->in.name);
        ok = 0;
        goto out_free;
    }
    gzbuffer(p->in.gz, 1 << 17);
    p->in.crc = (uint32_t)crc32(0L, Z_NULL, 0);

    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_reader, NULL);
    pthread_cond_init(&p->cv_tok, NULL);
    pthread_cond_init(&p->cv_dev, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv_writer, &ca);
    pthread_condattr_destroy(&ca);

    /* Signals: SIGINT / SIGTERM reach this (the writer's) thread only, which
     * polls o->stop; SIGUSR1, without SA_RESTART, is how it breaks a read the
     * reader is blocked in (stdin from a terminal or a stalled pipe). */
    struct sigaction sa, old_usr1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old_usr1);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);

    const int32_t n_tok = o->tokenizer_threads > 0 ? o->tokenizer_threads : 1;
    pthread_t *tok_tids = calloc((size_t)n_tok, sizeof *tok_tids);
    pthread_t *dev_tids = calloc((size_t)o->n_models, sizeof *dev_tids);
    device_arg *dargs = calloc((size_t)o->n_models, sizeof *dargs);
    int32_t started_tok = 0, started_dev = 0;
    int reader_started = 0;
    if (tok_tids && dev_tids && dargs) {
        reader_started = pthread_create(&p->reader_tid, NULL, reader_main, p) == 0;
        for (; reader_started && started_tok < n_tok; started_tok++)
            if (pthread_create(&tok_tids[started_tok], NULL, tokenizer_main, p) != 0) break;
        for (; reader_started && started_dev < o->n_models; started_dev++) {
            dargs[started_dev] = (device_arg){p, started_dev};
            if (pthread_create(&dev_tids[started_dev], NULL, device_main, &dargs[started_dev]) != 0) break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    pthread_mutex_lock(&p->mu);
    if (!reader_started || started_tok < n_tok || started_dev < o->n_models)
        fail_locked(p, -1, "cannot start the pipeline's threads");
    pthread_mutex_unlock(&p->mu);

    /* The writer: windows in order, rows in order. */
    progress prog;
    int64_t rows_before = o->skip_rows;
    progress_init(&prog, o->progress, input_size(o->input), rows_before);
    double t0 = now_seconds();
    int64_t next = 0, rows = 0, tokens = 0, bytes_at = -1;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        window *w = NULL;
        int finished = 0;
        while (!p->abort) {
            if ((w = window_done_locked(p, next))) break;
            if (p->reader_done && next == p->n_windows) {
                /* the writer may not have seen the stop (windows were ready
                 * every time it looked), but the reader did */
                if (p->reader_stopped) res->interrupted = 1;
                finished = 1;
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&p->cv_writer, &p->mu, &ts);
            if (*o->stop && !p->abort) {
                res->interrupted = 1;
                p->abort = 1;
                wake_all(p);
            }
            if (!p->abort) {
                int64_t er = p->rows_encoded, et = p->tokens_encoded;
                pthread_mutex_unlock(&p->mu);
                progress_update(&prog, er, et, bytes_at, 0);
                pthread_mutex_lock(&p->mu);
            }
        }
        pthread_mutex_unlock(&p->mu);
        if (!w || finished) break;
        if (!sink_write(o->out, w->out, w->info, w->n_rows)) {
            /* a write the stop signal broke off (EINTR on a pipe) */
            if (*o->stop) res->interrupted = 1;
            pthread_mutex_lock(&p->mu);
            fail_locked(p, -1, "%s", ""); /* the sink printed why */
            pthread_mutex_unlock(&p->mu);
            break;
        }
        rows += w->n_rows;
        for (int32_t r = 0; r < w->n_rows; r++) tokens += w->info[r].n_tokens;
        bytes_at = w->in_offset;
        pthread_mutex_lock(&p->mu);
        if (next == 0) prog.start_bytes = p->start_offset;
        w->busy = 0;
        pthread_cond_signal(&p->cv_reader);
        int64_t er = p->rows_encoded, et = p->tokens_encoded;
        pthread_mutex_unlock(&p->mu);
        next++;
        /* also here: on a fast device the next window may always be ready */
        progress_update(&prog, er, et, bytes_at, 0);
    }
    res->elapsed = now_seconds() - t0;

    /* Stop the reader if it is still at work (blocked on stdin, say). */
    pthread_mutex_lock(&p->mu);
    while (reader_started && !p->reader_exited) {
        pthread_kill(p->reader_tid, SIGUSR1);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&p->cv_writer, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    if (reader_started) pthread_join(p->reader_tid, NULL);
    for (int32_t i = 0; i < started_tok; i++) pthread_join(tok_tids[i], NULL);
    for (int32_t i = 0; i < started_dev; i++) pthread_join(dev_tids[i], NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    progress_update(&prog, rows, tokens, bytes_at, 1);
    progress_end(&prog);

    res->rows = rows;
    res->tokens = tokens;
    res->n_busy = o->n_models < 64 ? o->n_models : 64;
    for (int32_t i = 0; i < res->n_busy; i++) res->busy[i] = p->busy[i];
    ok = !p->abort;
    if (p->has_err && p->err[0]) fprintf(stderr, "ember: error: %s\n", p->err);
    if (res->interrupted && !p->has_err) ok = 0;
    free(tok_tids);
    free(dev_tids);
    free(dargs);
    gzclose(p->in.gz);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_reader);
    pthread_cond_destroy(&p->cv_tok);
    pthread_cond_destroy(&p->cv_dev);
    pthread_cond_destroy(&p->cv_writer);
out_free:
    slots_free(p);
    free(p->tq.q);
    free(p->bq.q);
    free(p->in.buf);
    free(p);
    return ok;
}
