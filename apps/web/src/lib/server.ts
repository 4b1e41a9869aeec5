// Server-side API access with the signed-in user's token (server components and route handlers only).
import { createHeadbenchClient, type HeadbenchClient } from '@headbench/client';
import { TRPCClientError } from '@trpc/client';
import { cookies } from 'next/headers';
import { redirect } from 'next/navigation';
import { apiUrl, TOKEN_COOKIE } from './config';

export async function sessionToken(): Promise<string | undefined> {
  return (await cookies()).get(TOKEN_COOKIE)?.value;
}

export function clientFor(token: string): HeadbenchClient {
  return createHeadbenchClient({ url: apiUrl(), token, maxURLLength: 4000 });
}
export type ServerClient = HeadbenchClient;

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
