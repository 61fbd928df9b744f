#include "progress.h"

#include <stdio.h>

#include "cli/cli.h"

void progress_init(progress *p, int mode, int64_t total_bytes, int64_t rows_before) {
    p->mode = mode;
    p->t0 = p->last = now_seconds();
    p->total_bytes = total_bytes;
    p->start_bytes = -1;
    p->rows_before = rows_before;
    p->drawn = 0;
}

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

void progress_update(progress *p, int64_t rows, int64_t tokens, int64_t bytes, int force) {
    if (!p->mode) return;
    double now = now_seconds();
    if (!force && now - p->last < (p->mode == 1 ? 0.25 : 10.0)) return;
    p->last = now;
    double dt = now - p->t0;
    double rps = dt > 0 ? rows / dt : 0, tps = dt > 0 ? tokens / dt : 0;
    char bar[64] = "", eta[32] = "?", pct[16] = "";
    if (p->total_bytes > 0 && bytes >= 0) {
        double f = (double)bytes / (double)p->total_bytes;
        if (f > 1) f = 1;
        int width = 24, full = (int)(f * width);
        bar[0] = '[';
        for (int i = 0; i < width; i++) bar[1 + i] = i < full ? '=' : i == full ? '>' : ' ';
        bar[width + 1] = ']';
        bar[width + 2] = ' ';
        bar[width + 3] = '\0';
        snprintf(pct, sizeof pct, "%3.0f%% ", f * 100);
        int64_t start = p->start_bytes > 0 ? p->start_bytes : 0;
        double done = (double)(bytes - start), left = (double)(p->total_bytes - bytes);
        if (done > 0 && dt > 0) fmt_duration(eta, sizeof eta, left / (done / dt));
    }
    char el[32];
    fmt_duration(el, sizeof el, dt);
    if (p->mode == 1) {
        fprintf(stderr, "\r%s%s%lld rows  %.0f tokens/s  %.0f rows/s  %s  ETA %s\033[K", bar, pct,
                (long long)(rows + p->rows_before), tps, rps, el, eta);
        p->drawn = 1;
    } else {
        fprintf(stderr, "ember embed: %s%lld rows, %.0f tokens/s, %.0f rows/s, %s elapsed, ETA %s\n", pct,
                (long long)(rows + p->rows_before), tps, rps, el, eta);
    }
    fflush(stderr);
}

void progress_end(progress *p) {
    if (p->mode == 1 && p->drawn) fprintf(stderr, "\r\033[K");
    p->drawn = 0;
}
