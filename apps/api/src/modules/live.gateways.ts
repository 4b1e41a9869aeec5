// socket.io: dashboards watch rooms on /live; trainers get pushes and send metrics on /trainers.

import type { MetricsAck } from '@headbench/spec';
import { Inject, Injectable } from '@nestjs/common';
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
import { bearer, LiveTickets, TokenAuth } from '../auth.js';
import { LiveHub } from '../services/live.js';
import { parseReportMetrics } from '../services/metric-input.js';
import { MetricService } from '../services/metrics.js';
import { RunService } from '../services/runs.js';

const rooms = z.object({
  rooms: z
    .array(z.string().regex(/^(run|sweep):[0-9a-f-]{36}$/))
    .min(1)
    .max(500),
});

/**
 * Dashboards: namespace /live, auth { ticket } (live.ticket; what browsers use) or { token } (tools).
 * `subscribe` / `unsubscribe` { rooms: ['run:<id>', 'sweep:<id>'] }; receive `update`.
 */
@WebSocketGateway({ namespace: '/live', cors: { origin: true } })
@Injectable()
export class LiveGateway implements OnGatewayInit {
  constructor(
    @Inject(TokenAuth) private readonly auth: TokenAuth,
    @Inject(LiveTickets) private readonly tickets: LiveTickets,
    @Inject(LiveHub) private readonly hub: LiveHub,
  ) {}

  afterInit(ns: Namespace) {
    ns.use((socket, next) => {
      const auth = socket.handshake.auth as { token?: string; ticket?: string };
      const who =
        auth?.ticket !== undefined
          ? this.tickets.verify(auth.ticket)
          : this.auth.verify(auth?.token ?? bearer(socket.handshake.headers.authorization));
      who
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
    this.hub.rooms?.attach(ns);
  }

  @SubscribeMessage('subscribe')
  async subscribe(@ConnectedSocket() socket: Socket, @MessageBody() body: unknown) {
    const parsed = rooms.safeParse(body);
    if (!parsed.success) return { ok: false, error: parsed.error.issues.map((i) => i.message).join('; ') };
    await socket.join(parsed.data.rooms);
    // Answer once every instance knows: a trainer reporting to another instance then forwards its points.
    await this.hub.rooms?.announce(parsed.data.rooms);
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
@Injectable()
export class TrainerGateway implements OnGatewayInit {
  constructor(
    @Inject(TokenAuth) private readonly auth: TokenAuth,
    @Inject(RunService) private readonly runs: RunService,
    @Inject(MetricService) private readonly metrics: MetricService,
    @Inject(LiveHub) private readonly hub: LiveHub,
  ) {}

  afterInit(ns: Namespace) {
    ns.use((socket, next) => {
      const auth = socket.handshake.auth as { token?: string; trainerId?: string };
      this.auth
        .verify(auth?.token ?? bearer(socket.handshake.headers.authorization))
        .then(async (p) => {
          if (!p) return next(new Error('unauthorized'));
          if (!auth?.trainerId || !z.uuid().safeParse(auth.trainerId).success) {
            return next(new Error('bad request: auth.trainerId required (from trainer.register)'));
          }
          await this.runs.ownTrainer(p, auth.trainerId);
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
      const p = await this.auth.verify(token);
      if (!p) return { ok: false, status: 401, code: 'UNAUTHORIZED', error: 'token revoked or invalid' };
      if (p.role !== 'trainer' && p.role !== 'admin')
        return { ok: false, status: 403, code: 'FORBIDDEN', error: 'trainer token required' };
      const out = await this.metrics.report(p, input.runId, input.leaseId, input.points);
      return { ok: true, ...out };
    } catch (e) {
      if (e instanceof TRPCError)
        return { ok: false, status: getHTTPStatusCodeFromError(e), code: e.code, error: e.message };
      console.error('[api] metrics over socket:', e);
      return { ok: false, status: 500, code: 'INTERNAL_SERVER_ERROR', error: 'internal error' };
    }
  }
}
