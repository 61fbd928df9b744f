/* ember bench: not built yet. */
#include "cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ember: error: 'bench' is not implemented yet\n");
    return 2;
}
