'use client';
// Browser-side API access: tRPC through this app's /api/trpc proxy (the token stays in the httpOnly cookie).
import { createHeadbenchClient, type HeadbenchClient } from '@headbench/client';

let client: HeadbenchClient | undefined;
export function browserApi(): HeadbenchClient {
  client ??= createHeadbenchClient({ url: window.location.origin, path: '/api/trpc', maxURLLength: 4000 });
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
