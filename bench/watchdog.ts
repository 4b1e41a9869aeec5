import { Worker } from 'node:worker_threads';

/**
 * Ends this process if it is still running after `seconds`: a bench that hangs (a kernel looping, a
 * report that never returns) must not hold a shared machine forever. Training steps are synchronous
 * and block the event loop, so a timer on it could never fire: the clock runs on a worker thread, which
 * prints why and kills the process (and, through their closed pipes, its children). Returns a stop
 * function for a bench that finished.
 */
export function startWatchdog(seconds: number, label: string): () => void {
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new Error(`${label}: the timeout must be a positive number of seconds, got ${seconds}`);
  }
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const fs = require('node:fs');
     const flag = new Int32Array(workerData.cancel);
     if (Atomics.wait(flag, 0, 0, workerData.ms) === 'timed-out') {
       fs.writeSync(2, '\\n' + workerData.label + ': still running after ' + workerData.seconds + ' s (--timeout-s); killed\\n');
       process.kill(workerData.pid, 'SIGKILL');
     }`,
    {
      eval: true,
      workerData: { cancel: cancel.buffer, ms: seconds * 1000, seconds, label, pid: process.pid },
    },
  );
  worker.unref();
  return () => {
    Atomics.store(cancel, 0, 1);
    Atomics.notify(cancel, 0);
  };
}
