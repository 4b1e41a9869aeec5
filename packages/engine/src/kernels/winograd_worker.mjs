// One helper thread of the Winograd pool (winograd_pool.ts): its own instance of winograd.wasm on the
// pool's shared memory, with its own stack; waits on the control block for a job, runs its share, reports.
// Plain JS so it starts without a TypeScript loader.
import { workerData } from 'node:worker_threads';

const { module, memory, control, index, stackTop } = workerData;
const { exports } = new WebAssembly.Instance(module, { env: { memory } });
exports.__stack_pointer.value = stackTop;
const ctl = new Int32Array(control);
// Control block (see winograd_pool.ts): [0] generation, [1] helpers done, [2] stop, [8..] job words.
// From generation 0: a job posted before this thread got here is not missed (wait returns at once).
let seen = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  if (Atomics.load(ctl, 2) === 1) break;
  const job = ctl.subarray(8, 8 + 20);
  const threads = job[17];
  const tiles = job[16];
  const chunk = job[18];
  const begin = Math.floor((tiles * index) / threads);
  const end = Math.floor((tiles * (index + 1)) / threads);
  if (end > begin) {
    const scratch = job[4] + index * job[19];
    exports.wino_conv(job[0], job[1], job[2], job[3], scratch, ...job.subarray(5, 15), begin, end, chunk);
  }
  Atomics.add(ctl, 1, 1);
  Atomics.notify(ctl, 1);
}
