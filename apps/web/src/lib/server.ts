// Server-side API access with the signed-in user's token (server components and route handlers only).
import type { AppRouter } from '@headbench/api/router';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import { cookies } from 'next/headers';
import { redirect } from 'next/navigation';
import { apiUrl, TOKEN_COOKIE } from './config';

export async function sessionToken(): Promise<string | undefined> {
  return (await cookies()).get(TOKEN_COOKIE)?.value;
}

export function clientFor(token: string) {
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: `${apiUrl()}/trpc`,
        maxURLLength: 4000,
        headers: () => ({ authorization: `Bearer ${token}` }),
      }),
    ],
  });
}
export type ServerClient = ReturnType<typeof clientFor>;

/** The API client for this request; signed-out visitors go to sign-in. */
export async function api(): Promise<ServerClient> {
  const token = await sessionToken();
  if (!token) redirect('/signin');
  return clientFor(token);
}

/** Runs API calls; a rejected token (revoked, expired) sends the visitor back to sign-in. */
export async function load<T>(fn: (c: ServerClient) => Promise<T>): Promise<T> {
  const c = await api();
  try {
    return await fn(c);
  } catch (e) {
    if (e instanceof TRPCClientError && (e.data as { code?: string } | undefined)?.code === 'UNAUTHORIZED')
      redirect('/signin?error=expired');
    throw e;
  }
}
