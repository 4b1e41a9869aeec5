// Shared SIMD helpers of the conv pool kernels. conv_pool_fma.wasm is built with HB_FMA (relaxed SIMD:
// f32x4.relaxed_madd, a fused multiply-add on x86 with FMA), conv_pool.wasm without it for engines that
// lack relaxed SIMD; src/kernels/conv_pool.ts picks one at run time.
#include <wasm_simd128.h>

#ifdef HB_FMA
#define MADD(acc, a, b) wasm_f32x4_relaxed_madd((a), (b), (acc))
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#endif
