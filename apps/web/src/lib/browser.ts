'use client';
// Browser-side API access: tRPC through this app's /api/trpc proxy (the token stays in the httpOnly cookie).
import type { AppRouter } from '@headbench/api/router';
import { createTRPCClient, httpBatchLink } from '@trpc/client';

let client: ReturnType<typeof make> | undefined;
function make() {
  return createTRPCClient<AppRouter>({
    links: [httpBatchLink({ url: `${window.location.origin}/api/trpc`, maxURLLength: 4000 })],
  });
}
export function browserApi() {
  client ??= make();
  return client;
}

/** Saves a string or data URL as a file. */
export function download(name: string, content: string, type = 'text/plain') {
  const a = document.createElement('a');
  a.download = name;
  a.href = content.startsWith('data:') ? content : URL.createObjectURL(new Blob([content], { type }));
  document.body.append(a);
  a.click();
  a.remove();
}
