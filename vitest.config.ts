import { defineConfig } from 'vitest/config';

// One vitest run covers every workspace; each project keeps its own config.
export default defineConfig({
  test: {
    projects: [
      'packages/*',
      'apps/*',
      'test',
      // The engine's kernels again on tfjs's one-thread wasm build (what each trainer slot and each
      // `compare --parallel` run uses): its heap is not shared memory, and the conv pool works in it
      // through its single-thread builds.
      {
        extends: './packages/engine/vitest.config.ts',
        test: {
          name: 'engine-1-thread',
          root: './packages/engine',
          env: { HEADBENCH_WASM_THREADS: '1' },
        },
      },
    ],
  },
});
