import { cookies } from 'next/headers';
import { apiUrl, TOKEN_COOKIE } from '../../../../lib/config';
import { BodyTooLarge, boundedBody, tooLarge } from '../../../../lib/requests';

// Browser → API proxy for tRPC calls, adding the cookie's token (so page scripts never hold it). Bodies are
// read up to HEADBENCH_WEB_MAX_BODY_BYTES: past it, 413 before anything reaches the API.
async function handle(req: Request, ctx: { params: Promise<{ path: string[] }> }) {
  const token = (await cookies()).get(TOKEN_COOKIE)?.value;
  if (!token)
    return Response.json(
      { error: { message: 'signed out', code: -32001, data: { code: 'UNAUTHORIZED', httpStatus: 401 } } },
      { status: 401 },
    );
  let body: string | undefined;
  try {
    body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await boundedBody(req);
  } catch (e) {
    if (e instanceof BodyTooLarge) return tooLarge();
    throw e;
  }
  const { path } = await ctx.params;
  const search = new URL(req.url).search;
  const res = await fetch(`${apiUrl()}/trpc/${path.map(encodeURIComponent).join('/')}${search}`, {
    method: req.method,
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': req.headers.get('content-type') ?? 'application/json',
    },
    body,
  });
  return new Response(res.body, {
    status: res.status,
    headers: { 'content-type': res.headers.get('content-type') ?? 'application/json' },
  });
}
export const GET = handle;
export const POST = handle;
export const dynamic = 'force-dynamic';
