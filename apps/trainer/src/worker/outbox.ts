// Everything a run reports goes through its outbox: an append-only journal on disk plus an ordered
// sender. Metrics, artifacts and the final complete/fail leave in the order they were produced, so a
// checkpoint is never stored before the metrics of the epochs it covers (a resumed attempt then never
// has a hole), and while the API is unreachable the trainer keeps training and the journal grows.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CompleteInput, MetricPoint } from '@headbench/client';
import { storableText, TRAINER_LIMITS } from '@headbench/spec';
import { type ApiLink, backoff, classify, sleep } from './api.js';

export type OutboxItem =
  | { t: 'metrics'; points: MetricPoint[] }
  /** `file` is deleted once uploaded when `temp`; a newer item with the same `slot` supersedes an unsent one. */
  | { t: 'artifact'; file: string; name: string; kind: string; epoch?: number; temp?: boolean; slot?: string }
  | { t: 'complete'; input: Omit<CompleteInput, 'runId' | 'leaseId'> }
  /** `fallback`: the report that replaced a final report the API kept refusing (never replaced again). */
  | { t: 'fail'; error: string; retryable: boolean; fallback?: boolean }
  /** Graceful stop: hand the run back without using up an attempt (trainer.release). */
  | { t: 'release'; reason: string; checkpointEpoch?: number };
type Entry = OutboxItem & { seq: number };

/** Points per reportMetrics call (the API allows 5000). */
const BATCH_POINTS = 2000;

export interface OutboxOptions {
  api: ApiLink;
  runId: string;
  leaseId: string;
  dir: string;
  /** Highest stored step per metric (from the lease): points at or below it are not resent. */
  lastSteps: Record<string, number>;
  /** The API says the run is not ours any more (canceled, lease lost). */
  onLost: (reason: string) => void;
  log: (m: string) => void;
  /** Wait this long for more points before sending (ms). */
  lingerMs?: number;
  /** The journal could not be written (ENOSPC...). */
  onJournalError?: (e: NodeJS.ErrnoException) => void;
  /** Tries of a final report the API answers with 5xx before it is replaced (default TRAINER_LIMITS). */
  finalReportTries?: number;
}

export class Outbox {
  private queue: Entry[] = [];
  private seq = 0;
  private pumping = false;
  private wake?: () => void;
  private idle: (() => void)[] = [];
  private readonly journal: string;
  lost: string | null = null;
  /** True while the API cannot be reached (for logs and tests). */
  offline = false;
  /** Points sent and acknowledged (inserted + duplicates). */
  sent = 0;
  private readonly stop = new AbortController();

  constructor(private o: OutboxOptions) {
    this.journal = join(o.dir, 'journal.jsonl');
    try {
      mkdirSync(o.dir, { recursive: true });
    } catch {
      // A full disk: the append below reports it (once) and the outbox works in memory.
    }
    this.append({ t: 'lease', leaseId: o.leaseId, at: Date.now() });
  }

  /** The journal could not be written (disk full...): logged once, the outbox goes on in memory. */
  private journalBroken = false;

  /**
   * The journal is a record of what was produced and acknowledged; the queue in memory is what is sent.
   * A full disk must not take the trainer down with it (this runs inside child-message handlers), so a
   * failed write is logged once and sending goes on.
   */
  private append(line: object) {
    if (this.journalBroken) return;
    try {
      appendFileSync(this.journal, `${JSON.stringify(line)}\n`);
    } catch (e) {
      this.journalBroken = true;
      const err = e as NodeJS.ErrnoException;
      this.o.log(
        `run ${this.o.runId}: cannot write its outbox journal (${err.code === 'ENOSPC' ? 'disk full' : (err.code ?? err.message)}); keeping the outbox in memory only`,
      );
      this.o.onJournalError?.(err);
    }
  }

  /** Everything journaled is acknowledged: start the journal over, so it never outgrows what is pending. */
  private trimJournal() {
    if (this.journalBroken) return;
    try {
      writeFileSync(this.journal, `${JSON.stringify({ t: 'trimmed', seq: this.seq, at: Date.now() })}\n`);
    } catch {
      // Trimming is housekeeping; the next append reports a lasting problem.
    }
  }

  push(item: OutboxItem) {
    if (this.lost) {
      if (item.t === 'artifact' && item.temp) void rm(item.file, { force: true });
      return;
    }
    if (item.t === 'metrics') {
      const points = item.points.filter((p) => !(p.step <= (this.o.lastSteps[p.name] ?? -1)));
      if (!points.length) return;
      item = { t: 'metrics', points };
    }
    const e = { ...item, seq: ++this.seq } as Entry;
    this.append(e);
    this.queue.push(e);
    this.kick();
  }

  /** Resolves once everything pushed so far is acknowledged (or the run was lost). */
  drain(): Promise<void> {
    if (!this.queue.length || this.lost) return Promise.resolve();
    return new Promise((r) => {
      this.idle.push(r);
      this.kick();
    });
  }

  /** Stops sending and forgets unsent items (the run is no longer ours). */
  drop(reason: string) {
    if (this.lost) return;
    this.lost = reason;
    this.append({ t: 'dropped', reason, at: Date.now() });
    for (const e of this.queue) if (e.t === 'artifact' && e.temp) void rm(e.file, { force: true });
    this.queue = [];
    this.stop.abort();
    this.kick();
    for (const r of this.idle.splice(0)) r();
  }

  pending(): number {
    return this.queue.length;
  }

  private kick() {
    this.wake?.();
    if (!this.pumping) void this.pump();
  }

  private async pump() {
    this.pumping = true;
    let failures = 0;
    /** Answers (5xx) to the final report at the head: the API got it and cannot store it. */
    let finalRefusals = 0;
    try {
      while (this.queue.length && !this.lost) {
        const head = this.queue[0];
        const url = this.o.api.url;
        // Metrics: give the producer a moment to add more, so one call carries many points.
        if (head.t === 'metrics' && this.queue.length === 1 && this.o.lingerMs) {
          await new Promise<void>((r) => {
            this.wake = r;
            setTimeout(r, this.o.lingerMs);
          });
          this.wake = undefined;
          if (this.lost) break;
        }
        try {
          await this.sendHead();
          failures = 0;
          finalRefusals = 0;
          if (this.offline) this.o.log(`run ${this.o.runId}: API reachable again, flushing`);
          this.offline = false;
        } catch (e) {
          const c = classify(e);
          if (c.leaseLost) {
            this.o.onLost(c.message);
            this.drop(c.message);
            break;
          }
          const head = this.queue[0];
          const final = head?.t === 'complete' || head?.t === 'fail';
          // A final report the API answers but refuses, for good (4xx) or again and again (5xx, while
          // heartbeats keep the lease): the run would stay `running` for ever. Replace it with what is known.
          if (final && (!c.transient || (c.status !== undefined && c.status >= 500))) {
            if (
              !c.transient ||
              ++finalRefusals >= (this.o.finalReportTries ?? TRAINER_LIMITS.finalReportTries)
            ) {
              finalRefusals = 0;
              failures = 0;
              this.replaceFinal(head, c.message);
              continue;
            }
          }
          if (!c.transient) {
            // A request the API will never accept (bad point, oversized artifact): record it, skip it.
            this.o.log(`run ${this.o.runId}: ${head?.t} rejected: ${c.message}`);
            this.ack(1);
            continue;
          }
          // Another instance of the API, when there is one: resend there at once (ingest is idempotent).
          // (Once per instance in a row: when all are down, back off as usual.)
          const moved = this.o.api.url !== url || this.o.api.noteFailure(e, url);
          if (moved && failures < this.o.api.urls.length) {
            failures++;
            this.o.log(
              `run ${this.o.runId}: ${url} unreachable (${c.message}); sending to ${this.o.api.url}`,
            );
            continue;
          }
          if (!this.offline) this.o.log(`run ${this.o.runId}: API unreachable (${c.message}); buffering`);
          this.offline = true;
          await sleep(backoff(failures++, 3000), this.stop.signal);
        }
      }
    } finally {
      this.pumping = false;
      if (!this.queue.length || this.lost) for (const r of this.idle.splice(0)) r();
    }
  }

  /**
   * The final report at the head was refused (see pump): a complete becomes a failure that says so, a
   * failure is resent once as plain storable text; a refused fallback is dropped (the lease then expires).
   */
  private replaceFinal(head: Entry, why: string) {
    const { runId } = this.o;
    this.ack(1);
    if (head.t === 'fail' && head.fallback) {
      this.o.log(
        `run ${runId}: the API refused its failure report again (${why}); leaving the run to lease expiry`,
      );
      return;
    }
    const error =
      head.t === 'complete'
        ? `the API refused the run's final report (${storableText(why, 300)}); its metrics and artifacts were sent`
        : storableText(head.t === 'fail' ? head.error : '', 2000);
    this.o.log(
      `run ${runId}: the API refused its ${head.t} report (${why}); failing the run with what is known`,
    );
    const e = {
      t: 'fail',
      error: error || 'failed',
      retryable: false,
      fallback: true,
      seq: ++this.seq,
    } as Entry;
    this.append(e);
    this.queue.unshift(e);
  }

  private ack(n: number) {
    // A drop while the request was in flight already emptied the queue.
    if (this.lost) return;
    const done = this.queue.splice(0, n);
    if (done.length) this.append({ t: 'ack', seq: done[done.length - 1].seq });
    if (!this.queue.length) this.trimJournal();
  }

  private async sendHead() {
    const { api, runId, leaseId } = this.o;
    const head = this.queue[0];
    if (head.t === 'metrics') {
      let n = 0;
      const points: MetricPoint[] = [];
      while (n < this.queue.length) {
        const e = this.queue[n];
        if (e.t !== 'metrics' || (points.length && points.length + e.points.length > BATCH_POINTS)) break;
        points.push(...e.points);
        n++;
      }
      for (let i = 0; i < points.length; i += 5000) {
        const out = await api.reportMetrics({
          runId,
          leaseId,
          points: points.slice(i, i + 5000),
        });
        this.sent += out.inserted + out.duplicates;
        if (out.cancel) {
          this.o.onLost('canceled');
          this.drop('canceled');
          return;
        }
      }
      this.ack(n);
    } else if (head.t === 'artifact') {
      // Only the newest unsent checkpoint matters: the older ones are skipped, never uploaded.
      const newer =
        head.slot && this.queue.some((e, i) => i > 0 && e.t === 'artifact' && e.slot === head.slot);
      if (!newer) {
        const body = await readFile(head.file);
        await api.upload({ runId, leaseId, name: head.name, kind: head.kind, epoch: head.epoch }, body);
      }
      if (head.temp) await rm(head.file, { force: true });
      this.ack(1);
    } else if (head.t === 'complete') {
      await api.client.trainer.complete.mutate({ runId, leaseId, ...head.input });
      this.ack(1);
    } else if (head.t === 'release') {
      try {
        await api.client.trainer.release.mutate({
          runId,
          leaseId,
          reason: head.reason,
          checkpointEpoch: head.checkpointEpoch,
        });
      } catch (e) {
        // An API from before trainer.release: requeue through a retryable failure instead.
        if (!/No procedure found/i.test(classify(e).message)) throw e;
        await api.client.trainer.fail.mutate({
          runId,
          leaseId,
          error: `requeue: ${head.reason}`,
          retryable: true,
        });
      }
      this.ack(1);
    } else {
      await api.client.trainer.fail.mutate({ runId, leaseId, error: head.error, retryable: head.retryable });
      this.ack(1);
    }
  }
}
