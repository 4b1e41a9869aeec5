/** Cookie holding the API token (httpOnly: page scripts never read it). */
export const TOKEN_COOKIE = 'hb_token';

/** Where this server reaches the API. */
export function apiUrl(): string {
  return (process.env.HEADBENCH_API_URL ?? 'http://127.0.0.1:4000').replace(/\/$/, '');
}

/** Where browsers reach the API's socket.io (live updates); defaults to the server's URL. */
export function publicApiUrl(): string {
  return (process.env.HEADBENCH_PUBLIC_API_URL ?? apiUrl()).replace(/\/$/, '');
}
