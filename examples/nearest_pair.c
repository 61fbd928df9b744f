/*
 * nearest_pair: embed the lines of a file and print the two most similar.
 * A program over the public API only, as a user of the installed library
 * writes it:
 *
 *     cc nearest_pair.c $(pkg-config --cflags --libs ember) -o nearest_pair
 *     ./nearest_pair MODEL_DIR lines.txt
 */
#include <ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every line of path (without its newline), or NULL. */
static char **read_lines(const char *path, int32_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return NULL;
    }
    char **lines = NULL, buf[8192];
    int32_t cap = 0;
    *n = 0;
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **more = realloc(lines, (size_t)cap * sizeof *more);
            if (!more) break;
            lines = more;
        }
        size_t len = strlen(buf) + 1;
        if (!(lines[*n] = malloc(len))) break;
        memcpy(lines[*n], buf, len);
        (*n)++;
    }
    fclose(f);
    return lines;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR LINES.txt\n", argv[0]);
        return 2;
    }
    int32_t n = 0;
    char **lines = read_lines(argv[2], &n);
    if (!lines || n < 2) {
        fprintf(stderr, "%s: need at least two lines\n", argv[2]);
        return 1;
    }
    ember_model *m;
    ember_model_params p = ember_model_default_params();
    if (ember_model_load(argv[1], &p, &m) != EMBER_OK) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], ember_last_error());
        return 1;
    }
    ember_model_info info;
    ember_model_get_info(m, &info);
    float *vecs = malloc((size_t)n * (size_t)info.dim * sizeof *vecs);
    if (!vecs || ember_encode(m, (const char *const *)lines, NULL, n, NULL, vecs, NULL) != EMBER_OK) {
        fprintf(stderr, "cannot embed: %s\n", vecs ? ember_last_error() : "out of memory");
        return 1;
    }
    int32_t best_a = 0, best_b = 1;
    float best = -2;
    for (int32_t a = 0; a < n; a++)
        for (int32_t b = a + 1; b < n; b++) {
            float c = ember_cosine(vecs + (size_t)a * info.dim, vecs + (size_t)b * info.dim, info.dim);
            if (c > best) best = c, best_a = a, best_b = b;
        }
    printf("%.4f\t%s\t%s\n", best, lines[best_a], lines[best_b]);
    for (int32_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    free(vecs);
    ember_model_free(m);
    return 0;
}
