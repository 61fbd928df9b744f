#include "fuzz_util.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static char paths[4][512];

const char *fuzz_dir(void) {
    if (!dir[0]) {
        struct stat st;
        snprintf(dir, sizeof dir, "%s/ember-fuzz-%d", stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

const char *fuzz_write(int slot, const char *name, const uint8_t *data, size_t len) {
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(paths[slot], "wb");
    if (!f) abort();
    if (len && fwrite(data, 1, len, f) != len) abort();
    fclose(f);
    return paths[slot];
}

void fuzz_clean(void) {
    for (int i = 0; i < 4; i++)
        if (paths[i][0]) unlink(paths[i]);
}

size_t fuzz_split(const uint8_t *data, size_t len, const uint8_t **parts, size_t *lens, size_t max) {
    static const char sep[] = "\n--8<--\n";
    const size_t sl = sizeof sep - 1;
    size_t n = 0, start = 0;
    for (size_t i = 0; n + 1 < max && i + sl <= len; i++)
        if (memcmp(data + i, sep, sl) == 0) {
            parts[n] = data + start;
            lens[n++] = i - start;
            start = i + sl;
            i += sl - 1;
        }
    parts[n] = data + start;
    lens[n++] = len - start;
    return n;
}
