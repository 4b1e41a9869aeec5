/** Cookie holding the API token (httpOnly: page scripts never read it). */
export const TOKEN_COOKIE = 'hb_token';

import { readEnv } from '@headbench/spec';

const env = () => readEnv(process.env, (m) => console.warn(`headbench: ${m}`));

/** Where this server reaches the API (HEADBENCH_API). */
export function apiUrl(): string {
  return env().HEADBENCH_API ?? 'http://127.0.0.1:4000';
}

/** Where browsers reach the API's socket.io (live updates); defaults to the server's URL. */
export function publicApiUrl(): string {
  return env().HEADBENCH_PUBLIC_API_URL ?? apiUrl();
}
