// @headbench/core: datasets, models, training, metrics and reports. No servers, no network I/O.
export * from './config.js';
export * from './data/index.js';
export * from './errors.js';
export * from './models/index.js';
export * from './report/index.js';
export * from './results.js';
export * from './rng.js';
export * from './train/index.js';
