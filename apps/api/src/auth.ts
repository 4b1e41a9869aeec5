import { createHash, randomBytes } from 'node:crypto';
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

/**
 * Token lookups, cached briefly: every metric batch authenticates, and a DB round trip each time would
 * cap ingest. Revocation clears the cache entry immediately on this instance.
 */
export class TokenAuth {
  private cache = new Map<string, { p: Principal | null; until: number }>();
  constructor(
    private pool: pg.Pool,
    private ttlMs = 5000,
  ) {}

  async verify(secret: string | undefined): Promise<Principal | null> {
    if (!secret || secret.length > 200) return null;
    const hash = hashToken(secret);
    const hit = this.cache.get(hash);
    if (hit && hit.until > Date.now()) return hit.p;
    const { rows } = await this.pool.query(
      `UPDATE tokens SET last_used_at = now() WHERE hash = $1 AND revoked_at IS NULL
       RETURNING id, user_id, role, name`,
      [hash],
    );
    const r = rows[0];
    const p: Principal | null = r ? { tokenId: r.id, userId: r.user_id, role: r.role, name: r.name } : null;
    this.cache.set(hash, { p, until: Date.now() + this.ttlMs });
    return p;
  }

  forget() {
    this.cache.clear();
  }
}
