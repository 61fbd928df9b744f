/* ember info: what a model directory holds, as ember reads it. */
#include <string.h>

#include "cli.h"

static const char *usage = "usage: ember info [options]\n"
                           "\n"
                           "Print the model's shape, tokenizer, pooling and the device it runs on, and the\n"
                           "architectures ember runs (also when the model cannot be loaded).\n"
                           "\n" MODEL_OPTIONS_HELP "  -h, --help\n";

int cmd_info(int argc, char **argv) {
    model_opts mo;
    model_opts_init(&mo);
    static struct option opts[] = {{"help", no_argument, 0, 'h'}, MODEL_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hm:", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (c == '?' || !model_opts_parse(&mo, c, optarg)) {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) die_usage("info", "unexpected argument '%s'", argv[optind]);
    ember_model *m = model_opts_load(&mo);
    if (!m) {
        fprintf(stderr, "ember runs: %s\n", ember_supported_architectures());
        return 1;
    }
    ember_model_info i;
    ember_model_get_info(m, &i);
    printf("model          %s (%s)\n", i.name, mo.model_dir);
    printf("architecture   %s: %d layers, hidden %d, %d heads, intermediate %d\n", i.architecture, i.n_layers, i.hidden_size,
           i.n_heads, i.intermediate_size);
    printf("vocabulary     %d tokens, %s\n", i.vocab_size, i.lowercase ? "uncased (lowercased)" : "cased");
    printf("max length     %d tokens (batches of up to %d tokens)\n", i.max_length, i.max_batch_tokens);
    printf("output         %d-dim, %s pooling%s\n", i.dim, ember_pooling_str(i.pooling),
           i.normalize ? ", L2-normalised" : "");
    if (i.modules[0]) printf("modules        %s\n", i.modules);
    if (i.prompts[0] || !i.include_prompt)
        printf("prompts        %s%s%s%s%s\n", i.prompts[0] ? i.prompts : "none",
               i.default_prompt_name ? " (default " : "", i.default_prompt_name ? i.default_prompt_name : "",
               i.default_prompt_name ? ")" : "", i.include_prompt ? "" : "; left out of pooling (include_prompt false)");
    printf("device         %s, %s\n", i.device_name, ember_dtype_str(i.dtype));
    printf("batching       %s\n", i.batch_invariant ? "a text's vector is the same bits in any batch"
                                                     : "a text's vector may differ in the last bits with its batch");
    printf("ember runs     %s\n", ember_supported_architectures());
    printf("cuda devices   %d%s\n", ember_cuda_device_count() < 0 ? 0 : ember_cuda_device_count(),
           ember_cuda_device_count() < 0 ? " (built without CUDA)" : "");
    ember_model_free(m);
    return 0;
}
