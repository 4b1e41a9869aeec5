import { TOKEN_COOKIE } from '../../../lib/config';

export async function POST() {
  return new Response(null, {
    status: 303,
    headers: {
      location: '/signin',
      'set-cookie': `${TOKEN_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`,
    },
  });
}
