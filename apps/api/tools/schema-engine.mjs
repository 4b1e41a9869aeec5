#!/usr/bin/env node
// Offline stand-in for Prisma's native schema engine, for machines that cannot download it.
// The Prisma CLI spawns this file (PRISMA_SCHEMA_ENGINE_BINARY) and speaks JSON-RPC over stdio;
// we answer with @prisma/schema-engine-wasm driven through @prisma/adapter-pg.
// Handles: `--version`, `cli can-connect-to-database|create-database|drop-database`, and the RPC loop.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const out = { datamodels: [], datasource: undefined, cli: undefined, version: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--datamodels') out.datamodels.push(argv[++i]);
    else if (a === '--datasource') out.datasource = JSON.parse(argv[++i]);
    else if (a === '--enabled-preview-features' || a === '--extension-types') i++;
    else if (a === '--version' || a === '-V') out.version = true;
    else if (a === 'cli') out.cli = argv[++i];
  }
  return out;
}

/** Logs in the engine's JSON format: the CLI reads `level`, `target` and `fields` from stderr. */
function logError(message, errorCode) {
  const fields = { message, ...(errorCode ? { error_code: errorCode } : {}) };
  process.stderr.write(`${JSON.stringify({ level: 'ERROR', target: 'schema_engine::logger', fields })}\n`);
}

function resolveUrl(datasource) {
  const url = datasource?.url ?? process.env.DATABASE_URL;
  if (!url) throw new Error('no datasource url: set datasource.url in prisma.config.ts or DATABASE_URL');
  return url;
}

/** pg config from a URL, as fields: adapter-pg's shadow database overrides `database`, which a connectionString would win over. */
function pgConfig(url) {
  const u = new URL(url);
  return {
    host: decodeURIComponent(u.hostname) || u.searchParams.get('host') || 'localhost',
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username) || 'postgres',
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
  };
}

async function withAdminClient(url, fn) {
  const client = new pg.Client({ ...pgConfig(url), database: 'postgres' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function runCliCommand(command, datasource) {
  const url = resolveUrl(datasource);
  const cfg = pgConfig(url);
  const ident = `"${cfg.database.replaceAll('"', '""')}"`;
  try {
    if (command === 'can-connect-to-database') {
      const client = new pg.Client(cfg);
      await client.connect();
      await client.end();
    } else if (command === 'create-database') {
      await withAdminClient(url, (c) => c.query(`CREATE DATABASE ${ident}`));
    } else if (command === 'drop-database') {
      await withAdminClient(url, (c) => c.query(`DROP DATABASE IF EXISTS ${ident}`));
    } else {
      logError(`unknown cli command ${command}`);
      return 1;
    }
    return 0;
  } catch (e) {
    // P1003: database does not exist; P1001: cannot reach; P1000: auth.
    const code = e.code === '3D000' ? 'P1003' : e.code === '28P01' ? 'P1000' : 'P1001';
    logError(String(e.message ?? e), code);
    return 1;
  }
}

async function loadWasm() {
  // The package's entry imports the .wasm as an ES module, which Node 20 cannot; instantiate it by hand.
  const bgPath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
  const bg = await import('@prisma/schema-engine-wasm/schema_engine_bg');
  const bytes = readFileSync(join(dirname(bgPath), 'schema_engine_bg.wasm'));
  const { instance } = await WebAssembly.instantiate(bytes, { './schema_engine_bg.js': bg });
  bg.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start?.();
  return bg;
}

/** adapter-pg rejects catalog type "char" (OID 18), which introspection reads; hand it over as text. */
function patchCharColumns(adapter) {
  let proto = Object.getPrototypeOf(adapter);
  while (proto && !Object.hasOwn(proto, 'performIO')) proto = Object.getPrototypeOf(proto);
  if (!proto || proto.__headbenchPatched) return;
  const original = proto.performIO;
  proto.performIO = async function (query) {
    const result = await original.call(this, query);
    for (const f of result.fields ?? []) if (f.dataTypeID === 18) f.dataTypeID = 25;
    return result;
  };
  proto.__headbenchPatched = true;
}

class PatchedPg extends PrismaPg {
  async connect() {
    const adapter = await super.connect();
    patchCharColumns(adapter);
    return adapter;
  }
  // adapter-pg's own version drops the shadow database while its pool still holds connections.
  async connectToShadowDb() {
    const main = await this.connect();
    const database = `prisma_migrate_shadow_db_${randomUUID().replaceAll('-', '')}`;
    await main.executeScript(`CREATE DATABASE "${database}"`);
    const shadow = await new PatchedPg({ ...this.config, database }).connect();
    const dispose = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      await dispose();
      await main.executeScript(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await main.dispose();
    };
    return shadow;
  }
}

async function serve(args) {
  let panicMessage = '';
  globalThis.PRISMA_WASM_PANIC_REGISTRY = {
    set_message(m) {
      panicMessage = `RuntimeError: ${m}`;
    },
    get() {
      return panicMessage;
    },
  };
  const bg = await loadWasm();
  const datamodels = args.datamodels.map((p) => [p, readFileSync(p, 'utf8')]);
  let url;
  try {
    url = resolveUrl(args.datasource);
  } catch {
    url = 'postgresql://postgres@127.0.0.1:5432/postgres'; // diff from/to files needs no connection
  }
  const factory = bindMigrationAwareSqlAdapterFactory(new PatchedPg(pgConfig(url)));
  const engine = await bg.SchemaEngine.new(
    { datamodels: datamodels.length ? datamodels : undefined },
    (log) => process.stderr.write(`${typeof log === 'string' ? log : JSON.stringify(log)}\n`),
    factory,
  );

  const write = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
  let nextId = 1_000_000;
  const pending = new Map();
  // Ask the CLI to print (how the native engine returns `diff` output).
  const print = (content) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      write({ jsonrpc: '2.0', id, method: 'print', params: { content } });
    });

  const handle = async (req) => {
    try {
      let result;
      if (req.method === 'version' || req.method === 'getDatabaseVersion') result = await engine.version();
      else if (req.method === 'diff') {
        const r = await engine.diff(req.params);
        if (r.stdout) await print(r.stdout.replace(/\n$/, ''));
        result = { exitCode: r.exitCode, stdout: null };
      } else if (typeof engine[req.method] === 'function')
        result = await engine[req.method](req.params ?? {});
      else throw Object.assign(new Error(`method not found: ${req.method}`), { rpcCode: -32601 });
      write({ jsonrpc: '2.0', id: req.id, result: result ?? null });
    } catch (e) {
      const message = panicMessage || String(e?.message ?? e);
      const data = { message, is_panic: Boolean(panicMessage), error_code: e?.error_code ?? e?.code };
      write({ jsonrpc: '2.0', id: req.id, error: { code: e?.rpcCode ?? 4466, message, data } });
      panicMessage = '';
    }
  };

  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  const inflight = new Set();
  for await (const line of lines) {
    if (!line.trim()) continue;
    const msg = JSON.parse(line);
    if (msg.method === undefined && pending.has(msg.id)) {
      pending.get(msg.id)(msg.result);
      pending.delete(msg.id);
      continue;
    }
    const p = handle(msg).finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  engine.free?.();
}

const args = parseArgs(process.argv.slice(2));
if (args.version) {
  const pkgDir = dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg'));
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  process.stdout.write(`schema-engine-cli ${version.split('.').at(-1)}\n`);
} else if (args.cli) {
  process.exitCode = await runCliCommand(args.cli, args.datasource);
} else {
  await serve(args);
  process.exit(0);
}
