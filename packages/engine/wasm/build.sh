#!/bin/sh
# Rebuilds kernels.wasm and conv_pool.wasm from their C sources. Developer tooling only (Debian:
# apt-get install -y clang lld); the built .wasm files are committed, so installing or testing the package
# needs neither.
set -eu
cd "$(dirname "$0")"
clang --target=wasm32 -O3 -msimd128 -mbulk-memory -fno-vectorize -fno-slp-vectorize -nostdlib \
  -Wl,--no-entry -Wl,--export=gemm_nn -Wl,--export=gemm_nt -Wl,--export=dw_filter_grad -Wl,--export=heap_base \
  -Wl,--initial-memory=1048576 -Wl,--max-memory=4294967296 -Wl,-z,stack-size=65536 \
  -o kernels.wasm kernels.c
# conv_pool.wasm runs on several threads at once: it imports one shared memory (every instance the same)
# and exports its stack pointer so each thread's instance gets its own stack (src/kernels/conv_pool.ts).
clang --target=wasm32 -O3 -msimd128 -matomics -mbulk-memory -mmutable-globals -fno-vectorize -fno-slp-vectorize \
  -nostdlib -Wl,--no-entry -Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=4294967296 \
  -Wl,--stack-first -Wl,-z,stack-size=65536 -Wl,--export=wino_filter -Wl,--export=wino_conv \
  -Wl,--export=filter_grad -Wl,--export=reduce_rows -Wl,--export=max_pool_grad \
  -Wl,--export=bn_stats -Wl,--export=bn_apply -Wl,--export=bn_grad_stats -Wl,--export=bn_grad_apply \
  -Wl,--export=__heap_base -Wl,--export=__stack_pointer \
  -o conv_pool.wasm winograd.c filter_grad.c training.c
ls -l kernels.wasm conv_pool.wasm
