/* The line reader (plain or gzip) and the JSONL field reader on arbitrary
 * bytes. Plain input: the lines read, each with its "\n" back (and the "\r"
 * taken off before it), are the input again; the crc32 and byte count the
 * reader keeps agree with the lines. */
#include <string.h>
#include <zlib.h>

#include "common/jsonl.h"
#include "common/lines.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "lines", data, size);
    line_reader *r;
    FUZZ_CHECK(line_reader_open(&r, path, NULL, NULL) == EMBER_OK, "%s", ember_last_error());
    const int gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    size_t at = 0;
    int64_t lines = 0, bytes = 0;
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    const char *line;
    size_t len;
    int got;
    while ((got = line_reader_next(r, &line, &len)) > 0) {
        FUZZ_CHECK(strlen(line) <= len && line[len] == '\0', "line %lld: not NUL-terminated at %zu", (long long)lines,
                   len);
        if (!gzip) {
            FUZZ_CHECK(at + len <= size && memcmp(data + at, line, len) == 0, "line %lld is not the input",
                       (long long)lines);
            at += len;
            if (at < size && data[at] == '\r') at++;
            FUZZ_CHECK(at == size || data[at] == '\n', "line %lld ends at a byte that is no newline",
                       (long long)lines);
            if (at < size) at++;
        }
        crc = (uint32_t)crc32(crc, (const Bytef *)line, (uInt)len);
        crc = (uint32_t)crc32(crc, (const Bytef *)"\n", 1);
        bytes += (int64_t)len + 1;
        lines++;
        size_t flen;
        char *text = jsonl_field(line, len, "text", &flen);
        if (text) FUZZ_CHECK(text[flen] == '\0', "jsonl_field: no NUL after %zu bytes", flen);
        else FUZZ_CHECK(ember_last_error()[0], "jsonl_field failed with no message");
        free(text);
    }
    line_reader_pos pos = line_reader_position(r);
    if (got < 0) FUZZ_CHECK(gzip && line_reader_status(r) != EMBER_OK, "a plain input failed: %s", ember_last_error());
    else FUZZ_CHECK(gzip || at == size, "read %zu of %zu bytes", at, size);
    FUZZ_CHECK(pos.lines == lines && pos.bytes == bytes && pos.crc == crc, "the reader's count differs");
    line_reader_close(r);
    fuzz_clean();
    return 0;
}
