// @headbench/spec: what an experiment is, shared by the CLI, the API, trainers and the dashboard.
// Browser-safe by rule: it imports zod and nothing else (no tfjs, no node:* modules).
export const SPEC_VERSION = 1;
export * from './cam.ts';
export * from './canonical.ts';
export * from './stats/index.ts';
