// Single-threaded f32 matrix products for @headbench/engine, compiled to WebAssembly SIMD (build.sh).
// They read both operands in their natural row-major layout with no packing step, which is what makes
// them worth having: XNNPACK (inside tfjs-backend-wasm) repacks the right-hand matrix on every call whose
// matrix it has not seen before, and during training a Dense kernel is a new tensor at every step, so a
// 25088x512 weight costs ~0.35 s of repacking for ~30 ms of arithmetic.
#include <wasm_simd128.h>

#define MR 4
#define NR 16
#define KB 256

static float bpack[KB * NR] __attribute__((aligned(16)));

// C[m,n] = A[m,k] . B[k,n]. Loops: 16-column panels of B, 256-deep blocks of k (the block is copied
// to a contiguous 16 KB buffer that stays in L1 while every row of A passes over it), 4 rows of A at a
// time.
void gemm_nn(const float *a, const float *b, float *c, int m, int k, int n) {
  int n16 = n - n % NR;
  for (int i = 0; i < m * n; i++) c[i] = 0.f;
  for (int j0 = 0; j0 < n16; j0 += NR) {
    for (int k0 = 0; k0 < k; k0 += KB) {
      int k1 = k0 + KB < k ? k0 + KB : k;
      for (int kk = k0; kk < k1; kk++)
        for (int v = 0; v < 4; v++)
          wasm_v128_store(bpack + (kk - k0) * NR + 4 * v, wasm_v128_load(b + kk * n + j0 + 4 * v));
      int i0 = 0;
      for (; i0 + MR <= m; i0 += MR) {
        v128_t acc[MR][4];
        for (int r = 0; r < MR; r++)
          for (int v = 0; v < 4; v++) acc[r][v] = wasm_v128_load(c + (i0 + r) * n + j0 + 4 * v);
        const float *a0 = a + i0 * k;
        for (int kk = k0; kk < k1; kk++) {
          const float *brow = bpack + (kk - k0) * NR;
          v128_t b0 = wasm_v128_load(brow), b1 = wasm_v128_load(brow + 4);
          v128_t b2 = wasm_v128_load(brow + 8), b3 = wasm_v128_load(brow + 12);
          for (int r = 0; r < MR; r++) {
            v128_t av = wasm_f32x4_splat(a0[r * k + kk]);
            acc[r][0] = wasm_f32x4_add(acc[r][0], wasm_f32x4_mul(av, b0));
            acc[r][1] = wasm_f32x4_add(acc[r][1], wasm_f32x4_mul(av, b1));
            acc[r][2] = wasm_f32x4_add(acc[r][2], wasm_f32x4_mul(av, b2));
            acc[r][3] = wasm_f32x4_add(acc[r][3], wasm_f32x4_mul(av, b3));
          }
        }
        for (int r = 0; r < MR; r++)
          for (int v = 0; v < 4; v++) wasm_v128_store(c + (i0 + r) * n + j0 + 4 * v, acc[r][v]);
      }
      for (; i0 < m; i0++) {  // leftover rows, one at a time
        v128_t acc[4];
        for (int v = 0; v < 4; v++) acc[v] = wasm_v128_load(c + i0 * n + j0 + 4 * v);
        for (int kk = k0; kk < k1; kk++) {
          const float *brow = bpack + (kk - k0) * NR;
          v128_t av = wasm_f32x4_splat(a[i0 * k + kk]);
          for (int v = 0; v < 4; v++)
            acc[v] = wasm_f32x4_add(acc[v], wasm_f32x4_mul(av, wasm_v128_load(brow + 4 * v)));
        }
        for (int v = 0; v < 4; v++) wasm_v128_store(c + i0 * n + j0 + 4 * v, acc[v]);
      }
    }
  }
  // Leftover columns (n % 16): plain loops, row by row of B.
  if (n16 < n) {
    for (int i = 0; i < m; i++)
      for (int kk = 0; kk < k; kk++) {
        float av = a[i * k + kk];
        const float *brow = b + kk * n;
        for (int j = n16; j < n; j++) c[i * n + j] += av * brow[j];
      }
  }
}

static float hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
         wasm_f32x4_extract_lane(v, 3);
}

// One output C[i,j] = A[i,:] . B[j,:] (edges of gemm_nt).
static float dot(const float *x, const float *y, int k) {
  v128_t acc = wasm_f32x4_splat(0.f);
  int kk = 0;
  for (; kk + 4 <= k; kk += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(x + kk), wasm_v128_load(y + kk)));
  float s = hsum(acc);
  for (; kk < k; kk++) s += x[kk] * y[kk];
  return s;
}

// C[m,n] = A[m,k] . B[n,k]^T: every output is a dot product of two contiguous rows. 4 rows of B (one
// pass over B overall) against 4 rows of A at a time: 16 vector accumulators.
void gemm_nt(const float *a, const float *b, float *c, int m, int k, int n) {
  int k4 = k - k % 4;
  int j0 = 0;
  for (; j0 + 4 <= n; j0 += 4) {
    const float *b0 = b + j0 * k, *b1 = b0 + k, *b2 = b1 + k, *b3 = b2 + k;
    int i0 = 0;
    for (; i0 + 4 <= m; i0 += 4) {
      v128_t acc[4][4];
      for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = wasm_f32x4_splat(0.f);
      const float *ar = a + i0 * k;
      for (int kk = 0; kk < k4; kk += 4) {
        v128_t bv0 = wasm_v128_load(b0 + kk), bv1 = wasm_v128_load(b1 + kk);
        v128_t bv2 = wasm_v128_load(b2 + kk), bv3 = wasm_v128_load(b3 + kk);
        for (int r = 0; r < 4; r++) {
          v128_t av = wasm_v128_load(ar + r * k + kk);
          acc[r][0] = wasm_f32x4_add(acc[r][0], wasm_f32x4_mul(av, bv0));
          acc[r][1] = wasm_f32x4_add(acc[r][1], wasm_f32x4_mul(av, bv1));
          acc[r][2] = wasm_f32x4_add(acc[r][2], wasm_f32x4_mul(av, bv2));
          acc[r][3] = wasm_f32x4_add(acc[r][3], wasm_f32x4_mul(av, bv3));
        }
      }
      for (int r = 0; r < 4; r++) {
        const float *arow = ar + r * k;
        const float *bs[4] = {b0, b1, b2, b3};
        for (int q = 0; q < 4; q++) {
          float s = hsum(acc[r][q]);
          for (int kk = k4; kk < k; kk++) s += arow[kk] * bs[q][kk];
          c[(i0 + r) * n + j0 + q] = s;
        }
      }
    }
    for (; i0 < m; i0++)
      for (int q = 0; q < 4; q++) c[i0 * n + j0 + q] = dot(a + i0 * k, b + (j0 + q) * k, k);
  }
  for (; j0 < n; j0++)
    for (int i = 0; i < m; i++) c[i * n + j0] = dot(a + i * k, b + j0 * k, k);
}

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
