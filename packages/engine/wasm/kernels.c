// Small single-threaded kernels for @headbench/engine, compiled to WebAssembly SIMD (build.sh). The Dense
// layer's matrix products live in the conv pool (dense.c): on every thread, in tfjs's heap.
#include <wasm_simd128.h>

// First byte free for the caller's buffers (the linker places the stack and data below it).
extern unsigned char __heap_base;
unsigned char *heap_base(void) { return &__heap_base; }

// Depthwise-conv filter gradient, channel multiplier 1:
//   acc[(i*kw + j)*c + ch] += x[b, r*sh + i*dh - top, q*sw + j*dw - left, ch] * dy[b, r, q, ch]
// over every batch item b and output pixel (r, q). Vectorised over channels; products in f32 (as the
// cpu backend computes them), sums in f64 so that 10^5-term reductions stay accurate.
void dw_filter_grad(const float *x, const float *dy, double *acc, int n, int h, int w, int c, int oh, int ow,
                    int kh, int kw, int sh, int sw, int dh, int dw, int top, int left) {
  int c4 = c - c % 4;
  for (int t = 0; t < kh * kw * c; t++) acc[t] = 0.0;
  for (int b = 0; b < n; b++)
    for (int r = 0; r < oh; r++)
      for (int q = 0; q < ow; q++) {
        const float *d = dy + ((b * oh + r) * ow + q) * c;
        for (int i = 0; i < kh; i++) {
          int ih = r * sh + i * dh - top;
          if (ih < 0 || ih >= h) continue;
          for (int j = 0; j < kw; j++) {
            int iw = q * sw + j * dw - left;
            if (iw < 0 || iw >= w) continue;
            const float *xp = x + ((b * h + ih) * w + iw) * c;
            double *ap = acc + (i * kw + j) * c;
            int k = 0;
            for (; k < c4; k += 4) {
              v128_t p = wasm_f32x4_mul(wasm_v128_load(xp + k), wasm_v128_load(d + k));
              v128_t lo = wasm_f64x2_promote_low_f32x4(p);
              v128_t hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(p, p, 2, 3, 0, 1));
              wasm_v128_store(ap + k, wasm_f64x2_add(wasm_v128_load(ap + k), lo));
              wasm_v128_store(ap + k + 2, wasm_f64x2_add(wasm_v128_load(ap + k + 2), hi));
            }
            for (; k < c; k++) ap[k] += (double)(xp[k] * d[k]);
          }
        }
      }
}
