import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'cross-app',
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
