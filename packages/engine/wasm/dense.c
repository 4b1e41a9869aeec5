// Dense-layer training kernels of the conv pool (linked into conv_pool*.wasm, build.sh; JS:
// src/kernels/conv_pool.ts): the three matrix products of a Dense layer's step, Adam's update and the
// GeM pooling forward and backward, each one pass on every thread, in tfjs's heap.
//
// Why: a frozen-backbone fc head (Flatten 7x7x512 -> Dense 512) is three products with a 25088x512
// weight per step, and XNNPACK repacks a right-hand matrix it has not seen (a new tensor every step);
// tfjs's Adam is ~12 full passes over every weight; GeM's pow ops take a slow broadcasting path. Here
// products read both operands in place with no packing (every thread a slice of the output), Adam is
// one pass over (w, g, m, v), and GeM is one pass forward and one backward.
#include "simd.h"

// Products and sums round as written, never fused into a multiply-add behind our back: adam_update
// must match tfjs bit for bit (MADD, where wanted, is explicit).
#pragma clang fp contract(off)

typedef v128_t v4;
#define LD(p) wasm_v128_load(p)
#define ST(p, x) wasm_v128_store((p), (x))
#define SPLAT(v, l) wasm_i32x4_shuffle((v), (v), (l), (l), (l), (l))

// C[m,n] = A[m,k] . B[k,n] for the 16-column panels [p_begin, p_end) of C (the last may be narrower).
// Blocks of 256 k (the block of B, 16 KB per panel, stays in L1 while every row of A passes over it),
// 4 rows of A at a time: 16 vector accumulators.
#define KB 256
void gemm_nn(const float *a, const float *b, float *c, int m, int k, int n, int p_begin, int p_end) {
  for (int k0 = 0; k0 < k; k0 += KB) {
    const int k1 = k0 + KB < k ? k0 + KB : k;
    for (int p = p_begin; p < p_end; p++) {
      const int j0 = p * 16;
      const int width = n - j0 < 16 ? n - j0 : 16;
      if (width < 16) {  // the last, narrow panel: plain loops
        for (int i = 0; i < m; i++)
          for (int j = j0; j < n; j++) {
            float s = k0 == 0 ? 0.f : c[(long)i * n + j];
            for (int kk = k0; kk < k1; kk++) s += a[(long)i * k + kk] * b[(long)kk * n + j];
            c[(long)i * n + j] = s;
          }
        continue;
      }
      int i0 = 0;
      for (; i0 + 4 <= m; i0 += 4) {
        v4 acc[4][4];
        for (int r = 0; r < 4; r++)
          for (int v = 0; v < 4; v++)
            acc[r][v] = k0 == 0 ? wasm_f32x4_splat(0.f) : LD(c + (long)(i0 + r) * n + j0 + 4 * v);
        const float *a0 = a + (long)i0 * k;
        for (int kk = k0; kk < k1; kk++) {
          const float *brow = b + (long)kk * n + j0;
          v4 b0 = LD(brow), b1 = LD(brow + 4), b2 = LD(brow + 8), b3 = LD(brow + 12);
          for (int r = 0; r < 4; r++) {
            v4 av = wasm_f32x4_splat(a0[(long)r * k + kk]);
            acc[r][0] = MADD(acc[r][0], av, b0);
            acc[r][1] = MADD(acc[r][1], av, b1);
            acc[r][2] = MADD(acc[r][2], av, b2);
            acc[r][3] = MADD(acc[r][3], av, b3);
          }
        }
        for (int r = 0; r < 4; r++)
          for (int v = 0; v < 4; v++) ST(c + (long)(i0 + r) * n + j0 + 4 * v, acc[r][v]);
      }
      for (; i0 < m; i0++) {  // leftover rows, one at a time
        v4 acc[4];
        for (int v = 0; v < 4; v++) acc[v] = k0 == 0 ? wasm_f32x4_splat(0.f) : LD(c + (long)i0 * n + j0 + 4 * v);
        for (int kk = k0; kk < k1; kk++) {
          const float *brow = b + (long)kk * n + j0;
          v4 av = wasm_f32x4_splat(a[(long)i0 * k + kk]);
          for (int v = 0; v < 4; v++) acc[v] = MADD(acc[v], av, LD(brow + 4 * v));
        }
        for (int v = 0; v < 4; v++) ST(c + (long)i0 * n + j0 + 4 * v, acc[v]);
      }
    }
  }
}

// C[k,n] = A[m,k]^T . B[m,n] for the 4-row blocks [q_begin, q_end) of C: a Dense kernel's gradient
// x^T dy, where the contraction (the batch, m) is short. Per block of 4 rows x 16 columns, m steps of
// one A vector (4 rows' values, splatted lane by lane) times 4 B vectors.
void gemm_tn(const float *a, const float *b, float *c, int m, int k, int n, int q_begin, int q_end) {
  const int n8 = n - n % 8;
  for (int q = q_begin; q < q_end; q++) {
    const int i0 = q * 4;
    if (i0 + 4 > k) {  // the last, short block of rows: plain loops
      for (int i = i0; i < k; i++)
        for (int j = 0; j < n; j++) {
          float s = 0.f;
          for (int r = 0; r < m; r++) s += a[(long)r * k + i] * b[(long)r * n + j];
          c[(long)i * n + j] = s;
        }
      continue;
    }
    for (int j0 = 0; j0 < n8; j0 += 8) {
      v4 acc[4][2];
      for (int t = 0; t < 4; t++) acc[t][0] = acc[t][1] = wasm_f32x4_splat(0.f);
      for (int r = 0; r < m; r++) {
        const float *brow = b + (long)r * n + j0;
        v4 b0 = LD(brow), b1 = LD(brow + 4);
        v4 av = LD(a + (long)r * k + i0);
        v4 s0 = SPLAT(av, 0), s1 = SPLAT(av, 1), s2 = SPLAT(av, 2), s3 = SPLAT(av, 3);
        acc[0][0] = MADD(acc[0][0], s0, b0), acc[0][1] = MADD(acc[0][1], s0, b1);
        acc[1][0] = MADD(acc[1][0], s1, b0), acc[1][1] = MADD(acc[1][1], s1, b1);
        acc[2][0] = MADD(acc[2][0], s2, b0), acc[2][1] = MADD(acc[2][1], s2, b1);
        acc[3][0] = MADD(acc[3][0], s3, b0), acc[3][1] = MADD(acc[3][1], s3, b1);
      }
      for (int t = 0; t < 4; t++) {
        ST(c + (long)(i0 + t) * n + j0, acc[t][0]);
        ST(c + (long)(i0 + t) * n + j0 + 4, acc[t][1]);
      }
    }
    for (int i = i0; i < i0 + 4; i++)  // leftover columns
      for (int j = n8; j < n; j++) {
        float s = 0.f;
        for (int r = 0; r < m; r++) s += a[(long)r * k + i] * b[(long)r * n + j];
        c[(long)i * n + j] = s;
      }
  }
}

static float hsum(v4 v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
         wasm_f32x4_extract_lane(v, 3);
}

// C[m,n] = A[m,k] . B[n,k]^T for the 4-column blocks [q_begin, q_end) of C: a Dense layer's input
// gradient dy W^T. Every output is a dot product of two contiguous rows; 4 rows of B against 4 rows of
// A at a time (16 vector accumulators).
void gemm_nt(const float *a, const float *b, float *c, int m, int k, int n, int q_begin, int q_end) {
  const int k4 = k - k % 4;
  for (int q = q_begin; q < q_end; q++) {
    const int j0 = q * 4;
    const int cols = n - j0 < 4 ? n - j0 : 4;
    const float *bs[4];
    for (int t = 0; t < 4; t++) bs[t] = b + (long)(j0 + (t < cols ? t : 0)) * k;
    int i0 = 0;
    for (; i0 < m; i0 += 4) {
      const int rows = m - i0 < 4 ? m - i0 : 4;
      const float *as[4];
      for (int r = 0; r < 4; r++) as[r] = a + (long)(i0 + (r < rows ? r : 0)) * k;
      v4 acc[4][4];
      for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) acc[r][t] = wasm_f32x4_splat(0.f);
      for (int kk = 0; kk < k4; kk += 4) {
        v4 bv0 = LD(bs[0] + kk), bv1 = LD(bs[1] + kk), bv2 = LD(bs[2] + kk), bv3 = LD(bs[3] + kk);
        for (int r = 0; r < 4; r++) {
          v4 av = LD(as[r] + kk);
          acc[r][0] = MADD(acc[r][0], av, bv0);
          acc[r][1] = MADD(acc[r][1], av, bv1);
          acc[r][2] = MADD(acc[r][2], av, bv2);
          acc[r][3] = MADD(acc[r][3], av, bv3);
        }
      }
      for (int r = 0; r < rows; r++)
        for (int t = 0; t < cols; t++) {
          float s = hsum(acc[r][t]);
          for (int kk = k4; kk < k; kk++) s += as[r][kk] * bs[t][kk];
          c[(long)(i0 + r) * n + j0 + t] = s;
        }
    }
  }
}

// Adam, as tfjs-core's AdamOptimizer computes it, one f32 rounding per operation in its order (so the
// result is bit for bit tfjs's on any backend), for elements [blk_begin·4096, blk_end·4096) ∩ [0, n):
//   m' = m·b1 + g·(1−b1); v' = v·b2 + g²·(1−b2); w' = (m'/c1) / (sqrt(v'/c2) + eps) · (−lr) + w
// k = [b1, 1−b1, b2, 1−b2, c1 = 1−b1^t, c2 = 1−b2^t, eps, −lr] as float32.
#define ELEM_BLOCK 4096
void adam_update(const float *w, const float *g, const float *m, const float *v, float *w2, float *m2, float *v2,
                 const float *k, int n, int blk_begin, int blk_end) {
  long i = (long)blk_begin * ELEM_BLOCK;
  long end = (long)blk_end * ELEM_BLOCK;
  if (end > n) end = n;
  const v4 b1 = wasm_f32x4_splat(k[0]), nb1 = wasm_f32x4_splat(k[1]), b2 = wasm_f32x4_splat(k[2]);
  const v4 nb2 = wasm_f32x4_splat(k[3]), c1 = wasm_f32x4_splat(k[4]), c2 = wasm_f32x4_splat(k[5]);
  const v4 eps = wasm_f32x4_splat(k[6]), nlr = wasm_f32x4_splat(k[7]);
  for (; i + 4 <= end; i += 4) {
    v4 gv = LD(g + i);
    v4 mv = wasm_f32x4_add(wasm_f32x4_mul(LD(m + i), b1), wasm_f32x4_mul(gv, nb1));
    v4 vv = wasm_f32x4_add(wasm_f32x4_mul(LD(v + i), b2), wasm_f32x4_mul(wasm_f32x4_mul(gv, gv), nb2));
    v4 den = wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_div(vv, c2)), eps);
    v4 step = wasm_f32x4_mul(wasm_f32x4_div(wasm_f32x4_div(mv, c1), den), nlr);
    ST(m2 + i, mv);
    ST(v2 + i, vv);
    ST(w2 + i, wasm_f32x4_add(step, LD(w + i)));
  }
  for (; i < end; i++) {
    float gi = g[i];
    float mi = m[i] * k[0] + gi * k[1];
    float vi = v[i] * k[2] + (gi * gi) * k[3];
    m2[i] = mi;
    v2[i] = vi;
    w2[i] = ((mi / k[4]) / (__builtin_sqrtf(vi / k[5]) + k[6])) * k[7] + w[i];
  }
}

// RMSprop as Keras computes it (core's KerasRMSprop; ε outside the square root), one f32 rounding per
// operation in its order, for elements [blk_begin·4096, blk_end·4096) ∩ [0, n):
//   ms' = ms·ρ + g²·(1−ρ); w' = w − (g·lr) / (sqrt(ms') + ε)       k = [ρ, 1−ρ, lr, ε] as float32.
void rmsprop_update(const float *w, const float *g, const float *ms, float *w2, float *ms2, const float *k, int n,
                    int blk_begin, int blk_end) {
  long i = (long)blk_begin * ELEM_BLOCK;
  long end = (long)blk_end * ELEM_BLOCK;
  if (end > n) end = n;
  const v4 rho = wasm_f32x4_splat(k[0]), nrho = wasm_f32x4_splat(k[1]);
  const v4 lr = wasm_f32x4_splat(k[2]), eps = wasm_f32x4_splat(k[3]);
  for (; i + 4 <= end; i += 4) {
    v4 gv = LD(g + i);
    v4 next = wasm_f32x4_add(wasm_f32x4_mul(LD(ms + i), rho), wasm_f32x4_mul(wasm_f32x4_mul(gv, gv), nrho));
    v4 step = wasm_f32x4_div(wasm_f32x4_mul(gv, lr), wasm_f32x4_add(wasm_f32x4_sqrt(next), eps));
    ST(ms2 + i, next);
    ST(w2 + i, wasm_f32x4_sub(LD(w + i), step));
  }
  for (; i < end; i++) {
    float gi = g[i];
    float next = ms[i] * k[0] + (gi * gi) * k[1];
    ms2[i] = next;
    w2[i] = w[i] - (gi * k[2]) / (__builtin_sqrtf(next) + k[3]);
  }
}

// Natural log and exp of 4 floats (Cephes' single-precision polynomials, ~1 ulp): ln for x > 0 normal,
// exp for |x| < 87 (clamped beyond).
static v4 v_log(v4 x) {
  v4 bits = x;
  v4 e = wasm_i32x4_sub(wasm_u32x4_shr(bits, 23), wasm_i32x4_splat(126));
  v4 mant = wasm_v128_or(wasm_v128_and(bits, wasm_i32x4_splat(0x7fffff)), wasm_i32x4_splat(0x3f000000));
  v4 small = wasm_f32x4_lt(mant, wasm_f32x4_splat(0.707106781186547524f));
  v4 ef = wasm_f32x4_convert_i32x4(wasm_i32x4_add(e, small));  // small lanes are -1: e - 1
  v4 f = wasm_f32x4_sub(wasm_v128_bitselect(wasm_f32x4_add(mant, mant), mant, small), wasm_f32x4_splat(1.f));
  v4 z = wasm_f32x4_mul(f, f);
  v4 y = wasm_f32x4_splat(7.0376836292E-2f);
  const float c[] = {-1.1514610310E-1f, 1.1676998740E-1f, -1.2420140846E-1f, 1.4249322787E-1f,
                     -1.6668057665E-1f, 2.0000714765E-1f,  -2.4999993993E-1f, 3.3333331174E-1f};
  for (int i = 0; i < 8; i++) y = MADD(wasm_f32x4_splat(c[i]), y, f);
  y = wasm_f32x4_mul(wasm_f32x4_mul(y, f), z);
  y = wasm_f32x4_add(y, wasm_f32x4_mul(ef, wasm_f32x4_splat(-2.12194440e-4f)));
  y = wasm_f32x4_sub(y, wasm_f32x4_mul(z, wasm_f32x4_splat(0.5f)));
  return wasm_f32x4_add(wasm_f32x4_add(f, y), wasm_f32x4_mul(ef, wasm_f32x4_splat(0.693359375f)));
}

static v4 v_exp(v4 x) {
  x = wasm_f32x4_min(wasm_f32x4_max(x, wasm_f32x4_splat(-87.3f)), wasm_f32x4_splat(88.3f));
  v4 fx = wasm_f32x4_floor(wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)),
                                          wasm_f32x4_splat(0.5f)));
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(0.693359375f)));
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(-2.12194440e-4f)));
  v4 z = wasm_f32x4_mul(x, x);
  v4 y = wasm_f32x4_splat(1.9875691500E-4f);
  const float c[] = {1.3981999507E-3f, 8.3334519073E-3f, 4.1665795894E-2f, 1.6666665459E-1f, 5.0000001201E-1f};
  for (int i = 0; i < 5; i++) y = MADD(wasm_f32x4_splat(c[i]), y, x);
  y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(y, z), x), wasm_f32x4_splat(1.f));
  v4 pow2 = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(fx), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(y, pow2);
}

// Channels c .. c+3 of one pixel (fewer at the tail: `lanes`), the rest zero-filled; and the store back.
static v4 load_lanes(const float *p, int lanes) {
  if (lanes == 4) return LD(p);
  float t[4] = {0.f, 0.f, 0.f, 0.f};
  for (int l = 0; l < lanes; l++) t[l] = p[l];
  return LD(t);
}
static void store_lanes(float *p, v4 v, int lanes) {
  if (lanes == 4) {
    ST(p, v);
    return;
  }
  float t[4];
  ST(t, v);
  for (int l = 0; l < lanes; l++) p[l] = t[l];
}

// GeM pooling forward for images [n_begin, n_end) of x [N, HW, C]: with xc = max(x, eps),
//   s = mean over HW of xc^p, t = mean of xc^p·ln xc, y = s^(1/p)   (y, s, t: [N, C]),
// and e = xc^p [N, HW, C] when e is not null (the backward pass reuses it: xc^(p−1) = e / xc).
// k = [p, eps]. t is what the gradient with respect to p needs, taken here while xc^p is at hand.
void gem_forward(const float *x, const float *k, float *y, float *s, float *t, float *e, int hw, int C,
                 int n_begin, int n_end) {
  const v4 p = wasm_f32x4_splat(k[0]), eps = wasm_f32x4_splat(k[1]);
  const v4 inv_p = wasm_f32x4_div(wasm_f32x4_splat(1.f), p), inv_hw = wasm_f32x4_splat(1.f / (float)hw);
  for (int b = n_begin; b < n_end; b++)
    for (int c = 0; c < C; c += 4) {
      const int lanes = C - c < 4 ? C - c : 4;
      v4 ss = wasm_f32x4_splat(0.f), ts = ss;
      for (int i = 0; i < hw; i++) {
        const long at = ((long)b * hw + i) * C + c;
        v4 xc = wasm_f32x4_max(load_lanes(x + at, lanes), eps);
        v4 lx = v_log(xc);
        v4 ev = v_exp(wasm_f32x4_mul(p, lx));
        if (e) store_lanes(e + at, ev, lanes);
        ss = wasm_f32x4_add(ss, ev);
        ts = wasm_f32x4_add(ts, wasm_f32x4_mul(ev, lx));
      }
      ss = wasm_f32x4_mul(ss, inv_hw);
      ts = wasm_f32x4_mul(ts, inv_hw);
      const long o = (long)b * C + c;
      store_lanes(s + o, ss, lanes);
      store_lanes(t + o, ts, lanes);
      store_lanes(y + o, v_exp(wasm_f32x4_mul(v_log(ss), inv_p)), lanes);
    }
}

// GeM's gradients for images [n_begin, n_end), from the forward's y, s, t [N, C] and e [N, HW, C]:
//   dx = dy·y/(s·HW)·e/xc where x ≥ eps, else 0 (tfjs's maximum passes the gradient to x on ties);
//   dp_part[b] = sum over c of dy·y·(t/(p·s) − ln(s)/p²)  (p's gradient, one partial per image).
// k = [p, eps].
void gem_backward(const float *x, const float *k, const float *dy, const float *y, const float *s, const float *t,
                  const float *e, float *dx, float *dp_part, int hw, int C, int n_begin, int n_end) {
  const float pf = k[0];
  const v4 p = wasm_f32x4_splat(pf), eps = wasm_f32x4_splat(k[1]);
  const v4 fhw = wasm_f32x4_splat((float)hw), p2 = wasm_f32x4_mul(p, p);
  for (int b = n_begin; b < n_end; b++) {
    v4 dp = wasm_f32x4_splat(0.f);
    for (int c = 0; c < C; c += 4) {
      const int lanes = C - c < 4 ? C - c : 4;
      const long o = (long)b * C + c;
      v4 sv = load_lanes(s + o, lanes);
      v4 dyy = wasm_f32x4_mul(load_lanes(dy + o, lanes), load_lanes(y + o, lanes));
      v4 scale = wasm_f32x4_div(dyy, wasm_f32x4_mul(sv, fhw));
      v4 dpc = wasm_f32x4_sub(wasm_f32x4_div(load_lanes(t + o, lanes), wasm_f32x4_mul(p, sv)),
                              wasm_f32x4_div(v_log(sv), p2));
      // Lanes past C (zero-filled: 0/0 there) add nothing.
      v4 live = wasm_i32x4_lt(wasm_i32x4_make(0, 1, 2, 3), wasm_i32x4_splat(lanes));
      dp = wasm_f32x4_add(dp, wasm_v128_and(wasm_f32x4_mul(dyy, dpc), live));
      for (int i = 0; i < hw; i++) {
        const long at = ((long)b * hw + i) * C + c;
        v4 xv = load_lanes(x + at, lanes);
        v4 xc = wasm_f32x4_max(xv, eps);
        v4 d = wasm_f32x4_mul(scale, wasm_f32x4_div(load_lanes(e + at, lanes), xc));
        store_lanes(dx + at, wasm_v128_and(d, wasm_f32x4_ge(xv, eps)), lanes);
      }
    }
    dp_part[b] = hsum(dp);
  }
}
