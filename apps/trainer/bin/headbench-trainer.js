#!/usr/bin/env node
// The fleet worker (and, with --child, one training run of it); TypeScript sources run through tsx.
import { register } from 'tsx/esm/api';

register();
const { trainerMain } = await import('../src/worker/main.ts');
process.exitCode = await trainerMain(process.argv.slice(2));
