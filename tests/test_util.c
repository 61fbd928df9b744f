#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include <jansson.h>

#include "model/safetensors.h"

void require_dir(const char *dir, const char *hint) {
    struct stat st;
    if (stat(dir, &st) == 0) return;
    const char *req = getenv("EMBER_REQUIRE_WEIGHTS");
    if (req && strcmp(req, "1") == 0) cr_assert_fail("%s is missing (EMBER_REQUIRE_WEIGHTS=1): %s", dir, hint);
    cr_skip_test("%s is missing: %s", dir, hint);
}

void skip_unless_dir(const char *dir, const char *hint) {
    struct stat st;
    if (stat(dir, &st) != 0) cr_skip_test("%s is missing (an optional model, not fetched by tools/setup.sh): %s", dir, hint);
}

ember_model *load_model(const char *dir) {
    ember_model *m = NULL;
    ember_model_params p = ember_model_default_params();
    /* EMBER_CPU_KERNELS and the like, as the programs honour them */
    cr_assert_eq(ember_tuning_from_env(&p.tuning), EMBER_OK, "%s", ember_last_error());
    ember_status st = ember_model_load(dir, &p, &m);
    /* a family the environment names and this processor lacks (test_model_avx2 on an ARM machine) */
    if (st == EMBER_ERR_UNSUPPORTED && p.tuning.cpu_kernels != EMBER_CPU_KERNELS_AUTO &&
        strstr(ember_last_error(), "instructions this processor lacks"))
        cr_skip_test("%s", ember_last_error());
    cr_assert_eq(st, EMBER_OK, "loading %s: %s", dir, ember_last_error());
    return m;
}

char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    if (size) *size = (size_t)n;
    return buf;
}

char **read_lines(const char *path, size_t *n_out) {
    gzFile gz = gzopen(path, "rb");
    cr_assert(gz, "cannot open %s", path);
    size_t cap = 0, len = 0;
    char *data = NULL;
    for (;;) {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            data = realloc(data, cap);
            cr_assert(data);
        }
        int got = gzread(gz, data + len, 65536);
        cr_assert(got >= 0, "read error in %s", path);
        if (got == 0) break;
        len += (size_t)got;
    }
    gzclose(gz);
    size_t n = 0, lcap = 1024;
    char **lines = malloc(lcap * sizeof *lines);
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && data[j] != '\n') j++;
        if (n == lcap) lines = realloc(lines, (lcap *= 2) * sizeof *lines);
        lines[n] = strndup(data + i, j - i);
        n++;
        i = j + 1;
    }
    free(data);
    *n_out = n;
    return lines;
}

void free_lines(char **lines, size_t n) {
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

char **json_strings(const char *path, const char *key, size_t *n) {
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    cr_assert(root, "%s: %s", path, err.text);
    json_t *arr = json_object_get(root, key);
    cr_assert(json_is_array(arr), "%s: no list '%s'", path, key);
    *n = json_array_size(arr);
    char **t = calloc(*n ? *n : 1, sizeof *t);
    cr_assert(t);
    for (size_t i = 0; i < *n; i++) {
        const char *v = json_string_value(json_array_get(arr, i));
        cr_assert(v, "%s: %s[%zu] is not a string", path, key, i);
        t[i] = strdup(v);
    }
    json_decref(root);
    return t;
}

/* One CSV field at *p (RFC 4180 quoting); advances past the separator. */
static char *csv_field(const char **p) {
    const char *s = *p;
    size_t cap = strlen(s) + 1, n = 0;
    char *out = malloc(cap);
    if (*s == '"') {
        s++;
        for (;;) {
            cr_assert(*s, "unterminated quoted CSV field");
            if (*s == '"') {
                if (s[1] == '"') {
                    out[n++] = '"';
                    s += 2;
                    continue;
                }
                s++;
                break;
            }
            out[n++] = *s++;
        }
    } else {
        while (*s && *s != ',') out[n++] = *s++;
    }
    out[n] = '\0';
    if (*s == ',') s++;
    *p = s;
    return out;
}

stsb_row *stsb_read(const char *path, size_t *n_out) {
    size_t n;
    char **lines = read_lines(path, &n);
    stsb_row *rows = calloc(n, sizeof *rows);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = lines[i];
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') lines[i][l - 1] = '\0';
        if (!*p) continue;
        rows[k].s1 = csv_field(&p);
        rows[k].s2 = csv_field(&p);
        char *score = csv_field(&p);
        rows[k].score = atof(score);
        free(score);
        k++;
    }
    free_lines(lines, n);
    *n_out = k;
    return rows;
}

void stsb_free(stsb_row *rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(rows[i].s1);
        free(rows[i].s2);
    }
    free(rows);
}

static const double *rank_key;
static int rank_cmp(const void *a, const void *b) {
    double x = rank_key[*(const size_t *)a], y = rank_key[*(const size_t *)b];
    return x < y ? -1 : x > y;
}

/* Ranks with ties averaged, as scipy.stats.spearmanr. */
static double *ranks(const double *v, size_t n) {
    size_t *idx = malloc(n * sizeof *idx);
    double *r = malloc(n * sizeof *r);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    rank_key = v;
    qsort(idx, n, sizeof *idx, rank_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) j++;
        double avg = (double)(i + j) / 2.0 + 1.0;
        for (size_t k = i; k <= j; k++) r[idx[k]] = avg;
        i = j + 1;
    }
    free(idx);
    return r;
}

double spearman(const double *a, const double *b, size_t n) {
    double *ra = ranks(a, n), *rb = ranks(b, n);
    double ma = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        ma += ra[i];
        mb += rb[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    free(ra);
    free(rb);
    return sab / sqrt(saa * sbb);
}

size_t parse_ids(const char *s, int32_t *out, size_t cap) {
    size_t n = 0;
    char *end;
    for (;;) {
        while (*s == ' ') s++;
        if (!*s) break;
        long v = strtol(s, &end, 10);
        cr_assert(end != s, "bad id list near '%.20s'", s);
        cr_assert(n < cap, "id list longer than %zu", cap);
        out[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

float *npy_read(const char *path, int64_t *rows, int64_t *cols) {
    size_t size;
    char *data = read_file(path, &size);
    cr_assert(size > 10 && memcmp(data, "\x93NUMPY", 6) == 0, "%s is not a .npy file", path);
    size_t hlen = (uint8_t)data[8] | (size_t)(uint8_t)data[9] << 8;
    const char *h = data + 10;
    int f16 = strstr(h, "'<f2'") != NULL;
    cr_assert(f16 || strstr(h, "'<f4'"), "%s: only <f4 / <f2 are read", path);
    const char *shape = strstr(h, "'shape': (");
    cr_assert(shape);
    long long r, c;
    cr_assert_eq(sscanf(shape, "'shape': (%lld, %lld)", &r, &c), 2);
    size_t n = (size_t)(r * c), off = 10 + hlen;
    cr_assert_eq(size, off + n * (f16 ? 2 : 4), "%s: size does not match its shape", path);
    float *out = malloc(n * sizeof *out);
    const uint8_t *p = (const uint8_t *)data + off;
    for (size_t i = 0; i < n; i++) {
        if (f16) out[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        else memcpy(&out[i], p + 4 * i, 4);
    }
    free(data);
    *rows = r;
    *cols = c;
    return out;
}

float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

void safetensors_convert(const char *src, const char *dst, int dtype) {
    safetensors_file f;
    cr_assert_eq(safetensors_open(&f, src), EMBER_OK, "%s", ember_last_error());
    json_t *hdr = json_object();
    size_t off = 0;
    size_t *size = calloc((size_t)f.n_tensors, sizeof *size);
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        int is_float = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
        st_dtype out = is_float ? (st_dtype)dtype : t->dtype;
        size_t esize = out == ST_F32 ? 4 : (out == ST_F16 || out == ST_BF16) ? 2 : (t->dtype == ST_I64 ? 8 : 4);
        size[i] = (size_t)t->numel * esize;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_name(out), "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + size[i]));
        json_object_set_new(hdr, t->name, e);
        off += size[i];
    }
    char *h = json_dumps(hdr, JSON_COMPACT);
    size_t hlen = strlen(h);
    FILE *o = fopen(dst, "wb");
    cr_assert(o, "cannot write %s", dst);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    fwrite(len8, 1, 8, o);
    fwrite(h, 1, hlen, o);
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        int is_float = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
        if (!is_float) {
            fwrite(t->data, 1, size[i], o);
            continue;
        }
        float *v = malloc((size_t)t->numel * sizeof *v);
        cr_assert_eq(st_tensor_to_f32(t, v), EMBER_OK);
        for (int64_t k = 0; k < t->numel; k++) {
            if (dtype == ST_F32) fwrite(&v[k], 4, 1, o);
            else {
                uint16_t b = dtype == ST_F16 ? f16_from_f32(v[k]) : bf16_from_f32(v[k]);
                uint8_t le[2] = {(uint8_t)b, (uint8_t)(b >> 8)};
                fwrite(le, 1, 2, o);
            }
        }
        free(v);
    }
    cr_assert_eq(fclose(o), 0);
    free(h);
    free(size);
    json_decref(hdr);
    safetensors_close(&f);
}

char *copy_dir(const char *from) {
    char tmpl[] = "/tmp/ember-test-XXXXXX";
    char *dir = mkdtemp(tmpl);
    cr_assert(dir);
    dir = strdup(dir);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -r '%s'/. '%s'/", from, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    return dir;
}

void write_file(const char *path, const char *data) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    fputs(data, f);
    cr_assert_eq(fclose(f), 0);
}

void remove_dir(char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    free(dir);
}
