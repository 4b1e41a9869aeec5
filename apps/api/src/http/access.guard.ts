// Token and role checks for HTTP routes: `@UseGuards(AccessGuard) @Access('trainer')` on a handler.
// The guard runs before any body byte is read, so an upload without a valid token is refused at once.
import type { IncomingMessage } from 'node:http';
import type { Access as Level } from '@headbench/spec';
import {
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { bearer, TokenAuth, type Principal as Who } from '../auth.js';

const ACCESS = 'headbench:access';
/** Who may call the route, as in the tRPC contract: token, user (no trainers), admin, trainer. */
export const Access = (level: Level) => SetMetadata(ACCESS, level);

type AuthedRequest = IncomingMessage & { principal?: Who };

/** The caller the guard verified. */
export const Principal = createParamDecorator(
  (_: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<AuthedRequest>().principal as Who,
);

const REFUSALS: Record<Level, (p: Who) => string | null> = {
  token: () => null,
  user: (p) => (p.role === 'trainer' ? 'trainer tokens cannot do this' : null),
  admin: (p) => (p.role === 'admin' ? null : 'admin only'),
  trainer: (p) => (p.role === 'trainer' || p.role === 'admin' ? null : 'trainer token required'),
};

@Injectable()
export class AccessGuard implements CanActivate {
  constructor(
    @Inject(TokenAuth) private readonly auth: TokenAuth,
    @Inject(Reflector) private readonly reflector: Reflector,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const p = await this.auth.verify(bearer(req.headers.authorization));
    if (!p) throw new UnauthorizedException('missing or invalid token');
    const level = this.reflector.get<Level | undefined>(ACCESS, ctx.getHandler()) ?? 'token';
    const refusal = REFUSALS[level](p);
    if (refusal) throw new ForbiddenException(refusal);
    req.principal = p;
    return true;
  }
}
