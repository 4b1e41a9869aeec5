// Decode+resize throughput of the class-folder loader at 224x224 (sharp on libuv's thread pool).
// Run: npx tsx bench/loader.bench.ts [--images 1360] [--size 224]
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageLoader, openDataset } from '@headbench/core';
import { readEnv } from '@headbench/spec';

const args = new Map(process.argv.slice(2).map((a, i, all) => [a, all[i + 1]]));
const perClass = Math.ceil(Number(args.get('--images') ?? 1360) / 17);
const size = Number(args.get('--size') ?? 224);
const cacheDir = await mkdtemp(join(tmpdir(), 'headbench-bench-'));

let t = performance.now();
const ds = await openDataset(`generated:flowers17?perClass=${perClass}&size=256&seed=0`, { cacheDir });
const genSeconds = (performance.now() - t) / 1000;
console.log(
  `generated ${ds.size} JPEGs at 256x256 in ${genSeconds.toFixed(1)} s (${(ds.size / genSeconds).toFixed(0)} img/s)`,
);

t = performance.now();
await openDataset(`generated:flowers17?perClass=${perClass}&size=256&seed=0`, { cacheDir });
const scanSeconds = (performance.now() - t) / 1000;
console.log(
  `scan+hash+probe of ${ds.size} files: ${scanSeconds.toFixed(2)} s (${(ds.size / scanSeconds).toFixed(0)} files/s)`,
);

const indices = [...Array(ds.size).keys()];
for (const concurrency of [1, 4, 8]) {
  const loader = new ImageLoader(ds, { height: size, width: size }, { cacheBytes: 0, concurrency });
  t = performance.now();
  let n = 0;
  for await (const b of loader.batches(indices, { batchSize: 32, preprocess: 'caffe' })) n += b.y.length;
  const s = (performance.now() - t) / 1000;
  console.log(
    `decode+resize+preprocess to ${size}x${size}, concurrency ${concurrency}: ${(n / s).toFixed(0)} img/s (${n} images, ${s.toFixed(2)} s)`,
  );
}
console.log(
  `cores: ${availableParallelism()}, UV_THREADPOOL_SIZE: ${readEnv(process.env).UV_THREADPOOL_SIZE}`,
);
console.log('command: npx tsx bench/loader.bench.ts');
