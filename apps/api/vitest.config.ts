import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'api',
    include: ['test/**/*.test.ts'],
    testTimeout: 120000,
    hookTimeout: 120000,
    // One Postgres, real ports and processes: files run one after another.
    fileParallelism: false,
  },
});
