// What a trainer may read and fetch, on real folders and links: the rules behind --data-root and
// --allow-host, and the redaction of this machine's paths from text that goes to the API.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadbenchInputError } from '@headbench/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessPolicy,
  allowedLocalPath,
  allowedUrl,
  redactPaths,
} from '../../apps/trainer/src/worker/access.js';

describe('trainer access policy', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'headbench-access-'));
    await mkdir(join(tmp, 'work'), { recursive: true });
    await mkdir(join(tmp, 'data', 'flowers'), { recursive: true });
    await writeFile(join(tmp, 'home-secret'), 'admin token');
    await mkdir(join(tmp, 'home', 'datasets'), { recursive: true });
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const policy = () =>
    accessPolicy({
      api: ['http://api.lab:4000', 'http://api-2.lab:4000'],
      workDir: join(tmp, 'work'),
      home: join(tmp, 'home'),
      dataRoots: [join(tmp, 'data')],
      allowHosts: ['files.lab', 'Mirror.lab:8080'],
    });

  it('path escape: reads only under the work dir, the caches and --data-root, links followed first', async () => {
    const p = policy();
    expect(await allowedLocalPath(join(tmp, 'data', 'flowers'), p, 'dataset folder')).toBe(
      join(tmp, 'data', 'flowers'),
    );
    expect(await allowedLocalPath(join(tmp, 'home', 'datasets', 'gen'), p, 'dataset folder')).toBe(
      join(tmp, 'home', 'datasets', 'gen'),
    );
    for (const outside of [
      join(tmp, 'home'),
      join(tmp, 'home-secret'),
      join(tmp, 'data', '..', 'home-secret'),
      '/etc',
    ]) {
      await expect(allowedLocalPath(outside, p, 'dataset folder')).rejects.toThrow(
        /is outside the folders this trainer may read \(its operator allows more with --data-root\)/,
      );
    }
    // A link inside a root that points out of it is outside.
    await symlink(join(tmp, 'home-secret'), join(tmp, 'data', 'link'));
    await expect(allowedLocalPath(join(tmp, 'data', 'link'), p, 'weights')).rejects.toBeInstanceOf(
      HeadbenchInputError,
    );
  });

  it('SSRF: fetches only from the API instances and --allow-host hosts (a host without a port: any port)', () => {
    const p = policy();
    for (const ok of [
      'http://api.lab:4000/x.zip',
      'https://api-2.lab:4000/x',
      'http://files.lab:9999/a.tgz',
      'http://mirror.lab:8080/m',
    ])
      expect(allowedUrl(ok, p, 'dataset').host).toBeTruthy();
    for (const [bad, why] of [
      ['http://api.lab:4001/x.zip', /host api\.lab:4001 is not one this trainer may fetch from/],
      ['http://mirror.lab:8081/m', /host mirror\.lab:8081 is not one/],
      ['http://169.254.169.254/latest/meta-data', /host 169\.254\.169\.254 is not one/],
      ['http://user:pw@files.lab/a.zip', /URLs with credentials are refused/],
      ['file:///etc/passwd', /only http\(s\) URLs can be fetched/],
    ] as const)
      expect(() => allowedUrl(bad, p, 'dataset')).toThrow(why);
  });

  it('names no path of this machine in text for the API', () => {
    const known = [
      { label: '<work>', path: '/srv/trainer/work' },
      { label: '<data-root>', path: '/mnt/data' },
    ];
    expect(
      redactPaths(
        "ENOENT: no such file or directory, open '/srv/trainer/work/runs/r1/x.bin'; see /var/lib/secret/cache.db (http://api.lab:4000/artifacts/a1/content)",
        known,
      ),
    ).toBe(
      "ENOENT: no such file or directory, open '<work>/runs/r1/x.bin'; see <path>/cache.db (http://api.lab:4000/artifacts/a1/content)",
    );
    expect(redactPaths('dataset /mnt/data/flowers: no class folders', known)).toBe(
      'dataset <data-root>/flowers: no class folders',
    );
  });
});
