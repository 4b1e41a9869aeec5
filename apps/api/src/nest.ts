import type { IncomingMessage, ServerResponse } from 'node:http';
import { ARTIFACT_KINDS, DATASET_FORMATS, type MetricsAck } from '@headbench/spec';
import {
  Controller,
  type DynamicModule,
  Get,
  Inject,
  Module,
  type OnModuleInit,
  Param,
  Put,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { Namespace, Socket } from 'socket.io';
import { z } from 'zod';
import { bearer, type Principal } from './auth.js';
import { contentTypeOf } from './services/artifacts.js';
import type { LiveHub } from './services/live.js';
import { parseReportMetrics } from './services/metric-input.js';
import type { Services } from './trpc.js';

/** Express's request/response, typed from node:http (no @types/express here). */
type Request = IncomingMessage;
interface Response extends ServerResponse {
  status(code: number): Response;
  json(body: unknown): void;
}

export const SERVICES = Symbol('headbench.services');
export const HUB = Symbol('headbench.hub');

function sendError(res: Response, e: unknown) {
  if (e instanceof TRPCError) {
    res.status(getHTTPStatusCodeFromError(e)).json({ error: e.message, code: e.code });
  } else {
    console.error('[api]', e);
    res.status(500).json({ error: 'internal error' });
  }
}

/**
 * An upload refused before its body was read: the unread bytes would keep the socket busy, so the answer
 * says `Connection: close` (a keep-alive client must not send its next request on it) and the socket is
 * closed once the answer is out, not before.
 */
function sendUploadError(req: Request, res: Response, e: unknown) {
  const unread = !req.complete;
  if (unread && !res.headersSent) res.setHeader('connection', 'close');
  sendError(res, e);
  if (unread) res.once('finish', () => req.destroy());
}

async function principalOf(services: Services, req: Request): Promise<Principal> {
  const p = await services.auth.verify(bearer(req.headers.authorization));
  if (!p) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'missing or invalid token' });
  return p;
}

@Controller()
export class HealthController {
  @Get('health')
  health() {
    return { ok: true, service: 'headbench-api' };
  }
}

const PutQuery = z.object({
  kind: z.enum(ARTIFACT_KINDS),
  leaseId: z.uuid(),
  epoch: z.coerce.number().int().min(0).optional(),
});

/** Artifact bytes over plain HTTP: streamed, hashed on the way in, size-limited. */
@Controller('artifacts')
export class ArtifactsController {
  constructor(@Inject(SERVICES) private readonly services: Services) {}

  @Put(':runId/:name')
  async put(
    @Param('runId') runId: string,
    @Param('name') name: string,
    @Query() query: Record<string, string>,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    try {
      const p = await principalOf(this.services, req);
      if (p.role !== 'trainer' && p.role !== 'admin') {
        throw new TRPCError({ code: 'FORBIDDEN', message: 'trainer token required' });
      }
      const q = PutQuery.safeParse(query);
      if (!q.success || !z.uuid().safeParse(runId).success) {
        const issues = q.success
          ? ['runId: invalid uuid']
          : q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
        throw new TRPCError({ code: 'BAD_REQUEST', message: issues.join('; ') });
      }
      const declared = Number(req.headers['content-length']);
      if (declared > this.services.artifacts.maxBytes) {
        throw new TRPCError({
          code: 'PAYLOAD_TOO_LARGE',
          message: `artifact exceeds ${this.services.artifacts.maxBytes} bytes`,
        });
      }
      const info = await this.services.artifacts.upload(p, { runId, name, ...q.data }, req);
      res.status(201).json(info);
    } catch (e) {
      sendUploadError(req, res, e);
    }
  }

  @Get(':id/content')
  async content(@Param('id') id: string, @Req() req: Request, @Res() res: Response) {
    try {
      const p = await principalOf(this.services, req);
      if (!z.uuid().safeParse(id).success)
        throw new TRPCError({ code: 'BAD_REQUEST', message: 'id: invalid uuid' });
      const a = await this.services.artifacts.get(id);
      if (!a) throw new TRPCError({ code: 'NOT_FOUND', message: `no artifact ${id}` });
      // Trainers: their held runs' artifacts, and the models those runs reference (`weights: run:<id>`).
      if (p.role === 'trainer' && !(await this.services.artifacts.trainerMayRead(p, a))) {
        throw new TRPCError({
          code: 'FORBIDDEN',
          message: 'trainer tokens may read only artifacts of runs they hold or models those runs use',
        });
      }
      res.setHeader('content-type', contentTypeOf(a.name));
      res.setHeader('content-length', String(a.size));
      res.setHeader('x-sha256', a.sha256);
      res.setHeader('content-disposition', `attachment; filename="${a.name}"`);
      (await this.services.artifacts.store.get(a.uri)).pipe(res);
    } catch (e) {
      sendError(res, e);
    }
  }
}

const DatasetPutQuery = z.object({
  format: z.enum(DATASET_FORMATS),
  /** The dataset's content hash (as `headbench` computes it), checked by trainers after unpacking. */
  contentHash: z
    .string()
    .regex(/^[0-9a-f]{16,128}$/)
    .optional(),
  /** Comma-separated class order. */
  classes: z.string().max(100_000).optional(),
});

/** Dataset archives: PUT (members, admins; size-limited) registers the set; GET streams it back. */
@Controller('datasets')
export class DatasetsController {
  constructor(@Inject(SERVICES) private readonly services: Services) {}

  @Put(':name')
  async put(
    @Param('name') name: string,
    @Query() query: Record<string, string>,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    try {
      const p = await principalOf(this.services, req);
      if (p.role === 'trainer')
        throw new TRPCError({ code: 'FORBIDDEN', message: 'trainer tokens cannot upload datasets' });
      const q = DatasetPutQuery.safeParse(query);
      if (!q.success) {
        throw new TRPCError({
          code: 'BAD_REQUEST',
          message: q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
        });
      }
      const declared = Number(req.headers['content-length']);
      if (declared > this.services.datasets.maxBytes) {
        throw new TRPCError({
          code: 'PAYLOAD_TOO_LARGE',
          message: `dataset exceeds ${this.services.datasets.maxBytes} bytes`,
        });
      }
      const classes = q.data.classes?.split(',').filter(Boolean);
      const info = await this.services.datasets.upload(name, { ...q.data, classes }, req);
      res.status(201).json(info);
    } catch (e) {
      sendUploadError(req, res, e);
    }
  }

  @Get(':name/content')
  async content(@Param('name') name: string, @Req() req: Request, @Res() res: Response) {
    try {
      const p = await principalOf(this.services, req);
      const d = await this.services.datasets.get(name);
      if (!d?.archive_uri) throw new TRPCError({ code: 'NOT_FOUND', message: `no uploaded dataset ${name}` });
      if (p.role === 'trainer' && !(await this.services.datasets.trainerMayRead(p, name))) {
        throw new TRPCError({
          code: 'FORBIDDEN',
          message: 'trainer tokens may read only datasets of runs they hold',
        });
      }
      res.setHeader('content-type', contentTypeOf(`x.${d.archive_format}`));
      res.setHeader('content-length', String(d.archive_size));
      res.setHeader('x-sha256', d.archive_sha256 ?? '');
      res.setHeader('content-disposition', `attachment; filename="${d.name}.${d.archive_format}"`);
      (await this.services.datasets.store.get(d.archive_uri)).pipe(res);
    } catch (e) {
      sendError(res, e);
    }
  }
}

const rooms = z.object({
  rooms: z
    .array(z.string().regex(/^(run|sweep):[0-9a-f-]{36}$/))
    .min(1)
    .max(500),
});

/** Dashboards: namespace /live. `subscribe` / `unsubscribe` { rooms: ['run:<id>', 'sweep:<id>'] }; receive `update`. */
@WebSocketGateway({ namespace: '/live', cors: { origin: true } })
export class LiveGateway implements OnGatewayInit {
  constructor(
    @Inject(SERVICES) private readonly services: Services,
    @Inject(HUB) private readonly hub: LiveHub,
  ) {}

  afterInit(ns: Namespace) {
    ns.use((socket, next) => {
      const token =
        (socket.handshake.auth as { token?: string })?.token ??
        bearer(socket.handshake.headers.authorization);
      this.services.auth
        .verify(token)
        .then((p) => {
          if (!p) return next(new Error('unauthorized'));
          if (p.role === 'trainer')
            return next(new Error('forbidden: trainer tokens cannot watch dashboards'));
          socket.data.principal = p;
          next();
        })
        .catch(next);
    });
    this.hub.live = ns;
  }

  @SubscribeMessage('subscribe')
  async subscribe(@ConnectedSocket() socket: Socket, @MessageBody() body: unknown) {
    const parsed = rooms.safeParse(body);
    if (!parsed.success) return { ok: false, error: parsed.error.issues.map((i) => i.message).join('; ') };
    await socket.join(parsed.data.rooms);
    return { ok: true, rooms: parsed.data.rooms };
  }

  @SubscribeMessage('unsubscribe')
  async unsubscribe(@ConnectedSocket() socket: Socket, @MessageBody() body: unknown) {
    const parsed = rooms.safeParse(body);
    if (!parsed.success) return { ok: false, error: parsed.error.issues.map((i) => i.message).join('; ') };
    for (const r of parsed.data.rooms) await socket.leave(r);
    return { ok: true };
  }
}

/**
 * Trainers: namespace /trainers, auth { token, trainerId }. Server pushes `cancel` and `work`; trainers send
 * `metrics` { runId, leaseId, points } with an ack (MetricsAck).
 */
@WebSocketGateway({ namespace: '/trainers' })
export class TrainerGateway implements OnGatewayInit {
  constructor(
    @Inject(SERVICES) private readonly services: Services,
    @Inject(HUB) private readonly hub: LiveHub,
  ) {}

  afterInit(ns: Namespace) {
    ns.use((socket, next) => {
      const auth = socket.handshake.auth as { token?: string; trainerId?: string };
      this.services.auth
        .verify(auth?.token ?? bearer(socket.handshake.headers.authorization))
        .then(async (p) => {
          if (!p) return next(new Error('unauthorized'));
          if (!auth?.trainerId || !z.uuid().safeParse(auth.trainerId).success) {
            return next(new Error('bad request: auth.trainerId required (from trainer.register)'));
          }
          await this.services.runs.ownTrainer(p, auth.trainerId);
          await socket.join(`trainer:${auth.trainerId}`);
          socket.data.token = auth?.token ?? bearer(socket.handshake.headers.authorization);
          next();
        })
        .catch((e: Error) => next(new Error(e instanceof TRPCError ? `forbidden: ${e.message}` : e.message)));
    });
    // `metrics` is registered on the raw socket, not through @SubscribeMessage: it is the hot path.
    ns.on('connection', (socket: Socket) => {
      socket.on('metrics', (body: unknown, ack: unknown) => {
        if (typeof ack !== 'function') return; // fire-and-forget would lose errors: ack required
        void this.ingest(socket.data.token as string, body).then((r) => ack(r));
      });
    });
    this.hub.trainers = ns;
  }

  /** One metrics batch from the socket: validate, re-check the token (revocation), then as reportMetrics. */
  async ingest(token: string, body: unknown): Promise<MetricsAck> {
    const input = parseReportMetrics(body);
    if (!input.ok) return { ok: false, status: 400, code: 'BAD_REQUEST', error: input.error };
    try {
      const p = await this.services.auth.verify(token);
      if (!p) return { ok: false, status: 401, code: 'UNAUTHORIZED', error: 'token revoked or invalid' };
      if (p.role !== 'trainer' && p.role !== 'admin')
        return { ok: false, status: 403, code: 'FORBIDDEN', error: 'trainer token required' };
      const out = await this.services.metrics.report(p, input.runId, input.leaseId, input.points);
      return { ok: true, ...out };
    } catch (e) {
      if (e instanceof TRPCError)
        return { ok: false, status: getHTTPStatusCodeFromError(e), code: e.code, error: e.message };
      console.error('[api] metrics over socket:', e);
      return { ok: false, status: 500, code: 'INTERNAL_SERVER_ERROR', error: 'internal error' };
    }
  }
}

@Module({})
export class AppModule implements OnModuleInit {
  static forRoot(services: Services, hub: LiveHub): DynamicModule {
    return {
      module: AppModule,
      controllers: [HealthController, ArtifactsController, DatasetsController],
      providers: [
        { provide: SERVICES, useValue: services },
        { provide: HUB, useValue: hub },
        LiveGateway,
        TrainerGateway,
      ],
    };
  }
  onModuleInit() {}
}
