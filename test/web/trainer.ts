// A test trainer speaking the real trainer protocol (register, lease, reportMetrics, artifact upload,
// complete) until apps/trainer's worker lands. Its curves follow the reference experiment's shapes:
// GAP steady, FC overfitting late (val loss rising), GMP unstable; values depend on head, seed and epoch.
import { createHeadbenchClient, type LeasedRun, uploadArtifact } from '@headbench/client';
import sharp from 'sharp';

const BASE: Record<string, number> = { gap: 0.86, fc: 0.74, gmp: 0.66 };

export function curve(head: string, seed: number, epoch: number) {
  const base = BASE[head] ?? 0.6;
  const rise = 1 - Math.exp(-epoch / 1.5);
  const wobble = head === 'gmp' ? 0.06 * Math.sin(epoch * 2.1 + seed) : 0;
  const late = head === 'fc' ? Math.max(0, epoch - 3) * 0.02 : 0;
  const val_accuracy = Math.min(0.99, base * rise + 0.004 * seed + wobble - late);
  const accuracy = Math.min(0.999, val_accuracy + 0.03 + (head === 'fc' ? 0.04 * epoch : 0.01 * epoch));
  return {
    val_accuracy,
    accuracy,
    loss: 2.5 * Math.exp(-epoch / 2) + 0.05,
    val_loss: 2.6 * Math.exp(-epoch / 2) + 0.1 + (head === 'fc' ? 0.12 * Math.max(0, epoch - 3) : 0),
    images_per_s: 400 + 10 * seed,
  };
}

export class TestTrainer {
  readonly client;
  trainerId = '';
  runs: LeasedRun[] = [];
  constructor(
    readonly url: string,
    readonly token: string,
  ) {
    this.client = createHeadbenchClient({ url, token, batch: false });
  }

  async register(name: string) {
    const r = await this.client.trainer.register.mutate({
      name,
      host: `${name}.local`,
      slots: 8,
      devices: [{ kind: 'cpu', name: 'test cpu' }],
      capabilities: { backend: 'wasm', gpu: false },
    });
    this.trainerId = r.trainerId;
  }

  async lease(): Promise<LeasedRun[]> {
    const { runs } = await this.client.trainer.lease.mutate({ trainerId: this.trainerId, freeSlots: 8 });
    this.runs.push(...runs);
    return runs;
  }

  async reportEpoch(run: LeasedRun, epoch: number) {
    const c = curve(run.config.head, run.config.seed, epoch);
    const time = Date.now();
    await this.client.trainer.reportMetrics.mutate({
      runId: run.runId,
      leaseId: run.leaseId,
      points: Object.entries(c).map(([name, value]) => ({ name, step: epoch, epoch, value, time })),
    });
  }

  async finish(run: LeasedRun, classes: number) {
    const epochs = run.config.epochs;
    const vals = Array.from({ length: epochs }, (_, i) => curve(run.config.head, run.config.seed, i + 1));
    let best = 0;
    for (let i = 1; i < epochs; i++) if (vals[i].val_accuracy > vals[best].val_accuracy) best = i;
    const last = vals[epochs - 1];
    const confusion: number[][] = Array.from({ length: classes }, (_, i) =>
      Array.from({ length: classes }, (_, j): number =>
        i === j ? 8 : (i + j + run.config.seed) % 3 === 0 ? 1 : 0,
      ),
    );
    for (let k = 0; k < 2; k++) {
      const png = await sharp({
        create: { width: 32, height: 32, channels: 3, background: { r: 200, g: 40 * k, b: 60 } },
      })
        .png()
        .toBuffer();
      await uploadArtifact({
        url: this.url,
        token: this.token,
        runId: run.runId,
        leaseId: run.leaseId,
        name: `cam_${k}.png`,
        kind: 'cam',
        body: new Uint8Array(png),
      });
    }
    await this.client.trainer.complete.mutate({
      runId: run.runId,
      leaseId: run.leaseId,
      backend: 'wasm',
      params: {
        trainable: 1000,
        frozen: 5000,
        total: 6000,
        backbone: 5000,
        head: run.config.head === 'fc' ? 900 : 51,
      },
      timings: { seconds: 3 },
      summary: {
        test_accuracy: last.val_accuracy - 0.01,
        test_loss: last.val_loss,
        best_val_accuracy: vals[best].val_accuracy,
        best_epoch: best + 1,
        final_gap: last.accuracy - last.val_accuracy,
        confusion,
        per_class_accuracy: confusion.map((row, i) => row[i] / row.reduce((a, b) => a + b, 0)),
        shifted: [0, 0.125, 0.25].map((fraction) => ({
          fraction,
          pixels: Math.round(32 * fraction),
          accuracy: last.val_accuracy - fraction * (run.config.head === 'gap' ? 0.2 : 0.6),
        })),
        cams: ['cam_0.png', 'cam_1.png'],
      },
    });
  }
}
