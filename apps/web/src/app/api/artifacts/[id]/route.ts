import { cookies } from 'next/headers';
import { apiUrl, TOKEN_COOKIE } from '../../../../lib/config';

// Artifact bytes (CAM images, checkpoints) streamed from the API with the cookie's token.
export async function GET(req: Request, ctx: { params: Promise<{ id: string }> }) {
  const token = (await cookies()).get(TOKEN_COOKIE)?.value;
  if (!token) return new Response('signed out', { status: 401 });
  const { id } = await ctx.params;
  if (!/^[0-9a-f-]{36}$/i.test(id)) return new Response('bad id', { status: 400 });
  const res = await fetch(`${apiUrl()}/artifacts/${id}/content`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const headers = new Headers();
  for (const h of ['content-type', 'content-length', 'content-disposition', 'etag'])
    if (res.headers.get(h)) headers.set(h, res.headers.get(h)!);
  // `?inline=png|jpeg`: shown in an <img> (CAM gallery) rather than downloaded.
  const inline = new URL(req.url).searchParams.get('inline');
  if (inline === 'png' || inline === 'jpeg') {
    headers.set('content-type', `image/${inline}`);
    headers.delete('content-disposition');
  }
  return new Response(res.body, { status: res.status, headers });
}
