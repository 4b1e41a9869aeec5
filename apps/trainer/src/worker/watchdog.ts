// The progress watchdog of one training child. A child whose wasm heap is corrupt can spin forever
// inside the allocator (issue #11): the parent keeps heart-beating, so the lease never expires and the run
// never ends. The watchdog notices that nothing came from the child for too long and says why.
import { readEnv } from '@headbench/spec';

export interface WatchdogLimits {
  /** Multiple of the median time between batches allowed without a batch. */
  factor: number;
  /** Seconds always allowed. */
  floorS: number;
  /** Most seconds allowed; also the limit outside training (preparing, validation, finishing). */
  ceilingS: number;
}

/** The limits HEADBENCH_WATCHDOG_FACTOR, _FLOOR_S and _CEILING_S give (their defaults when unset). */
export function watchdogLimits(env = readEnv(process.env)): WatchdogLimits {
  const limits = {
    factor: env.HEADBENCH_WATCHDOG_FACTOR,
    floorS: env.HEADBENCH_WATCHDOG_FLOOR_S,
    ceilingS: env.HEADBENCH_WATCHDOG_CEILING_S,
  };
  checkLimits(limits);
  return limits;
}

/** A floor above the ceiling is a mistake worth an error naming both. */
export function checkLimits(l: WatchdogLimits): void {
  if (l.floorS > l.ceilingS)
    throw new Error(`watchdog: the floor (${l.floorS} s) is above the ceiling (${l.ceilingS} s)`);
}

/** Keeps the last ~200 gaps between batches: the median follows a run that slows down or speeds up. */
const WINDOW = 201;

export class ProgressWatchdog {
  private gaps: number[] = [];
  private lastBatchAt: number | undefined;
  private lastHeardAt: number;
  /** What the child is doing, in words for the event ("epoch 3", "validation after epoch 2", …). */
  phase = 'preparing';
  private training = false;

  constructor(
    readonly limits: WatchdogLimits,
    now = Date.now(),
  ) {
    this.lastHeardAt = now;
  }

  /** A batch finished. */
  batch(epoch: number, now = Date.now()): void {
    // A gap spanning validation or a checkpoint is not a batch time.
    if (this.lastBatchAt !== undefined && this.training) {
      this.gaps.push(now - this.lastBatchAt);
      if (this.gaps.length > WINDOW) this.gaps.shift();
    }
    this.lastBatchAt = now;
    this.lastHeardAt = now;
    this.training = true;
    this.phase = `epoch ${epoch}`;
  }

  /** The child moved to a phase without batches (validation, checkpoint and upload, finishing). */
  enter(phase: string, now = Date.now()): void {
    this.phase = phase;
    this.training = false;
    this.lastHeardAt = now;
  }

  /** Epoch `epoch` is done and its checkpoint is out: training goes on with the next one (or finishing). */
  epochDone(epoch: number, now = Date.now()): void {
    this.phase = `epoch ${epoch + 1}`;
    this.training = true;
    this.lastBatchAt = undefined;
    this.lastHeardAt = now;
  }

  /** Any other message: the child is alive but has not made batch progress. */
  heard(now = Date.now()): void {
    if (!this.training) this.lastHeardAt = now;
  }

  /** Median seconds between batches, or undefined before two batches. */
  medianBatchS(): number | undefined {
    if (!this.gaps.length) return undefined;
    const s = [...this.gaps].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return (s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2) / 1000;
  }

  /** Seconds allowed without progress in the current phase. */
  limitS(): number {
    const { factor, floorS, ceilingS } = this.limits;
    const median = this.medianBatchS();
    if (!this.training || median === undefined) return ceilingS;
    return Math.min(ceilingS, Math.max(floorS, factor * median));
  }

  /** The event text when the limit has passed ("no progress for N s in <phase>; child killed"), else undefined. */
  check(now = Date.now()): string | undefined {
    const quiet = (now - this.lastHeardAt) / 1000;
    if (quiet <= this.limitS()) return undefined;
    return `no progress for ${Math.round(quiet)} s in ${this.phase}; child killed`;
  }
}
