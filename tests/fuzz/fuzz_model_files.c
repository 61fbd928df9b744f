/* Loading a model directory a stranger made: config.json and
 * model.safetensors (parts separated by "\n--8<--\n"), and, for a third
 * part, modules.json. A load fails with a message, or gives tensors that lie
 * inside the file; no allocation is sized by a number the files claim (the
 * fuzzer runs with -malloc_limit_mb). */
#include <string.h>

#include "fuzz_util.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *parts[3];
    size_t lens[3];
    size_t n = fuzz_split(data, size, parts, lens, 3);
    fuzz_write(0, "config.json", parts[0], lens[0]);
    if (n > 1) fuzz_write(1, "model.safetensors", parts[1], lens[1]);
    if (n > 2) fuzz_write(2, "modules.json", parts[2], lens[2]);
    model_files mf;
    if (model_files_open(&mf, fuzz_dir()) == EMBER_OK) {
        const uint8_t *lo = mf.st.map.data, *hi = lo + mf.st.map.size;
        for (int i = 0; i < mf.st.n_tensors; i++) {
            const st_tensor *t = &mf.st.tensors[i];
            FUZZ_CHECK(t->data >= lo && t->data <= hi, "tensor '%s' outside the file", t->name);
        }
        FUZZ_CHECK(mf.cfg.C > 0 && mf.cfg.L > 0 && mf.cfg.NH > 0 && mf.cfg.C % mf.cfg.NH == 0, "a config was accepted "
                   "with hidden %d, %d layers, %d heads", mf.cfg.C, mf.cfg.L, mf.cfg.NH);
        model_files_close(&mf);
    } else {
        FUZZ_CHECK(ember_last_error()[0], "a failed load left no message");
    }
    fuzz_clean();
    return 0;
}
