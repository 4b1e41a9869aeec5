import { apiUrl, TOKEN_COOKIE } from '../../../lib/config';

// POST (form): checks the token against the API, then keeps it in an httpOnly cookie.
export async function POST(req: Request) {
  const form = await req.formData();
  const token = String(form.get('token') ?? '').trim();
  const next = String(form.get('next') ?? '/sweeps');
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
  const res = redirectTo(req, next.startsWith('/') && !next.startsWith('//') ? next : '/sweeps');
  res.headers.append(
    'set-cookie',
    `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${60 * 60 * 24 * 30}`,
  );
  return res;
}

/** Relative redirect: correct behind any host name or proxy. */
function redirectTo(_req: Request, path: string): Response {
  return new Response(null, { status: 303, headers: { location: path } });
}
