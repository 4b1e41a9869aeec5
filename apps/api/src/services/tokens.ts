// Token administration (admins): create, list, revoke. Prisma; verifying a token per request is TokenAuth's
// hot path (raw SQL, cached).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TokenInfo, TokenRole } from '@headbench/spec';
import { hashToken, newTokenSecret, type TokenAuth } from '../auth.js';
import type { Prisma } from '../db/database.js';

export class TokenService {
  constructor(
    private prisma: Prisma,
    private auth: TokenAuth,
  ) {}

  /** The secret is in this answer only; the database keeps its sha256. `user` is created if new. */
  async create(input: { name: string; role: TokenRole; user?: string }, callerId: string) {
    const userId = input.user
      ? (
          await this.prisma.user.upsert({
            where: { name: input.user },
            create: { name: input.user },
            update: {},
          })
        ).id
      : callerId;
    const secret = newTokenSecret();
    const tok = await this.prisma.token.create({
      data: {
        userId,
        name: input.name,
        role: input.role,
        hash: hashToken(secret),
        prefix: secret.slice(0, 7),
      },
    });
    return { id: tok.id, name: tok.name, role: tok.role, token: secret };
  }

  async list(): Promise<TokenInfo[]> {
    const rows = await this.prisma.token.findMany({ orderBy: { createdAt: 'asc' }, include: { user: true } });
    return rows.map((k) => ({
      id: k.id,
      name: k.name,
      role: k.role,
      prefix: k.prefix,
      user: k.user.name,
      createdAt: k.createdAt.toISOString(),
      lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
      revokedAt: k.revokedAt?.toISOString() ?? null,
    }));
  }

  async revoke(id: string) {
    const r = await this.prisma.token.updateMany({
      where: { id, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    this.auth.forget();
    return { revoked: r.count === 1 };
  }

  /**
   * Creates the first admin token when the database has none, and keeps its secret only in
   * `<home>/admin-token` (0600). Later starts read it back from there.
   */
  async ensureAdmin(home: string, quiet: boolean): Promise<string | null> {
    const file = join(home, 'admin-token');
    const existing = await this.prisma.token.findFirst({
      where: { role: 'admin', revokedAt: null },
      select: { id: true },
    });
    if (existing) {
      try {
        const secret = (await readFile(file, 'utf8')).trim();
        return (await this.auth.verify(secret)) ? secret : null;
      } catch {
        return null;
      }
    }
    const secret = newTokenSecret();
    const admin = await this.prisma.user.upsert({
      where: { name: 'admin' },
      create: { name: 'admin' },
      update: {},
    });
    await this.prisma.token.create({
      data: {
        userId: admin.id,
        name: 'bootstrap admin',
        role: 'admin',
        hash: hashToken(secret),
        prefix: secret.slice(0, 7),
      },
    });
    await mkdir(home, { recursive: true });
    await writeFile(file, `${secret}\n`, { mode: 0o600 });
    if (!quiet) console.log(`headbench: created admin token (stored in ${file}):\n  ${secret}`);
    return secret;
  }
}
