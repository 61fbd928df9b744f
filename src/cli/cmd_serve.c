/* ember serve: not built yet. */
#include "cli.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ember: error: 'serve' is not implemented yet\n");
    return 2;
}
