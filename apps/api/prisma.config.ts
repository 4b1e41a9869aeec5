import { defineConfig } from 'prisma/config';

// Prisma CLI config for developers (`npm run prisma -w @headbench/api -- migrate dev ...`).
// Without internet, scripts point PRISMA_SCHEMA_ENGINE_BINARY at tools/schema-engine.mjs.
export default defineConfig({
  schema: '../../prisma/schema.prisma',
  migrations: { path: '../../prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/headbench_dev' },
});
