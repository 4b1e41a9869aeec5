export * from '@headbench/weights';
export * from './backbones/index.js';
export * from './dropout.js';
export * from './heads.js';
export * from './io.js';
export * from './pooling.js';
