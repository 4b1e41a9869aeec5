import { defineConfig } from 'vitest/config';

// One vitest run covers every workspace; each project keeps its own config.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'test'],
  },
});
