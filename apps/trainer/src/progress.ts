import type { BatchMetrics, EpochMetrics, RunResult } from '@headbench/core';

interface Active {
  id: string;
  epochs: number;
  started: number;
  batchesPerEpoch: number;
  last?: BatchMetrics;
}

/**
 * Live progress on a terminal: one status line with every active run (epoch, batch, loss, accuracy, ETA),
 * and a permanent line per finished epoch. Without a TTY only the permanent lines are printed.
 */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly active = new Map<string, Active>();
  private lastDraw = 0;

  constructor(
    private readonly total: number,
    private readonly quiet: boolean,
  ) {}

  startRun(index: number, id: string, epochs: number): void {
    this.active.set(id, { id, epochs, started: Date.now(), batchesPerEpoch: 0 });
    this.note(`[${index + 1}/${this.total}] ${id}: started`);
  }

  batch(id: string, m: BatchMetrics): void {
    const run = this.active.get(id);
    if (!run) return;
    if (m.epoch === 1) run.batchesPerEpoch = Math.max(run.batchesPerEpoch, m.step);
    run.last = m;
    if (this.quiet || !this.tty) return;
    const now = Date.now();
    if (now - this.lastDraw < 150) return;
    this.lastDraw = now;
    const parts = [...this.active.values()].filter((r) => r.last).map((r) => this.describe(r, now));
    process.stderr.write(`\r\x1b[K${parts.join(' | ')}`.slice(0, (process.stderr.columns ?? 160) + 4));
  }

  private describe(r: Active, now: number): string {
    const m = r.last!;
    const per = r.batchesPerEpoch || 1;
    const inEpoch = ((m.step - 1) % per) + 1;
    const frac = Math.min(1, ((m.epoch - 1) * per + inEpoch) / (per * r.epochs));
    const eta = frac > 0 ? ((now - r.started) / frac) * (1 - frac) : 0;
    const bar = '█'.repeat(Math.round(frac * 12)).padEnd(12, '░');
    return `${r.id} ${bar} ep ${m.epoch}/${r.epochs} b ${inEpoch}/${per} loss ${m.loss.toFixed(3)} acc ${m.accuracy.toFixed(2)} ETA ${formatDuration(eta)}`;
  }

  epoch(id: string, m: EpochMetrics): void {
    const run = this.active.get(id);
    if (this.quiet || !run) return;
    this.note(
      `  ${id} epoch ${m.epoch}/${run.epochs}  loss ${m.loss.toFixed(4)}  acc ${m.accuracy.toFixed(4)}  ` +
        `val_loss ${m.val_loss.toFixed(4)}  val_acc ${m.val_accuracy.toFixed(4)}  ${m.images_per_s.toFixed(1)} img/s`,
    );
  }

  endRun(r: RunResult): void {
    this.active.delete(r.id);
    const s = r.summary!;
    this.note(
      `  ${r.id} done: test acc ${(s.test_accuracy * 100).toFixed(1)} % at selected epoch ${s.selected_epoch} ` +
        `(val ${(s.val_accuracy * 100).toFixed(1)} %), train−test gap ${(s.gap * 100).toFixed(1)} points, ` +
        `${r.timings.seconds.toFixed(0)} s on ${r.backend}`,
    );
  }

  failRun(id: string, message: string): void {
    this.active.delete(id);
    this.note(`  ${id} failed: ${message}`);
  }

  log(id: string, message: string): void {
    if (!this.quiet && !message.startsWith('epoch ')) this.note(`  ${id}: ${message}`);
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
