/* include/ember.h compiles as C99 with -pedantic, and links. */
#include "ember.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    ember_model_params p = ember_model_default_params();
    ember_encode_params e = ember_encode_default_params();
    ember_tokenize_params t = ember_tokenize_default_params();
    if (p.device != EMBER_DEVICE_CPU || e.truncate != 1 || t.add_special_tokens != 1) return 1;
    if (strcmp(ember_status_str(EMBER_OK), "ok") != 0) return 1;
    ember_model *m = NULL;
    if (ember_model_load("/nonexistent-model-dir", &p, &m) != EMBER_ERR_IO || m) return 1;
    if (strstr(ember_last_error(), "/nonexistent-model-dir") == NULL) return 1;
    printf("C: %s\n", ember_last_error());
    return 0;
}
