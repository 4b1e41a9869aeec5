// Worker-thread entry for one training run: each thread gets its own wasm instance (one core each).
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { runInThread } = await import('../src/run-thread.ts');
await runInThread(parentPort, workerData);
