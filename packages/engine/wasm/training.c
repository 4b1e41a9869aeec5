// Memory-bound kernels of a conv-net training step, for the conv pool (linked into conv_pool.wasm;
// build.sh): column sums over leading axes (BatchNorm statistics and gradients, bias gradients) and the
// max-pool gradient. Both were JS loops before, and together the largest non-conv cost of a step.
#include "simd.h"

typedef v128_t v4;

// acc[c] = sum of x[r, c] over rows [r_begin, r_end) (this thread's partial), in float64 so that long
// columns (N*H*W = 131072 rows for a 64x64 BatchNorm at batch 32) lose nothing to rounding.
void reduce_rows(const float *x, double *acc, int cols, int r_begin, int r_end) {
  const int c4 = cols - cols % 4;
  for (int c = 0; c < cols; c++) acc[c] = 0.0;
  for (int r = r_begin; r < r_end; r++) {
    const float *row = x + (long)r * cols;
    for (int c = 0; c < c4; c += 4) {
      v4 v = wasm_v128_load(row + c);
      v4 lo = wasm_f64x2_promote_low_f32x4(v);
      v4 hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
      wasm_v128_store(acc + c, wasm_f64x2_add(wasm_v128_load(acc + c), lo));
      wasm_v128_store(acc + c + 2, wasm_f64x2_add(wasm_v128_load(acc + c + 2), hi));
    }
    for (int c = c4; c < cols; c++) acc[c] += row[c];
  }
}

// dx for images [n_begin, n_end): each dy goes to the first maximum of its window in row-major order
// (strict '>', the cpu backend's tie rule: ReLU makes all-zero windows common). Four channels at a time.
void max_pool_grad(const float *x, const float *dy, float *dx, int H, int W, int C, int OH, int OW, int FH,
                   int FW, int SH, int SW, int DH, int DW, int top, int left, int n_begin, int n_end) {
  const int c4 = C - C % 4;
  for (long i = (long)n_begin * H * W * C; i < (long)n_end * H * W * C; i++) dx[i] = 0.f;
  const v4 lanes = wasm_i32x4_make(0, 1, 2, 3);
  int offs[256];  // the window's in-image pixels, row-major (windows are at most 16x16 here)
  for (int b = n_begin; b < n_end; b++)
    for (int r = 0; r < OH; r++)
      for (int q = 0; q < OW; q++) {
        int k = 0;
        for (int i = 0; i < FH; i++) {
          int ih = r * SH - top + i * DH;
          for (int j = 0; j < FW && ih >= 0 && ih < H; j++) {
            int iw = q * SW - left + j * DW;
            if (iw >= 0 && iw < W && k < 256) offs[k++] = ((b * H + ih) * W + iw) * C;
          }
        }
        const float *g = dy + (((long)b * OH + r) * OW + q) * C;
        for (int c = 0; c < c4; c += 4) {
          v4 best = wasm_f32x4_splat(-__builtin_inff());
          v4 where = wasm_i32x4_splat(-1);
          for (int t = 0; t < k; t++) {
            v4 v = wasm_v128_load(x + offs[t] + c);
            v4 m = wasm_f32x4_gt(v, best);
            best = wasm_v128_bitselect(v, best, m);
            where = wasm_v128_bitselect(wasm_i32x4_add(wasm_i32x4_splat(offs[t] + c), lanes), where, m);
          }
          int w0 = wasm_i32x4_extract_lane(where, 0), w1 = wasm_i32x4_extract_lane(where, 1);
          int w2 = wasm_i32x4_extract_lane(where, 2), w3 = wasm_i32x4_extract_lane(where, 3);
          if (w0 >= 0) dx[w0] += g[c];
          if (w1 >= 0) dx[w1] += g[c + 1];
          if (w2 >= 0) dx[w2] += g[c + 2];
          if (w3 >= 0) dx[w3] += g[c + 3];
        }
        for (int c = c4; c < C; c++) {
          float best = -__builtin_inff();
          int where = -1;
          for (int t = 0; t < k; t++)
            if (x[offs[t] + c] > best) best = x[offs[t] + c], where = offs[t] + c;
          if (where >= 0) dx[where] += g[c];
        }
      }
}

// BatchNorm in training mode over the last axis of x [rows, cols] (src/layers/batch_norm_training.ts).
// Per-thread float64 partials acc[0..cols) and acc[cols..2cols) over rows [r_begin, r_end).

// acc = (sum x, sum x^2) per column.
// Both halves of a float32 vector as two float64 vectors.
#define PROMOTE(v, lo, hi) \
  v4 lo = wasm_f64x2_promote_low_f32x4(v), hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1))
#define ACC(p, x) wasm_v128_store((p), wasm_f64x2_add(wasm_v128_load(p), (x)))

// acc = (sum g, sum g * (x - mean)) per column; mean NULL reads as zero.
static void column_pair_sums(const float *x, const float *g, const float *mean, double *acc, int cols,
                             int r_begin, int r_end) {
  const int c4 = cols - cols % 4;
  for (int c = 0; c < 2 * cols; c++) acc[c] = 0.0;
  double *gd = acc + cols;
  for (int r = r_begin; r < r_end; r++) {
    const float *xr = x + (long)r * cols, *gr = g + (long)r * cols;
    for (int c = 0; c < c4; c += 4) {
      v4 gv = wasm_v128_load(gr + c), d = wasm_v128_load(xr + c);
      if (mean) d = wasm_f32x4_sub(d, wasm_v128_load(mean + c));
      PROMOTE(gv, glo, ghi);
      PROMOTE(d, dlo, dhi);
      ACC(acc + c, glo), ACC(acc + c + 2, ghi);
      ACC(gd + c, wasm_f64x2_mul(glo, dlo)), ACC(gd + c + 2, wasm_f64x2_mul(ghi, dhi));
    }
    for (int c = c4; c < cols; c++) {
      double gc = gr[c];
      acc[c] += gc;
      gd[c] += gc * (double)(mean ? xr[c] - mean[c] : xr[c]);
    }
  }
}

// acc = (sum x, sum x^2) per column.
void bn_stats(const float *x, double *acc, int cols, int r_begin, int r_end) {
  column_pair_sums(x, x, 0, acc, cols, r_begin, r_end);
}

// y = x * scale + shift, per column.
void bn_apply(const float *x, const float *scale, const float *shift, float *y, int cols, int r_begin,
              int r_end) {
  const int c4 = cols - cols % 4;
  for (int r = r_begin; r < r_end; r++) {
    const float *row = x + (long)r * cols;
    float *out = y + (long)r * cols;
    for (int c = 0; c < c4; c += 4)
      wasm_v128_store(out + c, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + c), wasm_v128_load(scale + c)),
                                              wasm_v128_load(shift + c)));
    for (int c = c4; c < cols; c++) out[c] = row[c] * scale[c] + shift[c];
  }
}

// acc = (sum dy, sum dy * (x - mean)) per column.
void bn_grad_stats(const float *x, const float *dy, const float *mean, double *acc, int cols, int r_begin,
                   int r_end) {
  column_pair_sums(x, dy, mean, acc, cols, r_begin, r_end);
}

// dx = k1 * dy + k2 * (x - mean) + k3, per column.
void bn_grad_apply(const float *x, const float *dy, const float *mean, const float *k1, const float *k2,
                   const float *k3, float *dx, int cols, int r_begin, int r_end) {
  const int c4 = cols - cols % 4;
  for (int r = r_begin; r < r_end; r++) {
    const float *xr = x + (long)r * cols, *gr = dy + (long)r * cols;
    float *out = dx + (long)r * cols;
    for (int c = 0; c < c4; c += 4) {
      v4 d = wasm_f32x4_sub(wasm_v128_load(xr + c), wasm_v128_load(mean + c));
      v4 v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(k1 + c), wasm_v128_load(gr + c)),
                            wasm_f32x4_mul(wasm_v128_load(k2 + c), d));
      wasm_v128_store(out + c, wasm_f32x4_add(v, wasm_v128_load(k3 + c)));
    }
    for (int c = c4; c < cols; c++) out[c] = k1[c] * gr[c] + k2[c] * (xr[c] - mean[c]) + k3[c];
  }
}

// ReLU / ReLU6 gradient for elements [blk_begin·RELU_BLOCK, blk_end·RELU_BLOCK) ∩ [0, n): dx = dy where
// 0 < x ≤ hi, else 0 (hi = 6 when `six`, ReLU6, else +inf; tfjs's rule: no gradient at 0, ReLU6's at 6).
// One pass instead of tfjs's step + cast + multiply (three passes and two full-size temporaries).
#define RELU_BLOCK 4096
void relu_grad(const float *x, const float *dy, float *dx, int six, int n, int blk_begin, int blk_end) {
  const float hi = six ? 6.f : __builtin_inff();
  long i = (long)blk_begin * RELU_BLOCK;
  long end = (long)blk_end * RELU_BLOCK;
  if (end > n) end = n;
  const v4 zero = wasm_f32x4_splat(0.f);
  const v4 top = wasm_f32x4_splat(hi);
  for (; i + 4 <= end; i += 4) {
    v4 v = wasm_v128_load(x + i);
    v4 keep = wasm_v128_and(wasm_f32x4_gt(v, zero), wasm_f32x4_le(v, top));
    wasm_v128_store(dx + i, wasm_v128_and(wasm_v128_load(dy + i), keep));
  }
  for (; i < end; i++) dx[i] = (x[i] > 0.f && x[i] <= hi) ? dy[i] : 0.f;
}
