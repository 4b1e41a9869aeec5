import { randomUUID } from 'node:crypto';
import {
  type Capabilities,
  type CompleteInput,
  expandSweep,
  type FailInput,
  type HeartbeatInput,
  type HeartbeatOutput,
  type LeasedRun,
  type LeaseInput,
  type LeaseOutput,
  type RegisterInput,
  type RegisterOutput,
  type ReleaseInput,
  type RunStateOutput,
  type RunStatus,
  type SweepSpec,
  storableText,
} from '@headbench/spec';
import { TRPCError } from '@trpc/server';
import type pg from 'pg';
import { PgBoss } from 'pg-boss';
import type { Principal } from '../auth.js';
import { withTx } from '../db/database.js';
import { leasedDataset, leasedWeights } from './lease-contents.js';
import type { LiveHub } from './live.js';
import type { PackagedWeightsService } from './packaged-weights.js';
import { bossDb, orderedUuid, queueFor, queuesFor } from './queue.js';

type Db = pg.Pool | pg.PoolClient;
/** Runs per INSERT when a sweep is stored. */
const INSERT_CHUNK = 1000;

export interface RunServiceOptions {
  leaseSeconds: number;
  maxAttempts: number;
  /**
   * After start, the reaper leaves expired leases alone this long (default: one lease length), so trainers
   * that kept running while the API was down get to heartbeat before their runs are requeued.
   */
  reaperGraceSeconds?: number;
  /** With several API instances: false on all but the one that reaps (see cluster/leader.ts). */
  isLeader?: () => boolean;
  /**
   * How long pg-boss keeps a job that is still waiting (its `retentionSeconds`); default ten years. A run
   * may wait in the queue for as long as its sweep does, so this only bounds a queue left for dead.
   */
  queueRetentionSeconds?: number;
  /** Serves `weights: npm:<package>/<model>` to trainers (leases name its files). */
  packaged?: PackagedWeightsService;
}

/** Default wait a queued job survives in pg-boss (its own default, 14 days, dropped long sweeps' runs). */
export const QUEUE_RETENTION_SECONDS = 10 * 365 * 24 * 3600;
/** How often queued runs are checked for a lost queue job. */
const REPAIR_EVERY_MS = 60_000;

interface HeldRow {
  id: string;
  sweep_id: string | null;
  status: RunStatus;
  lease_id: string | null;
  attempt: number;
  max_attempts: number;
  queue: string;
  job_id: string | null;
  trainer_id: string | null;
}

/** The run lifecycle: sweeps → queued runs (pg-boss jobs) → leases → heartbeats → done / requeued / failed. */
export class RunService {
  readonly boss: PgBoss;
  private queues = new Set<string>();
  private reaper?: NodeJS.Timeout;
  private repairer?: NodeJS.Timeout;
  private reaping = false;
  /** The reaper does nothing before this (ms since epoch): see reaperGraceSeconds. */
  reapAfter = 0;
  /**
   * Metric ingest's lease checks, per run: a holder verified less than `holderTtlMs` ago under the same
   * (lease, token) is not looked up again. Every state change on this instance drops the run's entry;
   * another instance's change (cancel, requeue) is seen within the TTL.
   */
  private holders = new Map<string, { leaseId: string; tokenId: string; row: HeldRow; until: number }>();
  holderTtlMs = 1000;

  constructor(
    private pool: pg.Pool,
    private hub: LiveHub,
    readonly opts: RunServiceOptions,
    databaseUrl: string,
  ) {
    this.boss = new PgBoss({ connectionString: databaseUrl, max: 4, schedule: false });
    this.boss.on('error', (e) => console.error('[pg-boss]', e.message));
  }

  async start() {
    await this.boss.start();
    this.reapAfter = Date.now() + (this.opts.reaperGraceSeconds ?? this.opts.leaseSeconds) * 1000;
    const period = Math.max(200, Math.min(2000, (this.opts.leaseSeconds * 1000) / 4));
    this.reaper = setInterval(
      () => void this.reapExpired().catch((e) => console.error('[reaper]', e)),
      period,
    );
    this.reaper.unref();
    // Queued runs whose job vanished (retention of an older queue, a manual cleanup) go back in the queue;
    // with several instances, the leader does it (the repair is safe anywhere, just not needed twice).
    const repair = () => {
      if (this.opts.isLeader?.() === false) return;
      void this.repairQueue().catch((e) => console.error('[queue repair]', e));
    };
    repair();
    this.repairer = setInterval(repair, REPAIR_EVERY_MS);
    this.repairer.unref();
  }

  async stop() {
    if (this.reaper) clearInterval(this.reaper);
    if (this.repairer) clearInterval(this.repairer);
    await this.boss.stop({ graceful: false, close: true, timeout: 2000 });
  }

  private async ensureQueue(name: string) {
    if (this.queues.has(name)) return;
    const retentionSeconds = this.opts.queueRetentionSeconds ?? QUEUE_RETENTION_SECONDS;
    const existing = await this.boss.getQueue(name);
    if (!existing) {
      // Leases, not pg-boss expiry (capped at 24 h there), decide when a run is lost; retries are ours
      // too (attempt counter). Completing a run whose job pg-boss already expired is harmless. Waiting
      // jobs are kept for `retentionSeconds`: pg-boss's default would delete a long-waiting run's job.
      await this.boss
        .createQueue(name, { retryLimit: 0, expireInSeconds: 86_400, retentionSeconds })
        .catch(async (e) => {
          if (!(await this.boss.getQueue(name))) throw e;
        });
    } else if (existing.retentionSeconds !== retentionSeconds) {
      // A queue created before this setting (or with another one): new jobs get this retention.
      await this.boss.updateQueue(name, { retentionSeconds });
    }
    this.queues.add(name);
  }

  /**
   * Queued runs whose pg-boss job is gone or no longer waiting get a new job: a run row that says
   * `queued` must be leasable. Returns how many were requeued.
   */
  async repairQueue(): Promise<number> {
    const { rows } = await this.pool.query<{ id: string; queue: string }>(
      `SELECT r.id, r.queue FROM runs r
       WHERE r.status = 'queued' AND NOT EXISTS (
         SELECT 1 FROM pgboss.job j WHERE j.name = r.queue AND j.id = r.job_id AND j.state IN ('created', 'retry'))
       LIMIT 1000`,
    );
    let n = 0;
    for (const row of rows) {
      await this.ensureQueue(row.queue);
      const fixed = await withTx(this.pool, async (c) => {
        // Locked and checked again: a lease or a cancel may have got there first.
        const { rows: locked } = await c.query<{ attempt: number; job_id: string | null }>(
          `SELECT r.attempt, r.job_id FROM runs r WHERE r.id = $1 AND r.status = 'queued' AND NOT EXISTS (
             SELECT 1 FROM pgboss.job j WHERE j.name = r.queue AND j.id = r.job_id AND j.state IN ('created', 'retry'))
           FOR UPDATE OF r SKIP LOCKED`,
          [row.id],
        );
        if (!locked[0]) return false;
        const jobId = await this.enqueue(c, row.queue, row.id);
        await c.query('UPDATE runs SET job_id = $2 WHERE id = $1', [row.id, jobId]);
        await this.event(c, row.id, 'requeued', locked[0].attempt, {
          reason: 'its queue job was gone (pg-boss retention or cleanup)',
          lostJobId: locked[0].job_id,
        });
        return true;
      });
      if (fixed) n++;
    }
    if (n) {
      console.error(`[queue repair] ${n} queued run(s) had lost their queue job; queued again`);
      this.hub.workAvailable();
    }
    return n;
  }

  private async enqueue(c: pg.PoolClient, queue: string, runId: string): Promise<string> {
    const id = orderedUuid();
    await this.boss.send(queue, { runId }, { id, retryLimit: 0, ...bossDb(c) });
    return id;
  }

  private async event(c: Db, runId: string, type: string, attempt: number, data?: object) {
    await c.query('INSERT INTO run_events (run_id, type, attempt, data) VALUES ($1, $2, $3, $4)', [
      runId,
      type,
      attempt,
      data ? JSON.stringify(data) : null,
    ]);
  }

  // ---------------------------------------------------------------- sweeps

  /**
   * Stores a sweep and queues its runs in one transaction. The spec was parsed by SweepSpec, which bounds
   * the grid and the bytes of its configs; rows go in chunks so no single statement carries them all.
   */
  async createSweep(spec: SweepSpec, creatorId: string | null, parentId: string | null = null) {
    const configs = expandSweep(spec);
    const queue = queueFor(spec.requires);
    await this.ensureQueue(queue);
    const sweepId = randomUUID();
    const runIds = configs.map(() => randomUUID());
    const jobIds = configs.map(() => orderedUuid());
    await withTx(this.pool, async (c) => {
      await c.query(
        `INSERT INTO sweeps (id, name, spec, status, creator_id, parent_id) VALUES ($1, $2, $3, 'active', $4, $5)`,
        [sweepId, spec.name, JSON.stringify(spec), creatorId, parentId],
      );
      for (let at = 0; at < configs.length; at += INSERT_CHUNK) {
        const ids = runIds.slice(at, at + INSERT_CHUNK);
        await c.query(
          `INSERT INTO runs (id, sweep_id, index, config, status, attempt, max_attempts, queue, job_id)
           SELECT id, $2, $7 + idx - 1, cfg, 'queued', 1, $3, $4, job
           FROM unnest($1::uuid[], $5::jsonb[], $6::uuid[]) WITH ORDINALITY AS t(id, cfg, job, idx)`,
          [
            ids,
            sweepId,
            spec.maxAttempts,
            queue,
            configs.slice(at, at + INSERT_CHUNK).map((x) => JSON.stringify(x)),
            jobIds.slice(at, at + INSERT_CHUNK),
            at,
          ],
        );
        await c.query(
          `INSERT INTO run_events (run_id, type, attempt) SELECT id, 'queued', 1 FROM unnest($1::uuid[]) AS id`,
          [ids],
        );
        await this.boss.insert(
          queue,
          ids.map((runId, i) => ({ id: jobIds[at + i], data: { runId }, retryLimit: 0 })),
          bossDb(c),
        );
      }
    });
    for (const id of runIds) this.hub.runStatus({ id, sweepId, status: 'queued', attempt: 1 });
    this.hub.workAvailable();
    return { id: sweepId, runIds };
  }

  async cancelSweep(sweepId: string, reason = 'sweep canceled') {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM runs WHERE sweep_id = $1 AND status IN ('queued', 'running')`,
      [sweepId],
    );
    for (const r of rows) await this.cancelRun(r.id, reason).catch(() => {});
    await this.pool.query(`UPDATE sweeps SET status = 'canceled' WHERE id = $1`, [sweepId]);
    return { canceled: rows.length };
  }

  private async maybeFinishSweep(c: Db, sweepId: string | null) {
    if (!sweepId) return;
    await c.query(
      `UPDATE sweeps SET status = 'done' WHERE id = $1 AND status = 'active'
       AND NOT EXISTS (SELECT 1 FROM runs WHERE sweep_id = $1 AND status IN ('queued', 'running'))`,
      [sweepId],
    );
  }

  // ---------------------------------------------------------------- user actions

  async cancelRun(runId: string, reason = 'canceled by user'): Promise<RunStateOutput> {
    this.forgetHolder(runId);
    const res = await withTx(this.pool, async (c) => {
      const r = await this.lockRun(c, runId);
      if (r.status !== 'queued' && r.status !== 'running') {
        throw new TRPCError({
          code: 'CONFLICT',
          message: `run is ${r.status}; only queued or running runs can be canceled`,
        });
      }
      if (r.job_id) await this.boss.cancel(r.queue, r.job_id, bossDb(c)).catch(() => {});
      await c.query(
        `UPDATE runs SET status = 'canceled', error = $2, finished_at = now(), lease_expires_at = NULL WHERE id = $1`,
        [runId, reason],
      );
      await this.event(c, runId, 'canceled', r.attempt, { reason });
      await this.maybeFinishSweep(c, r.sweep_id);
      return r;
    });
    this.forgetHolder(runId); // again: a metric batch may have cached the old state meanwhile
    this.hub.runStatus({
      id: runId,
      sweepId: res.sweep_id,
      status: 'canceled',
      attempt: res.attempt,
      error: reason,
    });
    if (res.status === 'running' && res.trainer_id)
      this.hub.toTrainer(res.trainer_id, 'cancel', { runId, reason });
    return { runId, status: 'canceled', attempt: res.attempt };
  }

  /** Puts a failed or canceled run back in the queue with a fresh attempt budget. */
  async retryRun(runId: string): Promise<RunStateOutput> {
    const out = await withTx(this.pool, async (c) => {
      const r = await this.lockRun(c, runId);
      if (r.status !== 'failed' && r.status !== 'canceled') {
        throw new TRPCError({
          code: 'CONFLICT',
          message: `run is ${r.status}; only failed or canceled runs can be retried`,
        });
      }
      await this.ensureQueue(r.queue);
      const jobId = await this.enqueue(c, r.queue, runId);
      const attempt = r.attempt + 1;
      await c.query(
        `UPDATE runs SET status = 'queued', attempt = $2, max_attempts = $3, job_id = $4, trainer_id = NULL,
           lease_id = NULL, lease_expires_at = NULL, error = NULL, finished_at = NULL WHERE id = $1`,
        [runId, attempt, r.attempt + this.opts.maxAttempts, jobId],
      );
      if (r.sweep_id) await c.query(`UPDATE sweeps SET status = 'active' WHERE id = $1`, [r.sweep_id]);
      await this.event(c, runId, 'retried', attempt);
      return { ...r, attempt };
    });
    this.hub.runStatus({ id: runId, sweepId: out.sweep_id, status: 'queued', attempt: out.attempt });
    this.hub.workAvailable();
    return { runId, status: 'queued', attempt: out.attempt };
  }

  private async lockRun(c: Db, runId: string): Promise<HeldRow> {
    const { rows } = await c.query<HeldRow>(
      `SELECT id, sweep_id, status, lease_id, attempt, max_attempts, queue, job_id, trainer_id
       FROM runs WHERE id = $1 FOR UPDATE`,
      [runId],
    );
    if (!rows[0]) throw new TRPCError({ code: 'NOT_FOUND', message: `no run ${runId}` });
    return rows[0];
  }

  // ---------------------------------------------------------------- trainer protocol

  async register(
    p: Principal,
    input: RegisterInput & { slots: number; capabilities: Capabilities },
  ): Promise<RegisterOutput> {
    const { rows } = await this.pool.query<{ id: string }>(
      `INSERT INTO trainers (id, token_id, name, host, backend, devices, slots, capabilities, state, last_heartbeat)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'idle', now())
       ON CONFLICT (token_id, name) DO UPDATE SET host = EXCLUDED.host, backend = EXCLUDED.backend,
         devices = EXCLUDED.devices, slots = EXCLUDED.slots, capabilities = EXCLUDED.capabilities,
         state = 'idle', last_heartbeat = now()
       RETURNING id`,
      [
        randomUUID(),
        p.tokenId,
        input.name,
        input.host ?? null,
        input.capabilities.backend,
        JSON.stringify(input.devices ?? []),
        input.slots,
        JSON.stringify(input.capabilities),
      ],
    );
    return {
      trainerId: rows[0].id,
      leaseSeconds: this.opts.leaseSeconds,
      heartbeatSeconds: Math.max(0.2, this.opts.leaseSeconds / 3),
    };
  }

  /** The trainer row, if this token owns it; 403 otherwise. */
  async ownTrainer(p: Principal, trainerId: string): Promise<{ id: string; capabilities: Capabilities }> {
    const { rows } = await this.pool.query(
      `UPDATE trainers SET last_heartbeat = now() WHERE id = $1 AND token_id = $2 RETURNING id, capabilities`,
      [trainerId, p.tokenId],
    );
    if (!rows[0])
      throw new TRPCError({ code: 'FORBIDDEN', message: 'trainer not registered with this token' });
    return rows[0];
  }

  async lease(p: Principal, input: LeaseInput): Promise<LeaseOutput> {
    const trainer = await this.ownTrainer(p, input.trainerId);
    const cap = input.capabilities ?? trainer.capabilities;
    let free = input.freeSlots;
    const leased: LeasedRun[] = [];
    for (const queue of queuesFor(cap)) {
      if (free <= 0) break;
      await this.ensureQueue(queue);
      const got = await withTx(this.pool, async (c) => {
        // Never more runs than the slots it registered, whatever freeSlots says (the trainer row is
        // locked, so two concurrent leases of one trainer count each other's runs).
        const room = await c.query<{ room: number }>(
          `SELECT t.slots - (SELECT count(*) FROM runs WHERE trainer_id = t.id AND status = 'running')::int AS room
           FROM trainers t WHERE t.id = $1 FOR UPDATE`,
          [trainer.id],
        );
        const take = Math.min(free, room.rows[0]?.room ?? 0);
        if (take <= 0) return [];
        const jobs = await this.boss.fetch<{ runId: string }>(queue, { batchSize: take, ...bossDb(c) });
        const out: LeasedRun[] = [];
        for (const job of jobs) {
          const leaseId = randomUUID();
          const { rows } = await c.query(
            `UPDATE runs SET status = 'running', trainer_id = $3, lease_id = $4,
               lease_expires_at = now() + make_interval(secs => $5), started_at = COALESCE(started_at, now())
             WHERE id = $1 AND job_id = $2 AND status = 'queued'
             RETURNING id, sweep_id, attempt, config, lease_expires_at, checkpoint_epoch, checkpoint_artifact_id,
               (SELECT sha256 FROM artifacts WHERE id = runs.checkpoint_artifact_id) AS checkpoint_sha256`,
            [job.data.runId, job.id, trainer.id, leaseId, this.opts.leaseSeconds],
          );
          const r = rows[0];
          if (!r) {
            // Canceled (or superseded) between enqueue and fetch: close the job, hand out nothing.
            await this.boss.complete(queue, job.id, null, bossDb(c));
            continue;
          }
          const resume =
            r.checkpoint_artifact_id != null
              ? {
                  artifactId: r.checkpoint_artifact_id as string,
                  epoch: r.checkpoint_epoch as number,
                  downloadPath: `/artifacts/${r.checkpoint_artifact_id}/content`,
                  sha256: r.checkpoint_sha256 as string,
                }
              : null;
          await this.event(c, r.id, resume ? 'resumed' : 'leased', r.attempt, {
            trainerId: trainer.id,
            leaseId,
            ...(resume ? { fromEpoch: resume.epoch } : {}),
          });
          const steps = await c.query<{ name: string; step: number }>(
            'SELECT name, max(step)::int AS step FROM metrics WHERE run_id = $1 GROUP BY name',
            [r.id],
          );
          const config = r.config as { dataset?: unknown; weights?: unknown };
          out.push({
            runId: r.id,
            leaseId,
            attempt: r.attempt,
            leaseExpiresAt: new Date(r.lease_expires_at).toISOString(),
            sweepId: r.sweep_id,
            config: r.config,
            resume,
            lastSteps: Object.fromEntries(steps.rows.map((s) => [s.name, s.step])),
            dataset: typeof config.dataset === 'string' ? await leasedDataset(c, config.dataset) : null,
            weights: typeof config.weights === 'string' ? await leasedWeights(c, config.weights) : null,
            packaged:
              typeof config.weights === 'string' && config.weights.startsWith('npm:')
                ? ((await this.opts.packaged?.leased(config.weights)) ?? null)
                : null,
          });
        }
        return out;
      });
      free -= got.length;
      leased.push(...got);
    }
    if (leased.length) {
      await this.pool.query(`UPDATE trainers SET state = 'busy' WHERE id = $1`, [trainer.id]);
      for (const r of leased)
        this.hub.runStatus({ id: r.runId, sweepId: r.sweepId, status: 'running', attempt: r.attempt });
    }
    return { runs: leased, leaseSeconds: this.opts.leaseSeconds };
  }

  async heartbeat(
    p: Principal,
    input: HeartbeatInput & { runs: { runId: string; leaseId: string }[] },
  ): Promise<HeartbeatOutput> {
    const trainer = await this.ownTrainer(p, input.trainerId);
    const out: HeartbeatOutput['runs'] = [];
    for (const held of input.runs) {
      const { rows } = await this.pool.query(
        `UPDATE runs SET lease_expires_at = now() + make_interval(secs => $4)
         WHERE id = $1 AND lease_id = $2 AND trainer_id = $3 AND status = 'running'
         RETURNING lease_expires_at`,
        [held.runId, held.leaseId, trainer.id, this.opts.leaseSeconds],
      );
      if (rows[0]) {
        out.push({
          runId: held.runId,
          cancel: false,
          leaseExpiresAt: new Date(rows[0].lease_expires_at).toISOString(),
        });
        continue;
      }
      const cur = await this.pool.query<{ status: RunStatus; lease_id: string | null }>(
        'SELECT status, lease_id FROM runs WHERE id = $1',
        [held.runId],
      );
      const s = cur.rows[0];
      const reason = !s
        ? 'run deleted'
        : s.status === 'canceled'
          ? 'canceled'
          : s.status === 'running' || s.status === 'queued'
            ? 'lease lost: the run was handed to another attempt'
            : `run is ${s.status}`;
      out.push({ runId: held.runId, cancel: true, reason });
    }
    await this.pool.query(`UPDATE trainers SET state = $2 WHERE id = $1`, [
      trainer.id,
      out.some((r) => !r.cancel) ? 'busy' : 'idle',
    ]);
    return { leaseSeconds: this.opts.leaseSeconds, runs: out };
  }

  /**
   * Checks that this token's trainer holds the run under this lease. Anything else is 403, with the
   * reason (canceled, lease lost...) in the message so the trainer knows to drop the run.
   */
  async assertHolder(c: Db, p: Principal, runId: string, leaseId: string, lock = false): Promise<HeldRow> {
    const { rows } = await c.query<HeldRow & { token_id: string | null }>(
      `SELECT r.id, r.sweep_id, r.status, r.lease_id, r.attempt, r.max_attempts, r.queue, r.job_id, r.trainer_id,
              t.token_id
       FROM runs r LEFT JOIN trainers t ON t.id = r.trainer_id WHERE r.id = $1 ${lock ? 'FOR UPDATE OF r' : ''}`,
      [runId],
    );
    const r = rows[0];
    if (!r || r.token_id !== p.tokenId) {
      throw new TRPCError({ code: 'FORBIDDEN', message: 'this trainer does not hold that run' });
    }
    if (r.lease_id !== leaseId || r.status !== 'running') {
      const why =
        r.status === 'canceled'
          ? 'run was canceled'
          : r.status !== 'running'
            ? `run is ${r.status}`
            : 'lease lost';
      throw new TRPCError({ code: 'FORBIDDEN', message: `this trainer no longer holds that run: ${why}` });
    }
    return r;
  }

  /** assertHolder for hot paths (metric batches), through the short per-run cache. */
  async assertHolderCached(p: Principal, runId: string, leaseId: string): Promise<HeldRow> {
    const hit = this.holders.get(runId);
    const now = Date.now();
    if (hit && hit.until > now && hit.leaseId === leaseId && hit.tokenId === p.tokenId) return hit.row;
    const row = await this.assertHolder(this.pool, p, runId, leaseId);
    if (this.holders.size > 10_000) {
      for (const [k, v] of this.holders) if (v.until <= now) this.holders.delete(k);
    }
    this.holders.set(runId, { leaseId, tokenId: p.tokenId, row, until: now + this.holderTtlMs });
    return row;
  }

  /** Drops the cached lease check of a run whose state changed. */
  forgetHolder(runId: string) {
    this.holders.delete(runId);
  }

  async complete(p: Principal, input: CompleteInput): Promise<RunStateOutput> {
    const r = await withTx(this.pool, async (c) => {
      this.forgetHolder(input.runId);
      const r = await this.assertHolder(c, p, input.runId, input.leaseId, true);
      if (r.job_id) await this.boss.complete(r.queue, r.job_id, null, bossDb(c)).catch(() => {});
      await c.query(
        `UPDATE runs SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL, error = NULL,
           summary = $2, params = $3, timings = $4, backend = COALESCE($5, backend) WHERE id = $1`,
        [
          input.runId,
          input.summary ? JSON.stringify(input.summary) : null,
          input.params ? JSON.stringify(input.params) : null,
          input.timings ? JSON.stringify(input.timings) : null,
          input.backend ?? null,
        ],
      );
      await this.event(c, input.runId, 'succeeded', r.attempt);
      await this.maybeFinishSweep(c, r.sweep_id);
      return r;
    });
    this.forgetHolder(r.id);
    this.hub.runStatus({ id: r.id, sweepId: r.sweep_id, status: 'succeeded', attempt: r.attempt });
    return { runId: r.id, status: 'succeeded', attempt: r.attempt };
  }

  async fail(p: Principal, input: FailInput & { retryable: boolean }): Promise<RunStateOutput> {
    const out = await this.failOrRequeue(input.runId, input.error, input.retryable, async (c) =>
      this.assertHolder(c, p, input.runId, input.leaseId, true),
    );
    return out!; // assertHolder throws rather than returning null
  }

  /**
   * The trainer hands a held run back (graceful stop): queued again with the same attempt number, so
   * deploys and Ctrl-C never use up a run's attempts. It resumes from its newest stored checkpoint.
   */
  async release(p: Principal, input: ReleaseInput): Promise<RunStateOutput> {
    this.forgetHolder(input.runId);
    const res = await withTx(this.pool, async (c) => {
      const r = await this.assertHolder(c, p, input.runId, input.leaseId, true);
      if (r.job_id) await this.boss.complete(r.queue, r.job_id, null, bossDb(c)).catch(() => {});
      await this.ensureQueue(r.queue);
      const jobId = await this.enqueue(c, r.queue, r.id);
      const { rows } = await c.query<{ checkpoint_epoch: number | null }>(
        `UPDATE runs SET status = 'queued', job_id = $2, trainer_id = NULL, lease_id = NULL,
           lease_expires_at = NULL WHERE id = $1 RETURNING checkpoint_epoch`,
        [r.id, jobId],
      );
      await this.event(c, r.id, 'released', r.attempt, {
        reason: storableText(input.reason),
        trainerId: r.trainer_id,
        ...(input.checkpointEpoch !== undefined ? { checkpointEpoch: input.checkpointEpoch } : {}),
        resumeFromEpoch: rows[0]?.checkpoint_epoch ?? null,
      });
      return r;
    });
    this.forgetHolder(res.id);
    this.hub.runStatus({ id: res.id, sweepId: res.sweep_id, status: 'queued', attempt: res.attempt });
    this.hub.workAvailable();
    return { runId: res.id, status: 'queued', attempt: res.attempt };
  }

  /** A lost lease or a retryable failure: requeue with attempt + 1 until maxAttempts, then fail. */
  private async failOrRequeue(
    runId: string,
    reason: string,
    retryable: boolean,
    lock: (c: pg.PoolClient) => Promise<HeldRow | null>,
    eventType = 'failed',
  ): Promise<RunStateOutput | null> {
    // Trainer text (an exception's message) may hold NUL and other controls Postgres text refuses.
    reason = storableText(reason);
    this.forgetHolder(runId);
    const res = await withTx(this.pool, async (c) => {
      const r = await lock(c);
      if (!r) return null;
      if (r.job_id) await this.boss.fail(r.queue, r.job_id, { reason }, bossDb(c)).catch(() => {});
      if (retryable && r.attempt < r.max_attempts) {
        await this.ensureQueue(r.queue);
        const jobId = await this.enqueue(c, r.queue, runId);
        await c.query(
          `UPDATE runs SET status = 'queued', attempt = attempt + 1, job_id = $2, trainer_id = NULL, lease_id = NULL,
             lease_expires_at = NULL, error = $3 WHERE id = $1`,
          [runId, jobId, reason],
        );
        await this.event(c, runId, eventType, r.attempt, { reason, requeued: true });
        return { r, status: 'queued' as const, attempt: r.attempt + 1 };
      }
      const final =
        retryable && r.attempt >= r.max_attempts ? `${reason} (gave up after ${r.attempt} attempts)` : reason;
      await c.query(
        `UPDATE runs SET status = 'failed', finished_at = now(), lease_expires_at = NULL, error = $2 WHERE id = $1`,
        [runId, final],
      );
      await this.event(c, runId, eventType, r.attempt, { reason: final, requeued: false });
      await this.maybeFinishSweep(c, r.sweep_id);
      return { r, status: 'failed' as const, attempt: r.attempt, error: final };
    });
    if (!res) return null;
    this.forgetHolder(runId);
    this.hub.runStatus({
      id: runId,
      sweepId: res.r.sweep_id,
      status: res.status,
      attempt: res.attempt,
      error: 'error' in res ? res.error : reason,
    });
    if (res.status === 'queued') this.hub.workAvailable();
    return { runId, status: res.status, attempt: res.attempt };
  }

  /**
   * Requeues (or fails) runs whose trainer stopped heart-beating. Only the cluster's leader reaps; even two
   * reapers would not requeue a run twice (each run is re-checked under a row lock).
   */
  async reapExpired(): Promise<number> {
    if (this.reaping || Date.now() < this.reapAfter || this.opts.isLeader?.() === false) return 0;
    this.reaping = true;
    try {
      const { rows } = await this.pool.query<{ id: string; trainer_id: string | null }>(
        `SELECT id, trainer_id FROM runs WHERE status = 'running' AND lease_expires_at < now() LIMIT 200`,
      );
      let n = 0;
      for (const row of rows) {
        const done = await this.failOrRequeue(
          row.id,
          `lease expired: trainer ${row.trainer_id ?? '?'} missed heartbeats for ${this.opts.leaseSeconds}s`,
          true,
          async (c) => {
            const { rows: locked } = await c.query<HeldRow>(
              `SELECT id, sweep_id, status, lease_id, attempt, max_attempts, queue, job_id, trainer_id FROM runs
               WHERE id = $1 AND status = 'running' AND lease_expires_at < now() FOR UPDATE SKIP LOCKED`,
              [row.id],
            );
            return locked[0] ?? null;
          },
          'lease_expired',
        );
        if (done) n++;
      }
      if (n) {
        await this.pool.query(
          `UPDATE trainers SET state = 'offline' WHERE last_heartbeat < now() - make_interval(secs => $1)`,
          [this.opts.leaseSeconds],
        );
      }
      return n;
    } finally {
      this.reaping = false;
    }
  }
}
