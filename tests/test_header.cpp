// include/ember.h compiles as C++ (extern "C", no C-only constructs), and links.
#include "ember.h"

#include <cstdio>
#include <cstring>

int main() {
    ember_model_params p = ember_model_default_params();
    ember_model *m = nullptr;
    if (ember_model_load("/nonexistent-model-dir", &p, &m) != EMBER_ERR_IO || m) return 1;
    if (std::strstr(ember_last_error(), "/nonexistent-model-dir") == nullptr) return 1;
    std::printf("C++: %s\n", ember_status_str(EMBER_ERR_IO));
    return 0;
}
