// Packaged pretrained weights (`npm:<package>/<model>`) as files: what leases name, so trainers need not
// install the package. Any valid token may read them (they are public package contents).
import { createReadStream } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { parseNpmWeights } from '@headbench/spec';
import { PACKAGED_FILES } from '@headbench/weights';
import { Controller, Get, Inject, Param, Res, type StreamableFile, UseGuards } from '@nestjs/common';
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { AccessGuard } from '../http/access.guard.js';
import { streamFile } from '../http/stream-file.js';
import { ZodPipe } from '../http/zod.pipe.js';
import { PackagedWeightsService } from '../services/packaged-weights.js';

const Source = z
  .string()
  .max(300)
  .refine((s) => parseNpmWeights(s) !== null, { error: 'must be npm:<package>/<model>' });

@Controller('weights')
@UseGuards(AccessGuard)
export class WeightsController {
  constructor(@Inject(PackagedWeightsService) private readonly packaged: PackagedWeightsService) {}

  @Get(':source/:file')
  async file(
    @Param('source', new ZodPipe(Source, 'source')) source: string,
    @Param('file', new ZodPipe(z.enum(PACKAGED_FILES), 'file')) file: (typeof PACKAGED_FILES)[number],
    @Res({ passthrough: true }) res: ServerResponse,
  ): Promise<StreamableFile> {
    let d: Awaited<ReturnType<PackagedWeightsService['describe']>>;
    try {
      d = await this.packaged.describe(source);
    } catch (err) {
      throw new TRPCError({ code: 'NOT_FOUND', message: (err as Error).message });
    }
    const f = d.files.find((x) => x.name === file)!;
    res.setHeader('x-sha256', f.sha256);
    return streamFile(
      createReadStream(join(d.dir, file)),
      {
        type: file === 'model.json' ? 'application/json' : 'application/octet-stream',
        length: f.size,
        disposition: `attachment; filename="${file}"`,
      },
      `${source} ${file}`,
      res,
    );
  }
}
