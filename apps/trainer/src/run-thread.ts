import type { MessagePort } from 'node:worker_threads';
import { HeadbenchInputError, packagedWeightsDir, type TrainRunOptions, trainRun } from '@headbench/core';

/** What the parent sends: the serialisable part of TrainRunOptions, plus where `run:<id>` models live. */
export type ThreadJob = Omit<
  TrainRunOptions,
  'onBatch' | 'onEpoch' | 'onLog' | 'signal' | 'resolveWeights'
> & {
  runsDir: string;
};

export type ThreadMessage =
  | { type: 'batch'; metrics: Parameters<NonNullable<TrainRunOptions['onBatch']>>[0] }
  | { type: 'epoch'; metrics: Parameters<NonNullable<TrainRunOptions['onEpoch']>>[0] }
  | { type: 'log'; message: string }
  | { type: 'done'; result: Awaited<ReturnType<typeof trainRun>> }
  | { type: 'error'; message: string; input: boolean };

export async function runInThread(port: MessagePort | null, job: ThreadJob): Promise<void> {
  const post = (m: ThreadMessage) => port?.postMessage(m);
  try {
    const result = await trainRun({
      ...job,
      resolveWeights: async (ref) =>
        ref.startsWith('npm:')
          ? packagedWeightsDir(ref, job.home ?? '.headbench')
          : `${job.runsDir}/${ref.slice('run:'.length)}/model`,
      onBatch: (metrics) => post({ type: 'batch', metrics }),
      onEpoch: (metrics) => post({ type: 'epoch', metrics }),
      onLog: (message) => post({ type: 'log', message }),
    });
    post({ type: 'done', result });
  } catch (err) {
    post({ type: 'error', message: (err as Error).message, input: err instanceof HeadbenchInputError });
  }
}
