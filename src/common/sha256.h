/* SHA-256 (FIPS 180-4), incremental: the hub's LFS files are named by it. */
#ifndef EMBER_COMMON_SHA256_H
#define EMBER_COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t n_bytes;
    uint8_t block[64];
    size_t fill; /* bytes in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* The digest as 64 lowercase hex digits and a NUL. */
void sha256_final_hex(sha256_ctx *c, char hex[65]);

#endif
