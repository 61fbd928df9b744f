#include "lines.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "error.h"
#include "vec.h"

#define RAW_BUF (1 << 16)
#define OUT_BUF (1 << 17)

struct line_reader {
    char name[4096];
    int fd, own_fd, regular;
    int64_t size;
    cancel_fn cancelled;
    void *user;
    /* the input as stored */
    unsigned char *raw;
    size_t raw_len, raw_pos;
    int raw_eof;
    /* gzip: the decoded bytes */
    int gzip, z_ready, z_member_done, z_starved;
    z_stream z;
    unsigned char *out;
    /* the bytes lines are cut from: raw (plain) or out (gzip) */
    const unsigned char *data;
    size_t data_len, data_pos;
    char *line;
    size_t line_cap;
    line_reader_pos pos;
    ember_status status;
    char error[1024];
};

/* Record the failure once, naming the file and the line being read. */
static int reader_fail(line_reader *r, ember_status st, const char *what) {
    if (r->status == EMBER_OK) {
        r->status = st;
        if (st != EMBER_ERR_CANCELLED)
            snprintf(r->error, sizeof r->error, "%s: read error at line %lld: %s", r->name,
                     (long long)r->pos.lines + 1, what);
    }
    return -1;
}

/* Wait until fd is readable, asking `cancelled` every 100 ms; 0 when cancelled. */
static int wait_readable(line_reader *r) {
    if (r->regular) return 1;
    for (;;) {
        if (r->cancelled && r->cancelled(r->user)) return 0;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int n = poll(&p, 1, 100);
        if (n > 0) return 1;
        if (n < 0 && errno != EINTR) return 1; /* let read() report it */
    }
}

/* More raw bytes (appended after what is unread); 1 some, 0 the end, -1 failed. */
static int raw_fill(line_reader *r) {
    if (r->raw_pos > 0 && r->raw_pos < r->raw_len) memmove(r->raw, r->raw + r->raw_pos, r->raw_len - r->raw_pos);
    r->raw_len -= r->raw_pos;
    r->raw_pos = 0;
    for (;;) {
        if (!wait_readable(r)) return reader_fail(r, EMBER_ERR_CANCELLED, "cancelled");
        ssize_t got = read(r->fd, r->raw + r->raw_len, RAW_BUF - r->raw_len);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
            if (r->cancelled && r->cancelled(r->user)) return reader_fail(r, EMBER_ERR_CANCELLED, "cancelled");
            continue;
        }
        if (got < 0) return reader_fail(r, EMBER_ERR_IO, strerror(errno));
        if (got == 0) {
            /* a file cut short while it is read would otherwise end the run
             * early and pass for complete */
            if (r->regular && r->size >= 0 && r->pos.offset < r->size) {
                char what[160];
                snprintf(what, sizeof what,
                         "the file ends after %lld bytes but had %lld when opened (truncated while being read?)",
                         (long long)r->pos.offset, (long long)r->size);
                return reader_fail(r, EMBER_ERR_IO, what);
            }
            r->raw_eof = 1;
            return 0;
        }
        r->raw_len += (size_t)got;
        r->pos.offset += got;
        return 1;
    }
}

static int is_gzip_magic(const unsigned char *p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

/* Decode more gzip bytes into r->out; 1 some (or a member ended), 0 the
 * end, -1 failed. */
static int gzip_fill(line_reader *r) {
    for (;;) {
        if (r->z_member_done) {
            /* another member follows, or the stream is over: what follows a
             * member that is not one is ignored, as zlib's gzread does */
            while (r->raw_len - r->raw_pos < 2 && !r->raw_eof)
                if (raw_fill(r) < 0) return -1;
            if (!is_gzip_magic(r->raw + r->raw_pos, r->raw_len - r->raw_pos)) return 0;
            if (inflateReset(&r->z) != Z_OK) return reader_fail(r, EMBER_ERR_IO, "cannot restart the gzip decoder");
            r->z_member_done = 0;
        }
        if (r->raw_pos == r->raw_len || r->z_starved) {
            int got = raw_fill(r);
            if (got < 0) return -1;
            if (got == 0) return reader_fail(r, EMBER_ERR_IO, "the gzip stream ends early (a truncated file?)");
        }
        r->z.next_in = r->raw + r->raw_pos;
        r->z.avail_in = (uInt)(r->raw_len - r->raw_pos);
        r->z.next_out = r->out;
        r->z.avail_out = OUT_BUF;
        int zr = inflate(&r->z, Z_NO_FLUSH);
        const size_t before = r->raw_pos;
        r->raw_pos = r->raw_len - r->z.avail_in;
        /* no input taken and no output made: it needs more input first */
        r->z_starved = r->raw_pos == before && r->z.avail_out == OUT_BUF && zr != Z_STREAM_END;
        if (zr == Z_STREAM_END) r->z_member_done = 1;
        else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            char what[256];
            snprintf(what, sizeof what, "corrupt gzip data (%s)", r->z.msg ? r->z.msg : "inflate failed");
            return reader_fail(r, EMBER_ERR_IO, what);
        }
        size_t made = OUT_BUF - r->z.avail_out;
        if (made > 0 || r->z_member_done) {
            r->data = r->out;
            r->data_len = made;
            r->data_pos = 0;
            return 1;
        }
    }
}

/* More bytes to cut lines from; 1, 0 at the end, -1 failed. */
static int data_fill(line_reader *r) {
    if (r->gzip) return gzip_fill(r);
    r->raw_pos = r->raw_len; /* every raw byte was handed out */
    int got = raw_fill(r);
    if (got <= 0) return got;
    r->data = r->raw;
    r->data_len = r->raw_len;
    r->data_pos = 0;
    r->raw_pos = r->raw_len;
    return 1;
}

ember_status line_reader_open(line_reader **out, const char *path, cancel_fn cancelled, void *user) {
    *out = NULL;
    line_reader *r = calloc(1, sizeof *r);
    if (!r) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    r->cancelled = cancelled;
    r->user = user;
    r->fd = -1;
    r->size = -1;
    r->pos.crc = (uint32_t)crc32(0L, Z_NULL, 0);
    int is_stdin = strcmp(path, "-") == 0;
    snprintf(r->name, sizeof r->name, "%s", is_stdin ? "<stdin>" : path);
    ember_status st = EMBER_OK;
    if (is_stdin) {
        r->fd = 0;
    } else if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        st = ember_fail(EMBER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    } else {
        r->own_fd = 1;
    }
    struct stat sb;
    if (fstat(r->fd, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            st = ember_fail(EMBER_ERR_IO, "%s: is a directory, not a file of lines", r->name);
            goto fail;
        }
        r->regular = S_ISREG(sb.st_mode);
        if (r->regular) r->size = (int64_t)sb.st_size;
    }
    r->raw = malloc(RAW_BUF);
    if (!r->raw) goto oom;
    /* the first two bytes tell gzip from text */
    while (r->raw_len < 2 && !r->raw_eof)
        if (raw_fill(r) < 0) {
            st = line_reader_status(r);
            goto fail;
        }
    r->gzip = is_gzip_magic(r->raw, r->raw_len);
    if (r->gzip) {
        r->out = malloc(OUT_BUF);
        if (!r->out) goto oom;
        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) goto oom;
        r->z_ready = 1;
    } else {
        r->data = r->raw;
        r->data_len = r->raw_len;
        r->raw_pos = r->raw_len;
    }
    *out = r;
    return EMBER_OK;
oom:
    st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", r->name);
fail:
    line_reader_close(r);
    return st;
}

int line_reader_next(line_reader *r, const char **line, size_t *len) {
    if (r->status) return -1;
    size_t n = 0;
    int any = 0;
    for (;;) {
        if (r->data_pos == r->data_len) {
            int got = data_fill(r);
            if (got < 0) return -1;
            if (got == 0) {
                r->pos.eof = 1;
                break;
            }
            continue;
        }
        any = 1;
        const unsigned char *s = r->data + r->data_pos;
        size_t avail = r->data_len - r->data_pos;
        const unsigned char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        if (!vec_grow((void **)&r->line, &r->line_cap, n + take + 1, 1))
            return reader_fail(r, EMBER_ERR_OUT_OF_MEMORY, "out of memory for the line");
        memcpy(r->line + n, s, take);
        n += take;
        r->data_pos += take + (nl ? 1 : 0);
        if (nl) break;
    }
    if (!any) return 0;
    if (n > 0 && r->line[n - 1] == '\r') n--;
    r->line[n] = '\0';
    r->pos.crc = (uint32_t)crc32(r->pos.crc, (const Bytef *)r->line, (uInt)n);
    r->pos.crc = (uint32_t)crc32(r->pos.crc, (const Bytef *)"\n", 1);
    r->pos.bytes += (int64_t)n + 1;
    r->pos.lines++;
    *line = r->line;
    *len = n;
    return 1;
}

ember_status line_reader_status(const line_reader *r) {
    if (r->status && r->status != EMBER_ERR_CANCELLED) return ember_fail(r->status, "%s", r->error);
    return r->status;
}

line_reader_pos line_reader_position(const line_reader *r) { return r->pos; }
const char *line_reader_name(const line_reader *r) { return r->name; }
int64_t line_reader_size(const line_reader *r) { return r->size; }

void line_reader_close(line_reader *r) {
    if (!r) return;
    if (r->z_ready) inflateEnd(&r->z);
    if (r->own_fd) close(r->fd);
    free(r->raw);
    free(r->out);
    free(r->line);
    free(r);
}
