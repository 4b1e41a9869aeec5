// Winograd F(2x2, 3x3) convolution for 3x3 stride-1 NHWC convs (VGG's every conv but the first), compiled
// to WebAssembly SIMD with a shared, imported memory so several threads (worker_threads, each with its
// own instance and stack) run it on the same buffers (conv_pool.wasm, build.sh; JS: src/kernels/conv_pool.ts).
//
// Why: wasm SIMD is 4 lanes wide with no fused multiply-add, so a direct convolution (XNNPACK inside
// tfjs-backend-wasm) is capped by multiplications. Winograd F(2x2,3x3) computes each 2x2 output tile
// from a 4x4 input tile with 16 multiplications per (in, out) channel pair instead of 36: 2.25x fewer.
// Transforms are additions only; the 16 products are 16 plain matrix products over channels.
//
// Layouts: x [N,H,W,C]; g [3,3,C,OC] (tfjs HWIO); u [16][C][OC]; y [N,OH,OW,OC].
// Every thread takes a contiguous range of 2x2 output tiles and, chunk by chunk: transforms the input
// tiles into v [16][tiles][C], multiplies m_xi = v_xi . u_xi for the 16 xi, transforms m back into the
// output tiles, adding bias and the activation. No statics: all scratch comes in through pointers.
#include "simd.h"

typedef v128_t v4;
#define LD(p) wasm_v128_load(p)
#define ST(p, x) wasm_v128_store((p), (x))
#define ADD wasm_f32x4_add
#define SUB wasm_f32x4_sub
#define MUL wasm_f32x4_mul

// u = G g G^T per (c, oc), G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]]. n = C*OC, a multiple of 4.
void wino_filter(const float *g, float *u, int n) {
  const v4 half = wasm_f32x4_splat(0.5f);
  for (int i = 0; i < n; i += 4) {
    v4 t[4][3];
    for (int j = 0; j < 3; j++) {
      v4 g0 = LD(g + (0 * 3 + j) * n + i), g1 = LD(g + (1 * 3 + j) * n + i), g2 = LD(g + (2 * 3 + j) * n + i);
      t[0][j] = g0;
      t[1][j] = MUL(ADD(ADD(g0, g1), g2), half);
      t[2][j] = MUL(ADD(SUB(g0, g1), g2), half);
      t[3][j] = g2;
    }
    for (int r = 0; r < 4; r++) {
      ST(u + (r * 4 + 0) * n + i, t[r][0]);
      ST(u + (r * 4 + 1) * n + i, MUL(ADD(ADD(t[r][0], t[r][1]), t[r][2]), half));
      ST(u + (r * 4 + 2) * n + i, MUL(ADD(SUB(t[r][0], t[r][1]), t[r][2]), half));
      ST(u + (r * 4 + 3) * n + i, t[r][2]);
    }
  }
}

// v[xi][t][c] = (B^T d B)[xi] for the 4x4 input tile d of each tile t in [t0, t1),
// B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]. Rows/cols outside the image read as zero.
static void input_transform(const float *x, float *v, int t0, int t1, int H, int W, int C, int TH, int TW,
                            int pt, int pl) {
  const int ct = t1 - t0;
  const v4 zero = wasm_f32x4_splat(0.f);
  for (int t = t0; t < t1; t++) {
    int b = t / (TH * TW), r = t % (TH * TW);
    int iy0 = (r / TW) * 2 - pt, ix0 = (r % TW) * 2 - pl;
    const float *rows[4][4];
    int inside = iy0 >= 0 && ix0 >= 0 && iy0 + 4 <= H && ix0 + 4 <= W;
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) {
        int iy = iy0 + i, ix = ix0 + j;
        rows[i][j] = (inside || (iy >= 0 && iy < H && ix >= 0 && ix < W)) ? x + ((b * H + iy) * W + ix) * C : 0;
      }
    float *vt = v + (t - t0) * C;
    for (int c = 0; c < C; c += 4) {
      v4 d[4][4];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) d[i][j] = rows[i][j] ? LD(rows[i][j] + c) : zero;
      v4 s[4][4];  // B^T d
      for (int j = 0; j < 4; j++) {
        s[0][j] = SUB(d[0][j], d[2][j]);
        s[1][j] = ADD(d[1][j], d[2][j]);
        s[2][j] = SUB(d[2][j], d[1][j]);
        s[3][j] = SUB(d[1][j], d[3][j]);
      }
      for (int i = 0; i < 4; i++) {  // (B^T d) B
        float *o = vt + (i * 4) * ct * C + c;
        ST(o, SUB(s[i][0], s[i][2]));
        ST(o + ct * C, ADD(s[i][1], s[i][2]));
        ST(o + 2 * ct * C, SUB(s[i][2], s[i][1]));
        ST(o + 3 * ct * C, SUB(s[i][1], s[i][3]));
      }
    }
  }
}

// y tile = A^T m A + bias, A^T = [[1,1,1,0],[0,1,-1,-1]]; act 0 linear, 1 relu, 2 relu6.
static void output_transform(const float *m, const float *bias, float *y, int t0, int t1, int OH, int OW,
                             int OC, int TH, int TW, int act) {
  const int ct = t1 - t0;
  const v4 zero = wasm_f32x4_splat(0.f), six = wasm_f32x4_splat(6.f);
  for (int t = t0; t < t1; t++) {
    int b = t / (TH * TW), r = t % (TH * TW);
    int oy = (r / TW) * 2, ox = (r % TW) * 2;
    int h2 = oy + 1 < OH, w2 = ox + 1 < OW;
    const float *mt = m + (t - t0) * OC;
    float *y00 = y + ((b * OH + oy) * OW + ox) * OC;
    float *y10 = y00 + OW * OC;
    for (int c = 0; c < OC; c += 4) {
      v4 q[4][4];
      for (int i = 0; i < 16; i++) q[i / 4][i % 4] = LD(mt + i * ct * OC + c);
      v4 s[2][4];  // A^T m
      for (int j = 0; j < 4; j++) {
        s[0][j] = ADD(ADD(q[0][j], q[1][j]), q[2][j]);
        s[1][j] = SUB(SUB(q[1][j], q[2][j]), q[3][j]);
      }
      v4 bv = bias ? LD(bias + c) : zero;
      v4 o[2][2];
      for (int i = 0; i < 2; i++) {
        o[i][0] = ADD(ADD(ADD(s[i][0], s[i][1]), s[i][2]), bv);
        o[i][1] = ADD(SUB(SUB(s[i][1], s[i][2]), s[i][3]), bv);
        for (int j = 0; j < 2; j++) {
          if (act >= 1) o[i][j] = wasm_f32x4_max(o[i][j], zero);
          if (act == 2) o[i][j] = wasm_f32x4_min(o[i][j], six);
        }
      }
      ST(y00 + c, o[0][0]);
      if (w2) ST(y00 + OC + c, o[0][1]);
      if (h2) {
        ST(y10 + c, o[1][0]);
        if (w2) ST(y10 + OC + c, o[1][1]);
      }
    }
  }
}

#define MR 4
#define NR 8
#define KB 256

// c[m,n] = a[m,k] (row stride lda) . b[k,n] (row stride n); n a multiple of 4. 4x8 register tiles, the
// 8-column panel of b for 256 k at a time packed contiguous in `pack` (8 KB, stays in L1).
static void gemm(const float *a, int lda, const float *b, float *c, int m, int k, int n, float *pack) {
  for (int j0 = 0; j0 < n; j0 += NR) {
    int nr = n - j0 < NR ? n - j0 : NR;  // 8 or 4
    for (int k0 = 0; k0 < k; k0 += KB) {
      int k1 = k0 + KB < k ? k0 + KB : k;
      for (int kk = k0; kk < k1; kk++) {
        ST(pack + (kk - k0) * NR, LD(b + kk * n + j0));
        if (nr == NR) ST(pack + (kk - k0) * NR + 4, LD(b + kk * n + j0 + 4));
      }
      const int first = k0 == 0;
      int i0 = 0;
      for (; i0 + MR <= m; i0 += MR) {
        v4 c00, c01, c10, c11, c20, c21, c30, c31;
        float *cr = c + i0 * n + j0;
        if (first) {
          c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = wasm_f32x4_splat(0.f);
        } else {
          c00 = LD(cr), c10 = LD(cr + n), c20 = LD(cr + 2 * n), c30 = LD(cr + 3 * n);
          c01 = c11 = c21 = c31 = wasm_f32x4_splat(0.f);
          if (nr == NR) c01 = LD(cr + 4), c11 = LD(cr + n + 4), c21 = LD(cr + 2 * n + 4), c31 = LD(cr + 3 * n + 4);
        }
        const float *a0 = a + i0 * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        const float *p = pack;
        for (int kk = k0; kk < k1; kk++, p += NR) {
          v4 b0 = LD(p), b1 = LD(p + 4);
          v4 x0 = wasm_f32x4_splat(a0[kk]), x1 = wasm_f32x4_splat(a1[kk]);
          v4 x2 = wasm_f32x4_splat(a2[kk]), x3 = wasm_f32x4_splat(a3[kk]);
          c00 = MADD(c00, x0, b0), c01 = MADD(c01, x0, b1);
          c10 = MADD(c10, x1, b0), c11 = MADD(c11, x1, b1);
          c20 = MADD(c20, x2, b0), c21 = MADD(c21, x2, b1);
          c30 = MADD(c30, x3, b0), c31 = MADD(c31, x3, b1);
        }
        ST(cr, c00), ST(cr + n, c10), ST(cr + 2 * n, c20), ST(cr + 3 * n, c30);
        if (nr == NR) ST(cr + 4, c01), ST(cr + n + 4, c11), ST(cr + 2 * n + 4, c21), ST(cr + 3 * n + 4, c31);
      }
      for (; i0 < m; i0++) {  // leftover rows
        float *cr = c + i0 * n + j0;
        v4 c0 = first ? wasm_f32x4_splat(0.f) : LD(cr);
        v4 c1 = (first || nr < NR) ? wasm_f32x4_splat(0.f) : LD(cr + 4);
        const float *a0 = a + i0 * lda;
        const float *p = pack;
        for (int kk = k0; kk < k1; kk++, p += NR) {
          v4 x0 = wasm_f32x4_splat(a0[kk]);
          c0 = MADD(c0, x0, LD(p));
          c1 = MADD(c1, x0, LD(p + 4));
        }
        ST(cr, c0);
        if (nr == NR) ST(cr + 4, c1);
      }
    }
  }
}

// One thread's share: output tiles [t_begin, t_end) of the whole batch, `chunk` tiles at a time.
// scratch: 16*chunk*C (v) + 16*chunk*OC (m) + KB*NR (pack) floats.
void wino_conv(const float *x, const float *u, const float *bias, float *y, float *scratch, int N, int H,
               int W, int C, int OC, int OH, int OW, int pt, int pl, int act, int chunk, int t_begin,
               int t_end) {
  (void)N;
  const int TH = (OH + 1) / 2, TW = (OW + 1) / 2;
  float *v = scratch, *m = scratch + 16 * chunk * C, *pack = m + 16 * chunk * OC;
  for (int t0 = t_begin; t0 < t_end; t0 += chunk) {
    int t1 = t0 + chunk < t_end ? t0 + chunk : t_end, ct = t1 - t0;
    input_transform(x, v, t0, t1, H, W, C, TH, TW, pt, pl);
    for (int xi = 0; xi < 16; xi++)
      gemm(v + xi * ct * C, C, u + xi * C * OC, m + xi * ct * OC, ct, C, OC, pack);
    output_transform(m, bias, y, t0, t1, OH, OW, OC, TH, TW, act);
  }
}
