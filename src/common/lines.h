/* The one line reader: the lines of a file or of stdin, plain or gzip
 * (told by the first bytes, concatenated gzip members read through, as
 * gzip -d does), each without its "\n" or "\r\n". It keeps the crc32 and
 * byte count of the lines read (each as its bytes and one "\n"), so that a
 * resumed run can check it reads the same input, and how far into the input
 * as stored it is (compressed bytes for .gz), for progress.
 *
 * Reading a terminal or a pipe never blocks for long: the reader waits with
 * poll() and asks `cancelled` every 100 ms, so a caller can stop a read that
 * waits for input that may never come, with no signal. */
#ifndef EMBER_COMMON_LINES_H
#define EMBER_COMMON_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "ember.h"

typedef int (*cancel_fn)(void *user);

typedef struct line_reader line_reader;

/* path "-": stdin (left open at close). cancelled NULL: never. */
ember_status line_reader_open(line_reader **out, const char *path, cancel_fn cancelled, void *user);
/* 1: a line in *line (NUL-terminated, *len bytes, valid until the next
 * call); 0: the end; -1: an error or a cancellation (line_reader_status). */
int line_reader_next(line_reader *r, const char **line, size_t *len);
/* After -1: EMBER_ERR_CANCELLED, or the error (message naming the file and
 * the line, set again by this call for the calling thread). */
ember_status line_reader_status(const line_reader *r);
void line_reader_close(line_reader *r);

typedef struct {
    int64_t lines;  /* read so far */
    int64_t bytes;  /* their bytes, one "\n" each included */
    uint32_t crc;   /* crc32 of the same */
    int64_t offset; /* bytes of the input as stored consumed so far */
    int eof;        /* the input has ended */
} line_reader_pos;

line_reader_pos line_reader_position(const line_reader *r);
/* The input's name in messages: its path, or "<stdin>". */
const char *line_reader_name(const line_reader *r);
/* Its size as stored, or -1 when unknown (stdin, a pipe). */
int64_t line_reader_size(const line_reader *r);

#endif
