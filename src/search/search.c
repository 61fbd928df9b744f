/* ember_search (include/ember.h) on the CPU: the corpus in blocks of rows,
 * each block scored against every query at once (the CPU backend's matrix
 * product, the queries packed as its weights; Hamming popcounts for bit
 * vectors), each thread keeping its own best candidates per query; then the
 * threads' candidates merged, and, for a compact corpus, rescored with the
 * float queries.
 *
 * Ties: better = higher score, or the same score and a lower row. A thread
 * takes blocks in increasing row order, so within a thread an equal score
 * never displaces an earlier row; the merge compares rows too. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_ops.h"
#include "common/error.h"
#include "common/quantize.h"
#include "index.h"

ember_search_params ember_search_default_params(void) {
    ember_search_params p;
    memset(&p, 0, sizeof p);
    p.k = 10;
    p.rescore = 4;
    return p;
}

typedef struct {
    float score;
    int64_t row;
} cand;

static int better(cand a, cand b) { return a.score > b.score || (a.score == b.score && a.row < b.row); }

static int cand_cmp(const void *x, const void *y) {
    const cand *a = x, *b = y;
    return better(*a, *b) ? -1 : better(*b, *a) ? 1 : 0;
}

/* A bounded set of the best candidates: a heap with the worst at its root. */
typedef struct {
    cand *c;
    int32_t n;
} topk;

static void topk_push(topk *t, int32_t cap, cand x) {
    if (t->n < cap) {
        int32_t i = t->n++;
        while (i > 0 && better(t->c[(i - 1) / 2], x)) {
            t->c[i] = t->c[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        t->c[i] = x;
        return;
    }
    if (!better(x, t->c[0])) return;
    int32_t i = 0;
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, w = i;
        cand wc = x;
        if (l < cap && better(wc, t->c[l])) w = l, wc = t->c[l];
        if (r < cap && better(wc, t->c[r])) w = r;
        if (w == i) break;
        t->c[i] = t->c[w];
        i = w;
    }
    t->c[i] = x;
}

/* The worst score a candidate must beat (-inf until the set is full). */
static float topk_floor(const topk *t, int32_t cap) { return t->n < cap ? -INFINITY : t->c[0].score; }

/* ---- scoring a block ---------------------------------------------------------------- */

typedef struct {
    const ember_index *ix;
    const ember_index *rescore_ix; /* float vectors to rescore with, or NULL: ix's own */
    int32_t n, d, kc; /* queries, dimension, candidates kept per query */
    int bits;         /* bit vectors: Hamming similarity */
    cpu_kernels kern;
    const float *qpacked; /* float precisions: the queries as the product's packed weights */
    const float *zeros;   /* (n) the product's bias */
    const uint8_t *qbits; /* bit precisions: the queries as stored */
    int32_t block_rows;
} plan;

/* scores (rows, n) of the bit vectors rows[0..rows) against every query:
 * the number of matching bits (dim minus the Hamming distance). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("popcnt")))
static void hamming_popcnt(float *scores, const uint8_t *rows, int64_t nrows, const plan *p) {
    const size_t bytes = precision_row_bytes(p->ix->info.precision, p->d);
    for (int64_t r = 0; r < nrows; r++)
        for (int32_t q = 0; q < p->n; q++) {
            const uint8_t *a = rows + (size_t)r * bytes, *b = p->qbits + (size_t)q * bytes;
            int32_t diff = 0;
            size_t i = 0;
            for (; i + 8 <= bytes; i += 8) {
                uint64_t x, y;
                memcpy(&x, a + i, 8);
                memcpy(&y, b + i, 8);
                diff += __builtin_popcountll(x ^ y);
            }
            for (; i < bytes; i++) diff += __builtin_popcount((unsigned)(a[i] ^ b[i]));
            scores[(size_t)r * p->n + q] = (float)(p->d - diff);
        }
}
#endif

static void hamming_generic(float *scores, const uint8_t *rows, int64_t nrows, const plan *p) {
    const size_t bytes = precision_row_bytes(p->ix->info.precision, p->d);
    for (int64_t r = 0; r < nrows; r++)
        for (int32_t q = 0; q < p->n; q++) {
            const uint8_t *a = rows + (size_t)r * bytes, *b = p->qbits + (size_t)q * bytes;
            int32_t diff = 0;
            for (size_t i = 0; i < bytes; i++) diff += __builtin_popcount((unsigned)(a[i] ^ b[i]));
            scores[(size_t)r * p->n + q] = (float)(p->d - diff);
        }
}

static void hamming(float *scores, const uint8_t *rows, int64_t nrows, const plan *p) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("popcnt")) {
        hamming_popcnt(scores, rows, nrows, p);
        return;
    }
#endif
    hamming_generic(scores, rows, nrows, p);
}

/* Score rows [r0, r0 + nr) of a shard into scores (nr, n); buf: nr x d
 * floats for rows that are not float32 as stored. */
static void score_block(const plan *p, const index_shard *sh, int64_t r0, int32_t nr, float *scores, float *buf) {
    const ember_precision prec = p->ix->info.precision;
    const char *src = (const char *)sh->data + (size_t)r0 * p->ix->row_bytes;
    if (p->bits) {
        hamming(scores, (const uint8_t *)src, nr, p);
        return;
    }
    const float *rows = (const float *)src;
    if (prec != EMBER_PRECISION_FLOAT32) {
        for (int32_t i = 0; i < nr; i++) dequantize_row(buf + (size_t)i * p->d, src + (size_t)i * p->ix->row_bytes, p->d, prec);
        rows = buf;
    }
    linear_rows_cpu(scores, rows, p->qpacked, p->zeros, NULL, CPU_ACT_NONE, 0, nr, p->d, p->n, p->kern);
}

/* ---- the search --------------------------------------------------------------------- */

typedef struct {
    int32_t shard;
    int64_t r0;
    int32_t nr;
} block;

/* Every block of every shard, in row order. */
static block *blocks_make(const plan *p, int64_t *n_blocks) {
    const ember_index *ix = p->ix;
    int64_t n = 0;
    for (int32_t s = 0; s < ix->n_shards; s++) n += (ix->shards[s].rows + p->block_rows - 1) / p->block_rows;
    block *b = malloc((size_t)(n ? n : 1) * sizeof *b);
    if (!b) return NULL;
    int64_t i = 0;
    for (int32_t s = 0; s < ix->n_shards; s++)
        for (int64_t r0 = 0; r0 < ix->shards[s].rows; r0 += p->block_rows) {
            int64_t left = ix->shards[s].rows - r0;
            b[i++] = (block){s, r0, (int32_t)(left < p->block_rows ? left : p->block_rows)};
        }
    *n_blocks = n;
    return b;
}

/* Each thread's best kc candidates per query, from its share of the blocks:
 * sets[t * n + q], backed by cands. 0 when out of memory. */
static int scan_blocks(const plan *p, const block *blocks, int64_t n_blocks, int nt, topk *sets) {
    int ok = 1;
#pragma omp parallel num_threads(nt) reduction(&& : ok)
    {
        const int t = omp_get_thread_num();
        float *scores = malloc((size_t)p->block_rows * p->n * sizeof *scores);
        float *buf = malloc((size_t)p->block_rows * p->d * sizeof *buf);
        float *floor = malloc((size_t)p->n * sizeof *floor);
        ok = scores && buf && floor && (p->bits || cpu_scratch_reserve(p->d, p->n, 1, 1, p->kern));
        topk *mine = sets + (size_t)t * p->n;
        if (floor)
            for (int32_t q = 0; q < p->n; q++) floor[q] = -INFINITY;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < n_blocks; b++) {
            if (!ok) continue;
            const block *bl = &blocks[b];
            const index_shard *sh = &p->ix->shards[bl->shard];
            score_block(p, sh, bl->r0, bl->nr, scores, buf);
            for (int32_t r = 0; r < bl->nr; r++) {
                const float *sr = scores + (size_t)r * p->n;
                for (int32_t q = 0; q < p->n; q++) {
                    if (sr[q] > floor[q]) { /* rare once the sets are full */
                        topk_push(&mine[q], p->kc, (cand){sr[q], sh->first_row + bl->r0 + r});
                        floor[q] = topk_floor(&mine[q], p->kc);
                    }
                }
            }
        }
        free(scores);
        free(buf);
        free(floor);
    }
    return ok;
}

/* One query's candidates from every thread, best first, at most kc; then,
 * when rescoring, each scored again with the float query against the
 * stored row, and the best k of those. Returns how many. */
static int32_t merge_query(const plan *p, const topk *sets, int nt, int32_t q, const float *query, int rescore,
                           cand *all, float *row) {
    int32_t m = 0;
    for (int t = 0; t < nt; t++) {
        const topk *s = &sets[(size_t)t * p->n + q];
        memcpy(all + m, s->c, (size_t)s->n * sizeof *all);
        m += s->n;
    }
    qsort(all, (size_t)m, sizeof *all, cand_cmp);
    if (m > p->kc) m = p->kc;
    if (!rescore) return m;
    const ember_index *from = p->rescore_ix ? p->rescore_ix : p->ix;
    for (int32_t i = 0; i < m; i++) {
        dequantize_row(row, index_row(from, all[i].row), p->d, from->info.precision);
        float s = 0;
        for (int32_t k = 0; k < p->d; k++) s += query[k] * row[k];
        all[i].score = s;
    }
    qsort(all, (size_t)m, sizeof *all, cand_cmp);
    return m;
}

/* The queries as the corpus is scored: packed weights of their floats (as
 * stored, for int8 / uint8: the integer codes), or their bits. */
static ember_status queries_prepare(plan *p, const float *queries, float **qfloat, void **qstored) {
    const ember_precision prec = p->ix->info.precision;
    const int32_t n = p->n, d = p->d;
    const float *qf = queries;
    if (prec != EMBER_PRECISION_FLOAT32 && prec != EMBER_PRECISION_FLOAT16) {
        if (precision_needs_ranges(prec) && !p->ix->ranges)
            return ember_fail(EMBER_ERR_FORMAT, "the corpus is %s but records no ranges", ember_precision_str(prec));
        if (!(*qstored = malloc((size_t)n * precision_row_bytes(prec, d))))
            return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        quantize_rows(*qstored, queries, n, d, prec, p->ix->ranges);
        if (p->bits) {
            p->qbits = *qstored;
            return EMBER_OK;
        }
        if (!(*qfloat = malloc((size_t)n * d * sizeof **qfloat)))
            return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        for (int32_t q = 0; q < n; q++)
            dequantize_row(*qfloat + (size_t)q * d, (const char *)*qstored + (size_t)q * precision_row_bytes(prec, d),
                           d, prec);
        qf = *qfloat;
    }
    const size_t packed = linear_packed_size(n, d, p->kern);
    float *w = aligned_alloc(64, ((packed + 15) & ~(size_t)15) * sizeof *w);
    float *z = calloc((size_t)n, sizeof *z);
    if (!w || !z) {
        free(w);
        free(z);
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for %d packed queries", n);
    }
    linear_pack(w, qf, n, d, p->kern);
    p->qpacked = w;
    p->zeros = z;
    return EMBER_OK;
}

static ember_status search_args(const ember_index *ix, const float *queries, int32_t n,
                                const ember_search_params *sp, const ember_hit *hits, const int32_t *found) {
    if (!ix || n < 0 || (n > 0 && (!queries || !hits || !found)))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_search: NULL or negative argument");
    if (sp->k < 1 || sp->k > (1 << 20))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_search: k must be in 1..%d, got %d", 1 << 20, sp->k);
    if (sp->rescore < 0 || sp->rescore > 1000 || sp->n_threads < 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_search: rescore must be in 0..1000 and threads >= 0");
    const ember_index *rv = sp->rescore_vectors;
    if (rv && (rv->info.rows != ix->info.rows || rv->info.dim != ix->info.dim ||
               (rv->info.precision != EMBER_PRECISION_FLOAT32 && rv->info.precision != EMBER_PRECISION_FLOAT16)))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                          "ember_search: the vectors to rescore with must be float32 or float16 rows of the corpus "
                          "(%lld x %d); they are %lld x %d of %s",
                          (long long)ix->info.rows, ix->info.dim, (long long)rv->info.rows, rv->info.dim,
                          ember_precision_str(rv->info.precision));
    for (int64_t i = 0; i < (int64_t)n * ix->info.dim; i++)
        if (!isfinite(queries[i]))
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_search: query %lld holds a NaN or infinity",
                              (long long)(i / ix->info.dim));
    return EMBER_OK;
}

ember_status ember_search(const ember_index *ix, const float *queries, int32_t n, int32_t dim,
                          const ember_search_params *params, ember_hit *hits, int32_t *found) {
    ember_search_params sp = params ? *params : ember_search_default_params();
    if (ix && dim != ix->info.dim)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_search: the queries have %d dimensions, the corpus %d", dim,
                          ix->info.dim);
    ember_status st = search_args(ix, queries, n, &sp, hits, found);
    if (st || n == 0) return st;
    const ember_precision prec = ix->info.precision;
    const int compact = prec != EMBER_PRECISION_FLOAT32 && prec != EMBER_PRECISION_FLOAT16;
    const int rescore = compact && sp.rescore > 0;
    plan p = {.ix = ix, .rescore_ix = sp.rescore_vectors, .n = n, .d = ix->info.dim, .kern = cpu_kernels_best()};
    p.bits = prec == EMBER_PRECISION_BINARY || prec == EMBER_PRECISION_UBINARY;
    int64_t kc = rescore ? (int64_t)sp.k * sp.rescore : sp.k;
    p.kc = (int32_t)(kc < ix->info.rows ? kc : ix->info.rows);
    /* a block's scores, (rows, n) floats, stay near 1 MiB */
    int32_t br = (int32_t)((1 << 18) / n);
    p.block_rows = br < 8 ? 8 : br > 1024 ? 1024 : br & ~7;
    float *qfloat = NULL;
    void *qstored = NULL;
    int64_t n_blocks = 0;
    block *blocks = NULL;
    topk *sets = NULL;
    cand *pool = NULL, *all = NULL;
    float *row = NULL;
    int nt = sp.n_threads > 0 ? sp.n_threads : omp_get_num_procs();
    if ((st = queries_prepare(&p, queries, &qfloat, &qstored))) goto done;
    if (!(blocks = blocks_make(&p, &n_blocks))) goto oom;
    if (nt > n_blocks) nt = n_blocks > 0 ? (int)n_blocks : 1;
    sets = calloc((size_t)nt * n, sizeof *sets);
    pool = malloc(((size_t)nt * n * p.kc + 1) * sizeof *pool);
    all = malloc(((size_t)nt * p.kc + 1) * sizeof *all);
    row = malloc((size_t)p.d * sizeof *row);
    if (!sets || !pool || !all || !row) goto oom;
    for (size_t i = 0; i < (size_t)nt * n; i++) sets[i].c = pool + i * p.kc;
    if (p.kc > 0 && !scan_blocks(&p, blocks, n_blocks, nt, sets)) goto oom;
    for (int32_t q = 0; q < n; q++) {
        int32_t m = p.kc > 0 ? merge_query(&p, sets, nt, q, queries + (size_t)q * p.d, rescore, all, row) : 0;
        found[q] = m < sp.k ? m : sp.k;
        for (int32_t i = 0; i < found[q]; i++) hits[(size_t)q * sp.k + i] = (ember_hit){all[i].row, all[i].score};
    }
    goto done;
oom:
    st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory searching %d queries for %d candidates each", n, p.kc);
done:
    free((void *)p.qpacked);
    free((void *)p.zeros);
    free(qfloat);
    free(qstored);
    free(blocks);
    free(sets);
    free(pool);
    free(all);
    free(row);
    return st;
}
