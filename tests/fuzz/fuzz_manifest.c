/* What --resume reads: a directory whose manifest.json (and a shard file)
 * a crash or a hand left in any state. The input: the manifest, then
 * (after "\n--8<--\n") the bytes of shard-00000.npy. Reading it for a
 * resume, for search, or as the description beside one file never crashes:
 * it fails with a message, or the run it describes is taken up. */
#include <string.h>
#include <unistd.h>

#include "ember.h"
#include "fuzz_util.h"
#include "pipeline/manifest.h"
#include "pipeline/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *parts[2];
    size_t lens[2];
    size_t n = fuzz_split(data, size, parts, lens, 2);
    fuzz_write(0, "manifest.json", parts[0], lens[0]);
    fuzz_write(1, "shard-00000.npy", n > 1 ? parts[1] : (const uint8_t *)"", n > 1 ? lens[1] : 0);
    fuzz_write(2, "one.npy.json", parts[0], lens[0]);
    embed_manifest m;
    if (manifest_read(&m, fuzz_dir()) == EMBER_OK) {
        int64_t rows = 0;
        for (int32_t i = 0; i < m.n_shards; i++) rows += m.shards[i].rows;
        FUZZ_CHECK(rows == m.rows && m.dim >= 1 && m.dim <= m.model_dim, "manifest accepted with %lld rows, dim %d of %d",
                   (long long)m.rows, m.dim, m.model_dim);
        manifest_free(&m);
    }
    char one[512];
    snprintf(one, sizeof one, "%s/one.npy", fuzz_dir());
    if (sidecar_read(&m, one) == EMBER_OK) manifest_free(&m);
    ember_index *ix;
    if (ember_index_open(fuzz_dir(), &ix) == EMBER_OK) {
        ember_index_info info;
        ember_index_get_info(ix, &info);
        float q[4096];
        memset(q, 0, sizeof q);
        if (info.dim <= 4096) {
            ember_hit hits[3];
            int32_t found;
            ember_search_params sp = ember_search_default_params();
            sp.k = 3;
            ember_search(ix, q, 1, info.dim, &sp, hits, &found);
        }
        ember_index_free(ix);
    }
    /* a resume of a run of this identity */
    sink_opts so;
    memset(&so, 0, sizeof so);
    so.path = fuzz_dir();
    so.format = EMBER_OUTPUT_NPY;
    so.shard_rows = 4;
    so.resume = 1;
    so.id = (sink_identity){.input_path = "corpus.txt", .input_size = 100, .input_mtime = 1, .model_name = "tiny",
                            .model_dir = "tiny", .dim = 8, .max_length = 64, .weights_bytes = 1000, .pooling = "cls",
                            .device = "cpu", .dtype = "fp32", .window = 8, .token_budget = 64};
    sink *s;
    int complete;
    if (sink_open(&s, &so, &complete)) sink_free(s);
    fuzz_clean();
    /* a resume rewrites the manifest and removes stale files: start afresh */
    char p[600];
    snprintf(p, sizeof p, "%s/manifest.json.partial", fuzz_dir());
    unlink(p);
    return 0;
}
