// What the dashboard shows, as the API's contract (@headbench/spec) types it.
export type {
  LiveUpdate,
  RunDetail,
  RunRecord as Run,
  SweepDetail as Sweep,
  SweepListItem,
  TrainerInfo as Trainer,
} from '@headbench/spec';
