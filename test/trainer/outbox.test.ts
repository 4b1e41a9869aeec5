// The trainer's outbox against a real HTTP server that answers like an API in trouble: a final report
// it keeps refusing with 500 (Postgres cannot store a NUL) is replaced after a bounded number of tries by a
// failure it can store; a journal on a full disk does not stop reporting; the journal is trimmed once
// everything in it is acknowledged.
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiLink } from '../../apps/trainer/src/worker/api.js';
import { Outbox } from '../../apps/trainer/src/worker/outbox.js';

const RUN = '00000000-0000-4000-8000-000000000001';
const LEASE = '00000000-0000-4000-8000-000000000002';

describe('trainer outbox', () => {
  let tmp: string;
  let server: Server;
  let url: string;
  /** Procedure and JSON input of every call, in order. */
  let calls: { proc: string; input: Record<string, unknown> }[];
  /** Procedures answered with 500 (and when: every call, or only inputs holding a NUL). */
  let refuse: Record<string, 'always' | 'nul'>;
  const logs: string[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'headbench-outbox-'));
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const proc = new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/trpc\//, '');
        const input = JSON.parse(body || '{}');
        calls.push({ proc, input });
        const mode = refuse[proc];
        if (mode === 'always' || (mode === 'nul' && body.includes('\\u0000'))) {
          res.writeHead(500, { 'content-type': 'application/json' });
          return res.end(
            JSON.stringify({
              error: {
                message: 'invalid byte sequence for encoding "UTF8": 0x00',
                code: -32603,
                data: { code: 'INTERNAL_SERVER_ERROR', httpStatus: 500, path: proc },
              },
            }),
          );
        }
        const data =
          proc === 'trainer.reportMetrics'
            ? { inserted: (input.points as unknown[]).length, duplicates: 0 }
            : { runId: RUN, status: 'failed', attempt: 1 };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ result: { data } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => {
    calls = [];
    refuse = {};
    logs.length = 0;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await rm(tmp, { recursive: true, force: true });
  });

  let n = 0;
  const outbox = (dir = join(tmp, `run-${n++}`)) =>
    new Outbox({
      api: new ApiLink(url, 'test-token'),
      runId: RUN,
      leaseId: LEASE,
      dir,
      lastSteps: {},
      onLost: (why) => logs.push(`lost: ${why}`),
      log: (m) => logs.push(m),
      finalReportTries: 3,
    });

  it('NUL in an error message: a failure report refused with 500 is retried 3 times, then sent as storable text', async () => {
    refuse = { 'trainer.fail': 'nul' };
    const box = outbox();
    box.push({ t: 'fail', error: 'cannot parse model.json: bad byte \u0000 here', retryable: true });
    await box.drain();
    const fails = calls.filter((c) => c.proc === 'trainer.fail');
    expect(fails.length).toBe(4);
    expect(fails.at(-1)?.input).toMatchObject({
      error: 'cannot parse model.json: bad byte \\x00 here',
      retryable: false,
    });
    expect(logs.join('\n')).toMatch(/the API refused its fail report .*failing the run with what is known/);
  });

  it('a complete report refused with 500 every time ends as a failure that says so, not a run left running', async () => {
    refuse = { 'trainer.complete': 'always' };
    const box = outbox();
    box.push({ t: 'complete', input: { backend: 'wasm', timings: { seconds: 1 } } });
    await box.drain();
    expect(calls.filter((c) => c.proc === 'trainer.complete').length).toBe(3);
    const fail = calls.find((c) => c.proc === 'trainer.fail');
    expect(fail?.input.error).toMatch(/^the API refused the run's final report \(invalid byte sequence/);
  });

  it('disk full: a journal that cannot be written (ENOSPC) is logged once and reporting goes on', async () => {
    const dir = join(tmp, 'full');
    await mkdir(dir, { recursive: true });
    await symlink('/dev/full', join(dir, 'journal.jsonl'));
    const box = outbox(dir);
    for (let step = 1; step <= 3; step++)
      box.push({ t: 'metrics', points: [{ name: 'loss', step, value: 1 / step, time: Date.now() }] });
    box.push({ t: 'complete', input: { backend: 'wasm' } });
    await box.drain();
    const sent = calls
      .filter((c) => c.proc === 'trainer.reportMetrics')
      .flatMap((c) => c.input.points as unknown[]);
    expect(sent.length).toBe(3);
    expect(calls.at(-1)?.proc).toBe('trainer.complete');
    const journalLogs = logs.filter((l) => /outbox journal/.test(l));
    expect(journalLogs).toEqual([
      `run ${RUN}: cannot write its outbox journal (disk full); keeping the outbox in memory only`,
    ]);
  });

  it('trims the journal once everything in it is acknowledged', async () => {
    const dir = join(tmp, 'trim');
    const box = outbox(dir);
    for (let step = 1; step <= 50; step++)
      box.push({ t: 'metrics', points: [{ name: 'loss', step, value: step, time: Date.now() }] });
    await box.drain();
    const lines = (await readFile(join(dir, 'journal.jsonl'), 'utf8')).trim().split('\n');
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0])).toMatchObject({ t: 'trimmed', seq: 50 });
  });
});
