// The run queue's building blocks: pg-boss queue names per requirement class, time-ordered job ids, and
// pg-boss working inside our own transactions.
import { randomBytes } from 'node:crypto';
import type { Requirements } from '@headbench/spec';
import type pg from 'pg';

/** pg-boss runs its SQL on our transaction's connection, so job and run rows change together. */
export const bossDb = (c: pg.PoolClient) => ({
  db: { executeSql: (text: string, values?: unknown[]) => c.query(text, values) },
});

let lastMs = 0;
let seq = 0;
/**
 * Time-ordered UUIDs (v7 layout, with a per-ms counter): pg-boss hands out equal-priority jobs created in
 * the same instant by id, so these keep a sweep's runs in grid order.
 */
export function orderedUuid(): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    seq = 0;
  } else if (++seq > 0xfff) {
    lastMs++;
    seq = 0;
  }
  const b = randomBytes(16);
  b.writeUIntBE(lastMs, 0, 6);
  b[6] = 0x70 | (seq >> 8);
  b[7] = seq & 0xff;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const ANY = 'any';
/** One queue per requirement class; a trainer fetches from every class it satisfies, most specific first. */
export function queueFor(req?: Requirements): string {
  return `runs.${req?.gpu ? 'gpu' : ANY}.${req?.backend ?? ANY}`;
}
export function queuesFor(cap: { backend: string; gpu?: boolean }): string[] {
  const gpus = cap.gpu ? ['gpu', ANY] : [ANY];
  const backends = [cap.backend, ANY];
  const out: string[] = [];
  for (const g of gpus) for (const b of backends) out.push(`runs.${g}.${b}`);
  return [...new Set(out)];
}
