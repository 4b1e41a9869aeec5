import { randomBytes } from 'node:crypto';
import { readEnv } from '@headbench/spec';
import { createTRPCClient, httpLink } from '@trpc/client';
import pg from 'pg';
import type { AppRouter } from '../src/trpc/router.js';

/** A tRPC client typed by this app's own router (cross-app tests use @headbench/client instead). */
export const apiClient = (url: string, token: string) =>
  createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${url}/trpc`, headers: { authorization: `Bearer ${token}` } })],
  });

/** The CI/dev Postgres (trust auth). Each test file gets its own database, dropped afterwards. */
export const PG_ADMIN_URL = readEnv(process.env).HEADBENCH_TEST_PG;

export async function freshDatabase(): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `headbench_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 15000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function trpcRaw(
  url: string,
  path: string,
  token: string | null,
  input?: unknown,
  method: 'GET' | 'POST' = 'POST',
) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res =
    method === 'POST'
      ? await fetch(`${url}/trpc/${path}`, {
          method,
          headers,
          body: input === undefined ? undefined : typeof input === 'string' ? input : JSON.stringify(input),
        })
      : await fetch(
          `${url}/trpc/${path}${input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`}`,
          { headers },
        );
  return {
    status: res.status,
    body: (await res.json()) as {
      result?: { data: unknown };
      error?: { message: string; data: { code: string; issues?: { path: string }[] } };
    },
  };
}
