// One helper thread of the conv pool (conv_pool.ts): its own instance of conv_pool.wasm on the pool's
// shared memory, with its own stack; waits on the control block for a job, runs its share, reports.
// Plain JS so it starts without a TypeScript loader.
import { workerData } from 'node:worker_threads';

const { module, memory, control, index, stackTop, kernels } = workerData;
const { exports } = new WebAssembly.Instance(module, { env: { memory } });
exports.__stack_pointer.value = stackTop;
const ctl = new Int32Array(control);
// The kernels by index, as conv_pool.ts numbers them (it sends its list).
const FUNCTIONS = kernels.map((name) => exports[name]);
// Control block layout: see conv_pool.ts. From generation 0: a job posted before this thread got here
// is not missed (wait returns at once).
let seen = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  if (Atomics.load(ctl, 2) === 1) break;
  const [kind, nargs, scratchArg, scratchStride, units, threads] = ctl.subarray(8, 14);
  const begin = Math.floor((units * index) / threads);
  const end = Math.floor((units * (index + 1)) / threads);
  if (end > begin) {
    const args = Array.from(ctl.subarray(16, 16 + nargs));
    if (scratchArg >= 0) args[scratchArg] += index * scratchStride;
    FUNCTIONS[kind](...args, begin, end);
  }
  Atomics.add(ctl, 1, 1);
  Atomics.notify(ctl, 1);
}
