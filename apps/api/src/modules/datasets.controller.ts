// Dataset archives: PUT (members, admins; size-limited) registers the set; GET streams it back.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DATASET_FORMATS } from '@headbench/spec';
import {
  Controller,
  Get,
  HttpCode,
  Inject,
  Param,
  PayloadTooLargeException,
  Put,
  Query,
  Req,
  Res,
  type StreamableFile,
  UseGuards,
} from '@nestjs/common';
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import type { Principal as Who } from '../auth.js';
import { Access, AccessGuard, Principal } from '../http/access.guard.js';
import { streamFile } from '../http/stream-file.js';
import { ZodPipe } from '../http/zod.pipe.js';
import { contentTypeOf } from '../services/artifacts.js';
import { DatasetService } from '../services/datasets.js';

const PutQuery = z.object({
  format: z.enum(DATASET_FORMATS),
  /** The dataset's content hash (as `headbench` computes it), checked by trainers after unpacking. */
  contentHash: z
    .string()
    .regex(/^[0-9a-f]{16,128}$/)
    .optional(),
  /** Comma-separated class order. */
  classes: z.string().max(100_000).optional(),
});

@Controller('datasets')
@UseGuards(AccessGuard)
export class DatasetsController {
  constructor(@Inject(DatasetService) private readonly datasets: DatasetService) {}

  @Put(':name')
  @Access('user')
  @HttpCode(201)
  async put(
    @Param('name') name: string,
    @Query(new ZodPipe(PutQuery)) query: z.output<typeof PutQuery>,
    @Req() req: IncomingMessage,
  ) {
    if (Number(req.headers['content-length']) > this.datasets.maxBytes)
      throw new PayloadTooLargeException(`dataset exceeds ${this.datasets.maxBytes} bytes`);
    const classes = query.classes?.split(',').filter(Boolean);
    return this.datasets.upload(name, { ...query, classes }, req);
  }

  @Get(':name/content')
  async content(
    @Principal() p: Who,
    @Param('name') name: string,
    @Res({ passthrough: true }) res: ServerResponse,
  ): Promise<StreamableFile> {
    const d = await this.datasets.get(name);
    if (!d?.archive_uri) throw new TRPCError({ code: 'NOT_FOUND', message: `no uploaded dataset ${name}` });
    if (p.role === 'trainer' && !(await this.datasets.trainerMayRead(p, name)))
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: 'trainer tokens may read only datasets of runs they hold',
      });
    res.setHeader('x-sha256', d.archive_sha256 ?? '');
    return streamFile(
      await this.datasets.store.get(d.archive_uri),
      {
        type: contentTypeOf(`x.${d.archive_format}`),
        length: Number(d.archive_size),
        disposition: `attachment; filename="${d.name}.${d.archive_format}"`,
      },
      `dataset ${d.name}`,
      res,
    );
  }
}
