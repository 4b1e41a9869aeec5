import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type pg from 'pg';

export type Role = 'admin' | 'member' | 'trainer';
export interface Principal {
  tokenId: string;
  userId: string;
  role: Role;
  name: string;
}

export const hashToken = (secret: string) => createHash('sha256').update(secret).digest('hex');
/** `hb_` + 32 random bytes, base64url. */
export const newTokenSecret = () => `hb_${randomBytes(32).toString('base64url')}`;

export function bearer(header: string | string[] | undefined): string | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  const m = h?.match(/^Bearer\s+(\S+)$/i);
  return m?.[1];
}

/** Cached lookups at most: valid tokens, and (fewer: anyone can make them up) unknown or revoked ones. */
export const TOKEN_CACHE_MAX = { valid: 10_000, invalid: 1_000 };

/**
 * Token lookups, cached briefly: every metric batch authenticates, and a DB round trip each time would
 * cap ingest. Both caches are LRU-bounded, so made-up tokens cannot grow memory. A revocation clears
 * them on this instance at once and, through `onForget` (the cluster bus), on the others; the TTL bounds
 * how long another instance may still accept a revoked token if that message is lost.
 */
export class TokenAuth {
  private valid: LRUCache<string, Principal>;
  private invalid: LRUCache<string, true>;
  /** Tells the other API instances to forget too (set by the services module). */
  onForget?: () => void;
  constructor(
    private pool: pg.Pool,
    readonly ttlMs = 2000,
    max = TOKEN_CACHE_MAX,
  ) {
    this.valid = new LRUCache({ max: max.valid, ttl: ttlMs });
    this.invalid = new LRUCache({ max: max.invalid, ttl: ttlMs });
  }

  /** Entries cached now (tests). */
  get cached() {
    return { valid: this.valid.size, invalid: this.invalid.size };
  }

  async verify(secret: string | undefined): Promise<Principal | null> {
    if (!secret || secret.length > 200) return null;
    const hash = hashToken(secret);
    const hit = this.valid.get(hash);
    if (hit) return hit;
    if (this.invalid.has(hash)) return null;
    const { rows } = await this.pool.query(
      `UPDATE tokens SET last_used_at = now() WHERE hash = $1 AND revoked_at IS NULL
       RETURNING id, user_id, role, name`,
      [hash],
    );
    const r = rows[0];
    const p: Principal | null = r ? { tokenId: r.id, userId: r.user_id, role: r.role, name: r.name } : null;
    if (p) this.valid.set(hash, p);
    else this.invalid.set(hash, true);
    return p;
  }

  /** After a revocation: every instance drops its cached lookups. */
  forget() {
    this.forgetLocal();
    this.onForget?.();
  }

  forgetLocal() {
    this.valid.clear();
    this.invalid.clear();
  }
}

/** How long a live ticket lets a socket connect (a connected socket stays until it disconnects). */
export const LIVE_TICKET_SECONDS = 300;
const TICKET_RE = /^([0-9a-f-]{36})\.(\d{10,13})\.([\w-]{43})$/;

/**
 * Live tickets: `<tokenId>.<expires (unix s)>.<HMAC-SHA256>`, keyed by the token's stored hash. Only
 * the API can make one (the hash never leaves the database), every API instance can check one, and
 * revoking the token ends its tickets. A ticket opens the read-only /live socket and nothing else.
 */
export class LiveTickets {
  constructor(private pool: pg.Pool) {}

  private static mac(key: string, tokenId: string, expires: number) {
    return createHmac('sha256', key).update(`live:${tokenId}:${expires}`).digest('base64url');
  }

  async issue(p: Principal, now = Date.now()): Promise<{ ticket: string; expiresAt: string }> {
    const { rows } = await this.pool.query<{ hash: string }>(
      'SELECT hash FROM tokens WHERE id = $1 AND revoked_at IS NULL',
      [p.tokenId],
    );
    if (!rows[0]) throw new Error('token revoked');
    const expires = Math.floor(now / 1000) + LIVE_TICKET_SECONDS;
    return {
      ticket: `${p.tokenId}.${expires}.${LiveTickets.mac(rows[0].hash, p.tokenId, expires)}`,
      expiresAt: new Date(expires * 1000).toISOString(),
    };
  }

  /** The ticket's principal, or null when it is malformed, forged, expired or its token revoked. */
  async verify(ticket: unknown, now = Date.now()): Promise<Principal | null> {
    const m = typeof ticket === 'string' ? TICKET_RE.exec(ticket) : null;
    if (!m) return null;
    const [, tokenId, exp, mac] = m;
    const expires = Number(exp);
    if (expires * 1000 <= now) return null;
    const { rows } = await this.pool.query(
      'SELECT id, user_id, role, name, hash FROM tokens WHERE id = $1 AND revoked_at IS NULL',
      [tokenId],
    );
    const r = rows[0];
    if (!r) return null;
    const want = Buffer.from(LiveTickets.mac(r.hash, tokenId, expires));
    const got = Buffer.from(mac);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
    return { tokenId: r.id, userId: r.user_id, role: r.role, name: r.name };
  }
}
