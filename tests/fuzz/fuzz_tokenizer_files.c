/* Loading a tokenizer from files a stranger made: the input is the files,
 * parts separated by "\n--8<--\n": tokenizer.json alone (first byte even),
 * or vocab.txt, tokenizer_config.json and special_tokens_map.json. A load
 * either fails with a message or gives a tokenizer that then tokenizes a
 * few texts within its vocabulary. */
#include <string.h>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int json = data[0] % 2 == 0;
    const uint8_t *parts[3];
    size_t lens[3];
    size_t n = fuzz_split(data + 1, size - 1, parts, lens, 3);
    if (json) {
        fuzz_write(0, "tokenizer.json", parts[0], lens[0]);
    } else {
        fuzz_write(1, "vocab.txt", parts[0], lens[0]);
        if (n > 1) fuzz_write(2, "tokenizer_config.json", parts[1], lens[1]);
        if (n > 2) fuzz_write(3, "special_tokens_map.json", parts[2], lens[2]);
    }
    tokenizer tok;
    memset(&tok, 0, sizeof tok);
    if (tokenizer_load_dir(&tok, fuzz_dir()) == EMBER_OK) {
        static const char *texts[] = {"Hello, wörld!", "[CLS] [SEP] [MASK] <s>", "日本語 emoji🙂 café",
                                      "\xff\xfe bad", ""};
        tokenizer_scratch scratch;
        piece_list a, b;
        memset(&scratch, 0, sizeof scratch);
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        ember_token out[128];
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            int32_t cnt = 0;
            ember_status st = tokenizer_tokenize(&tok, &scratch, &a, &b, texts[i], strlen(texts[i]), NULL, 0, 1, 1, 0,
                                                 64, out, 128, &cnt, NULL);
            FUZZ_CHECK(st == EMBER_OK, "tokenizing '%s': %s", texts[i], ember_last_error());
            for (int32_t k = 0; k < cnt; k++)
                FUZZ_CHECK(out[k].id >= 0 && out[k].id < tok.n_ids, "id %d outside [0, %d)", out[k].id, tok.n_ids);
        }
        tokenizer_scratch_free(&scratch);
        piece_list_free(&a);
        piece_list_free(&b);
        tokenizer_free(&tok);
    } else {
        FUZZ_CHECK(ember_last_error()[0], "a failed load left no message");
    }
    fuzz_clean();
    return 0;
}
