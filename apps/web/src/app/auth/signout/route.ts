import { TOKEN_COOKIE } from '../../../lib/config';
import { cookieSecurity, crossSite, refuseCrossSite } from '../../../lib/requests';

// POST (form): drops the session cookie. Posts from other sites are refused (forced sign-out).
export async function POST(req: Request) {
  if (crossSite(req)) return refuseCrossSite();
  return new Response(null, {
    status: 303,
    headers: {
      location: '/signin',
      'set-cookie': `${TOKEN_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${cookieSecurity(req)}`,
    },
  });
}
