// One instance of the cluster at a time does the periodic work (the reaper): the one whose session holds a
// Postgres advisory lock. When that instance dies its connection closes, the lock is released, and another
// instance takes over on its next try (within `periodMs`).
import pg from 'pg';

/** 'hbld' as an int: the advisory lock key of the leader (Prisma's migrate lock is another number). */
const LEADER_KEY = 0x68626c64;

export class ClusterLeader {
  private client?: pg.Client;
  private timer?: NodeJS.Timeout;
  private trying = false;
  private closed = false;
  /** True while this instance holds the lock. */
  isLeader = false;

  constructor(
    private readonly url: string,
    readonly periodMs = 1000,
  ) {}

  start() {
    void this.tryLead();
    this.timer = setInterval(() => void this.tryLead(), this.periodMs);
    this.timer.unref();
  }

  private async tryLead() {
    if (this.trying || this.closed || this.isLeader) return;
    this.trying = true;
    try {
      if (!this.client) {
        const c = new pg.Client({ connectionString: this.url });
        const lost = () => {
          if (this.client !== c) return;
          this.client = undefined;
          this.isLeader = false; // the session, and with it the lock, is gone
          c.end().catch(() => {});
        };
        c.on('error', lost);
        c.on('end', lost);
        await c.connect();
        this.client = c;
      }
      const { rows } = await this.client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [
        LEADER_KEY,
      ]);
      this.isLeader = rows[0].ok && !this.closed;
    } catch {
      this.isLeader = false;
    } finally {
      this.trying = false;
    }
  }

  async close() {
    this.closed = true;
    this.isLeader = false;
    if (this.timer) clearInterval(this.timer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {}); // ending the session releases the lock
  }
}
