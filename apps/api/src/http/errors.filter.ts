// Every error of an HTTP route as { error, code } with the right status: Nest's HttpExceptions (guard,
// pipes), the TRPCErrors services throw, anything else as 500 (logged, not shown).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';

const CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
};

function answer(e: unknown): { status: number; code: string; error: string } {
  if (e instanceof TRPCError)
    return { status: getHTTPStatusCodeFromError(e), code: e.code, error: e.message };
  if (e instanceof HttpException) {
    const status = e.getStatus();
    const body = e.getResponse();
    const message = typeof body === 'string' ? body : ((body as { message?: unknown }).message ?? e.message);
    return { status, code: CODES[status] ?? `HTTP_${status}`, error: String(message) };
  }
  console.error('[api]', e);
  return { status: 500, code: 'INTERNAL_SERVER_ERROR', error: 'internal error' };
}

@Catch()
export class ErrorsFilter implements ExceptionFilter {
  catch(e: unknown, host: ArgumentsHost) {
    const http = host.switchToHttp();
    const req = http.getRequest<IncomingMessage>();
    const res = http.getResponse<ServerResponse>();
    const { status, code, error } = answer(e);
    if (res.headersSent) {
      // A download that broke half-way: the client sees a cut stream (the length header does not match).
      res.destroy();
      return;
    }
    // An upload refused before its body was read: the unread bytes would keep the socket busy, so the answer
    // says `Connection: close` (a keep-alive client must not send its next request on it) and the socket is
    // closed once the answer is out, not before.
    const unread = !req.complete;
    if (unread) res.setHeader('connection', 'close');
    res.statusCode = status;
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.end(JSON.stringify({ error, code }));
    if (unread) res.once('finish', () => req.destroy());
  }
}
