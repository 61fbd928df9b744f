/* Built when ember is compiled without CUDA. */
#include "backend.h"
#include "common/error.h"

backend *cuda_backend_create(const bert_config *cfg, const bert_tensors *w, int32_t device_index, ember_dtype dtype,
                             int32_t max_tokens, const ember_tuning *tuning, ember_status *st) {
    (void)cfg;
    (void)w;
    (void)device_index;
    (void)dtype;
    (void)max_tokens;
    (void)tuning;
    *st = ember_fail(EMBER_ERR_NO_DEVICE, "ember was built without CUDA (configure with -DEMBER_CUDA=ON)");
    return NULL;
}

int32_t cuda_device_count(void) { return -1; }
