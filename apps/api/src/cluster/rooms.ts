// Which live rooms a dashboard watches on any instance. Metric ingest skips rooms nobody watches (no
// buffering, no encoding, no cross-instance traffic), so each instance must also know the rooms watched
// on the others: a subscribe is announced to every instance at once (the subscriber's answer waits for
// their acks), and each instance re-announces its watched rooms every `refreshMs`; an entry not
// re-announced within three periods expires (a dashboard that left, an instance that died).
import type { Namespace } from 'socket.io';

const EVENT = 'headbench:watch';
const ROOM_RE = /^(run|sweep):[0-9a-f-]{36}$/;
/** Rooms per message: a NOTIFY payload stays under 8000 bytes. */
const PER_MESSAGE = 150;
/** Remote rooms remembered at most (a misbehaving instance cannot grow this without bound). */
const MAX_REMOTE = 100_000;

export class ClusterRooms {
  private remote = new Map<string, number>();
  private ns?: Namespace;
  private timer?: NodeJS.Timeout;

  constructor(readonly refreshMs = 10_000) {}

  attach(ns: Namespace) {
    this.ns = ns;
    ns.on(EVENT, (msg: unknown, ack?: unknown) => {
      this.remember(msg);
      if (typeof ack === 'function') ack(true);
    });
    this.timer = setInterval(() => this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  /** Watched here or, as last announced, on another instance. */
  has(room: string): boolean {
    const until = this.remote.get(room);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.remote.delete(room);
    return false;
  }

  /** Tells the other instances about rooms just subscribed here; resolves once they acked (≤ 1 s). */
  async announce(rooms: string[]) {
    if (!this.ns) return;
    const ns = this.ns;
    for (let at = 0; at < rooms.length; at += PER_MESSAGE) {
      let timer: NodeJS.Timeout | undefined;
      // An instance that does not answer within a second learns the rooms at the next refresh.
      await Promise.race([
        ns.serverSideEmitWithAck(EVENT, { rooms: rooms.slice(at, at + PER_MESSAGE) }).catch(() => {}),
        new Promise<void>((r) => {
          timer = setTimeout(r, 1000);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  close() {
    if (this.timer) clearInterval(this.timer);
  }

  private refresh() {
    const ns = this.ns;
    if (!ns) return;
    const now = Date.now();
    for (const [room, until] of this.remote) if (until <= now) this.remote.delete(room);
    const local: string[] = [];
    for (const [room, members] of ns.adapter.rooms) if (members.size && ROOM_RE.test(room)) local.push(room);
    for (let at = 0; at < local.length; at += PER_MESSAGE)
      ns.serverSideEmit(EVENT, { rooms: local.slice(at, at + PER_MESSAGE) });
  }

  private remember(msg: unknown) {
    const rooms = (msg as { rooms?: unknown })?.rooms;
    if (!Array.isArray(rooms)) return;
    const until = Date.now() + 3 * this.refreshMs;
    for (const room of rooms.slice(0, PER_MESSAGE)) {
      if (typeof room !== 'string' || !ROOM_RE.test(room)) continue;
      if (this.remote.size >= MAX_REMOTE && !this.remote.has(room)) return;
      this.remote.set(room, until);
    }
  }
}
