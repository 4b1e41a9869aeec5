#!/usr/bin/env node
// `npm start`: runs the launcher's TypeScript through tsx, with this package's tsconfig (the API's Nest
// modules need experimental decorators).
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { launch } = await import('../src/launch.ts');
process.exitCode = await launch(process.argv.slice(2));
