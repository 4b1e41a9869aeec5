// Checks on what browsers send to this app's own routes (sign-in/out, the API proxy): every header and
// body is the visitor's to forge, so each is bounded before use.
import { readEnv } from '@headbench/spec';

const env = () => readEnv(process.env, (m) => console.warn(`headbench: ${m}`));

/** Where sign-in sends people when `next` is missing or not a path of this site. */
export const DEFAULT_NEXT = '/sweeps';

/**
 * `next` as a path of this site, else DEFAULT_NEXT. Browsers read `\` as `/`, so `/\evil.example` is
 * off-site just like `//evil.example`; control characters are dropped by URL parsers, so they go too.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length > 2000) return DEFAULT_NEXT;
  if (!next.startsWith('/') || /[\\\p{Cc}]/u.test(next) || next.startsWith('//')) return DEFAULT_NEXT;
  const base = 'http://headbench.invalid';
  return new URL(next, base).origin === base ? next : DEFAULT_NEXT;
}

/**
 * A form post from another site (login CSRF, forced sign-out)? Browsers send `Sec-Fetch-Site` and
 * `Origin` with every POST; tools (curl, tests) send neither and are not browsers to protect.
 */
export function crossSite(req: Request): boolean {
  const site = req.headers.get('sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.get('origin');
  if (!origin) return false;
  const host = req.headers.get('x-forwarded-host')?.split(',')[0].trim() ?? req.headers.get('host');
  try {
    return new URL(origin).host !== host;
  } catch {
    return true; // `Origin: null` (sandboxed frames, some redirects) and other junk
  }
}

export const refuseCrossSite = () =>
  new Response('cross-site request refused: sign in and out from this dashboard’s own pages', {
    status: 403,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });

/** The session cookie's `Secure` attribute: behind TLS (directly or through a proxy), or when configured. */
export function cookieSecurity(req: Request): string {
  const proto = req.headers.get('x-forwarded-proto')?.split(',')[0].trim().toLowerCase();
  const tls = env().HEADBENCH_SECURE_COOKIE || proto === 'https' || new URL(req.url).protocol === 'https:';
  return tls ? '; Secure' : '';
}

export class BodyTooLarge extends Error {}

/** The request body as text, at most HEADBENCH_WEB_MAX_BODY_BYTES (BodyTooLarge past it, unread rest dropped). */
export async function boundedBody(req: Request): Promise<string> {
  const max = env().HEADBENCH_WEB_MAX_BODY_BYTES;
  if (Number(req.headers.get('content-length') ?? 0) > max) throw new BodyTooLarge();
  if (!req.body) return '';
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export const tooLarge = () =>
  Response.json(
    {
      error: {
        message: `request body exceeds ${env().HEADBENCH_WEB_MAX_BODY_BYTES} bytes (HEADBENCH_WEB_MAX_BODY_BYTES)`,
        code: -32600,
        data: { code: 'PAYLOAD_TOO_LARGE', httpStatus: 413 },
      },
    },
    { status: 413 },
  );
