// Who may call what: every tRPC procedure of the contract and every HTTP route, called with no token, an
// admin token, a member who does not own the target, the member who does, and a trainer token that holds
// another run. The procedure list comes from apiContract and the route list from the API's Nest modules: a
// new procedure or route without a row fails here.
import {
  createHeadbenchClient,
  type HeadbenchClient,
  type LeasedRun,
  uploadArtifact,
} from '@headbench/client';
import { apiContract, walkContract } from '@headbench/spec';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The API's feature modules: the HTTP routes are read from their Nest metadata.
import { FeaturesModule } from '../../apps/api/src/modules/features.module.ts';
import { startTestApi, type TestApi, trpcRaw, waitFor } from './helpers.js';

/** Nest's RequestMethod numbers, as route metadata stores them. */
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'ALL', 'OPTIONS', 'HEAD'];
/** Every HTTP route the API's feature modules declare, as `METHOD /path`, read from Nest's metadata. */
function declaredRoutes(): string[] {
  const out: string[] = [];
  const visit = (mod: object) => {
    for (const ctrl of (Reflect.getMetadata('controllers', mod) ?? []) as (new () => object)[]) {
      const base = String(Reflect.getMetadata('path', ctrl) ?? '').replace(/^\/|\/$/g, '');
      const proto = ctrl.prototype as Record<string, unknown>;
      for (const name of Object.getOwnPropertyNames(proto)) {
        const handler = proto[name];
        if (name === 'constructor' || typeof handler !== 'function') continue;
        const path = Reflect.getMetadata('path', handler);
        if (path === undefined) continue;
        const full = [base, String(path).replace(/^\/|\/$/g, '')].filter(Boolean).join('/');
        out.push(`${METHODS[Reflect.getMetadata('method', handler) as number]} /${full}`);
      }
    }
    for (const m of (Reflect.getMetadata('imports', mod) ?? []) as object[]) visit(m);
  };
  visit(FeaturesModule);
  return out.sort();
}

const CALLERS = ['none', 'admin', 'member', 'owner', 'trainer'] as const;
type Caller = (typeof CALLERS)[number];
/** Expected HTTP status per caller, in CALLERS order. */
type Row = [number, number, number, number, number];

const ALL_PEOPLE: Row = [401, 200, 200, 200, 403];
const OWNER_OR_ADMIN: Row = [401, 200, 403, 200, 403];
const ADMIN_ONLY: Row = [401, 200, 403, 403, 403];
const ANY_TOKEN: Row = [401, 200, 200, 200, 200];
/** Trainer procedures on its own trainer row: only that trainer's token. */
const OWN_TRAINER: Row = [401, 403, 403, 403, 200];
/** Trainer procedures on a run another trainer holds: nobody but the holder (not in this table). */
const HOLDER_ONLY: Row = [401, 403, 403, 403, 403];

const spec = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  datasets: ['generated:flowers17?perClass=4'],
  backbones: ['smallcnn' as const],
  heads: ['gap' as const],
  optimizers: ['adam' as const],
  epochs: 1,
  batchSize: 8,
  size: 32,
  lr: 0.001,
  // No trainer of this test serves this queue: runs stay queued unless a test leases them on purpose.
  requires: { backend: 'parked' },
  ...extra,
});

let api: TestApi;
let admin: HeadbenchClient;
const tokens = {} as Record<Exclude<Caller, 'none'>, string>;
let holder: HeadbenchClient;
let holderToken: string;
let otherTrainerId: string;
let seq = 0;

/** A new sweep of the owner's, one queued run. */
async function ownedSweep() {
  const c = createHeadbenchClient({ url: api.url, token: tokens.owner });
  return c.sweeps.create.mutate(spec(`s${++seq}`));
}
/** A run of the owner's held by the holder trainer (not the `trainer` caller), with one artifact. */
async function heldRun(): Promise<LeasedRun & { artifactId: string }> {
  const c = createHeadbenchClient({ url: api.url, token: tokens.owner });
  await c.sweeps.create.mutate(spec(`held${++seq}`, { requires: { backend: 'holder' } }));
  // A trainer row per held run: leases never exceed a trainer's registered slots, and these runs stay held.
  const { trainerId } = await holder.trainer.register.mutate({
    name: `holder${seq}`,
    capabilities: { backend: 'holder' },
  });
  const run = await waitFor(
    async () => (await holder.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs[0],
    10_000,
    'a lease',
  );
  const art = await uploadArtifact({
    url: api.url,
    token: holderToken,
    runId: run.runId,
    leaseId: run.leaseId,
    name: 'report.md',
    kind: 'report',
    body: Buffer.from('# report'),
  });
  return { ...run, artifactId: art.id };
}

/** Each procedure: the input for one call (fresh targets, so calls do not depend on each other) and the row. */
const TABLE: Record<string, { input?: () => Promise<unknown> | unknown; expect: Row }> = {
  whoami: { expect: ANY_TOKEN },
  'meta.names': { expect: ANY_TOKEN },
  'sweeps.create': { input: () => spec(`c${++seq}`), expect: ALL_PEOPLE },
  'sweeps.list': { expect: ALL_PEOPLE },
  'sweeps.get': { input: async () => ({ id: (await ownedSweep()).id }), expect: ALL_PEOPLE },
  'sweeps.cancel': { input: async () => ({ id: (await ownedSweep()).id }), expect: OWNER_OR_ADMIN },
  'sweeps.rerun': {
    input: async () => ({ id: (await ownedSweep()).id, mode: 'failed' }),
    expect: OWNER_OR_ADMIN,
  },
  'runs.list': { expect: ALL_PEOPLE },
  'runs.get': { input: async () => ({ id: (await ownedSweep()).runIds[0] }), expect: ALL_PEOPLE },
  'runs.metrics': { input: async () => ({ runId: (await ownedSweep()).runIds[0] }), expect: ALL_PEOPLE },
  'runs.compare': {
    input: async () => ({ sweepId: (await ownedSweep()).id }),
    expect: ALL_PEOPLE,
  },
  'runs.cancel': { input: async () => ({ id: (await ownedSweep()).runIds[0] }), expect: OWNER_OR_ADMIN },
  'runs.retry': {
    input: async () => {
      const s = await ownedSweep();
      await admin.runs.cancel.mutate({ id: s.runIds[0] });
      return { id: s.runIds[0] };
    },
    expect: OWNER_OR_ADMIN,
  },
  'trainers.list': { expect: ALL_PEOPLE },
  'live.ticket': { expect: ALL_PEOPLE },
  'datasets.register': {
    input: () => ({ name: `d${++seq}`, uri: '/data/set', classes: ['a'] }),
    expect: ALL_PEOPLE,
  },
  'datasets.list': { expect: ALL_PEOPLE },
  'artifacts.list': { input: async () => ({ runId: (await heldRun()).runId }), expect: ALL_PEOPLE },
  'artifacts.download': { input: async () => ({ id: (await heldRun()).artifactId }), expect: ALL_PEOPLE },
  'tokens.create': { input: () => ({ name: `k${++seq}`, role: 'member' }), expect: ADMIN_ONLY },
  'tokens.list': { expect: ADMIN_ONLY },
  'tokens.revoke': {
    input: async () => ({ id: (await admin.tokens.create.mutate({ name: `r${++seq}`, role: 'member' })).id }),
    expect: ADMIN_ONLY,
  },
  'trainer.register': {
    input: () => ({ name: `box${++seq}`, capabilities: { backend: 'cpu' } }),
    expect: [401, 200, 403, 403, 200],
  },
  'trainer.lease': { input: () => ({ trainerId: otherTrainerId, freeSlots: 1 }), expect: OWN_TRAINER },
  // 200 for its own trainer row, but the run it names (held by another) comes back as `cancel`.
  'trainer.heartbeat': {
    input: async () => {
      const r = await heldRun();
      return { trainerId: otherTrainerId, runs: [{ runId: r.runId, leaseId: r.leaseId }] };
    },
    expect: OWN_TRAINER,
  },
  'trainer.reportMetrics': {
    input: async () => {
      const r = await heldRun();
      return { runId: r.runId, leaseId: r.leaseId, points: [{ name: 'loss', step: 0, value: 1 }] };
    },
    expect: HOLDER_ONLY,
  },
  'trainer.complete': {
    input: async () => {
      const r = await heldRun();
      return { runId: r.runId, leaseId: r.leaseId };
    },
    expect: HOLDER_ONLY,
  },
  'trainer.fail': {
    input: async () => {
      const r = await heldRun();
      return { runId: r.runId, leaseId: r.leaseId, error: 'nope' };
    },
    expect: HOLDER_ONLY,
  },
  'trainer.release': {
    input: async () => {
      const r = await heldRun();
      return { runId: r.runId, leaseId: r.leaseId, reason: 'nope' };
    },
    expect: HOLDER_ONLY,
  },
  'trainer.uploadArtifact': {
    input: async () => {
      const r = await heldRun();
      return {
        runId: r.runId,
        leaseId: r.leaseId,
        name: 'evil.txt',
        kind: 'report',
        contentBase64: Buffer.from('x').toString('base64'),
      };
    },
    expect: HOLDER_ONLY,
  },
};

const tokenOf = (c: Caller) => (c === 'none' ? null : tokens[c]);

beforeAll(async () => {
  api = await startTestApi({ leaseSeconds: 60 });
  admin = createHeadbenchClient({ url: api.url, token: api.token });
  tokens.admin = api.token;
  tokens.member = (await admin.tokens.create.mutate({ name: 'bob', role: 'member', user: 'bob' })).token;
  tokens.owner = (await admin.tokens.create.mutate({ name: 'alice', role: 'member', user: 'alice' })).token;
  holderToken = (await admin.tokens.create.mutate({ name: 'holder', role: 'trainer', user: 'gpu1' })).token;
  holder = createHeadbenchClient({ url: api.url, token: holderToken, batch: false });
  tokens.trainer = (await admin.tokens.create.mutate({ name: 'other', role: 'trainer', user: 'gpu2' })).token;
  const other = createHeadbenchClient({ url: api.url, token: tokens.trainer, batch: false });
  otherTrainerId = (await other.trainer.register.mutate({ name: 'other', capabilities: { backend: 'cpu' } }))
    .trainerId;
});
afterAll(async () => {
  await api?.dispose();
});

describe('role × procedure', () => {
  it('has a row for every procedure of the contract', () => {
    const paths: string[] = [];
    walkContract(apiContract, (path) => paths.push(path));
    expect(Object.keys(TABLE).sort()).toEqual(paths.sort());
  });

  const procedures: { path: string; kind: string }[] = [];
  walkContract(apiContract, (path, p) => procedures.push({ path, kind: p.kind }));
  it.each(procedures)('$path answers each caller as its row says', async ({ path, kind }) => {
    const row = TABLE[path];
    const got: number[] = [];
    for (const caller of CALLERS) {
      const input = row.input ? await row.input() : undefined;
      const res = await trpcRaw(api.url, path, tokenOf(caller), input, kind === 'query' ? 'GET' : 'POST');
      got.push(res.status);
    }
    expect(got).toEqual(row.expect);
  });

  it('HTTP routes answer each caller as their row says', async () => {
    const call = async (caller: Caller, method: string, path: string, body?: Buffer) => {
      const t = tokenOf(caller);
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers: t ? { authorization: `Bearer ${t}` } : {},
        body,
      });
      await res.arrayBuffer();
      return res.status;
    };
    const routes: {
      name: string;
      make: () => Promise<{ method: string; path: string; body?: Buffer }>;
      expect: Row;
    }[] = [
      {
        name: 'GET /health',
        make: async () => ({ method: 'GET', path: '/health' }),
        expect: [200, 200, 200, 200, 200],
      },
      {
        // A run held by another trainer.
        name: 'PUT /artifacts/:runId/:name',
        make: async () => {
          const r = await heldRun();
          return {
            method: 'PUT',
            path: `/artifacts/${r.runId}/evil.txt?kind=report&leaseId=${r.leaseId}`,
            body: Buffer.from('x'),
          };
        },
        expect: [401, 403, 403, 403, 403],
      },
      {
        // An artifact of a run held by another trainer.
        name: 'GET /artifacts/:id/content',
        make: async () => ({ method: 'GET', path: `/artifacts/${(await heldRun()).artifactId}/content` }),
        expect: [401, 200, 200, 200, 403],
      },
      {
        name: 'PUT /datasets/:name',
        make: async () => ({
          method: 'PUT',
          path: `/datasets/up${++seq}?format=zip`,
          body: Buffer.from('PK'),
        }),
        expect: [401, 201, 201, 201, 403],
      },
      {
        // No run of the trainer uses it.
        name: 'GET /datasets/:name/content',
        make: async () => {
          const name = `get${++seq}`;
          await fetch(`${api.url}/datasets/${name}?format=zip`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${tokens.owner}` },
            body: Buffer.from('PK'),
          });
          return { method: 'GET', path: `/datasets/${name}/content` };
        },
        expect: [401, 200, 200, 200, 403],
      },
      {
        // Public package contents: any valid token, trainers included (leases name these files).
        name: 'GET /weights/:source/:file',
        make: async () => ({
          method: 'GET',
          path: `/weights/${encodeURIComponent('npm:nsfwjs/mobilenet_v2')}/model.json`,
        }),
        expect: [401, 200, 200, 200, 200],
      },
    ];
    // A new route without a row here fails.
    expect(routes.map((r) => r.name).sort()).toEqual(declaredRoutes());
    const table: Record<string, number[]> = {};
    const want: Record<string, number[]> = {};
    for (const r of routes) {
      table[r.name] = [];
      want[r.name] = r.expect;
      for (const caller of CALLERS) {
        const { method, path, body } = await r.make();
        table[r.name].push(await call(caller, method, path, body));
      }
    }
    expect(table).toEqual(want);
  });

  it('/live takes people (token or live ticket), never trainers; a ticket opens nothing else and expires', async () => {
    const connect = (auth: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const s = io(`${api.url}/live`, { auth, transports: ['websocket'], reconnection: false });
        s.on('connect', () => {
          s.close();
          resolve('connected');
        });
        s.on('connect_error', (e) => {
          s.close();
          resolve(e.message);
        });
      });
    const ticketOf = async (token: string) =>
      (await createHeadbenchClient({ url: api.url, token }).live.ticket.query()).ticket;
    expect(await connect({})).toBe('unauthorized');
    expect(await connect({ token: tokens.member })).toBe('connected');
    expect(await connect({ token: tokens.trainer })).toBe(
      'forbidden: trainer tokens cannot watch dashboards',
    );
    const ticket = await ticketOf(tokens.member);
    expect(await connect({ ticket })).toBe('connected');
    // A forged signature, or a ticket used as a token, opens nothing.
    const forged = `${ticket.slice(0, -4)}${ticket.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    expect(await connect({ ticket: forged })).toBe('unauthorized');
    expect((await trpcRaw(api.url, 'runs.list', ticket, undefined, 'GET')).status).toBe(401);
    expect(
      (await fetch(`${api.url}/health`, { headers: { authorization: `Bearer ${ticket}` } })).status,
    ).toBe(200);
    // Expired past its lifetime; dead once its token is revoked.
    expect(await api.services.tickets.verify(ticket, Date.now() + 301_000)).toBeNull();
    const short = await admin.tokens.create.mutate({ name: 'short', role: 'member' });
    const shortTicket = await ticketOf(short.token);
    expect(await connect({ ticket: shortTicket })).toBe('connected');
    await admin.tokens.revoke.mutate({ id: short.id });
    expect(await connect({ ticket: shortTicket })).toBe('unauthorized');
  });
});
