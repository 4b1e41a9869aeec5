// Live updates: browsers get a short-lived read-only ticket for the /live socket instead of a token.
import { apiContract } from '@headbench/spec';
import { procedure } from '../init.js';

export const liveRouter = {
  ticket: procedure(apiContract.live.ticket).query(({ ctx }) => ctx.services.tickets.issue(ctx.principal)),
};
