// Issue 15's attacks on the dashboard, against the real Next server and API process: the token in the
// page payload (#5), cross-site sign-in/out posts, off-site `next` redirects and the cookie's Secure flag
// (#14), and an oversized body through the tRPC proxy (#16). No browser needed: these are HTTP facts.
import { createHeadbenchClient } from '@headbench/client';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiProcess, buildWeb, startApi, startWeb, type WebServer } from './harness.js';

let api: ApiProcess;
let web: WebServer;
let token: string;
let sweepId: string;
let runId: string;

beforeAll(async () => {
  [api] = await Promise.all([startApi(), buildWeb()]);
  web = await startWeb(api.url);
  const admin = createHeadbenchClient({ url: api.url, token: api.adminToken });
  token = (await admin.tokens.create.mutate({ name: 'carol', role: 'member', user: 'carol' })).token;
  const s = await createHeadbenchClient({ url: api.url, token }).sweeps.create.mutate({
    name: 'payload check',
    datasets: ['generated:flowers17?perClass=4'],
    backbones: ['smallcnn'],
    heads: ['gap'],
    optimizers: ['adam'],
    epochs: 1,
    batchSize: 8,
    size: 32,
    lr: 0.001,
    requires: { backend: 'parked' }, // no trainer: the run stays queued
  });
  sweepId = s.id;
  runId = s.runIds[0];
}, 400_000);

afterAll(async () => {
  await web?.stop();
  await api?.dispose();
});

/** POST a sign-in form the way a browser on `origin` would. */
const signIn = (form: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${web.url}/auth/signin`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
const cookie = () => `hb_token=${encodeURIComponent(token)}`;

describe('issue 15: attacks on the dashboard', () => {
  it('#14 sign-in: same-site posts sign in; cross-site posts are refused; the cookie is Secure behind TLS', async () => {
    const ok = await signIn(
      { token, next: `/sweeps/${sweepId}` },
      { origin: web.url, 'sec-fetch-site': 'same-origin' },
    );
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe(`/sweeps/${sweepId}`);
    const set = ok.headers.get('set-cookie') ?? '';
    expect(set).toMatch(/^hb_token=hb_[\w%-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    // Behind a TLS-terminating proxy the cookie must not travel over plain http.
    const tls = await signIn({ token }, { origin: web.url, 'x-forwarded-proto': 'https' });
    expect(tls.headers.get('set-cookie')).toMatch(/; Secure$/);

    // Login CSRF: another site's form signing the visitor in (as the attacker), or out.
    const crossSite: Record<string, string>[] = [
      { origin: 'http://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: 'http://sub.127.0.0.1.nip.io' },
      { origin: 'null' },
    ];
    for (const headers of crossSite) {
      const res = await signIn({ token }, headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.headers.get('set-cookie')).toBeNull();
      const out = await fetch(`${web.url}/auth/signout`, {
        method: 'POST',
        redirect: 'manual',
        headers: { ...headers, cookie: cookie() },
      });
      expect(out.status).toBe(403);
      expect(out.headers.get('set-cookie')).toBeNull();
    }
    const out = await fetch(`${web.url}/auth/signout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: web.url, cookie: cookie() },
    });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/^hb_token=; .*Max-Age=0/);
  });

  it('#14 next= never leads off-site (/\\evil.example, //evil.example, absolute URLs, control characters)', async () => {
    for (const next of [
      '/\\evil.example',
      '/\\/evil.example',
      '//evil.example',
      '///evil.example',
      'https://evil.example/',
      '/\t/evil.example',
      '/%0a/evil.example'.replace('%0a', '\n'),
      'javascript:alert(1)',
    ]) {
      const res = await signIn({ token, next }, { origin: web.url });
      expect(res.status, next).toBe(303);
      expect(res.headers.get('location'), next).toBe('/sweeps');
    }
    const inside = await signIn({ token, next: `/runs/${runId}?tab=cams` }, { origin: web.url });
    expect(inside.headers.get('location')).toBe(`/runs/${runId}?tab=cams`);
  });

  it('#5 no token in the page payload: HTML, flight data and every script of the live pages', async () => {
    const seen = new Set<string>();
    const needles = [token, encodeURIComponent(token), token.slice(3)];
    for (const page of [`/sweeps/${sweepId}`, `/runs/${runId}`]) {
      const res = await fetch(`${web.url}${page}`, { headers: { cookie: cookie() } });
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain(page.startsWith('/sweeps') ? 'payload check' : runId); // the real page
      for (const n of needles) expect(html.includes(n), `${page} HTML holds the token`).toBe(false);
      for (const [, src] of html.matchAll(/<script[^>]+src="([^"]+)"/g)) seen.add(src);
    }
    expect(seen.size).toBeGreaterThan(0);
    for (const src of seen) {
      const js = await (await fetch(new URL(src, web.url), { headers: { cookie: cookie() } })).text();
      for (const n of needles) expect(js.includes(n), `${src} holds the token`).toBe(false);
    }
    // What the page's script uses instead: a live ticket from the proxy, which opens the /live socket.
    const got = await fetch(`${web.url}/api/trpc/live.ticket`, { headers: { cookie: cookie() } });
    expect(got.status).toBe(200);
    const { ticket } = ((await got.json()) as { result: { data: { ticket: string } } }).result.data;
    expect(ticket).not.toContain(token);
    const joined = await new Promise<unknown>((resolve, reject) => {
      const s = io(`${api.url}/live`, { auth: { ticket }, transports: ['websocket'], reconnection: false });
      s.on('connect_error', (e) => reject(e));
      s.on('connect', () =>
        s.emit('subscribe', { rooms: [`sweep:${sweepId}`] }, (ack: unknown) => {
          s.close();
          resolve(ack);
        }),
      );
    });
    expect(joined).toEqual({ ok: true, rooms: [`sweep:${sweepId}`] });
  });

  it('#16 the tRPC proxy refuses an oversized body with 413, with or without a length header', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) });
    const declared = await fetch(`${web.url}/api/trpc/sweeps.create`, {
      method: 'POST',
      headers: { cookie: cookie(), 'content-type': 'application/json' },
      body: big,
    });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { message: string } }).error.message).toBe(
      'request body exceeds 1048576 bytes (HEADBENCH_WEB_MAX_BODY_BYTES)',
    );
    // Chunked: no content-length to check up front; the proxy counts while reading.
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 40; i++) c.enqueue(new Uint8Array(64 * 1024).fill(0x20));
        c.close();
      },
    });
    const streamed = await fetch(`${web.url}/api/trpc/sweeps.create`, {
      method: 'POST',
      headers: { cookie: cookie(), 'content-type': 'application/json' },
      body: chunks,
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    // Ordinary calls still go through, and nothing of the refused ones reached the API.
    const list = await fetch(`${web.url}/api/trpc/sweeps.list`, { headers: { cookie: cookie() } });
    expect(list.status).toBe(200);
    const sweeps = ((await list.json()) as { result: { data: { name: string }[] } }).result.data;
    expect(sweeps.map((s) => s.name)).toEqual(['payload check']);
  });
});
