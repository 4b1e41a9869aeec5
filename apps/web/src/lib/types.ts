import type { AppRouter } from '@headbench/api/router';
import type { inferRouterOutputs } from '@trpc/server';

type Out = inferRouterOutputs<AppRouter>;
export type Run = Out['runs']['list'][number];
export type RunDetail = Out['runs']['get'];
export type Sweep = Out['sweeps']['get'];
export type SweepListItem = Out['sweeps']['list'][number];
export type Trainer = Out['trainers']['list'][number];
export type { LiveUpdate } from '@headbench/spec';
