/* The progress line of `ember embed` on stderr: rows done, tokens/s, rows/s,
 * and, when the input's size is known, a bar and the time left. */
#ifndef EMBER_PIPELINE_PROGRESS_H
#define EMBER_PIPELINE_PROGRESS_H

#include <stdint.h>

typedef struct {
    int mode;            /* 0: none, 1: one line redrawn in place (a terminal), 2: a line every 10 s */
    double t0, last;     /* start, last drawn */
    int64_t total_bytes; /* the input's size in bytes as stored (compressed for .gz); -1: unknown */
    int64_t start_bytes; /* where this run started reading for new rows (a resumed run skips some) */
    int64_t rows_before; /* rows an earlier run wrote */
    int drawn;           /* a line is on the terminal and needs clearing */
} progress;

void progress_init(progress *p, int mode, int64_t total_bytes, int64_t rows_before);
/* rows and tokens embedded by this run; bytes: how far in the input the rows
 * written reach (the bar and the time left follow the input's bytes). */
void progress_update(progress *p, int64_t rows, int64_t tokens, int64_t bytes, int force);
/* Clear the redrawn line, so the summary starts on a clean one. */
void progress_end(progress *p);

#endif
