import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ADDED_KERNELS,
  ConvPool,
  convPool,
  filterGradStats,
  initBackend,
  REPLACED_KERNELS,
  reluGradStats,
  winogradStats,
} from '../src/index.js';
import { compareKernel, maxAbs, rand, relErr, runKernelOn } from './helpers.js';

const TOL = 1e-5;
type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm');
});

/** Backbone-style conv shapes: batch > 1, non-square, strides 1/2, SAME/VALID/explicit, 1x1..7x7. */
const CONV_CASES: {
  name: string;
  x: [number, number, number, number];
  k: number;
  co: number;
  s: number;
  pad: Pad;
}[] = [
  { name: '3x3 SAME s1', x: [2, 9, 7, 3], k: 3, co: 4, s: 1, pad: 'same' },
  { name: '3x3 SAME s2', x: [2, 9, 8, 5], k: 3, co: 6, s: 2, pad: 'same' },
  { name: '3x3 VALID s1', x: [2, 8, 6, 4], k: 3, co: 3, s: 1, pad: 'valid' },
  { name: '3x3 VALID s2 (unread last row)', x: [2, 10, 7, 3], k: 3, co: 4, s: 2, pad: 'valid' },
  { name: '1x1 VALID s1', x: [3, 5, 6, 8], k: 1, co: 5, s: 1, pad: 'valid' },
  { name: '1x1 SAME s2', x: [2, 7, 7, 4], k: 1, co: 3, s: 2, pad: 'same' },
  { name: '5x5 SAME s1', x: [2, 8, 8, 3], k: 5, co: 4, s: 1, pad: 'same' },
  { name: '7x7 SAME s2', x: [2, 15, 13, 3], k: 7, co: 8, s: 2, pad: 'same' },
  { name: '7x7 VALID s2', x: [1, 16, 16, 3], k: 7, co: 4, s: 2, pad: 'valid' },
  {
    name: '3x3 explicit pad s2',
    x: [2, 8, 9, 3],
    k: 3,
    co: 4,
    s: 2,
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
];

function outShape(x: number[], filter: number[], s: number, pad: Pad, depthwise: boolean, dil = 1): number[] {
  const info = backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    filter as [number, number, number, number],
    s,
    dil,
    pad,
    undefined,
    depthwise,
  );
  return info.outShape;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

describe('Conv2D gradients on wasm match the cpu backend', () => {
  CONV_CASES.forEach(({ name, x, k, co, s, pad }, i) => {
    const filterShape = [k, k, x[3], co];
    const dyShape = outShape(x, filterShape, s, pad, false);
    const xIn = { shape: x, data: rand(size(x), 10 + i) };
    const dyIn = { shape: dyShape, data: rand(size(dyShape), 100 + i) };
    const wIn = { shape: filterShape, data: rand(size(filterShape), 200 + i) };

    it(`Conv2DBackpropFilter ${name}`, async () => {
      const r = await compareKernel(
        'Conv2DBackpropFilter',
        { x: xIn, dy: dyIn },
        { strides: s, pad, dataFormat: 'NHWC', filterShape },
      );
      expect(r.wasm.shape).toEqual(filterShape);
      expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.1);
      expect(r.err).toBeLessThanOrEqual(TOL);
    });

    it(`Conv2DBackpropInput ${name}`, async () => {
      const r = await compareKernel(
        'Conv2DBackpropInput',
        { dy: dyIn, filter: wIn },
        { strides: s, pad, dataFormat: 'NHWC', inputShape: x },
      );
      expect(r.wasm.shape).toEqual(x);
      expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.1);
      expect(r.err).toBeLessThanOrEqual(TOL);
    });
  });

  it('NCHW data format (filter and input gradients)', async () => {
    const xNhwc = [2, 6, 5, 3];
    const filterShape = [3, 3, 3, 4];
    const dyNhwc = outShape(xNhwc, filterShape, 2, 'same', false);
    const toNchw = (s: number[]) => [s[0], s[3], s[1], s[2]];
    const xIn = { shape: toNchw(xNhwc), data: rand(size(xNhwc), 1) };
    const dyIn = { shape: toNchw(dyNhwc), data: rand(size(dyNhwc), 2) };
    const f = await compareKernel(
      'Conv2DBackpropFilter',
      { x: xIn, dy: dyIn },
      { strides: 2, pad: 'same', dataFormat: 'NCHW', filterShape },
    );
    expect(f.err).toBeLessThanOrEqual(TOL);
    const wIn = { shape: filterShape, data: rand(size(filterShape), 3) };
    const d = await compareKernel(
      'Conv2DBackpropInput',
      { dy: dyIn, filter: wIn },
      { strides: 2, pad: 'same', dataFormat: 'NCHW', inputShape: toNchw(xNhwc) },
    );
    expect(d.wasm.shape).toEqual(toNchw(xNhwc));
    expect(d.err).toBeLessThanOrEqual(TOL);
  });

  it('the error measure catches a real mistake (a kernel run with the wrong padding)', async () => {
    // Same shapes, different math: SAME vs explicit 1-pixel padding on a 3x3 s2 conv over an even size
    // differ only by a one-pixel shift of the padding. The measure must flag it far above TOL.
    const x = [2, 8, 8, 3];
    const filterShape = [3, 3, 3, 4];
    const xIn = { shape: x, data: rand(size(x), 5) };
    const dyIn = { shape: [2, 4, 4, 4], data: rand(2 * 4 * 4 * 4, 6) };
    const same = await compareKernel(
      'Conv2DBackpropFilter',
      { x: xIn, dy: dyIn },
      { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape },
    );
    const shifted = await compareKernel(
      'Conv2DBackpropFilter',
      { x: xIn, dy: dyIn },
      {
        strides: 2,
        pad: [
          [0, 0],
          [1, 0],
          [1, 0],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        filterShape,
      },
    );
    expect(same.err).toBeLessThanOrEqual(TOL);
    expect(relErr(shifted.wasm.data, same.cpu.data)).toBeGreaterThan(0.05);
    // A single element off by 1e-4 of the scale is caught too.
    const nudged = Float32Array.from(same.cpu.data);
    nudged[7] += 1e-4 * maxAbs(nudged);
    expect(relErr(nudged, same.cpu.data)).toBeGreaterThan(TOL);
  });
});

const DW_CASES: { name: string; x: [number, number, number, number]; m: number; s: number; pad: Pad }[] = [
  { name: '3x3 SAME s1', x: [2, 8, 7, 4], m: 1, s: 1, pad: 'same' },
  { name: '3x3 VALID s2 (after ZeroPadding)', x: [2, 9, 9, 5], m: 1, s: 2, pad: 'valid' },
  { name: '3x3 SAME s2', x: [2, 8, 10, 3], m: 1, s: 2, pad: 'same' },
  { name: '3x3 SAME s1 multiplier 2', x: [2, 6, 7, 3], m: 2, s: 1, pad: 'same' },
];

describe('stride-1 filter gradient (conv pool) on wasm matches the cpu backend', () => {
  const cases: { name: string; x: number[]; k: [number, number]; co: number; pad: Pad }[] = [
    { name: '3x3 SAME 16x16 32->32', x: [2, 16, 16, 32], k: [3, 3], co: 32, pad: 'same' },
    { name: '5x5 VALID 14x12 16->24', x: [3, 14, 12, 16], k: [5, 5], co: 24, pad: 'valid' },
    {
      name: '3x3 explicit pad 11x13 12->40',
      x: [2, 11, 13, 12],
      k: [3, 3],
      co: 40,
      pad: [
        [0, 0],
        [2, 0],
        [1, 1],
        [0, 0],
      ],
    },
    { name: '1x3 on one row (fewer rows than threads)', x: [1, 1, 40, 64], k: [1, 3], co: 256, pad: 'same' },
    {
      name: '5x5 SAME RGB input 24x20 3->64 (channel tail)',
      x: [4, 24, 20, 3],
      k: [5, 5],
      co: 64,
      pad: 'same',
    },
    { name: '3x3 SAME 6 channels 16x16 6->32', x: [4, 16, 16, 6], k: [3, 3], co: 32, pad: 'same' },
  ];
  cases.forEach(({ name, x, k, co, pad }, i) => {
    it(name, async () => {
      const filterShape = [k[0], k[1], x[3], co];
      const dyShape = outShape(x, filterShape, 1, pad, false);
      const before = filterGradStats.calls;
      const r = await compareKernel(
        'Conv2DBackpropFilter',
        {
          x: { shape: x, data: rand(size(x), 600 + i) },
          dy: { shape: dyShape, data: rand(size(dyShape), 700 + i) },
        },
        { strides: 1, pad, dataFormat: 'NHWC', filterShape },
      );
      expect(filterGradStats.calls - before).toBe(1);
      expect(r.wasm.shape).toEqual(filterShape);
      expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.1);
      expect(r.err).toBeLessThanOrEqual(TOL);
    });
  });
});

describe('both conv pool builds (relaxed-SIMD FMA and plain SIMD) match the cpu backend', () => {
  const x = [2, 12, 10, 32];
  const filterShape = [3, 3, 32, 48];
  const xIn = { shape: x, data: rand(size(x), 950) };
  const wIn = { shape: filterShape, data: rand(size(filterShape), 951) };
  const dyIn = { shape: [2, 12, 10, 48], data: rand(2 * 12 * 10 * 48, 952) };
  for (const fma of [true, false]) {
    it(
      fma ? 'conv_pool_fma.wasm (the default on Node 20)' : 'conv_pool.wasm (HEADBENCH_WASM_FMA=0)',
      async () => {
        const pool = new ConvPool(2, { fma });
        try {
          expect(pool.fma).toBe(fma);
          const geometry = { n: 2, h: 12, w: 10, c: 32, oc: 48, oh: 12, ow: 10, padTop: 1, padLeft: 1 };
          const y = new Float32Array(2 * 12 * 10 * 48);
          pool.winograd({ ...geometry, x: xIn.data, filter: wIn.data, bias: null, activation: 0 }, y);
          const conv = await runKernelOn(
            'cpu',
            'Conv2D',
            { x: xIn, filter: wIn },
            { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 },
          );
          expect(relErr(y, conv.data)).toBeLessThanOrEqual(TOL);
          const dw = new Float32Array(size(filterShape));
          pool.filterGrad({ ...geometry, x: xIn.data, dy: dyIn.data, kh: 3, kw: 3 }, dw);
          const grad = await runKernelOn(
            'cpu',
            'Conv2DBackpropFilter',
            { x: xIn, dy: dyIn },
            { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape },
          );
          expect(relErr(dw, grad.data)).toBeLessThanOrEqual(TOL);
        } finally {
          await pool.close();
        }
      },
    );
  }
});

describe('Winograd Conv2D / FusedConv2D on wasm match the cpu backend', () => {
  // VGG-style 3x3 stride-1 convs (the Winograd path), plus shapes that must go to the stock kernel.
  const cases: {
    name: string;
    x: number[];
    co: number;
    pad: Pad;
    act: string;
    bias: boolean;
    wino: boolean;
  }[] = [
    {
      name: 'SAME 14x14 64->64 relu',
      x: [2, 14, 14, 64],
      co: 64,
      pad: 'same',
      act: 'relu',
      bias: true,
      wino: true,
    },
    {
      name: 'SAME 7x7 512->512',
      x: [1, 7, 7, 512],
      co: 512,
      pad: 'same',
      act: 'linear',
      bias: true,
      wino: true,
    },
    {
      name: 'SAME odd 9x7 32->36 relu6',
      x: [2, 9, 7, 32],
      co: 36,
      pad: 'same',
      act: 'relu6',
      bias: true,
      wino: true,
    },
    {
      name: 'VALID 10x6 32->40 no bias',
      x: [3, 10, 6, 32],
      co: 40,
      pad: 'valid',
      act: 'linear',
      bias: false,
      wino: true,
    },
    {
      name: 'explicit pad 8x9 20->64',
      x: [2, 8, 9, 20],
      co: 64,
      pad: [
        [0, 0],
        [2, 0],
        [1, 1],
        [0, 0],
      ],
      act: 'relu',
      bias: true,
      wino: true,
    },
    {
      name: 'first VGG layer, 3 channels (stock)',
      x: [2, 12, 12, 3],
      co: 8,
      pad: 'same',
      act: 'relu',
      bias: true,
      wino: false,
    },
    {
      name: 'tiny 9x7 8->12 (stock)',
      x: [1, 9, 7, 8],
      co: 12,
      pad: 'same',
      act: 'relu',
      bias: true,
      wino: false,
    },
    { name: 'elu (stock)', x: [2, 12, 12, 32], co: 32, pad: 'same', act: 'elu', bias: true, wino: false },
  ];
  cases.forEach(({ name, x, co, pad, act, bias, wino }, i) => {
    const filterShape = [3, 3, x[3], co];
    const inputs = {
      x: { shape: x, data: rand(size(x), 300 + i) },
      filter: { shape: filterShape, data: rand(size(filterShape), 400 + i) },
      ...(bias ? { bias: { shape: [co], data: rand(co, 500 + i) } } : {}),
    };
    const attrs = { strides: 1, pad, dataFormat: 'NHWC', dilations: 1, activation: act };
    it(`FusedConv2D ${name}`, async () => {
      const before = winogradStats.calls;
      const r = await compareKernel('FusedConv2D', inputs, attrs);
      expect(winogradStats.calls - before).toBe(wino ? 1 : 0);
      expect(r.wasm.shape).toEqual(outShape(x, filterShape, 1, pad, false));
      expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.1);
      expect(r.err).toBeLessThanOrEqual(TOL);
    });
    if (act === 'linear') {
      it(`Conv2D ${name}`, async () => {
        const r = await compareKernel('Conv2D', { x: inputs.x, filter: inputs.filter }, attrs);
        expect(r.err).toBeLessThanOrEqual(TOL);
      });
    }
  });
});

describe('depthwise conv gradients on wasm match the cpu backend', () => {
  DW_CASES.forEach(({ name, x, m, s, pad }, i) => {
    const k = 3;
    const dil = 1;
    const filterShape = [k, k, x[3], m];
    const dyShape = outShape(x, filterShape, s, pad, true, dil);
    const xIn = { shape: x, data: rand(size(x), 300 + i) };
    const dyIn = { shape: dyShape, data: rand(size(dyShape), 400 + i) };
    const wIn = { shape: filterShape, data: rand(size(filterShape), 500 + i) };

    it(`DepthwiseConv2dNativeBackpropFilter ${name}`, async () => {
      const r = await compareKernel(
        'DepthwiseConv2dNativeBackpropFilter',
        { x: xIn, dy: dyIn },
        { strides: s, pad, dilations: dil, filterShape },
      );
      expect(r.wasm.shape).toEqual(filterShape);
      expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.1);
      expect(r.err).toBeLessThanOrEqual(TOL);
    });

    it(`DepthwiseConv2dNativeBackpropInput ${name}`, async () => {
      const r = await compareKernel(
        'DepthwiseConv2dNativeBackpropInput',
        { dy: dyIn, filter: wIn },
        { strides: s, pad, dilations: dil, inputShape: x },
      );
      expect(r.wasm.shape).toEqual(x);
      expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.1);
      expect(r.err).toBeLessThanOrEqual(TOL);
    });
  });
});

describe('depthwise gradients with dilation 2 (reference: cpu on the zero-inserted 5x5 filter)', () => {
  // The cpu kernels ignore the dilations attr, so the reference is the equivalent undilated conv:
  // a 3x3 filter at dilation 2 is a 5x5 filter with zeros between the taps.
  const x = [2, 11, 10, 3];
  const filterShape = [3, 3, 3, 1];
  const wide = [5, 5, 3, 1];
  const dyShape = outShape(x, wide, 1, 'valid', true);
  const xIn = { shape: x, data: rand(size(x), 31) };
  const dyIn = { shape: dyShape, data: rand(size(dyShape), 32) };
  const w = rand(size(filterShape), 33);
  const wWide = new Float32Array(size(wide));
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      for (let c = 0; c < 3; c++) wWide[(i * 2 * 5 + j * 2) * 3 + c] = w[(i * 3 + j) * 3 + c];

  it('DepthwiseConv2dNativeBackpropFilter', async () => {
    const got = await runKernelOn(
      'wasm',
      'DepthwiseConv2dNativeBackpropFilter',
      { x: xIn, dy: dyIn },
      {
        strides: 1,
        pad: 'valid',
        dilations: 2,
        filterShape,
      },
    );
    const ref = await runKernelOn(
      'cpu',
      'DepthwiseConv2dNativeBackpropFilter',
      { x: xIn, dy: dyIn },
      {
        strides: 1,
        pad: 'valid',
        dilations: 1,
        filterShape: wide,
      },
    );
    const taps = new Float32Array(size(filterShape));
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++)
        for (let c = 0; c < 3; c++) taps[(i * 3 + j) * 3 + c] = ref.data[(i * 2 * 5 + j * 2) * 3 + c];
    expect(got.shape).toEqual(filterShape);
    expect(relErr(got.data, taps)).toBeLessThanOrEqual(TOL);
  });

  it('DepthwiseConv2dNativeBackpropInput', async () => {
    const got = await runKernelOn(
      'wasm',
      'DepthwiseConv2dNativeBackpropInput',
      { dy: dyIn, filter: { shape: filterShape, data: w } },
      {
        strides: 1,
        pad: 'valid',
        dilations: 2,
        inputShape: x,
      },
    );
    const ref = await runKernelOn(
      'cpu',
      'DepthwiseConv2dNativeBackpropInput',
      { dy: dyIn, filter: { shape: wide, data: wWide } },
      {
        strides: 1,
        pad: 'valid',
        dilations: 1,
        inputShape: x,
      },
    );
    expect(maxAbs(ref.data)).toBeGreaterThan(0.1);
    expect(relErr(got.data, ref.data)).toBeLessThanOrEqual(TOL);
  });
});

describe('BatchMatMul replacement matches the cpu backend', () => {
  const cases: { a: number[]; b: number[]; tA: boolean; tB: boolean }[] = [
    { a: [8, 16], b: [16, 12], tA: false, tB: false },
    { a: [16, 8], b: [16, 12], tA: true, tB: false },
    { a: [8, 16], b: [12, 16], tA: false, tB: true },
    { a: [16, 8], b: [12, 16], tA: true, tB: true },
    { a: [3, 40, 36], b: [3, 40, 33], tA: true, tB: false },
    { a: [1, 40, 36], b: [3, 33, 36], tA: false, tB: true },
    { a: [4, 3, 5], b: [4, 5, 2], tA: false, tB: false },
    { a: [2, 3, 34, 33], b: [2, 3, 34, 35], tA: true, tB: false },
  ];
  cases.forEach(({ a, b, tA, tB }, i) => {
    it(`${a} x ${b} transposeA=${tA} transposeB=${tB}`, async () => {
      const r = await compareKernel(
        'BatchMatMul',
        { a: { shape: a, data: rand(size(a), 600 + i) }, b: { shape: b, data: rand(size(b), 700 + i) } },
        { transposeA: tA, transposeB: tB },
      );
      expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.1);
      expect(r.err).toBeLessThanOrEqual(TOL);
    });
  });

  // Dense-layer shapes that take the conv pool's packing-free gemm (wasm/dense.c; B >= 64k elements, m <= 128):
  // forward x.W (nn) and dx = dy.W^T (nt), with row / column / depth counts off the 4/16 blocking, a
  // depth over the 256 block, and a Flatten(7x7x128) -> Dense(512) head at batch 32.
  const dense: { a: number[]; b: number[]; tB: boolean }[] = [
    { a: [5, 301], b: [301, 235], tB: false },
    { a: [7, 262], b: [271, 262], tB: true },
    { a: [1, 700], b: [700, 97], tB: false },
    { a: [128, 1031], b: [83, 1031], tB: true },
    { a: [32, 2048], b: [2048, 512], tB: false },
    { a: [32, 512], b: [2048, 512], tB: true },
  ];
  dense.forEach(({ a, b, tB }, i) => {
    it(`own gemm: ${a} x ${b} transposeB=${tB}, twice (the same B again)`, async () => {
      const inputs = {
        a: { shape: a, data: rand(size(a), 650 + i) },
        b: { shape: b, data: rand(size(b), 750 + i) },
      };
      const cpu = await runKernelOn('cpu', 'BatchMatMul', inputs, { transposeA: false, transposeB: tB });
      await initBackend('wasm');
      const at = tf.tensor(inputs.a.data, a);
      const bt = tf.tensor(inputs.b.data, b);
      for (let call = 0; call < 2; call++) {
        const out = tf
          .engine()
          .runKernel('BatchMatMul', { a: at, b: bt }, { transposeA: false, transposeB: tB });
        const t = out as tf.Tensor;
        expect(t.shape).toEqual(cpu.shape);
        expect(maxAbs(cpu.data)).toBeGreaterThan(0.1);
        expect(relErr(t.dataSync(), cpu.data)).toBeLessThanOrEqual(TOL);
        t.dispose();
      }
      tf.dispose([at, bt]);
    });
  });
});

describe('reduction, Tile and segment kernels match the cpu backend', () => {
  const x = [6, 5, 4, 3];
  const xIn = { shape: x, data: rand(size(x), 800) };
  for (const kernel of ['Sum', 'Mean']) {
    for (const [axis, keepDims] of [
      [[0, 1, 2], false],
      [[0], true],
      [[2, 0, 1], true],
      [[1, 2], false],
      [[-1], false],
      [[0, 1, 2, 3], false],
    ] as [number[], boolean][]) {
      it(`${kernel} axis=${axis} keepDims=${keepDims}`, async () => {
        const r = await compareKernel(kernel, { x: xIn }, { axis, keepDims });
        expect(r.wasm.shape).toEqual(r.cpu.shape);
        expect(r.err).toBeLessThanOrEqual(TOL);
      });
    }
  }

  // Over 2^16 elements: the conv pool's SIMD reduction on every thread (a BatchNorm's [N,H,W,C]).
  for (const [shape, axis] of [
    [
      [8, 32, 32, 64],
      [0, 1, 2],
    ],
    [
      [4, 60, 50, 7],
      [0, 1],
    ],
  ] as [number[], number[]][]) {
    for (const kernel of ['Sum', 'Mean']) {
      it(`${kernel} ${shape} over ${axis} (pool path)`, async () => {
        const r = await compareKernel(kernel, { x: { shape, data: rand(size(shape), 810) } }, { axis });
        expect(r.wasm.shape).toEqual(r.cpu.shape);
        expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.01);
        expect(r.err).toBeLessThanOrEqual(TOL);
      });
    }
  }

  it('Sum of int32 over leading axes (stock path) stays exact', async () => {
    const data = Int32Array.from(rand(60, 9), (v) => Math.round(v * 100));
    const r = await compareKernel('Sum', { x: { shape: [4, 5, 3], data, dtype: 'int32' } }, { axis: [0, 1] });
    expect(Array.from(r.wasm.data)).toEqual(Array.from(r.cpu.data));
  });

  for (const [shape, reps, dtype] of [
    [[1, 1, 1, 5], [3, 4, 2, 1], 'float32'],
    [[2, 3], [2, 3], 'float32'],
    [[3, 1, 2], [1, 4, 2], 'int32'],
    [[4], [3], 'float32'],
    [[2, 1, 3, 2], [2, 3, 1, 5], 'float32'],
  ] as [number[], number[], 'float32' | 'int32'][]) {
    it(`Tile ${shape} x ${reps} ${dtype}`, async () => {
      const vals = rand(size(shape), 900);
      const data = dtype === 'int32' ? Int32Array.from(vals, (v) => Math.round(v * 50)) : vals;
      const r = await compareKernel('Tile', { x: { shape, data, dtype } }, { reps });
      expect(r.wasm.shape).toEqual(shape.map((s, i) => s * reps[i]));
      expect(Array.from(r.wasm.data)).toEqual(Array.from(r.cpu.data));
    });
  }

  it('UnsortedSegmentSum (ids out of range are dropped)', async () => {
    const ids = Int32Array.from([0, 2, 2, 4, -1, 1, 0, 5, 3, 2]);
    const r = await compareKernel(
      'UnsortedSegmentSum',
      {
        x: { shape: [10, 3, 2], data: rand(60, 901) },
        segmentIds: { shape: [10], data: ids, dtype: 'int32' },
      },
      { numSegments: 5 },
    );
    expect(r.wasm.shape).toEqual([5, 3, 2]);
    expect(maxAbs(r.cpu.data)).toBeGreaterThan(0.1);
    expect(r.err).toBeLessThanOrEqual(TOL);
  });

  it('UnsortedSegmentSum int32', async () => {
    const ids = Int32Array.from([1, 0, 1, 2, 2, 0]);
    const data = Int32Array.from(rand(24, 902), (v) => Math.round(v * 9));
    const r = await compareKernel(
      'UnsortedSegmentSum',
      { x: { shape: [6, 4], data, dtype: 'int32' }, segmentIds: { shape: [6], data: ids, dtype: 'int32' } },
      { numSegments: 3 },
    );
    expect(r.wasm.shape).toEqual([3, 4]);
    expect(Array.from(r.wasm.data)).toEqual(Array.from(r.cpu.data));
  });
});

describe('gradients through ops that use the new kernels', () => {
  async function gradOn(backend: 'wasm' | 'cpu', f: (x: tf.Tensor) => tf.Tensor, x: number[], seed: number) {
    await initBackend(backend);
    return tf.tidy(() => {
      const xt = tf.tensor(rand(size(x), seed), x);
      return tf
        .grad((v: tf.Tensor) =>
          tf.sum(tf.mul(f(v), tf.tensor(rand(size(f(v).shape), seed + 1), f(v).shape))),
        )(xt)
        .dataSync();
    });
  }

  it('MaxPoolGrad with ties (ReLU zeros), 2x2/2 and 3x3/2 SAME', async () => {
    const pool = (v: tf.Tensor) =>
      tf.add(
        tf.sum(tf.maxPool(tf.relu(v) as tf.Tensor4D, 2, 2, 'valid')),
        tf.maxPool(tf.relu(v) as tf.Tensor4D, 3, 2, 'same'),
      );
    const w = await gradOn('wasm', pool, [2, 9, 8, 5], 1000);
    const c = await gradOn('cpu', pool, [2, 9, 8, 5], 1000);
    expect(maxAbs(c)).toBeGreaterThan(0.1);
    expect(relErr(w, c)).toBeLessThanOrEqual(TOL);
    // Over 2^16 elements (the conv pool's SIMD path), with a channel count that leaves a tail past 4.
    const wBig = await gradOn('wasm', pool, [3, 40, 38, 22], 1001);
    const cBig = await gradOn('cpu', pool, [3, 40, 38, 22], 1001);
    expect(maxAbs(cBig)).toBeGreaterThan(0.1);
    expect(relErr(wBig, cBig)).toBeLessThanOrEqual(TOL);
  });

  // Exact 0, 6, -0 and values either side: tfjs gives no gradient at 0 (ReLU, ReLU6) nor at 6 (ReLU6).
  const edgy = (n: number, seed: number) => {
    const v = rand(n, seed).map((u) => u * 8);
    [0, -0, 6, 6.000001, 5.999999, 1e-30, -1e-30].forEach((e, i) => {
      v[i * 7] = e;
    });
    return v;
  };
  for (const six of [false, true])
    it(`${six ? 'ReLU6' : 'ReLU'} gradient in one pass (wasm/training.c) matches tfjs-core's formula on cpu`, async () => {
      const act = (v: tf.Tensor) => (six ? tf.relu6(v) : tf.relu(v));
      // Fewer elements than one thread's block, and a size with blocks for both threads and a tail.
      for (const shape of [
        [3, 5, 7],
        [2, 33, 31, 9],
      ]) {
        const n = size(shape);
        const g = async (backend: 'wasm' | 'cpu') => {
          await initBackend(backend);
          return tf.tidy(() => {
            const x = tf.tensor(edgy(n, 1200 + n), shape);
            const weights = tf.tensor(rand(n, 1300 + n), shape);
            return tf
              .grad((v: tf.Tensor) => tf.sum(tf.mul(act(v), weights)))(x)
              .dataSync();
          });
        };
        const calls = reluGradStats.calls;
        const tensors = tf.memory().numTensors;
        const w = await g('wasm');
        expect(reluGradStats.calls).toBe(calls + 1);
        expect(tf.memory().numTensors).toBe(tensors);
        const c = await g('cpu');
        await initBackend('wasm');
        expect(maxAbs(c)).toBeGreaterThan(0.1);
        // Exactly: the gradient is dy or 0 (cpu's dy·0 is -0 for a negative dy; === holds them equal).
        expect(w.length).toBe(n);
        expect(w.findIndex((v, i) => v !== c[i])).toBe(-1);
      }
    });

  it('a gradient of the ReLU6 gradient (second order) matches cpu', async () => {
    const shape = [2, 9, 8, 4];
    const g = async (backend: 'wasm' | 'cpu') => {
      await initBackend(backend);
      return tf.tidy(() => {
        const x = tf.tensor(edgy(size(shape), 1500), shape);
        const w = tf.tensor(rand(size(shape), 1501), shape);
        const inner = (v: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.sum(tf.mul(tf.relu6(u), v)))(x);
        return tf
          .grad((v: tf.Tensor) => tf.sum(tf.mul(inner(v), w)))(w)
          .dataSync();
      });
    };
    const w = await g('wasm');
    const c = await g('cpu');
    await initBackend('wasm');
    expect(maxAbs(c)).toBeGreaterThan(0.1);
    expect(w.findIndex((v, i) => v !== c[i])).toBe(-1);
  });

  it('gather gradient (UnsortedSegmentSum) through tf.grad', async () => {
    const idx = [3, 1, 3, 0, 2, 3];
    const g = (v: tf.Tensor) => tf.gather(v, tf.tensor1d(idx, 'int32'));
    const w = await gradOn('wasm', g, [5, 4], 1100);
    const c = await gradOn('cpu', g, [5, 4], 1100);
    expect(relErr(w, c)).toBeLessThanOrEqual(TOL);
  });
});

describe("the conv pool in tfjs's heap", () => {
  it('uses tensors in place, survives heap growth and frees its scratch', async () => {
    const info = await initBackend('wasm');
    // Shared memory (threaded build) or not (HEADBENCH_WASM_THREADS=1: the one-thread build, pool on
    // conv_pool_single*.wasm): in place either way.
    expect(convPool().inPlace).toBe(true);
    expect(convPool().threads).toBe(info.threads);
    // The threaded build exports its memory as wasmMemory, the one-thread build as asm.memory.
    type Memory = { buffer: ArrayBufferLike };
    type Module = { wasmMemory?: Memory; asm?: { memory: Memory } };
    const module = (tf.findBackend('wasm') as unknown as { wasm: Module }).wasm;
    const memory = (module.wasmMemory ?? module.asm?.memory) as Memory;
    const xIn = { shape: [4, 24, 20, 32], data: rand(4 * 24 * 20 * 32, 1400) };
    const wIn = { shape: [3, 3, 32, 64], data: rand(3 * 3 * 32 * 64, 1401) };
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
    const want = (await runKernelOn('cpu', 'Conv2D', { x: xIn, filter: wIn }, attrs)).data;
    await initBackend('wasm');
    const conv = () =>
      tf.tidy(() =>
        tf
          .conv2d(
            tf.tensor4d(xIn.data, xIn.shape as never),
            tf.tensor4d(wIn.data, wIn.shape as never),
            1,
            'same',
          )
          .dataSync(),
      );
    const calls = winogradStats.calls;
    expect(relErr(conv(), want)).toBeLessThanOrEqual(TOL);
    // Grow tfjs's heap by 256 MB (a new buffer object, or a detached old one on the one-thread build),
    // then convolve again: the pool must follow the heap it imports.
    const before = memory.buffer.byteLength;
    const big = tf.zeros([64, 1024, 1024]);
    expect(memory.buffer.byteLength).toBeGreaterThan(before);
    expect(relErr(conv(), want)).toBeLessThanOrEqual(TOL);
    big.dispose();
    // Scratch (the transformed filter, per-thread tiles) is freed after every call.
    const settled = memory.buffer.byteLength;
    for (let i = 0; i < 20; i++) conv();
    expect(convPool().scratchInUse).toBe(0);
    expect(memory.buffer.byteLength).toBe(settled);
    expect(winogradStats.calls).toBe(calls + 22);
  });
});

describe('kernel memory hygiene on wasm', () => {
  it('every added and replaced kernel frees its intermediates', async () => {
    await initBackend('wasm');
    const backend = tf.engine().backend;
    const x = tf.tensor(rand(2 * 9 * 8 * 4, 1), [2, 9, 8, 4]);
    const w = tf.tensor(rand(3 * 3 * 4 * 6, 2), [3, 3, 4, 6]);
    const dw = tf.tensor(rand(3 * 3 * 4, 3), [3, 3, 4, 1]);
    const ids = tf.tensor1d([1, 0], 'int32');
    const x2 = tf.reshape(x, [72, 8]);
    const xc = tf.tensor(rand(2 * 16 * 16 * 32, 4), [2, 16, 16, 32]);
    const wc = tf.tensor(rand(3 * 3 * 32 * 32, 5), [3, 3, 32, 32]);
    const calls: Record<string, () => tf.Tensor> = {
      Conv2DBackpropFilter: () =>
        tf.tidy(() =>
          tf.addN([
            tf.sum(tf.grad((f: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, 'same'))(w)),
            // stride 1, channels a multiple of 4: the conv pool's filter_grad
            tf.sum(tf.grad((f: tf.Tensor) => tf.conv2d(xc as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'))(wc)),
          ]),
        ),
      Conv2DBackpropInput: () =>
        tf.grad((v: tf.Tensor) => tf.conv2d(v as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'))(x),
      DepthwiseConv2dNativeBackpropFilter: () =>
        tf.grad((f: tf.Tensor) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, 'same'))(dw),
      DepthwiseConv2dNativeBackpropInput: () =>
        tf.grad((v: tf.Tensor) => tf.depthwiseConv2d(v as tf.Tensor4D, dw as tf.Tensor4D, 1, 'same'))(x),
      UnsortedSegmentSum: () => tf.unsortedSegmentSum(x, ids, 3),
      BatchMatMul: () =>
        tf.tidy(() => {
          // The transposing path, and the own-gemm paths (nn, nt).
          const big = tf.slice(tf.reshape(tf.tile(x2, [4, 32]), [288, 256]), [0, 0], [256, 256]);
          return tf.addN([
            tf.sum(tf.matMul(x2, x2, true, false)),
            tf.sum(tf.matMul(tf.slice(big, [0, 0], [3, 256]), big)),
            tf.sum(tf.matMul(tf.slice(big, [0, 0], [3, 256]), big, false, true)),
          ]);
        }),
      // A Dense layer's shapes (the own gemm, then bias and activation), and the stock path.
      _FusedMatMul: () =>
        tf.tidy(() => {
          const big = tf.slice(tf.reshape(tf.tile(x2, [4, 32]), [288, 256]), [0, 0], [256, 256]);
          const bias = tf.reshape(tf.slice(x2, [0, 0], [1, 8]), [8]);
          return tf.addN([
            tf.sum(
              tf.fused.matMul({
                a: tf.slice(big, [0, 0], [3, 256]),
                b: big,
                bias: tf.tile(bias, [32]),
                activation: 'relu',
              }),
            ),
            tf.sum(
              tf.fused.matMul({ a: x2, b: tf.transpose(x2), bias: tf.tile(bias, [9]), activation: 'relu' }),
            ),
          ]);
        }),
      Tile: () => tf.tile(x, [1, 2, 1, 3]),
      // Shares x's data: disposing the output must leave x readable, and free nothing else.
      Identity: () => tf.engine().runKernel('Identity', { x }) as tf.Tensor,
      Sum: () => tf.sum(x, [0, 1, 2]),
      Mean: () => tf.mean(x, [0, 1]),
      MaxPoolGrad: () => tf.grad((v: tf.Tensor) => tf.maxPool(v as tf.Tensor4D, 2, 2, 'same'))(x),
      // 3x3 stride 1, channels a multiple of 4, over 2^20 multiply-adds: the Winograd path.
      Conv2D: () => tf.conv2d(xc as tf.Tensor4D, wc as tf.Tensor4D, 1, 'same'),
      FusedConv2D: () =>
        tf.fused.conv2d({
          x: xc as tf.Tensor4D,
          filter: wc as tf.Tensor4D,
          strides: 1,
          pad: 'same',
          activation: 'relu',
        }),
    };
    expect(Object.keys(calls).sort()).toEqual([...ADDED_KERNELS, ...REPLACED_KERNELS].sort());
    const winograd = winogradStats.calls;
    const filterGrads = filterGradStats.calls;
    for (const [name, call] of Object.entries(calls)) {
      const tensors = tf.memory().numTensors;
      const dataIds = backend.numDataIds();
      const out = call();
      out.dataSync();
      out.dispose();
      expect({ name, tensors: tf.memory().numTensors }).toEqual({ name, tensors });
      expect({ name, dataIds: backend.numDataIds() }).toEqual({ name, dataIds });
    }
    expect(winogradStats.calls - winograd).toBe(3); // Conv2D, FusedConv2D, the forward in the filter grad
    expect(filterGradStats.calls - filterGrads).toBe(1);
    tf.dispose([x, w, dw, ids, x2, xc, wc]);
  });
});
