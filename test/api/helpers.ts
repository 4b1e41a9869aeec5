// The API in this process on a fresh database, for tests that drive it through @headbench/client.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApiHandle, type ApiOptions, createApi } from '@headbench/api';
import { freshDatabase } from '../../apps/api/test/helpers.ts';

export { trpcRaw, waitFor } from '../../apps/api/test/helpers.ts';

export interface TestApi extends ApiHandle {
  token: string;
  dispose(): Promise<void>;
}

export async function startTestApi(opts: Partial<ApiOptions> = {}): Promise<TestApi> {
  const db = await freshDatabase();
  const home = await mkdtemp(join(tmpdir(), 'headbench-test-'));
  const api = await createApi({ databaseUrl: db.url, home, port: 0, quiet: true, ...opts });
  return {
    ...api,
    token: api.adminToken!,
    async dispose() {
      await api.close();
      await db.drop();
      await rm(home, { recursive: true, force: true });
    },
  };
}
