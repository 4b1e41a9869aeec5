// Preloaded into trainer processes (`node --require`): a machine without the nsfwjs package. Its folder is
// not found on disk and requiring it fails, as where it was never installed; child processes inherit this
// through NODE_OPTIONS.
const fs = require('node:fs');
const Module = require('node:module');

const hidden = (p) => /[\\/]node_modules[\\/]nsfwjs([\\/]|$)/.test(String(p));
const missing = (p) =>
  Object.assign(new Error(`ENOENT: no such file or directory, '${p}'`), { code: 'ENOENT' });
const { existsSync, statSync, readFileSync } = fs;
fs.existsSync = (p) => (hidden(p) ? false : existsSync(p));
fs.statSync = (p, ...rest) => {
  if (hidden(p)) throw missing(p);
  return statSync(p, ...rest);
};
fs.readFileSync = (p, ...rest) => {
  if (hidden(p)) throw missing(p);
  return readFileSync(p, ...rest);
};
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (/^nsfwjs(\/|$)/.test(request) || hidden(request))
    throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
  return resolveFilename.call(this, request, ...rest);
};
// ESM imports of node:fs (`import { existsSync } from 'node:fs'`) see the patched functions too.
Module.syncBuiltinESMExports();
