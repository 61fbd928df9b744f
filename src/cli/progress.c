/* ember embed's progress line on stderr: rows done, tokens/s, rows/s, and,
 * when the input's size is known, a bar and the time left. */
#include <stdio.h>

#include "cli.h"

static void fmt_duration(char *buf, size_t cap, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

void progress_draw(const ember_embed_progress *p, void *user) {
    progress_line *pl = user;
    if (!pl->mode) return;
    /* the library reports every 0.25 s; a line that is not redrawn every 10 s */
    if (pl->mode == 2 && !p->done && p->elapsed - pl->last < 10.0) return;
    pl->last = p->elapsed;
    const double dt = p->elapsed;
    const double rps = dt > 0 ? (double)p->rows / dt : 0, tps = dt > 0 ? (double)p->tokens / dt : 0;
    char bar[64] = "", eta[32] = "?", pct[16] = "";
    if (p->input_size > 0 && p->input_bytes >= 0) {
        double f = (double)p->input_bytes / (double)p->input_size;
        if (f > 1) f = 1;
        int width = 24, full = (int)(f * width);
        bar[0] = '[';
        for (int i = 0; i < width; i++) bar[1 + i] = i < full ? '=' : i == full ? '>' : ' ';
        bar[width + 1] = ']';
        bar[width + 2] = ' ';
        bar[width + 3] = '\0';
        snprintf(pct, sizeof pct, "%3.0f%% ", f * 100);
        int64_t start = p->input_start > 0 ? p->input_start : 0;
        double done = (double)(p->input_bytes - start), left = (double)(p->input_size - p->input_bytes);
        if (done > 0 && dt > 0) fmt_duration(eta, sizeof eta, left / (done / dt));
    }
    char el[32];
    fmt_duration(el, sizeof el, dt);
    if (pl->mode == 1) {
        fprintf(stderr, "\r%s%s%lld rows  %.0f tokens/s  %.0f rows/s  %s  ETA %s\033[K", bar, pct,
                (long long)(p->rows + p->rows_before), tps, rps, el, eta);
        pl->drawn = 1;
    } else {
        fprintf(stderr, "ember embed: %s%lld rows, %.0f tokens/s, %.0f rows/s, %s elapsed, ETA %s\n", pct,
                (long long)(p->rows + p->rows_before), tps, rps, el, eta);
    }
    fflush(stderr);
}

void progress_clear(progress_line *pl) {
    if (pl->mode == 1 && pl->drawn) fprintf(stderr, "\r\033[K");
    pl->drawn = 0;
}
