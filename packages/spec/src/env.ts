// Every environment variable headbench reads, in one place: its name, type, default, what it does and
// who reads it. `readEnv` parses them (a bad value is an error naming the variable); the README's
// "Environment" table is checked against this list by a test.
import { z } from 'zod';
import { formatIssues } from './fields.ts';
import { TRAINER_LIMITS } from './trainer-limits.ts';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const flag = z.enum(['0', '1']).transform((v) => v === '1');
const url = z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/$/, ''));
const text = z.string().min(1).max(4096);

export type EnvReader = 'api' | 'launcher' | 'trainer' | 'cli' | 'web' | 'engine' | 'tests' | 'bench';

interface EnvVar<T extends z.ZodType = z.ZodType> {
  schema: T;
  doc: string;
  /** Shown in the table; applied by readEnv when the variable is unset. */
  default?: string;
  readers: EnvReader[];
  /** Older names still read, with a warning. */
  aliases?: string[];
}

/** One variable; remembers in its type whether it has a default (then reading it never gives undefined). */
const v = <T extends z.ZodType, const D extends string | undefined = undefined>(
  d: Omit<EnvVar<T>, 'default'> & { default?: D },
) => d as EnvVar<T> & { default: D };

export const ENV = {
  HEADBENCH_HOME: v({
    schema: text,
    doc: 'State folder: embedded Postgres, artifacts, the admin token, generated datasets, caches (default: .headbench where the command runs)',
    readers: ['api', 'launcher', 'trainer'],
  }),
  DATABASE_URL: v({
    schema: z.string().regex(/^postgres(ql)?:\/\//, { error: 'must be a postgresql:// URL' }),
    doc: 'Postgres of the API; unset: an embedded Postgres under HEADBENCH_HOME',
    readers: ['api', 'launcher'],
  }),
  PORT: v({
    schema: int(0, 65_535),
    doc: 'API port, default 4000 (0: any free port; `npm start` falls back to a free one when 4000 is taken); the dashboard process gets its own PORT from the launcher',
    readers: ['api', 'launcher', 'web'],
  }),
  HOST: v({
    schema: text,
    doc: 'Address the API listens on (0.0.0.0 serves other machines)',
    default: '127.0.0.1',
    readers: ['api'],
  }),
  WEB_PORT: v({
    schema: int(1, 65_535),
    doc: 'Dashboard port under `npm start`',
    default: '3000',
    readers: ['launcher'],
  }),
  HEADBENCH_NO_WEB: v({
    schema: flag,
    doc: '1: `npm start` runs no dashboard',
    default: '0',
    readers: ['launcher'],
  }),
  HEADBENCH_API: v({
    schema: url,
    doc: 'API base URL for trainers, `headbench submit` and the dashboard server',
    aliases: ['HEADBENCH_API_URL'],
    readers: ['trainer', 'cli', 'web'],
  }),
  HEADBENCH_PUBLIC_API_URL: v({
    schema: url,
    doc: "API URL browsers use for live updates, when it differs from the dashboard server's",
    readers: ['web'],
  }),
  HEADBENCH_SECURE_COOKIE: v({
    schema: flag,
    doc: "1: the dashboard's session cookie is always `Secure` (without it: when the request came over https or with `X-Forwarded-Proto: https`)",
    default: '0',
    readers: ['web'],
  }),
  HEADBENCH_WEB_MAX_BODY_BYTES: v({
    schema: int(1024, 64 * 1024 * 1024),
    doc: "Largest request body the dashboard's API proxy forwards (larger: 413)",
    default: '1048576',
    readers: ['web'],
  }),
  HEADBENCH_TOKEN: v({
    schema: text,
    doc: 'Token of `headbench-trainer` (trainer role) and `headbench submit` (member)',
    readers: ['trainer', 'cli'],
  }),
  HEADBENCH_READ_TOKEN: v({
    schema: text,
    doc: 'Member token for trainers of APIs older than leases that carry datasets and models',
    readers: ['trainer'],
  }),
  HEADBENCH_TOKEN_FILE: v({
    schema: text,
    doc: 'File holding the token instead of HEADBENCH_TOKEN (trainers refuse it when group or others can read it: chmod 600)',
    readers: ['trainer', 'cli'],
  }),
  HEADBENCH_DATA_ROOTS: v({
    schema: text,
    doc: "Extra folders (':'-separated, like --data-root) whose datasets and weights a trainer may read; its work dir and caches always",
    readers: ['trainer'],
  }),
  HEADBENCH_ALLOW_HOSTS: v({
    schema: z
      .string()
      .regex(/^[\w.:[\]-]+(,[\w.:[\]-]+)*$/, { error: 'must be host or host:port, comma-separated' }),
    doc: "Hosts (comma-separated, like --allow-host) a trainer may download datasets and weights from; the API's own host always",
    readers: ['trainer'],
  }),
  HEADBENCH_MAX_DOWNLOAD_BYTES: v({
    schema: int(1),
    doc: 'Largest download a trainer takes (dataset archive, model file)',
    default: String(TRAINER_LIMITS.downloadBytes),
    readers: ['trainer'],
  }),
  HEADBENCH_MAX_UNPACKED_BYTES: v({
    schema: int(1),
    doc: 'Most bytes a dataset or model archive may unpack to on a trainer (entries and ratio are bounded too)',
    default: String(TRAINER_LIMITS.unpackedBytes),
    readers: ['trainer'],
  }),
  HEADBENCH_TRAINER_SLOTS: v({
    schema: int(1, 64),
    doc: 'Slots of the local trainer under `npm start` (default: one per core)',
    readers: ['launcher'],
  }),
  HEADBENCH_TRAINER_NOOP: v({
    schema: flag,
    doc: '1: trainers complete every run at once without training (benchmarks only)',
    default: '0',
    readers: ['trainer'],
  }),
  HEADBENCH_LEASE_SECONDS: v({
    schema: int(1, 86_400),
    doc: 'Seconds without a heartbeat before a run goes back to the queue',
    default: '60',
    readers: ['api'],
  }),
  HEADBENCH_LIVE_INTERVAL_MS: v({
    schema: int(1, 60_000),
    doc: 'Live update coalescing window per dashboard room',
    default: '100',
    readers: ['api'],
  }),
  HEADBENCH_MAX_ARTIFACT_BYTES: v({
    schema: int(1),
    doc: 'Largest artifact upload',
    default: String(512 * 1024 * 1024),
    readers: ['api'],
  }),
  HEADBENCH_MAX_DATASET_BYTES: v({
    schema: int(1),
    doc: 'Largest dataset archive upload',
    default: String(2 * 1024 * 1024 * 1024),
    readers: ['api'],
  }),
  HEADBENCH_STORAGE: v({
    schema: z.enum(['local', 'postgres']),
    doc: "Where the API keeps artifacts and uploaded datasets: `local` (a directory; shared by every instance only on a shared volume) or `postgres` (large objects in the API's database: every instance reads them, no shared filesystem)",
    default: 'local',
    readers: ['api'],
  }),
  HEADBENCH_STORAGE_DIR: v({
    schema: text,
    doc: 'Directory of the `local` store (default: HEADBENCH_HOME/artifacts); give every API instance the same shared volume',
    readers: ['api'],
  }),
  REDIS_URL: v({
    schema: z.string().regex(/^rediss?:\/\//, { error: 'must be a redis:// or rediss:// URL' }),
    doc: "Redis that carries live updates and trainer pushes between API instances; unset: Postgres (the API's own database) carries them",
    readers: ['api'],
  }),
  HEADBENCH_DB_POOL: v({
    schema: int(1, 1000),
    doc: "Connections in the API's main Postgres pool",
    default: '20',
    readers: ['api'],
  }),
  HEADBENCH_PG_PORT: v({
    schema: int(1, 65_535),
    doc: 'Port of the embedded Postgres (default: a free one)',
    readers: ['api'],
  }),
  HEADBENCH_WASM_THREADS: v({
    schema: int(1, 256),
    doc: "Threads of the wasm backend's kernels (default: one per core; compare and trainer slots set it)",
    readers: ['engine'],
  }),
  HEADBENCH_WASM_FMA: v({
    schema: flag,
    doc: "0: the engine's plain SIMD kernels instead of relaxed-SIMD FMA",
    default: '1',
    readers: ['engine'],
  }),
  HEADBENCH_WASM_CHECK: v({
    schema: flag,
    doc: "1: the engine's conv pool checks every kernel call for writes outside its outputs and scratch (guard bytes around each; slower), and throws naming the kernel",
    default: '0',
    readers: ['engine'],
  }),
  HEADBENCH_WATCHDOG_FACTOR: v({
    schema: int(2, 10_000),
    doc: "Trainer watchdog: a run's child is killed after this many times its median batch time without a batch (at least the floor, at most the ceiling)",
    default: '20',
    readers: ['trainer'],
  }),
  HEADBENCH_WATCHDOG_FLOOR_S: v({
    schema: int(1, 86_400),
    doc: 'Trainer watchdog: seconds without a batch (or without a sign of life from the child) always allowed',
    default: '120',
    readers: ['trainer'],
  }),
  HEADBENCH_WATCHDOG_CEILING_S: v({
    schema: int(1, 604_800),
    doc: 'Trainer watchdog: the most seconds without a batch, and the limit before the first batch and after the last',
    default: '1800',
    readers: ['trainer'],
  }),
  HEADBENCH_TEST_HANG_AT: v({
    schema: z.string().regex(/^epoch:\d{1,6}$/, { error: "must be 'epoch:<n>'" }),
    doc: "Tests only (honoured when NODE_ENV=test): a trainer child's first attempt spins forever at the first batch of epoch n",
    readers: ['trainer', 'tests'],
  }),
  HEADBENCH_TEST_HEAP_GROWTH: v({
    schema: z.string().regex(/^\d{1,6}(:\d{1,9})?$/, { error: "must be '<every>' or '<every>:<seed>'" }),
    doc: "Tests and the heap stress bench only (honoured when NODE_ENV=test): a wasm trainer child grows tfjs's heap about every <every> allocations (gaps drawn from <seed>), before tensors and inside conv pool calls",
    readers: ['trainer', 'tests', 'bench'],
  }),
  NODE_ENV: v({
    schema: text,
    doc: 'Set by test runners (`test`): enables test-only hooks such as HEADBENCH_TEST_HANG_AT',
    readers: ['trainer', 'tests'],
  }),
  HEADBENCH_CHROMIUM: v({
    schema: text,
    doc: 'Chromium for the browser tests and benchmarks',
    default: '/usr/bin/chromium',
    readers: ['tests', 'bench'],
  }),
  CI: v({
    schema: z.string().transform((v) => v !== '' && v !== '0' && v.toLowerCase() !== 'false'),
    doc: 'Set by CI services: a missing Chromium fails `npm test` instead of skipping the browser tests',
    default: 'false',
    readers: ['tests'],
  }),
  HEADBENCH_TEST_PG: v({
    schema: z.string().regex(/^postgres(ql)?:\/\//),
    doc: 'Postgres server the tests create their databases on',
    default: 'postgresql://postgres@127.0.0.1:5432/postgres',
    readers: ['tests'],
  }),
  HEADBENCH_TEST_REDIS: v({
    schema: z.string().regex(/^rediss?:\/\//),
    doc: 'Redis of the tests that run API instances on the Redis adapter',
    default: 'redis://127.0.0.1:6379',
    readers: ['tests'],
  }),
  HEADBENCH_TEST_VERBOSE: v({
    schema: flag,
    doc: "1: fleet tests echo their processes' output",
    default: '0',
    readers: ['tests'],
  }),
  INIT_CWD: v({
    schema: text,
    doc: 'Set by npm: the folder `npm start` was run from (where .headbench goes)',
    readers: ['launcher'],
  }),
  UV_THREADPOOL_SIZE: v({
    schema: int(1, 1024),
    doc: "Node's libuv pool (image decoding with sharp); the loader benchmark prints it",
    default: '4',
    readers: ['bench'],
  }),
  BENCH_PG_URL: v({
    schema: z.string().regex(/^postgres(ql)?:\/\//),
    doc: 'Postgres server of the API benchmarks',
    default: 'postgresql://postgres@127.0.0.1:5432/postgres',
    readers: ['bench'],
  }),
  BENCH_SECONDS: v({
    schema: int(1, 3600),
    doc: 'Seconds per measurement of the ingest benchmark',
    default: '4',
    readers: ['bench'],
  }),
  BENCH_CONCURRENCY: v({
    schema: z.string().regex(/^\d+(,\d+)*$/),
    doc: 'Concurrent runs of the ingest benchmark, comma-separated',
    default: '1,10,50',
    readers: ['bench'],
  }),
  BENCH_TRANSPORTS: v({
    schema: z.string().regex(/^(socket|trpc)(,(socket|trpc))*$/),
    doc: 'Metric transports the ingest benchmark measures',
    default: 'socket,trpc',
    readers: ['bench'],
  }),
  BENCH_CPU_PROF: v({
    schema: text,
    doc: 'Folder for CPU profiles of the benchmarked API (unset: none)',
    readers: ['bench'],
  }),
  BENCH_RUNS: v({
    schema: int(1, 1_000_000),
    doc: 'Runs the dispatch benchmark queues',
    default: '200',
    aliases: ['RUNS'],
    readers: ['bench'],
  }),
} satisfies Record<string, EnvVar>;

export type EnvName = keyof typeof ENV;
export type Env = {
  [K in EnvName]: (typeof ENV)[K]['default'] extends string
    ? z.output<(typeof ENV)[K]['schema']>
    : z.output<(typeof ENV)[K]['schema']> | undefined;
};

/**
 * Reads and checks every variable from `source` (process.env): defaults filled, old names accepted with a
 * warning, a bad value an error naming the variable and what it takes.
 */
export function readEnv(
  source: Record<string, string | undefined>,
  warn: (message: string) => void = () => {},
): Env {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, d] of Object.entries(ENV) as [EnvName, EnvVar][]) {
    let raw = source[name];
    for (const alias of d.aliases ?? []) {
      if (source[alias] === undefined || source[alias] === '') continue;
      if (raw === undefined || raw === '') {
        raw = source[alias];
        warn(`${alias} is deprecated: set ${name} instead`);
      }
    }
    if (raw === undefined || raw === '') raw = d.default;
    if (raw === undefined) continue;
    const r = d.schema.safeParse(raw);
    if (r.success) out[name] = r.data;
    else problems.push(...formatIssues(r.error.issues.map((i) => ({ ...i, path: [name] }))));
  }
  if (problems.length) throw new Error(`invalid environment:\n  ${problems.join('\n  ')}`);
  return out as Env;
}

/** The README's table of environment variables, from ENV. */
export function envTable(): string {
  const rows = Object.entries(ENV).map(([name, d]: [string, EnvVar]) => {
    const also = d.aliases?.length ? ` (was ${d.aliases.join(', ')})` : '';
    return `| \`${name}\`${also} | ${d.doc} | ${d.default !== undefined ? `\`${d.default}\`` : '—'} | ${d.readers.join(', ')} |`;
  });
  return ['| variable | what it sets | default | read by |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
