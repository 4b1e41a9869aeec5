// @headbench/spec: what an experiment is, shared by the CLI, the API, trainers and the dashboard.
// Browser-safe by rule: it imports zod and nothing else (no tfjs, no node:* modules).
export const SPEC_VERSION = 1;

export * from './api.ts';
export * from './backbones.ts';
export * from './cam.ts';
export * from './canonical.ts';
export * from './csv.ts';
export * from './env.ts';
export * from './errors.ts';
export { formatIssues, MAX_LISTED_ISSUES } from './fields.ts';
export * from './names.ts';
export * from './packaged.ts';
export * from './palette.ts';
export * from './presets.ts';
export * from './protocol.ts';
export * from './results.ts';
export * from './run-config.ts';
export * from './stats/index.ts';
export * from './sweep.ts';
export * from './trainer-limits.ts';
