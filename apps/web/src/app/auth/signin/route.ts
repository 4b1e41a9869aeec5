import { apiUrl, TOKEN_COOKIE } from '../../../lib/config';
import {
  BodyTooLarge,
  boundedBody,
  cookieSecurity,
  crossSite,
  refuseCrossSite,
  safeNext,
} from '../../../lib/requests';

// POST (form): checks the token against the API, then keeps it in an httpOnly cookie. Posts from other
// sites are refused (they would sign the visitor in as the attacker).
export async function POST(req: Request) {
  if (crossSite(req)) return refuseCrossSite();
  let form: URLSearchParams;
  try {
    form = new URLSearchParams(await boundedBody(req));
  } catch (e) {
    if (e instanceof BodyTooLarge) return new Response('sign-in form too large', { status: 413 });
    throw e;
  }
  const token = String(form.get('token') ?? '').trim();
  const next = safeNext(form.get('next') ?? undefined);
  if (!token) return redirectTo(req, '/signin?error=missing');
  let ok = false;
  try {
    const res = await fetch(`${apiUrl()}/trpc/whoami`, { headers: { authorization: `Bearer ${token}` } });
    ok = res.ok;
    if (!ok && res.status !== 401 && res.status !== 403) return redirectTo(req, '/signin?error=api');
  } catch {
    return redirectTo(req, '/signin?error=api');
  }
  if (!ok) return redirectTo(req, '/signin?error=invalid');
  const res = redirectTo(req, next);
  res.headers.append(
    'set-cookie',
    `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${60 * 60 * 24 * 30}${cookieSecurity(req)}`,
  );
  return res;
}

/** Relative redirect: correct behind any host name or proxy. */
function redirectTo(_req: Request, path: string): Response {
  return new Response(null, { status: 303, headers: { location: path } });
}
