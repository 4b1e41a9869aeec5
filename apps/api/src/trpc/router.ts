// The root tRPC router. It must implement @headbench/spec's apiContract exactly: every procedure, with the
// contract's kind (query or mutation) and an output the contract's type accepts; checked when this compiles.
import type { AnyProcedure, ApiContract, Procedure, ProcedureKind } from '@headbench/spec';
import type { AnyTRPCProcedure } from '@trpc/server';
import { router } from './init.js';
import { liveRouter } from './routers/live.js';
import { metaRouter, whoami } from './routers/meta.js';
import { artifactsRouter, datasetsRouter, tokensRouter, trainersRouter } from './routers/registry.js';
import { runsRouter } from './routers/runs.js';
import { sweepsRouter } from './routers/sweeps.js';
import { trainerRouter } from './routers/trainer.js';

const procedures = {
  whoami,
  meta: metaRouter,
  sweeps: sweepsRouter,
  runs: runsRouter,
  trainers: trainersRouter,
  live: liveRouter,
  datasets: datasetsRouter,
  artifacts: artifactsRouter,
  tokens: tokensRouter,
  trainer: trainerRouter,
};

/** The contract, procedure by procedure: the same names, kinds and outputs; `never` marks a mismatch. */
type Implements<R, C> = {
  [K in keyof C]: K extends keyof R
    ? C[K] extends Procedure<infer Kind extends ProcedureKind, infer _I, infer O>
      ? R[K] extends AnyTRPCProcedure
        ? R[K]['_def']['type'] extends Kind
          ? [R[K]['_def']['$types']['output']] extends [O]
            ? R[K]
            : never
          : never
        : never
      : C[K] extends AnyProcedure
        ? never
        : Implements<R[K], C[K]>
    : never;
} & { [K in Exclude<keyof R, keyof C>]: never };

export const appRouter = router(procedures satisfies Implements<typeof procedures, ApiContract>);
export type AppRouter = typeof appRouter;
