export * from './correctness.ts';
export * from './distributions.ts';
export * from './tests.ts';
export * from './verdicts.ts';
