import { apiContract as c, META_NAMES } from '@headbench/spec';
import { procedure } from '../init.js';

export const whoami = procedure(c.whoami).query(({ ctx }) => ({
  role: ctx.principal.role,
  name: ctx.principal.name,
}));

export const metaRouter = {
  names: procedure(c.meta.names).query(() => META_NAMES),
};
