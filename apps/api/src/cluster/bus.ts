// Cache invalidation between API instances over Postgres LISTEN/NOTIFY (no other infrastructure): an
// instance that revokes a token tells the others to drop their cached lookups at once. Caches keep a short
// TTL as well, so while this connection is down the bound still holds, only slower.
import pg from 'pg';

const CHANNEL = 'headbench_cluster';
/** Topics and their payloads stay short: NOTIFY caps a payload at 8000 bytes. */
const MESSAGE_RE = /^([a-z][a-z-]{0,31}):([\w:-]{0,200})$/;

/** `id` is null after a reconnect: messages may have been missed meanwhile, so drop everything. */
export type BusHandler = (id: string | null) => void;

export class ClusterBus {
  private client?: pg.Client;
  private handlers = new Map<string, BusHandler[]>();
  private closed = false;
  private retry?: NodeJS.Timeout;
  /** Messages received from any instance, this one included (tests, logs). */
  received = 0;

  constructor(private readonly url: string) {}

  on(topic: string, fn: BusHandler) {
    const list = this.handlers.get(topic) ?? [];
    list.push(fn);
    this.handlers.set(topic, list);
  }

  /** Tells every instance (this one too). Best effort: a lost message is covered by the caches' TTL. */
  async publish(topic: string, id = '') {
    const msg = `${topic}:${id}`;
    if (!MESSAGE_RE.test(msg)) throw new Error(`cluster bus: bad message ${msg.slice(0, 60)}`);
    await this.client?.query('SELECT pg_notify($1, $2)', [CHANNEL, msg]).catch(() => {});
  }

  async start() {
    const c = new pg.Client({ connectionString: this.url });
    c.on('notification', (n) => {
      const m = MESSAGE_RE.exec(n.payload ?? '');
      if (!m) return;
      this.received++;
      for (const fn of this.handlers.get(m[1]) ?? []) fn(m[2]);
    });
    const lost = () => {
      if (this.client !== c) return;
      this.client = undefined;
      c.end().catch(() => {});
      this.reconnectLater();
    };
    c.on('error', lost);
    c.on('end', lost);
    await c.connect();
    await c.query(`LISTEN ${CHANNEL}`);
    this.client = c;
  }

  private reconnectLater() {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.start().then(
        () => {
          for (const list of this.handlers.values()) for (const fn of list) fn(null);
        },
        () => this.reconnectLater(),
      );
    }, 1000);
    this.retry.unref();
  }

  async close() {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}
