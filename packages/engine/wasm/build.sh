#!/bin/sh
# Rebuilds kernels.wasm from kernels.c. Developer tooling only (Debian: apt-get install -y clang lld); the
# built kernels.wasm is committed, so installing or testing the package needs neither.
set -eu
cd "$(dirname "$0")"
clang --target=wasm32 -O3 -msimd128 -mbulk-memory -fno-vectorize -fno-slp-vectorize -nostdlib \
  -Wl,--no-entry -Wl,--export=gemm_nn -Wl,--export=gemm_nt -Wl,--export=dw_filter_grad -Wl,--export=heap_base \
  -Wl,--initial-memory=1048576 -Wl,--max-memory=4294967296 -Wl,-z,stack-size=65536 \
  -o kernels.wasm kernels.c
ls -l kernels.wasm
