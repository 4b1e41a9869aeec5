import type { NextConfig } from 'next';

const config: NextConfig = {
  // The workspace packages ship TypeScript sources.
  transpilePackages: ['@headbench/client', '@headbench/spec', '@headbench/ui'],
  // `npm test` type-checks with tsc; skipping Next's own pass keeps builds fast on 2-core machines.
  typescript: { ignoreBuildErrors: true },
  poweredByHeader: false,
  reactStrictMode: true,
};

export default config;
