// Worker-thread entry that unpacks one archive (apps/trainer/src/worker/unpack-worker.ts) off the trainer's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { unpackInThread } = await import('../src/worker/unpack-worker.ts');
await unpackInThread(parentPort, workerData);
