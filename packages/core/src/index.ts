// @headbench/core: datasets, models, training and metrics. No servers, no network I/O.

export * from './config.js';
export * from './data/index.js';
export * from './errors.js';
export * from './results.js';
export * from './rng.js';
