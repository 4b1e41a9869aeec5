// tRPC setup: the request context, the error shape, and one procedure builder per access level of the
// contract in @headbench/spec (token, user, admin, trainer).
import { type Access, type AnyProcedure, formatIssues, MAX_LISTED_ISSUES } from '@headbench/spec';
import { initTRPC, TRPCError } from '@trpc/server';
import type { Principal } from '../auth.js';
import type { Services } from '../services/index.js';

export interface Context {
  principal: Principal | null;
  services: Services;
}

const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error }) {
    // Validation errors name every offending field: "size: inceptionv3 needs inputs of at least 75x75 pixels".
    const cause = error.cause as { issues?: { path: PropertyKey[]; message: string }[] } | undefined;
    const all = error.code === 'BAD_REQUEST' && Array.isArray(cause?.issues) ? cause.issues : undefined;
    return {
      ...shape,
      message: all ? formatIssues(all).join('; ') : shape.message,
      data: {
        ...shape.data,
        stack: undefined,
        issues: all
          ?.slice(0, MAX_LISTED_ISSUES)
          .map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
      },
    };
  },
});

export const router = t.router;

/** Any valid token. */
const token = t.procedure.use(({ ctx, next }) => {
  if (!ctx.principal) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'missing or invalid token' });
  return next({ ctx: { ...ctx, principal: ctx.principal } });
});
/** People (admin, member). Trainer tokens get 403: they only lease and report. */
const user = token.use(({ ctx, next }) => {
  if (ctx.principal.role === 'trainer')
    throw new TRPCError({ code: 'FORBIDDEN', message: 'trainer tokens cannot do this' });
  return next();
});
const admin = token.use(({ ctx, next }) => {
  if (ctx.principal.role !== 'admin') throw new TRPCError({ code: 'FORBIDDEN', message: 'admin only' });
  return next();
});
const trainer = token.use(({ ctx, next }) => {
  if (ctx.principal.role !== 'trainer' && ctx.principal.role !== 'admin')
    throw new TRPCError({ code: 'FORBIDDEN', message: 'trainer token required' });
  return next();
});
const byAccess = { token, user, admin, trainer } satisfies Record<Access, typeof token>;

type WithInput<P extends AnyProcedure> = P['input'] extends null
  ? typeof token
  : ReturnType<typeof token.input<NonNullable<P['input']>>>;

/** The builder for one contract procedure: its access check and its input schema, both from the contract. */
export function procedure<P extends AnyProcedure>(p: P): WithInput<P> {
  const base = byAccess[p.access];
  return (p.input ? base.input(p.input) : base) as WithInput<P>;
}
