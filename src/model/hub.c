/* Models by name: the Hugging Face cache and hub (see hub.h for the layout).
 *
 * The hub is spoken to as huggingface_hub does:
 *   GET  {endpoint}/api/models/{id}/revision/{revision}
 *        -> {"sha": commit, "siblings": [{"rfilename": path}, ...]}
 *   HEAD {endpoint}/{id}/resolve/{commit}/{path}
 *        -> X-Repo-Commit; ETag (git blob id), or for LFS files a 302 whose
 *           X-Linked-Etag is the content's sha256, X-Linked-Size its size and
 *           Location where to get it; a relative redirect is the hub's own
 *           (a renamed repository) and is followed
 *   GET  that location, with "Range: bytes=N-" to resume
 * A blob is written as blobs/<etag>.incomplete under the file's lock, checked
 * (size; sha256 for LFS files), fsync'd and renamed; only then does the
 * snapshot get its link, and refs/<revision> is written once every file the
 * model needs is in the snapshot. */
#include "hub.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/sha256.h"

#define HUB_PATH 4096
#define HUB_URL 8192
#define HUB_MAX_ID 96                 /* huggingface_hub's limit on a repository id */
#define HUB_MAX_JSON ((size_t)64 << 20) /* the largest API answer read */
#define HUB_MAX_LISTING 1000000       /* files in a repository listing */
#define HUB_MAX_PLAN 10000            /* files of one model */
#define HUB_MAX_SIZE ((int64_t)1 << 42) /* the largest file size believed (4 TiB) */

/* ---- small things ----------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} str_list;

static int list_has(const str_list *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return 1;
    return 0;
}

/* Append a copy of s; 0 when out of memory. */
static int list_push(str_list *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return 0;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return 0;
    l->n++;
    return 1;
}

/* Append a copy of s unless the list has it already. */
static int list_add(str_list *l, const char *s) { return list_has(l, s) || list_push(l, s); }

static void list_free(str_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int fmt(char *out, size_t cap, const char *f, ...) EMBER_PRINTF(3, 4);
/* snprintf that reports whether the result fit. */
static int fmt(char *out, size_t cap, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

static int is_commit(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!isdigit((unsigned char)s[n]) && !(s[n] >= 'a' && s[n] <= 'f')) return 0;
    return n == 40;
}

static int is_sha256(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!isdigit((unsigned char)s[n]) && !(s[n] >= 'a' && s[n] <= 'f')) return 0;
    return n == 64;
}

/* A relative path that stays where it is put: printable ASCII, no '\\', no
 * leading '/', no empty, "." or ".." component. */
static int safe_relpath(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '\\') return 0;
    for (const char *p = s;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return 0;
        if (!e) return 1;
        p = e + 1;
    }
}

static int revision_ok(const char *s) {
    if (!safe_relpath(s, 200)) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_./+@", *p)) return 0;
    return 1;
}

static int id_part_ok(const char *s, size_t n) {
    if (n == 0 || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return 0;
    return 1;
}

int hub_is_id(const char *s) {
    if (!s) return 0;
    size_t n = strlen(s);
    if (n == 0 || n > HUB_MAX_ID || strstr(s, "--") || strstr(s, "..")) return 0;
    if (n >= 4 && strcmp(s + n - 4, ".git") == 0) return 0;
    const char *slash = strchr(s, '/');
    if (!slash) return id_part_ok(s, n);
    if (strchr(slash + 1, '/')) return 0;
    return id_part_ok(s, (size_t)(slash - s)) && id_part_ok(slash + 1, n - (size_t)(slash - s) - 1);
}

/* s percent-encoded (RFC 3986 unreserved characters kept, and '/' when keep_slash). */
static int url_quote(char *out, size_t cap, const char *s, int keep_slash) {
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (k + 4 > cap) return 0;
        if (isalnum(*p) || strchr("-._~", *p) || (keep_slash && *p == '/')) out[k++] = (char)*p;
        else k += (size_t)snprintf(out + k, cap - k, "%%%02X", *p);
    }
    if (k >= cap) return 0;
    out[k] = '\0';
    return 1;
}

/* mkdir -p; 0 or -1 with errno. */
static int mkdir_p(const char *path) {
    char buf[HUB_PATH];
    if (!fmt(buf, sizeof buf, "%s", path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int mkdir_parent(const char *path) {
    char buf[HUB_PATH];
    if (!fmt(buf, sizeof buf, "%s", path)) return -1;
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) return 0;
    *slash = '\0';
    return mkdir_p(buf);
}

/* The folder holding file, synced (common/fileio: dir_sync). */
static void fsync_dir(const char *file) {
    char buf[HUB_PATH];
    if (!fmt(buf, sizeof buf, "%s", file)) return;
    char *slash = strrchr(buf, '/');
    if (!slash) return;
    *slash = '\0';
    dir_sync(buf);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int file_in(const char *dir, const char *name) {
    char p[HUB_PATH];
    return fmt(p, sizeof p, "%s/%s", dir, name) && is_file(p);
}

/* ---- the environment, as huggingface_hub reads it ---------------------------------- */

typedef struct {
    char cache[HUB_PATH];
    char endpoint[1024];
    char token[1024];
    int offline;
    long etag_timeout, download_timeout; /* seconds without progress */
} hub_env;

static const char *env_str(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_true(const char *name) {
    const char *v = env_str(name);
    return v && (!strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

static long env_seconds(const char *name, long def) {
    const char *v = env_str(name);
    if (!v) return def;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x > 0) || x > 86400) return def;
    return x < 1 ? 1 : (long)x;
}

/* "~/x" as "$HOME/x". */
static int expand_home(char *out, size_t cap, const char *path) {
    if (path[0] == '~' && (path[1] == '/' || !path[1])) {
        const char *home = env_str("HOME");
        return home && fmt(out, cap, "%s%s", home, path + 1);
    }
    return fmt(out, cap, "%s", path);
}

static int hf_home(char *out, size_t cap) {
    const char *h = env_str("HF_HOME");
    if (h) return expand_home(out, cap, h);
    char base[HUB_PATH];
    const char *xdg = env_str("XDG_CACHE_HOME"), *home = env_str("HOME");
    if (xdg) {
        if (!expand_home(base, sizeof base, xdg)) return 0;
    } else if (!home || !fmt(base, sizeof base, "%s/.cache", home)) {
        return 0;
    }
    return fmt(out, cap, "%s/huggingface", base);
}

static ember_status hub_env_load(hub_env *e) {
    memset(e, 0, sizeof *e);
    char home[HUB_PATH];
    int have_home = hf_home(home, sizeof home);
    const char *cache = env_str("HF_HUB_CACHE");
    if (!cache) cache = env_str("HUGGINGFACE_HUB_CACHE");
    if (cache ? !expand_home(e->cache, sizeof e->cache, cache)
              : !(have_home && fmt(e->cache, sizeof e->cache, "%s/hub", home)))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                          "no Hugging Face cache directory: set HF_HUB_CACHE or HF_HOME (or HOME)");
    size_t n = strlen(e->cache);
    while (n > 1 && e->cache[n - 1] == '/') e->cache[--n] = '\0';

    const char *ep = env_str("HF_ENDPOINT");
    if (!ep) ep = "https://huggingface.co";
    if ((strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) ||
        !fmt(e->endpoint, sizeof e->endpoint, "%s", ep))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "HF_ENDPOINT '%s' is not an http:// or https:// URL", ep);
    n = strlen(e->endpoint);
    while (n > 8 && e->endpoint[n - 1] == '/') e->endpoint[--n] = '\0';

    /* HF_TOKEN, else the file `hf auth login` writes */
    const char *tok = env_str("HF_TOKEN");
    if (!tok) tok = env_str("HUGGING_FACE_HUB_TOKEN");
    if (tok) {
        if (!fmt(e->token, sizeof e->token, "%s", tok))
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "HF_TOKEN is longer than a token can be");
    } else {
        char path[HUB_PATH];
        const char *tp = env_str("HF_TOKEN_PATH");
        int ok = tp ? expand_home(path, sizeof path, tp) : have_home && fmt(path, sizeof path, "%s/token", home);
        FILE *f = ok ? fopen(path, "r") : NULL;
        if (f) {
            if (!fgets(e->token, sizeof e->token, f)) e->token[0] = '\0';
            fclose(f);
        }
    }
    n = strlen(e->token);
    while (n && isspace((unsigned char)e->token[n - 1])) e->token[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)e->token[i] <= 0x20 || (unsigned char)e->token[i] >= 0x7f)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                              "the Hugging Face token (HF_TOKEN or the token file) holds a character a token "
                              "cannot have (byte 0x%02x at %zu)",
                              (unsigned char)e->token[i], i);

    e->offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
    e->etag_timeout = env_seconds("HF_HUB_ETAG_TIMEOUT", 10);
    e->download_timeout = env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10);
    return EMBER_OK;
}

/* ---- one repository at one revision ----------------------------------------------- */

typedef struct {
    const hub_env *env;
    const char *asked; /* the id as the caller wrote it, for the commands suggested */
    char id[HUB_MAX_ID + 32];
    const char *revision;
    char repo_dir[HUB_PATH]; /* <cache>/models--org--name */
    char folder[HUB_MAX_ID + 64]; /* models--org--name */
    char commit[41];
    char snap[HUB_PATH]; /* repo_dir/snapshots/<commit> */
    int not_found;       /* the hub has no such repository (a bare name then tries the next) */
    ember_hub_progress_fn progress;
    void *user;
    int32_t index, count;
} hub_repo;

static ember_status hub_fail(const hub_repo *r, ember_status st, const char *f, ...) EMBER_PRINTF(3, 4);
/* Every message names the model, the revision and the cache searched. */
static ember_status hub_fail(const hub_repo *r, ember_status st, const char *f, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, f);
    vsnprintf(msg, sizeof msg, f, ap);
    va_end(ap);
    return ember_fail(st, "model '%s' (revision %s, cache %s): %s", r->id, r->revision, r->env->cache, msg);
}

/* "ember pull ID [--revision R]" */
static const char *pull_command(const hub_repo *r, char *buf, size_t cap) {
    if (strcmp(r->revision, "main") == 0) snprintf(buf, cap, "ember pull %s", r->asked);
    else snprintf(buf, cap, "ember pull %s --revision %s", r->asked, r->revision);
    return buf;
}

static ember_status repo_init(hub_repo *r, const hub_env *env, const char *asked, const char *id,
                              const char *revision) {
    memset(r, 0, sizeof *r);
    r->env = env;
    r->asked = asked;
    r->revision = revision;
    snprintf(r->id, sizeof r->id, "%s", id);
    size_t k = (size_t)snprintf(r->folder, sizeof r->folder, "models--");
    for (const char *p = id; *p && k + 3 < sizeof r->folder; p++) {
        if (*p == '/') r->folder[k++] = '-', r->folder[k++] = '-';
        else r->folder[k++] = *p;
    }
    r->folder[k] = '\0';
    if (!fmt(r->repo_dir, sizeof r->repo_dir, "%s/%s", env->cache, r->folder))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "the cache path is too long");
    return EMBER_OK;
}

static int set_commit(hub_repo *r, const char *commit) {
    snprintf(r->commit, sizeof r->commit, "%s", commit);
    return fmt(r->snap, sizeof r->snap, "%s/snapshots/%s", r->repo_dir, r->commit);
}

/* ---- what a model needs ---------------------------------------------------------- */

/* The shards model.safetensors.index.json names (its weight_map's values). */
static int index_shards(const char *path, str_list *out, char *why, size_t cap) {
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    json_t *map = root ? json_object_get(root, "weight_map") : NULL;
    int ok = json_is_object(map);
    if (!root) snprintf(why, cap, "model.safetensors.index.json is not JSON (line %d: %s)", err.line, err.text);
    else if (!ok) snprintf(why, cap, "model.safetensors.index.json has no weight_map");
    const char *key;
    json_t *v;
    if (ok) json_object_foreach(map, key, v) {
            const char *f = json_string_value(v);
            if (!f || !safe_relpath(f, 1024)) {
                snprintf(why, cap, "model.safetensors.index.json maps '%.100s' to no valid file name", key);
                ok = 0;
                break;
            }
            if (out->n >= HUB_MAX_PLAN || !list_add(out, f)) {
                snprintf(why, cap, "model.safetensors.index.json names too many shards");
                ok = 0;
                break;
            }
        }
    json_decref(root);
    return ok;
}

/* The folders modules.json names ("1_Pooling", ...), and among them those
 * whose module reads a config.json there (Pooling, Dense). */
static int module_dirs(const char *path, str_list *dirs, str_list *with_config, char *why, size_t cap) {
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!json_is_array(root)) {
        snprintf(why, cap, "modules.json is not a JSON list%s%s", root ? "" : ": ", root ? "" : err.text);
        json_decref(root);
        return 0;
    }
    size_t i;
    json_t *m;
    int ok = 1;
    json_array_foreach(root, i, m) {
        const char *sub = json_string_value(json_object_get(m, "path"));
        const char *type = json_string_value(json_object_get(m, "type"));
        if (!sub || !*sub) continue; /* the Transformer at the top */
        if (!safe_relpath(sub, 256)) {
            snprintf(why, cap, "modules.json: module %zu's path '%.100s' is not a folder name", i, sub);
            ok = 0;
            break;
        }
        const char *base = type ? strrchr(type, '.') : NULL;
        base = base ? base + 1 : type ? type : "";
        if (!list_add(dirs, sub) ||
            ((!strcmp(base, "Pooling") || !strcmp(base, "Dense")) && !list_add(with_config, sub))) {
            snprintf(why, cap, "out of memory");
            ok = 0;
            break;
        }
    }
    json_decref(root);
    return ok;
}

/* Whether the snapshot holds what ember reads; otherwise what it lacks, in why. */
static int snapshot_complete(const char *snap, char *why, size_t cap) {
    char path[HUB_PATH];
    if (!file_in(snap, "config.json")) return snprintf(why, cap, "config.json"), 0;
    if (!file_in(snap, "model.safetensors")) {
        if (!file_in(snap, "model.safetensors.index.json")) return snprintf(why, cap, "model.safetensors"), 0;
        str_list shards = {0};
        int ok = fmt(path, sizeof path, "%s/model.safetensors.index.json", snap) &&
                 index_shards(path, &shards, why, cap);
        for (size_t i = 0; ok && i < shards.n; i++)
            if (!file_in(snap, shards.v[i])) {
                snprintf(why, cap, "%s", shards.v[i]);
                ok = 0;
            }
        list_free(&shards);
        if (!ok) return 0;
    }
    if (!file_in(snap, "tokenizer.json") && !file_in(snap, "vocab.txt"))
        return snprintf(why, cap, "tokenizer.json or vocab.txt"), 0;
    if (file_in(snap, "modules.json")) {
        str_list dirs = {0}, conf = {0};
        int ok = fmt(path, sizeof path, "%s/modules.json", snap) && module_dirs(path, &dirs, &conf, why, cap);
        for (size_t i = 0; ok && i < conf.n; i++)
            if (!fmt(path, sizeof path, "%s/config.json", conf.v[i]) || !file_in(snap, path)) {
                snprintf(why, cap, "%s/config.json", conf.v[i]);
                ok = 0;
            }
        list_free(&dirs);
        list_free(&conf);
        if (!ok) return 0;
    }
    return 1;
}

/* ---- the cache --------------------------------------------------------------------- */

/* The revision's complete snapshot in the cache (r->commit, r->snap set), or
 * 0 with what is missing in why. */
static int cache_find(hub_repo *r, char *why, size_t cap) {
    if (!is_dir(r->repo_dir)) return snprintf(why, cap, "no folder %s", r->folder), 0;
    if (is_commit(r->revision)) {
        set_commit(r, r->revision);
    } else {
        char ref[HUB_PATH], buf[64] = "";
        if (!fmt(ref, sizeof ref, "%s/refs/%s", r->repo_dir, r->revision))
            return snprintf(why, cap, "path too long"), 0;
        FILE *f = fopen(ref, "r");
        if (!f) return snprintf(why, cap, "%s/refs/%s is missing", r->folder, r->revision), 0;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
        if (!is_commit(buf)) return snprintf(why, cap, "%s/refs/%s holds no commit hash", r->folder, r->revision), 0;
        set_commit(r, buf);
    }
    if (!is_dir(r->snap)) return snprintf(why, cap, "%s/snapshots/%s is missing", r->folder, r->commit), 0;
    char lack[512];
    if (!snapshot_complete(r->snap, lack, sizeof lack))
        return snprintf(why, cap, "%s/snapshots/%s lacks %s", r->folder, r->commit, lack), 0;
    return 1;
}

/* ---- HTTP -------------------------------------------------------------------------- */

typedef struct {
    long status;
    char etag[192], linked_etag[192], commit[64], location[HUB_URL], error_code[64], error_message[256];
    char content_range[96];
    int64_t content_length, linked_size;
    int location_cut; /* the Location header did not fit */
} hub_headers;

static void headers_reset(hub_headers *h) {
    memset(h, 0, sizeof *h);
    h->content_length = h->linked_size = -1;
}

static int64_t parse_size(const char *s) {
    if (!*s) return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p) || v > HUB_MAX_SIZE) return -1;
        v = v * 10 + (*p - '0');
    }
    return v > HUB_MAX_SIZE ? -1 : v;
}

/* Each header line of each response (redirects included); a status line
 * starts a new response. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *user) {
    hub_headers *h = user;
    size_t n = size * nitems, len = n;
    while (len && (buf[len - 1] == '\r' || buf[len - 1] == '\n')) len--;
    char line[HUB_URL + 64];
    int cut = len >= sizeof line;
    if (cut) len = sizeof line - 1;
    memcpy(line, buf, len);
    line[len] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) {
        headers_reset(h);
        const char *sp = strchr(line, ' ');
        h->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon) return n;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    static const struct {
        const char *name;
        size_t off, cap;
    } fields[] = {
        {"ETag", offsetof(hub_headers, etag), sizeof((hub_headers *)0)->etag},
        {"X-Linked-Etag", offsetof(hub_headers, linked_etag), sizeof((hub_headers *)0)->linked_etag},
        {"X-Repo-Commit", offsetof(hub_headers, commit), sizeof((hub_headers *)0)->commit},
        {"Location", offsetof(hub_headers, location), sizeof((hub_headers *)0)->location},
        {"X-Error-Code", offsetof(hub_headers, error_code), sizeof((hub_headers *)0)->error_code},
        {"X-Error-Message", offsetof(hub_headers, error_message), sizeof((hub_headers *)0)->error_message},
        {"Content-Range", offsetof(hub_headers, content_range), sizeof((hub_headers *)0)->content_range},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcasecmp(line, fields[i].name) == 0) {
            char *dst = (char *)h + fields[i].off;
            if (!fmt(dst, fields[i].cap, "%s", v) || cut) {
                if (fields[i].off == offsetof(hub_headers, location)) h->location_cut = 1;
            }
            return n;
        }
    if (strcasecmp(line, "Content-Length") == 0) h->content_length = parse_size(v);
    else if (strcasecmp(line, "X-Linked-Size") == 0) h->linked_size = parse_size(v);
    return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
static void curl_init(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* "scheme://host[:port]" of a URL: its length. */
static size_t origin_len(const char *url) {
    const char *p = strstr(url, "://");
    if (!p) return 0;
    p += 3;
    while (*p && *p != '/' && *p != '?' && *p != '#') p++;
    return (size_t)(p - url);
}

/* The token goes to the hub only, never to a CDN the hub redirects to. */
static int same_origin(const char *url, const char *endpoint) {
    size_t a = origin_len(url), b = origin_len(endpoint);
    return a && a == b && strncasecmp(url, endpoint, a) == 0;
}

typedef struct {
    CURL *c;
    struct curl_slist *headers;
    hub_headers h;
    char err[CURL_ERROR_SIZE];
} hub_http;

static ember_status http_open(hub_http *x, const hub_repo *r, const char *url, long timeout) {
    memset(x, 0, sizeof *x);
    headers_reset(&x->h);
    pthread_once(&curl_once, curl_init);
    if (curl_init_result != CURLE_OK || !(x->c = curl_easy_init()))
        return hub_fail(r, EMBER_ERR_BACKEND, "libcurl could not start");
    CURL *c = x->c;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ember/" EMBER_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
    /* no byte for `timeout` seconds: give up, never hang */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeout);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->err);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x->h);
    if (r->env->token[0] && same_origin(url, r->env->endpoint)) {
        char line[1200];
        snprintf(line, sizeof line, "Authorization: Bearer %s", r->env->token);
        if (!(x->headers = curl_slist_append(NULL, line))) {
            curl_easy_cleanup(x->c);
            x->c = NULL;
            return hub_fail(r, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    return EMBER_OK;
}

static ember_status http_add_header(hub_http *x, const hub_repo *r, const char *line) {
    struct curl_slist *l = curl_slist_append(x->headers, line);
    if (!l) return hub_fail(r, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    x->headers = l;
    return EMBER_OK;
}

static CURLcode http_perform(hub_http *x) {
    if (x->headers) curl_easy_setopt(x->c, CURLOPT_HTTPHEADER, x->headers);
    x->err[0] = '\0';
    CURLcode cc = curl_easy_perform(x->c);
    long code = 0;
    if (curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code) x->h.status = code;
    return cc;
}

static void http_close(hub_http *x) {
    if (x->c) curl_easy_cleanup(x->c);
    curl_slist_free_all(x->headers);
    x->c = NULL;
    x->headers = NULL;
}

static ember_status net_error(const hub_repo *r, const hub_http *x, CURLcode cc, const char *what) {
    return hub_fail(r, EMBER_ERR_IO, "%s: cannot reach %s: %s; check the network, HF_ENDPOINT, or set HF_HUB_OFFLINE=1 "
                                     "to use the cache only",
                    what, r->env->endpoint, x->err[0] ? x->err : curl_easy_strerror(cc));
}

/* An HTTP error answer of the hub, as a message; `file`: NULL for the
 * repository's listing, else the file asked for. */
static ember_status status_error(hub_repo *r, const hub_headers *h, const char *file) {
    const char *what = file ? file : "listing the model's files";
    const char *code = h->error_code, *msg = h->error_message;
    char detail[400] = "";
    if (*code || *msg) snprintf(detail, sizeof detail, ", %s%s%s", code, *code && *msg ? ": " : "", msg);
    if ((h->status == 401 || h->status == 403 || h->status == 404) && strcmp(code, "RepoNotFound") == 0) {
        r->not_found = 1;
        return hub_fail(r, EMBER_ERR_IO, "%s: no such model on %s (HTTP %ld%s)%s", what, r->env->endpoint, h->status,
                        detail, r->env->token[0] ? "" : "; a private model needs HF_TOKEN");
    }
    if (h->status == 404 && strcmp(code, "RevisionNotFound") == 0)
        return hub_fail(r, EMBER_ERR_IO, "%s: revision '%s' is not on %s (HTTP 404%s): name a branch, tag or commit "
                                         "of the model",
                        what, r->revision, r->env->endpoint, detail);
    if (h->status == 401 || h->status == 403)
        return hub_fail(r, EMBER_ERR_IO,
                        "%s: access denied by %s (HTTP %ld%s): the model is gated or private; %s %s/%s", what,
                        r->env->endpoint, h->status, detail,
                        r->env->token[0] ? "the token (HF_TOKEN, or the one `hf auth login` saved) may not read it: "
                                           "accept its terms, with the account the token belongs to, at"
                                         : "set HF_TOKEN to a token of an account that may read it, after accepting "
                                           "its terms at",
                        r->env->endpoint, r->id);
    if (h->status == 404 && file)
        return hub_fail(r, EMBER_ERR_IO, "%s: not found on %s at commit %s (HTTP 404%s)", file, r->env->endpoint,
                        r->commit, detail);
    if (h->status == 404) {
        r->not_found = 1;
        return hub_fail(r, EMBER_ERR_IO, "%s: no such model on %s (HTTP 404%s): check the model id (or the path, "
                                         "if a directory was meant)",
                        what, r->env->endpoint, detail);
    }
    return hub_fail(r, EMBER_ERR_IO, "%s: %s answered HTTP %ld%s", what, r->env->endpoint, h->status, detail);
}

/* ---- the listing of a revision ---------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    int too_big;
} membuf;

static size_t on_body_mem(char *p, size_t size, size_t nitems, void *user) {
    membuf *b = user;
    size_t n = size * nitems;
    if (b->len + n + 1 > b->cap) {
        if (b->len + n + 1 > HUB_MAX_JSON) {
            b->too_big = 1;
            return 0;
        }
        size_t cap = b->cap ? b->cap : 1 << 14;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* GET /api/models/{id}/revision/{revision}: r->commit and the repository's files. */
static ember_status api_revision(hub_repo *r, str_list *files) {
    char qrev[700], url[HUB_URL];
    if (!url_quote(qrev, sizeof qrev, r->revision, 0) ||
        !fmt(url, sizeof url, "%s/api/models/%s/revision/%s", r->env->endpoint, r->id, qrev))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "URL too long");
    hub_http x;
    ember_status st = http_open(&x, r, url, r->env->etag_timeout);
    if (st) return st;
    membuf body = {0};
    curl_easy_setopt(x.c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(x.c, CURLOPT_WRITEFUNCTION, on_body_mem);
    curl_easy_setopt(x.c, CURLOPT_WRITEDATA, &body);
    CURLcode cc = http_perform(&x);
    json_t *root = NULL;
    if (body.too_big) st = hub_fail(r, EMBER_ERR_FORMAT, "%s answered more than %zu MiB", url, HUB_MAX_JSON >> 20);
    else if (cc != CURLE_OK) st = net_error(r, &x, cc, "listing the model's files");
    else if (x.h.status != 200) st = status_error(r, &x.h, NULL);
    if (st) goto done;
    json_error_t err;
    root = body.data ? json_loadb(body.data, body.len, 0, &err) : NULL;
    const char *sha = json_string_value(json_object_get(root, "sha"));
    json_t *sib = json_object_get(root, "siblings");
    if (!json_is_object(root) || !sha || !is_commit(sha) || !json_is_array(sib)) {
        st = hub_fail(r, EMBER_ERR_FORMAT, "%s did not answer as the Hugging Face Hub does (no 'sha' commit hash and "
                                           "'siblings' list): is HF_ENDPOINT a hub?",
                      url);
        goto done;
    }
    if (!set_commit(r, sha)) {
        st = hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "the cache path is too long");
        goto done;
    }
    if (json_array_size(sib) > HUB_MAX_LISTING) {
        st = hub_fail(r, EMBER_ERR_FORMAT, "%s lists %zu files, more than ember reads", url, json_array_size(sib));
        goto done;
    }
    size_t i;
    json_t *s;
    json_array_foreach(sib, i, s) {
        const char *f = json_string_value(json_object_get(s, "rfilename"));
        /* names that could escape the snapshot are never downloaded */
        if (f && safe_relpath(f, 1024) && !list_push(files, f)) {
            st = hub_fail(r, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
    }
done:
    json_decref(root);
    free(body.data);
    http_close(&x);
    return st;
}

/* ---- one file ----------------------------------------------------------------------- */

/* A lock file held with flock (as huggingface_hub's filelock does), so that
 * processes fetching the same blob take turns; the kernel drops it when a
 * process dies. */
static int lock_take(const char *path) {
    for (int tries = 0; tries < 100; tries++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return -1;
        int rc;
        while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
        }
        struct stat a, b;
        /* still the file at that path (another process may have replaced it) */
        if (rc == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return fd;
        close(fd);
        if (rc != 0) return -1;
    }
    return -1;
}

/* snapshots/<commit>/<file> -> ../../blobs/<etag>, created whole (rename of a fresh link). */
static ember_status link_pointer(hub_repo *r, const char *file, const char *etag) {
    char pointer[HUB_PATH], target[HUB_PATH], tmp[HUB_PATH];
    if (!fmt(pointer, sizeof pointer, "%s/%s", r->snap, file) ||
        !fmt(tmp, sizeof tmp, "%s.%ld.link", pointer, (long)getpid()))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", file);
    size_t k = 0;
    int depth = 2;
    for (const char *p = file; *p; p++) depth += *p == '/';
    for (int i = 0; i < depth; i++) k += (size_t)snprintf(target + k, sizeof target - k, "../");
    if (!fmt(target + k, sizeof target - k, "blobs/%s", etag))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", file);
    if (mkdir_parent(pointer) != 0)
        return hub_fail(r, EMBER_ERR_IO, "cannot create the folder of %s: %s", pointer, strerror(errno));
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, pointer) != 0) {
        int e = errno;
        unlink(tmp);
        return hub_fail(r, EMBER_ERR_IO, "cannot link %s to the blob %s: %s", pointer, etag, strerror(e));
    }
    fsync_dir(pointer);
    return EMBER_OK;
}

typedef struct {
    hub_repo *r;
    const char *file;
    int fd;
    int64_t have, expect; /* bytes in the .incomplete file; the size announced (-1: unknown) */
    sha256_ctx sha;
    hub_http *x;
    int started, refused, range_bad, too_long, cancelled, write_errno;
} download_state;

static size_t on_body_file(char *p, size_t size, size_t nitems, void *user) {
    download_state *d = user;
    size_t n = size * nitems;
    if (!d->started) {
        d->started = 1;
        long s = d->x->h.status;
        if (s == 206) {
            long long start = -1;
            if (sscanf(d->x->h.content_range, "bytes %lld-", &start) != 1 || start != d->have) {
                d->range_bad = 1;
                return 0;
            }
        } else if (s == 200) {
            if (d->have > 0) { /* the server sent the whole file: start over */
                if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0) {
                    d->write_errno = errno;
                    return 0;
                }
                d->have = 0;
                sha256_init(&d->sha);
            }
        } else {
            d->refused = 1;
        }
    }
    if (d->refused) return n; /* an error page: the status says it all */
    if (d->expect >= 0 && d->have + (int64_t)n > d->expect) {
        d->too_long = 1;
        return 0;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(d->fd, p + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            d->write_errno = w < 0 ? errno : EIO;
            return 0;
        }
        off += (size_t)w;
    }
    sha256_update(&d->sha, p, n);
    d->have += (int64_t)n;
    /* done == total is said once, when the file is in place */
    if (d->r->progress && d->have != d->expect &&
        d->r->progress(d->file, d->r->index, d->r->count, d->have, d->expect, d->r->user)) {
        d->cancelled = 1;
        return 0;
    }
    return n;
}

/* Hash the part of the .incomplete file an earlier run wrote. */
static int hash_prefix(int fd, int64_t n, sha256_ctx *sha) {
    char buf[1 << 16];
    if (lseek(fd, 0, SEEK_SET) != 0) return 0;
    for (int64_t left = n; left > 0;) {
        ssize_t got = read(fd, buf, left < (int64_t)sizeof buf ? (size_t)left : sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        sha256_update(sha, buf, (size_t)got);
        left -= got;
    }
    return 1;
}

/* What a transfer's end means: EMBER_OK, or the error naming the file. */
static ember_status transfer_status(hub_repo *r, const download_state *d, hub_http *x, CURLcode cc, const char *file,
                                    const char *part, int resumable) {
    const int64_t expect = d->expect;
    char got[64];
    if (expect >= 0) snprintf(got, sizeof got, "%lld of %lld bytes", (long long)d->have, (long long)expect);
    else snprintf(got, sizeof got, "%lld bytes", (long long)d->have);
    const char *again = resumable ? "resume" : "retry";
    if (d->write_errno)
        return hub_fail(r, EMBER_ERR_IO, "%s: cannot write %s: %s", file, part, strerror(d->write_errno));
    if (d->cancelled)
        return hub_fail(r, EMBER_ERR_IO, "%s: download stopped after %s; run again to %s", file, got, again);
    if (d->range_bad)
        return hub_fail(r, EMBER_ERR_FORMAT, "%s: asked to resume at byte %lld, the server sent '%s'", file,
                        (long long)d->have, x->h.content_range);
    if (d->too_long)
        return hub_fail(r, EMBER_ERR_FORMAT, "%s: the server sent more than the %lld bytes announced", file,
                        (long long)expect);
    if (cc != CURLE_OK && !d->refused)
        return hub_fail(r, EMBER_ERR_IO, "%s: download interrupted after %s (%s); run again to %s", file, got,
                        x->err[0] ? x->err : curl_easy_strerror(cc), again);
    if (d->refused || (x->h.status != 200 && x->h.status != 206)) return status_error(r, &x->h, file);
    if (expect >= 0 && d->have != expect)
        return hub_fail(r, EMBER_ERR_IO, "%s: the body ended after %s; run again to %s", file, got, again);
    return EMBER_OK;
}

/* Download url into blob, through blob.incomplete (resumed when its content
 * can be checked: want_sha256 given). Called with the blob's lock held. */
static ember_status download_blob(hub_repo *r, const char *file, const char *url, const char *blob, int64_t expect,
                                  const char *want_sha256) {
    char part[HUB_PATH];
    if (!fmt(part, sizeof part, "%s.incomplete", blob))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", file);
    download_state d;
    memset(&d, 0, sizeof d);
    d.r = r;
    d.file = file;
    d.expect = expect;
    d.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d.fd < 0) return hub_fail(r, EMBER_ERR_IO, "%s: cannot create %s: %s", file, part, strerror(errno));
    ember_status st = EMBER_OK;
    struct stat sb;
    d.have = fstat(d.fd, &sb) == 0 ? (int64_t)sb.st_size : 0;
    sha256_init(&d.sha);
    if (d.have > 0 && (!want_sha256 || (expect >= 0 && d.have > expect) || !hash_prefix(d.fd, d.have, &d.sha))) {
        sha256_init(&d.sha);
        d.have = 0;
    }
    if (ftruncate(d.fd, d.have) != 0 || lseek(d.fd, d.have, SEEK_SET) != d.have) {
        st = hub_fail(r, EMBER_ERR_IO, "%s: cannot write %s: %s", file, part, strerror(errno));
        goto fail;
    }
    for (int attempt = 0; attempt < 2 && (expect < 0 || d.have < expect); attempt++) {
        hub_http x;
        if ((st = http_open(&x, r, url, r->env->download_timeout))) goto fail;
        d.x = &x;
        d.started = d.refused = d.range_bad = d.too_long = d.cancelled = d.write_errno = 0;
        char range[64];
        snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)d.have);
        if (d.have > 0 && (st = http_add_header(&x, r, range))) {
            http_close(&x);
            goto fail;
        }
        curl_easy_setopt(x.c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(x.c, CURLOPT_WRITEFUNCTION, on_body_file);
        curl_easy_setopt(x.c, CURLOPT_WRITEDATA, &d);
        if (r->progress && d.have != expect) r->progress(file, r->index, r->count, d.have, expect, r->user);
        CURLcode cc = http_perform(&x);
        if (x.h.status == 416 && d.have > 0 && attempt == 0) { /* the partial file is no prefix of this one */
            http_close(&x);
            if (ftruncate(d.fd, 0) != 0 || lseek(d.fd, 0, SEEK_SET) != 0) {
                st = hub_fail(r, EMBER_ERR_IO, "%s: cannot write %s: %s", file, part, strerror(errno));
                goto fail;
            }
            d.have = 0;
            sha256_init(&d.sha);
            continue;
        }
        st = transfer_status(r, &d, &x, cc, file, part, want_sha256 != NULL);
        http_close(&x);
        if (st) goto fail;
        break;
    }
    if (want_sha256) {
        char hex[65];
        sha256_final_hex(&d.sha, hex);
        if (strcmp(hex, want_sha256) != 0) {
            close(d.fd);
            unlink(part);
            return hub_fail(r, EMBER_ERR_FORMAT,
                            "%s: the download's sha256 is %s but the hub says %s: it was discarded; run again, and if "
                            "this repeats, a proxy or the hub serves a corrupted file",
                            file, hex, want_sha256);
        }
    }
    if (fsync(d.fd) != 0 || close(d.fd) != 0) {
        d.fd = -1;
        st = hub_fail(r, EMBER_ERR_IO, "%s: cannot write %s: %s", file, part, strerror(errno));
        goto fail;
    }
    d.fd = -1;
    if (rename(part, blob) != 0) {
        st = hub_fail(r, EMBER_ERR_IO, "%s: cannot rename %s: %s", file, part, strerror(errno));
        goto fail;
    }
    fsync_dir(blob);
    if (r->progress) r->progress(file, r->index, r->count, d.have, d.have, r->user);
    return EMBER_OK;
fail:
    if (d.fd >= 0) close(d.fd);
    /* a partial file whose content cannot be checked is never continued */
    if (!want_sha256) unlink(part);
    return st;
}

/* HEAD the file at the commit: its etag, size and where to GET it. */
static ember_status file_metadata(hub_repo *r, const char *file, char *etag, size_t etag_cap, int64_t *size,
                                  char *location, size_t loc_cap) {
    char qfile[3200], url[HUB_URL];
    if (!url_quote(qfile, sizeof qfile, file, 1) ||
        !fmt(url, sizeof url, "%s/%s/resolve/%s/%s", r->env->endpoint, r->id, r->commit, qfile))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "%s: URL too long", file);
    for (int hop = 0;; hop++) {
        hub_http x;
        ember_status st = http_open(&x, r, url, r->env->etag_timeout);
        if (st) return st;
        curl_easy_setopt(x.c, CURLOPT_NOBODY, 1L);
        CURLcode cc = http_perform(&x);
        hub_headers h = x.h;
        if (cc != CURLE_OK) st = net_error(r, &x, cc, file);
        http_close(&x);
        if (st) return st;
        int redirect = h.status >= 300 && h.status < 400;
        if (redirect && (!h.location[0] || h.location_cut))
            return hub_fail(r, EMBER_ERR_FORMAT, "%s: HTTP %ld without a usable Location", file, h.status);
        if (redirect && h.location[0] == '/') { /* the hub's own redirect (a renamed repository) */
            if (hop >= 5) return hub_fail(r, EMBER_ERR_FORMAT, "%s: too many redirects", file);
            char next[HUB_URL];
            if (!fmt(next, sizeof next, "%.*s%s", (int)origin_len(r->env->endpoint), r->env->endpoint, h.location))
                return hub_fail(r, EMBER_ERR_FORMAT, "%s: redirect URL too long", file);
            memcpy(url, next, sizeof url);
            continue;
        }
        if (redirect && strncmp(h.location, "http://", 7) != 0 && strncmp(h.location, "https://", 8) != 0)
            return hub_fail(r, EMBER_ERR_FORMAT, "%s: redirected to '%.200s', not an http(s) URL", file, h.location);
        if (!redirect && h.status != 200) return status_error(r, &h, file);
        if (!h.commit[0])
            return hub_fail(r, EMBER_ERR_FORMAT, "%s: the answer of %s has no X-Repo-Commit header, so it is not a "
                                                 "Hugging Face Hub: check HF_ENDPOINT and proxies",
                            file, r->env->endpoint);
        if (strcmp(h.commit, r->commit) != 0)
            return hub_fail(r, EMBER_ERR_FORMAT, "%s: the hub answered for commit %s, not %s", file, h.commit,
                            r->commit);
        /* the etag names the blob: ETag "x" or W/"x"; LFS files' X-Linked-Etag is their sha256 */
        const char *e = h.linked_etag[0] ? h.linked_etag : h.etag;
        if (strncmp(e, "W/", 2) == 0) e += 2;
        size_t n = strlen(e);
        while (n && *e == '"') e++, n--;
        while (n && e[n - 1] == '"') n--;
        int ok = n > 0 && n < etag_cap && n <= 128 && e[0] != '.';
        for (size_t i = 0; ok && i < n; i++) ok = isalnum((unsigned char)e[i]) || strchr("-_.", e[i]);
        if (!ok)
            return hub_fail(r, EMBER_ERR_FORMAT, "%s: the hub's ETag '%.100s' cannot name a blob", file,
                            h.linked_etag[0] ? h.linked_etag : h.etag);
        memcpy(etag, e, n);
        etag[n] = '\0';
        *size = h.linked_size >= 0 ? h.linked_size : redirect ? -1 : h.content_length;
        if (!fmt(location, loc_cap, "%s", redirect ? h.location : url))
            return hub_fail(r, EMBER_ERR_FORMAT, "%s: download URL too long", file);
        return EMBER_OK;
    }
}

/* One file of the model into the cache: skipped when the snapshot has it. */
static ember_status fetch_file(hub_repo *r, const char *file) {
    char pointer[HUB_PATH];
    r->index++;
    if (!fmt(pointer, sizeof pointer, "%s/%s", r->snap, file))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", file);
    if (is_file(pointer)) return EMBER_OK; /* a commit's files never change */
    char etag[160], location[HUB_URL], blob[HUB_PATH], lock_dir[HUB_PATH], lock[HUB_PATH], blobs[HUB_PATH];
    int64_t size = -1;
    ember_status st = file_metadata(r, file, etag, sizeof etag, &size, location, sizeof location);
    if (st) return st;
    if (!fmt(blobs, sizeof blobs, "%s/blobs", r->repo_dir) || !fmt(blob, sizeof blob, "%s/%s", blobs, etag) ||
        !fmt(lock_dir, sizeof lock_dir, "%s/.locks/%s", r->env->cache, r->folder) ||
        !fmt(lock, sizeof lock, "%s/%s.lock", lock_dir, etag))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "%s: path too long", file);
    if (mkdir_p(blobs) != 0) return hub_fail(r, EMBER_ERR_IO, "cannot create %s: %s", blobs, strerror(errno));
    if (mkdir_p(lock_dir) != 0) return hub_fail(r, EMBER_ERR_IO, "cannot create %s: %s", lock_dir, strerror(errno));
    int fd = lock_take(lock);
    if (fd < 0) return hub_fail(r, EMBER_ERR_IO, "%s: cannot lock %s: %s", file, lock, strerror(errno));
    if (!is_file(blob)) st = download_blob(r, file, location, blob, size, is_sha256(etag) ? etag : NULL);
    if (!st) {
        struct stat sb;
        if (size >= 0 && stat(blob, &sb) == 0 && (int64_t)sb.st_size != size)
            st = hub_fail(r, EMBER_ERR_FORMAT, "%s: the cached blob %s has %lld bytes, the hub says %lld", file,
                          blob, (long long)sb.st_size, (long long)size);
    }
    if (!st) st = link_pointer(r, file, etag);
    close(fd);
    return st;
}

/* refs/<revision> = the commit (as huggingface_hub writes it: no newline), whole. */
static ember_status write_ref(hub_repo *r) {
    if (is_commit(r->revision)) return EMBER_OK;
    char ref[HUB_PATH], tmp[HUB_PATH];
    if (!fmt(ref, sizeof ref, "%s/refs/%s", r->repo_dir, r->revision) ||
        !fmt(tmp, sizeof tmp, "%s.%ld.tmp", ref, (long)getpid()))
        return hub_fail(r, EMBER_ERR_INVALID_ARGUMENT, "path too long");
    if (mkdir_parent(ref) != 0) return hub_fail(r, EMBER_ERR_IO, "cannot create %s: %s", ref, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0 && write(fd, r->commit, 40) == 40 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (!ok || rename(tmp, ref) != 0) {
        int e = errno;
        unlink(tmp);
        return hub_fail(r, EMBER_ERR_IO, "cannot write %s: %s", ref, strerror(e));
    }
    fsync_dir(ref);
    return EMBER_OK;
}

/* The files of a sentence-transformers module folder ember may read. */
static int module_file_wanted(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".json") || !strcmp(dot, ".txt") || !strcmp(dot, ".safetensors"));
}

static ember_status fetch_all(hub_repo *r, const str_list *plan, size_t from) {
    for (size_t i = from; i < plan->n; i++) {
        ember_status st = fetch_file(r, plan->v[i]);
        if (st) return st;
    }
    return EMBER_OK;
}

/* Ask the hub for the revision, download what the snapshot lacks. */
static ember_status pull(hub_repo *r) {
    /* small files first: modules.json and the shard index say what else to get */
    static const char *const configs[] = {
        "config.json",      "tokenizer.json",          "tokenizer_config.json",
        "vocab.txt",        "special_tokens_map.json", "added_tokens.json",
        "modules.json",     "sentence_bert_config.json", "config_sentence_transformers.json",
        "model.safetensors.index.json"};
    str_list files = {0}, plan = {0}, dirs = {0}, with_config = {0}, shards = {0};
    ember_status st = api_revision(r, &files);
    if (st) goto done;
    int whole = list_has(&files, "model.safetensors"), sharded = list_has(&files, "model.safetensors.index.json");
    if (!list_has(&files, "config.json")) {
        st = hub_fail(r, EMBER_ERR_UNSUPPORTED, "the repository has no config.json: not a transformers model");
        goto done;
    }
    if (!whole && !sharded) {
        st = hub_fail(r, EMBER_ERR_UNSUPPORTED, "the repository has no model.safetensors (nor a sharded "
                                                "model.safetensors.index.json): ember reads safetensors weights only");
        goto done;
    }
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        if (list_has(&files, configs[i]) && (!whole || strcmp(configs[i], "model.safetensors.index.json") != 0) &&
            !list_add(&plan, configs[i])) {
            st = hub_fail(r, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
    r->count = (int32_t)plan.n + 1;
    if ((st = fetch_all(r, &plan, 0))) goto done;
    size_t first = plan.n;
    char why[512], path[HUB_PATH];
    if (list_has(&plan, "modules.json")) {
        if (!fmt(path, sizeof path, "%s/modules.json", r->snap) || !module_dirs(path, &dirs, &with_config, why, sizeof why)) {
            st = hub_fail(r, EMBER_ERR_FORMAT, "%s", why);
            goto done;
        }
        for (size_t d = 0; d < dirs.n; d++) {
            size_t n = strlen(dirs.v[d]);
            for (size_t i = 0; i < files.n; i++)
                if (strncmp(files.v[i], dirs.v[d], n) == 0 && files.v[i][n] == '/' && module_file_wanted(files.v[i]) &&
                    (plan.n >= HUB_MAX_PLAN || !list_add(&plan, files.v[i]))) {
                    st = hub_fail(r, EMBER_ERR_UNSUPPORTED, "the module folders hold too many files");
                    goto done;
                }
        }
    }
    if (whole) {
        if (!list_add(&plan, "model.safetensors")) {
            st = hub_fail(r, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
    } else {
        if (!fmt(path, sizeof path, "%s/model.safetensors.index.json", r->snap) ||
            !index_shards(path, &shards, why, sizeof why)) {
            st = hub_fail(r, EMBER_ERR_FORMAT, "%s", why);
            goto done;
        }
        for (size_t i = 0; i < shards.n; i++) {
            if (!list_has(&files, shards.v[i])) {
                st = hub_fail(r, EMBER_ERR_FORMAT, "model.safetensors.index.json names %s, which the repository lacks",
                              shards.v[i]);
                goto done;
            }
            if (plan.n >= HUB_MAX_PLAN || !list_add(&plan, shards.v[i])) {
                st = hub_fail(r, EMBER_ERR_UNSUPPORTED, "too many shards");
                goto done;
            }
        }
    }
    r->count = (int32_t)plan.n;
    if ((st = fetch_all(r, &plan, first))) goto done;
    if (!snapshot_complete(r->snap, why, sizeof why)) {
        st = hub_fail(r, EMBER_ERR_UNSUPPORTED, "the repository lacks %s, which ember needs", why);
        goto done;
    }
    st = write_ref(r);
done:
    list_free(&files);
    list_free(&plan);
    list_free(&dirs);
    list_free(&with_config);
    list_free(&shards);
    return st;
}

/* ---- entry points --------------------------------------------------------------------- */

static ember_status found(const hub_repo *r, char *dir, size_t cap, char *repo, size_t repo_cap) {
    if (!fmt(dir, cap, "%s", r->snap))
        return ember_fail(EMBER_ERR_BUFFER_TOO_SMALL, "model '%s': the path %s does not fit in %zu bytes", r->id,
                          r->snap, cap);
    if (repo && repo_cap) snprintf(repo, repo_cap, "%s", r->id);
    return EMBER_OK;
}

ember_status hub_locate(const char *id, const char *revision, hub_mode mode, ember_hub_progress_fn progress,
                        void *user, char *dir, size_t cap, char *repo, size_t repo_cap) {
    if (!id || !dir) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_hub: id or dir is NULL");
    if (!hub_is_id(id))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                          "'%s' is neither an existing directory nor a Hugging Face model id (org/name, or name)", id);
    const char *rev = revision && *revision ? revision : "main";
    if (!revision_ok(rev))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                          "model '%s': '%s' is not a revision (a branch, tag or commit hash)", id, rev);
    hub_env env;
    ember_status st = hub_env_load(&env);
    if (st) return st;
    /* a bare name, as sentence-transformers reads it */
    char names[2][HUB_MAX_ID + 32];
    int n = 1;
    snprintf(names[0], sizeof names[0], "%s", id);
    if (!strchr(id, '/')) {
        snprintf(names[0], sizeof names[0], "sentence-transformers/%s", id);
        snprintf(names[1], sizeof names[1], "%s", id);
        n = 2;
    }
    hub_repo r[2];
    for (int i = 0; i < n; i++)
        if ((st = repo_init(&r[i], &env, id, names[i], rev))) return st;
    for (int i = 0; i < n; i++) r[i].progress = progress, r[i].user = user;
    int online = mode != HUB_CACHE_ONLY && !env.offline;
    if (mode != HUB_PULL || !online) {
        char why[2][700], cmd[300];
        for (int i = 0; i < n; i++)
            if (cache_find(&r[i], why[i], sizeof why[i])) return found(&r[i], dir, cap, repo, repo_cap);
        if (!online) {
            hub_repo asked = r[n - 1]; /* named as the caller wrote it */
            snprintf(asked.id, sizeof asked.id, "%s", id);
            pull_command(&asked, cmd, sizeof cmd);
            return hub_fail(&asked, EMBER_ERR_IO, "not in the cache (%s%s%s); %s%s%s", why[0], n > 1 ? "; " : "",
                            n > 1 ? why[1] : "",
                            env.offline ? "HF_HUB_OFFLINE is set, so nothing is downloaded: run '" : "run '", cmd,
                            env.offline ? "' where the hub is reachable, or unset HF_HUB_OFFLINE"
                                        : "' to download it (or huggingface_hub's snapshot_download)");
        }
    }
    for (int i = 0; i < n; i++) {
        if ((st = pull(&r[i])) == EMBER_OK) return found(&r[i], dir, cap, repo, repo_cap);
        if (!r[i].not_found) return st;
    }
    if (n == 2) {
        hub_repo asked = r[1];
        return hub_fail(&asked, EMBER_ERR_IO, "no model '%s' nor '%s' on %s: check the name (or the path, if a "
                                              "directory was meant)%s",
                        names[0], names[1], env.endpoint, env.token[0] ? "" : "; a private model needs HF_TOKEN");
    }
    return st;
}

ember_status ember_hub_resolve(const char *id, const char *revision, char *dir, size_t cap) {
    return hub_locate(id, revision, HUB_CACHE_ONLY, NULL, NULL, dir, cap, NULL, 0);
}

ember_status ember_hub_pull(const char *id, const char *revision, ember_hub_progress_fn progress, void *user,
                            char *dir, size_t cap) {
    return hub_locate(id, revision, HUB_PULL, progress, user, dir, cap, NULL, 0);
}
