import type { BatchMetrics, EpochMetrics, RunResult } from '@headbench/core';

/** A one-line live progress bar per run on a terminal; plain epoch lines when output is not a TTY. */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private run = { index: 0, id: '', epochs: 0, started: 0, batchesPerEpoch: 0 };
  private lastDraw = 0;

  constructor(
    private readonly total: number,
    private readonly quiet: boolean,
  ) {}

  startRun(index: number, id: string, epochs: number): void {
    this.run = { index, id, epochs, started: Date.now(), batchesPerEpoch: 0 };
    this.note(`[${index + 1}/${this.total}] ${id}`);
  }

  batch(m: BatchMetrics): void {
    if (this.quiet || !this.tty) return;
    if (m.epoch === 1) this.run.batchesPerEpoch = Math.max(this.run.batchesPerEpoch, m.step);
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const per = this.run.batchesPerEpoch || 1;
    const done = (m.epoch - 1) * per + (((m.step - 1) % per) + 1);
    const totalSteps = per * this.run.epochs;
    const frac = Math.min(1, done / totalSteps);
    const eta = frac > 0 ? ((now - this.run.started) / frac) * (1 - frac) : 0;
    const width = 24;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    process.stderr.write(
      `\r${bar} epoch ${m.epoch}/${this.run.epochs} batch ${((m.step - 1) % per) + 1}/${per} ` +
        `loss ${m.loss.toFixed(4)} acc ${m.accuracy.toFixed(3)} ${m.images_per_s.toFixed(0)} img/s ETA ${formatDuration(eta)}   `,
    );
  }

  epoch(m: EpochMetrics): void {
    if (this.quiet) return;
    const line =
      `  epoch ${m.epoch}/${this.run.epochs}  loss ${m.loss.toFixed(4)}  acc ${m.accuracy.toFixed(4)}  ` +
      `val_loss ${m.val_loss.toFixed(4)}  val_acc ${m.val_accuracy.toFixed(4)}  ${m.images_per_s.toFixed(1)} img/s`;
    process.stderr.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  endRun(r: RunResult): void {
    const s = r.summary!;
    this.note(
      `  done: best val acc ${(s.best_val_accuracy * 100).toFixed(1)} % at epoch ${s.best_epoch}, ` +
        `final gap ${(s.final_gap * 100).toFixed(1)} %, ${r.timings.seconds.toFixed(0)} s on ${r.backend}`,
    );
  }

  log(message: string): void {
    if (!this.quiet && !message.startsWith('epoch ')) this.note(`  ${message}`);
  }

  note(message: string): void {
    process.stderr.write(this.tty ? `\r\x1b[K${message}\n` : `${message}\n`);
  }
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
