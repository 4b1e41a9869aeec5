export * from './cam.js';
export * from './checkpoint.js';
export * from './features.js';
export * from './optimizer.js';
export * from './provenance.js';
export * from './run.js';
export * from './validate.js';
