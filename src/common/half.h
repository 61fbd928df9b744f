/* fp16 / bf16 <-> fp32. */
#ifndef EMBER_COMMON_HALF_H
#define EMBER_COMMON_HALF_H

#include <stdint.h>

float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
/* fp32 -> fp16 / bf16, round to nearest even; overflow gives infinity, NaN
 * stays NaN. */
uint16_t f16_from_f32(float x);
uint16_t bf16_from_f32(float x);

#endif
