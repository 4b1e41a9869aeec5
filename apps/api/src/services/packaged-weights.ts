// Packaged pretrained weights (`weights: npm:<package>/<model>`) for trainers: the API reads the package
// installed next to it once, keeps the model folder under its home, and serves its two files by sha256.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LeasedPackaged } from '@headbench/spec';
import { PACKAGED_FILES, packagedWeightsDir, readPackagedFolder } from '@headbench/weights';

export class PackagedWeightsService {
  private readonly known = new Map<string, Promise<LeasedPackaged & { dir: string }>>();

  constructor(private readonly home: string) {}

  /** The lease's description of `source` (read from the package once per process); throws when unreadable. */
  describe(source: string): Promise<LeasedPackaged & { dir: string }> {
    let entry = this.known.get(source);
    if (!entry) {
      entry = this.read(source);
      this.known.set(source, entry);
      // A failure is not remembered: installing the package fixes the next lease.
      entry.catch(() => this.known.delete(source));
    }
    return entry;
  }

  /** The lease field: null (and a log line) when the package cannot be read here. */
  async leased(source: string): Promise<LeasedPackaged | null> {
    try {
      const { dir: _dir, ...leased } = await this.describe(source);
      return leased;
    } catch (err) {
      console.error(`[api] ${source.slice(0, 200)}: ${(err as Error).message}`);
      return null;
    }
  }

  private async read(source: string): Promise<LeasedPackaged & { dir: string }> {
    const dir = await packagedWeightsDir(source, this.home);
    const folder = await readPackagedFolder(dir, source);
    if (!folder) throw new Error(`${source}: no packaged model at ${dir}`);
    const files = [];
    for (const name of PACKAGED_FILES) {
      const bytes = await readFile(join(dir, name));
      files.push({
        name,
        downloadPath: `/weights/${encodeURIComponent(source)}/${name}`,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: bytes.length,
      });
    }
    const { info } = folder;
    return {
      dir,
      source,
      package: info.name,
      version: info.version,
      model: info.model,
      sha256: info.sha256,
      files,
    };
  }
}
