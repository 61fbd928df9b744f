/* fp16 and bf16, to and from fp32, bit by bit (no hardware conversion
 * needed): the model files' storage types, the CUDA backend's compute types
 * and the npy16 output. */
#include "half.h"

#include <string.h>

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3FF;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f16_from_f32(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN, made quiet */
    /* 65520 = 0x477ff000 is halfway between fp16's largest finite value
     * (65504, odd mantissa) and 65536: it and everything above round to
     * infinity. */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    const uint32_t e = a >> 23;
    if (e < 113) { /* below 2^-14: an fp16 subnormal (or zero) */
        if (e == 0) return sign; /* fp32 subnormals are far below fp16's smallest */
        const uint32_t m = (a & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e; /* value = m * 2^(e - 150) = (m >> shift) * 2^-24 */
        if (shift > 24) return sign;
        uint32_t h = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1u))) h++; /* a carry into 0x400 is the smallest normal */
        return (uint16_t)(sign | h);
    }
    /* normal: rebias the exponent (127 -> 15), keep 10 of 23 mantissa bits */
    uint32_t h = ((e - 112) << 10) | ((a >> 13) & 0x3ffu);
    const uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* a carry into the exponent is right too */
    return (uint16_t)(sign | h);
}

uint16_t bf16_from_f32(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* NaN, made quiet */
    x += 0x7fffu + ((x >> 16) & 1u);                                            /* to nearest, ties to even */
    return (uint16_t)(x >> 16);
}
