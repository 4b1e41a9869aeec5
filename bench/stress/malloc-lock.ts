/**
 * Issue #11's hang, reduced: a stray write of a few bytes past a tensor (what a kernel writing outside its
 * output does) lands on the allocator's header of the next block. On tfjs's threaded build (shared heap,
 * emscripten's malloc behind a spin lock) the `free` that trips over it traps while holding the lock; tfjs's
 * op wrapper then disposes the op's intermediates (Engine.endScope → disposeData → free) and that free
 * spins forever — the stack of the issue. On the one-thread build (no lock) the same write is an error.
 *   npx tsx bench/stress/malloc-lock.ts              # both builds, each in its own process, 20 s limit
 *   npx tsx bench/stress/malloc-lock.ts --tries 5    # repeated, prints how many ended in a hang
 * Not CI: on the threaded build the child spins a core until the limit.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};

async function victim(): Promise<void> {
  const { initBackend } = await import('@headbench/engine');
  const tf = await import('@tensorflow/tfjs-core');
  const info = await initBackend('wasm');
  const backend = tf.findBackend('wasm') as unknown as {
    wasm: { HEAPU8: Uint8Array };
    dataIdMap: { get(id: object): { memoryOffset: number } };
  };
  const say = (m: string) => process.stdout.write(`${m}\n`);
  say(`build: ${info.threads > 1 ? `threaded (${info.threads} threads)` : 'one-thread'}`);
  const a = tf.tensor1d(new Float32Array(1000).fill(1));
  const b = tf.tensor1d(new Float32Array(1000).fill(2));
  const offA = backend.dataIdMap.get(a.dataId).memoryOffset;
  // 16 bytes past a's 4000: the header of whatever malloc placed next (b, as allocated right after).
  new Uint32Array(backend.wasm.HEAPU8.buffer, offA + 4000, 4).fill(0x7fff0003);
  try {
    b.dispose(); // its header is the one overwritten
    tf.tidy(() => tf.mul(tf.add(a, 1), 2).dataSync());
    say('stray write: no error');
  } catch (e) {
    say(`stray write: error: ${(e as Error).message.split('\n')[0]}`);
  }
  const t0 = Date.now();
  try {
    tf.tidy(() => tf.add(tf.ones([10]), 1).dataSync());
    say(`next op returned after ${Date.now() - t0} ms`);
  } catch (e) {
    say(`next op: error after ${Date.now() - t0} ms: ${(e as Error).message.split('\n')[0]}`);
  }
  process.exit(0);
}

async function main(): Promise<void> {
  const tries = arg('tries', 1);
  const limitS = arg('limit', 20);
  const self = fileURLToPath(import.meta.url);
  for (const threads of [2, 1]) {
    let hangs = 0;
    for (let t = 0; t < tries; t++) {
      const out = await new Promise<{ text: string; hung: boolean }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', self, '--victim'], {
          env: { ...process.env, HEADBENCH_WASM_THREADS: String(threads) },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let text = '';
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), limitS * 1000);
        child.on('exit', (_code, signal) => {
          clearTimeout(timer);
          resolve({ text, hung: signal === 'SIGKILL' });
        });
      });
      if (out.hung) hangs++;
      if (t === 0) {
        console.log(`HEADBENCH_WASM_THREADS=${threads}:`);
        for (const l of out.text.trim().split('\n')) console.log(`  ${l}`);
        if (out.hung) console.log(`  HANG: the next op did not return within ${limitS} s (child killed)`);
      }
    }
    console.log(`  ${hangs} of ${tries} tries hung\n`);
  }
}

if (process.argv.includes('--victim')) await victim();
else await main();
