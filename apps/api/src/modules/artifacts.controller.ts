// Artifact bytes over plain HTTP: uploads stream in (hashed on the way, size-limited), downloads stream out.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ARTIFACT_KINDS } from '@headbench/spec';
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
import { ArtifactService, contentTypeOf } from '../services/artifacts.js';

const PutQuery = z.object({
  kind: z.enum(ARTIFACT_KINDS),
  leaseId: z.uuid(),
  epoch: z.coerce.number().int().min(0).optional(),
});

@Controller('artifacts')
@UseGuards(AccessGuard)
export class ArtifactsController {
  constructor(@Inject(ArtifactService) private readonly artifacts: ArtifactService) {}

  @Put(':runId/:name')
  @Access('trainer')
  @HttpCode(201)
  async put(
    @Principal() p: Who,
    @Param('runId', new ZodPipe(z.uuid(), 'runId')) runId: string,
    @Param('name') name: string,
    @Query(new ZodPipe(PutQuery)) query: z.output<typeof PutQuery>,
    @Req() req: IncomingMessage,
  ) {
    if (Number(req.headers['content-length']) > this.artifacts.maxBytes)
      throw new PayloadTooLargeException(`artifact exceeds ${this.artifacts.maxBytes} bytes`);
    return this.artifacts.upload(p, { runId, name, ...query }, req);
  }

  @Get(':id/content')
  async content(
    @Principal() p: Who,
    @Param('id', new ZodPipe(z.uuid(), 'id')) id: string,
    @Res({ passthrough: true }) res: ServerResponse,
  ): Promise<StreamableFile> {
    const a = await this.artifacts.get(id);
    if (!a) throw new TRPCError({ code: 'NOT_FOUND', message: `no artifact ${id}` });
    // Trainers: their held runs' artifacts, and the models those runs reference (`weights: run:<id>`).
    if (p.role === 'trainer' && !(await this.artifacts.trainerMayRead(p, a)))
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: 'trainer tokens may read only artifacts of runs they hold or models those runs use',
      });
    res.setHeader('x-sha256', a.sha256);
    return streamFile(
      await this.artifacts.store.get(a.uri),
      {
        type: contentTypeOf(a.name),
        length: Number(a.size),
        disposition: `attachment; filename="${a.name}"`,
      },
      `artifact ${a.id}`,
      res,
    );
  }
}
