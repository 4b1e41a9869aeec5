#!/bin/sh
# Rebuilds kernels.wasm and the conv_pool*.wasm builds from their C sources. Developer tooling only
# (Debian: apt-get install -y clang-19 lld-19; relaxed SIMD needs clang >= 16); the built .wasm files are
# committed, so installing or testing the package needs neither.
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang-19}
$CC --target=wasm32 -O3 -msimd128 -mbulk-memory -fno-vectorize -fno-slp-vectorize -nostdlib \
  -Wl,--no-entry -Wl,--export=dw_filter_grad -Wl,--export=heap_base \
  -Wl,--initial-memory=1048576 -Wl,--max-memory=4294967296 -Wl,-z,stack-size=65536 \
  -o kernels.wasm kernels.c
# The conv pool runs on several threads at once: it imports one shared memory (every instance the same)
# and exports its stack pointer so each thread's instance gets its own stack (src/kernels/conv_pool.ts).
# conv_pool_fma.wasm uses relaxed SIMD's fused multiply-add; conv_pool.wasm is the fallback without it.
# conv_pool_single*.wasm import a plain (unshared) memory: the one-thread tfjs build's heap, used in place.
pool() {
  $CC --target=wasm32 -O3 -msimd128 -mbulk-memory -mmutable-globals -fno-vectorize \
    -fno-slp-vectorize -nostdlib -Wl,--no-entry -Wl,--import-memory \
    -Wl,--max-memory=4294967296 -Wl,--stack-first -Wl,-z,stack-size=65536 \
    -Wl,--export=wino_filter -Wl,--export=wino_conv -Wl,--export=filter_grad -Wl,--export=reduce_rows \
    -Wl,--export=max_pool_grad -Wl,--export=bn_stats -Wl,--export=bn_apply -Wl,--export=bn_grad_stats \
    -Wl,--export=bn_grad_apply -Wl,--export=relu_grad -Wl,--export=__heap_base -Wl,--export=__stack_pointer \
    -Wl,--export=gemm_nn -Wl,--export=gemm_tn -Wl,--export=gemm_nt -Wl,--export=adam_update -Wl,--export=rmsprop_update \
    -Wl,--export=gem_forward -Wl,--export=gem_backward \
    "$@" winograd.c filter_grad.c training.c dense.c
}
shared="-matomics -Wl,--shared-memory"
pool $shared -o conv_pool.wasm
pool $shared -mrelaxed-simd -DHB_FMA -o conv_pool_fma.wasm
pool -o conv_pool_single.wasm
pool -mrelaxed-simd -DHB_FMA -o conv_pool_single_fma.wasm
ls -l kernels.wasm conv_pool*.wasm
