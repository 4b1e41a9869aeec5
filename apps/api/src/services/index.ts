// The API's services, built once per process (see ApiModule) and handed to routers, controllers and gateways.
import type { LiveTickets, TokenAuth } from '../auth.js';
import type { Cluster } from '../cluster/index.js';
import type { Database } from '../db/database.js';
import type { ArtifactService } from './artifacts.js';
import type { DatasetService } from './datasets.js';
import type { LiveHub } from './live.js';
import type { MetricService } from './metrics.js';
import type { RunRecords } from './run-records.js';
import type { RunService } from './runs.js';
import type { SweepService } from './sweeps.js';
import type { TokenService } from './tokens.js';
import type { TrainerDirectory } from './trainers.js';

export interface Services {
  db: Database;
  /** Cross-instance plumbing: socket.io adapter, cache bus, reaper leader. */
  cluster: Cluster;
  auth: TokenAuth;
  /** Short-lived read-only tickets for the /live socket (what browsers hold instead of tokens). */
  tickets: LiveTickets;
  hub: LiveHub;
  /** The run queue: sweeps' runs, leases, heartbeats, completion, requeues (raw SQL with pg-boss). */
  runs: RunService;
  runRecords: RunRecords;
  sweeps: SweepService;
  metrics: MetricService;
  artifacts: ArtifactService;
  datasets: DatasetService;
  tokens: TokenService;
  trainers: TrainerDirectory;
}
