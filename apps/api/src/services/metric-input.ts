import { LIMITS, type MetricPoint } from '@headbench/spec';
import { z } from 'zod';

/**
 * Hand-written check of a `metrics` message on the /trainers socket: the same rules as the tRPC
 * `ReportMetricsInput` schema (zod costs more than the insert for 100-point batches), and the first
 * problem found is named precisely (`points[3].step: ...`). Unknown keys are ignored, as zod strips them.
 */
export type ParsedReport =
  | { ok: true; runId: string; leaseId: string; points: MetricPoint[] }
  | { ok: false; error: string };

const INT32_MAX = 2_147_483_647;
const NAME_RE = /^[\w./-]+$/;
const uuid = z.uuid();

const show = (v: unknown) => {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  if (typeof v === 'number') return String(v);
  return Array.isArray(v) ? 'an array' : typeof v;
};

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function pointError(p: unknown, i: number): string | null {
  const at = `points[${i}]`;
  if (typeof p !== 'object' || p === null || Array.isArray(p))
    return `${at}: expected an object { name, step, value, epoch?, time? }, got ${show(p)}`;
  const { name, step, epoch, value, time } = p as Record<string, unknown>;
  if (typeof name !== 'string' || name.length < 1 || name.length > LIMITS.metricName)
    return `${at}.name: expected a string of 1 to ${LIMITS.metricName} characters, got ${show(name)}`;
  if (!NAME_RE.test(name)) return `${at}.name: letters, digits and . / - _ only, got ${show(name)}`;
  if (!isInt(step, 0, INT32_MAX))
    return `${at}.step: expected an integer from 0 to ${INT32_MAX}, got ${show(step)}`;
  if (epoch !== undefined && !isInt(epoch, 0, INT32_MAX))
    return `${at}.epoch: expected an integer from 0 to ${INT32_MAX} or no epoch, got ${show(epoch)}`;
  if (typeof value !== 'number' || !Number.isFinite(value))
    return `${at}.value: expected a finite number, got ${show(value)}`;
  if (time !== undefined && !isInt(time, 1, Number.MAX_SAFE_INTEGER))
    return `${at}.time: expected a positive integer (ms since epoch) or no time, got ${show(time)}`;
  return null;
}

export function parseReportMetrics(body: unknown): ParsedReport {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { ok: false, error: `expected an object { runId, leaseId, points }, got ${show(body)}` };
  const { runId, leaseId, points } = body as Record<string, unknown>;
  if (typeof runId !== 'string' || !uuid.safeParse(runId).success)
    return { ok: false, error: `runId: expected a uuid, got ${show(runId)}` };
  if (typeof leaseId !== 'string' || !uuid.safeParse(leaseId).success)
    return { ok: false, error: `leaseId: expected a uuid, got ${show(leaseId)}` };
  if (!Array.isArray(points)) return { ok: false, error: `points: expected an array, got ${show(points)}` };
  if (points.length < 1 || points.length > LIMITS.metricBatch)
    return {
      ok: false,
      error: `points: expected 1 to ${LIMITS.metricBatch} points, got ${points.length}`,
    };
  const out = new Array<MetricPoint>(points.length);
  for (let i = 0; i < points.length; i++) {
    const err = pointError(points[i], i);
    if (err) return { ok: false, error: err };
    const p = points[i] as MetricPoint;
    // Only the protocol's fields travel on (into the insert and to dashboards).
    out[i] = { name: p.name, step: p.step, epoch: p.epoch, value: p.value, time: p.time };
  }
  return { ok: true, runId, leaseId, points: out };
}
