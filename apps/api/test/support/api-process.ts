// A real API process for tests (the createApi that `npm run start -w @headbench/api` runs), which also
// reports the CommonJS modules it loaded: tfjs-core and sharp are CommonJS, so they would be listed.
import { createRequire } from 'node:module';
import { createApi } from '../../src/main.js';

const api = await createApi({ port: 0, quiet: true });
const loaded = Object.keys(createRequire(import.meta.url).cache);
process.stdout.write(`${JSON.stringify({ url: api.url, token: api.adminToken, loaded })}\n`);
process.once('SIGTERM', () => void api.close().then(() => process.exit(0)));
