// Filter gradient of a stride-1 NHWC convolution, for the conv pool (linked with winograd.c into
// conv_pool.wasm; build.sh). dw[kh][kw][ci][co] = sum over pixels (n, oh, ow) of
// x[n, oh+kh-pt, ow+kw-pl, ci] * dy[n, oh, ow, co]: for each tap a [C x OC] product of a shifted view of x
// (transposed) with dy, read in place with no im2col copy.
//
// Why: tfjs computes it as a convolution whose filter is dy, new at every step, so XNNPACK repacks it on
// every call; it was the largest kernel of a training step here (bench/engine/compare.bench.ts).
// Each thread sums its own range of output rows into its own partial dw; the caller adds the partials.
#include "simd.h"

typedef v128_t v4;
#define LD(p) wasm_v128_load(p)
#define ST(p, x) wasm_v128_store((p), (x))
#define SPLAT(p) wasm_v128_load32_splat(p)

// One row block: for every tap, d[C x OC] += sum over the block's output rows of x-row^T . dy-row.
static void block_update(const float *x, const float *dy, float *dw, int n_h_w_c[4], int OH, int OW, int OC,
                         int KH, int KW, int pt, int pl, int r0, int r1) {
  const int H = n_h_w_c[1], W = n_h_w_c[2], C = n_h_w_c[3];
  for (int kh = 0; kh < KH; kh++)
    for (int kw = 0; kw < KW; kw++) {
      // Output columns whose input column ow + kw - pl lies inside the image.
      int lo = pl - kw > 0 ? pl - kw : 0;
      int hi = W + pl - kw < OW ? W + pl - kw : OW;
      if (hi <= lo) continue;
      float *d = dw + (kh * KW + kw) * C * OC;
      // Four rows of dw (input channels) by 8 columns at a time. Past the last multiple of 4 (an RGB first
      // layer) the spare accumulators repeat the last row and are not stored.
      for (int i0 = 0; i0 < C; i0 += 4) {
        const int rl = C - i0 < 4 ? C - i0 : 4;
        const int i1 = i0 + (rl > 1), i2 = i0 + (rl > 2 ? 2 : rl - 1), i3 = i0 + rl - 1;
        for (int j0 = 0; j0 < OC; j0 += 8) {
          const int wide = OC - j0 >= 8;
          float *d0 = d + i0 * OC + j0, *d1 = d + i1 * OC + j0, *d2 = d + i2 * OC + j0, *d3 = d + i3 * OC + j0;
          v4 c00 = LD(d0), c10 = LD(d1), c20 = LD(d2), c30 = LD(d3);
          v4 c01 = c00, c11 = c00, c21 = c00, c31 = c00;
          if (wide) c01 = LD(d0 + 4), c11 = LD(d1 + 4), c21 = LD(d2 + 4), c31 = LD(d3 + 4);
          for (int r = r0; r < r1; r++) {
            int n = r / OH, oh = r % OH, ih = oh + kh - pt;
            if (ih < 0 || ih >= H) continue;
            const float *a = x + ((n * H + ih) * W + (lo + kw - pl)) * C;
            const float *b = dy + ((long)r * OW + lo) * OC + j0;
            if (wide) {
              for (int p = lo; p < hi; p++, a += C, b += OC) {
                v4 b0 = LD(b), b1 = LD(b + 4);
                v4 a0 = SPLAT(a + i0), a1 = SPLAT(a + i1), a2 = SPLAT(a + i2), a3 = SPLAT(a + i3);
                c00 = MADD(c00, a0, b0), c01 = MADD(c01, a0, b1);
                c10 = MADD(c10, a1, b0), c11 = MADD(c11, a1, b1);
                c20 = MADD(c20, a2, b0), c21 = MADD(c21, a2, b1);
                c30 = MADD(c30, a3, b0), c31 = MADD(c31, a3, b1);
              }
            } else {
              for (int p = lo; p < hi; p++, a += C, b += OC) {
                v4 b0 = LD(b);
                c00 = MADD(c00, SPLAT(a + i0), b0), c10 = MADD(c10, SPLAT(a + i1), b0);
                c20 = MADD(c20, SPLAT(a + i2), b0), c30 = MADD(c30, SPLAT(a + i3), b0);
              }
            }
          }
          float *rows[4] = {d0, d1, d2, d3};
          v4 lo4[4] = {c00, c10, c20, c30}, hi4[4] = {c01, c11, c21, c31};
          for (int k = 0; k < rl; k++) {
            ST(rows[k], lo4[k]);
            if (wide) ST(rows[k] + 4, hi4[k]);
          }
        }
      }
    }
}

// This thread's share: output rows [r_begin, r_end) of the N*OH rows, into its partial dw (zeroed here).
// OC a multiple of 4. Rows go in blocks whose x and dy rows (~200 KB) stay in cache across taps.
void filter_grad(const float *x, const float *dy, float *dw, int N, int H, int W, int C, int OH, int OW, int OC,
                 int KH, int KW, int pt, int pl, int r_begin, int r_end) {
  int dims[4] = {N, H, W, C};
  const int total = KH * KW * C * OC;
  for (int i = 0; i < total; i += 4) ST(dw + i, wasm_f32x4_splat(0.f));
  int rb = 49152 / (OW * (C + OC) + 1);
  if (rb < 1) rb = 1;
  for (int r0 = r_begin; r0 < r_end; r0 += rb) {
    int r1 = r0 + rb < r_end ? r0 + rb : r_end;
    block_update(x, dy, dw, dims, OH, OW, OC, KH, KW, pt, pl, r0, r1);
  }
}
