// Every service of the API, built by Nest's dependency injection from the resolved configuration and the
// opened database, and stopped in order once the HTTP server and the sockets are closed.
import { type DynamicModule, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { LiveTickets, TokenAuth } from '../auth.js';
import type { Cluster } from '../cluster/index.js';
import { ClusterRooms } from '../cluster/rooms.js';
import type { Database } from '../db/database.js';
import type { EmbeddedDb } from '../db/embedded.js';
import { openArtifactStore, type StorageKind } from '../storage/index.js';
import { ArtifactService, type ArtifactStore } from './artifacts.js';
import { DatasetService } from './datasets.js';
import type { Services } from './index.js';
import { LiveHub } from './live.js';
import { MetricService } from './metrics.js';
import { PackagedWeightsService } from './packaged-weights.js';
import { RunRecords } from './run-records.js';
import { RunService } from './runs.js';
import { SweepService } from './sweeps.js';
import { TokenService } from './tokens.js';
import { TrainerDirectory } from './trainers.js';

/** What createApi resolved from its options and the environment. */
export interface ApiConfig {
  home: string;
  databaseUrl: string;
  leaseSeconds: number;
  maxAttempts: number;
  liveIntervalMs: number;
  maxArtifactBytes: number;
  maxDatasetBytes: number;
  reaperGraceSeconds?: number;
  /** Artifact and dataset bytes: a directory (`storageDir`) or Postgres large objects. */
  storage: StorageKind;
  storageDir: string;
  /** pg-boss retention of waiting jobs (tests shorten it); default QUEUE_RETENTION_SECONDS. */
  queueRetentionSeconds?: number;
  /** The embedded Postgres this API started and watches, if any (health reports its state). */
  embedded?: Pick<EmbeddedDb, 'state' | 'restarts'>;
}

export const API_CONFIG = Symbol('headbench.config');
export const DATABASE = Symbol('headbench.database');
export const ARTIFACT_STORE = Symbol('headbench.artifact-store');
/** All services in one object: the tRPC context hands it to every procedure. */
export const SERVICES = Symbol('headbench.services');

/** Stops the run queue and the live hub after Nest closed the HTTP server and the sockets. */
@Injectable()
class ServicesShutdown implements OnApplicationShutdown {
  constructor(
    @Inject(RunService) private readonly runs: RunService,
    @Inject(LiveHub) private readonly hub: LiveHub,
  ) {}
  async onApplicationShutdown() {
    await this.runs.stop().catch((e) => console.error('[close] run queue:', e?.message ?? e));
    this.hub.close();
  }
}

/** The services the tRPC context carries, by their name there. */
const BY_NAME = {
  auth: TokenAuth,
  tickets: LiveTickets,
  hub: LiveHub,
  runs: RunService,
  runRecords: RunRecords,
  sweeps: SweepService,
  metrics: MetricService,
  artifacts: ArtifactService,
  datasets: DatasetService,
  tokens: TokenService,
  trainers: TrainerDirectory,
} satisfies {
  [K in Exclude<keyof Services, 'db' | 'cluster'>]: abstract new (
    ...args: never[]
  ) => Services[K];
};

@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: Nest's dynamic modules are classes with a static forRoot
export class ServicesModule {
  static forRoot(config: ApiConfig, db: Database, cluster: Cluster): DynamicModule {
    return {
      module: ServicesModule,
      global: true,
      providers: [
        { provide: API_CONFIG, useValue: config },
        { provide: DATABASE, useValue: db },

        {
          provide: LiveHub,
          useFactory: () => {
            const hub = new LiveHub(config.liveIntervalMs);
            hub.rooms = new ClusterRooms();
            return hub;
          },
        },
        { provide: PackagedWeightsService, useFactory: () => new PackagedWeightsService(config.home) },
        {
          provide: RunService,
          useFactory: async (hub: LiveHub, packaged: PackagedWeightsService) => {
            const runs = new RunService(
              db.pool,
              hub,
              {
                leaseSeconds: config.leaseSeconds,
                maxAttempts: config.maxAttempts,
                reaperGraceSeconds: config.reaperGraceSeconds,
                isLeader: () => cluster.leader.isLeader,
                queueRetentionSeconds: config.queueRetentionSeconds,
                packaged,
              },
              config.databaseUrl,
            );
            await runs.start();
            return runs;
          },
          inject: [LiveHub, PackagedWeightsService],
        },
        {
          provide: TokenAuth,
          useFactory: () => {
            const auth = new TokenAuth(db.pool);
            auth.onForget = () => void cluster.bus.publish('tokens');
            cluster.bus.on('tokens', () => auth.forgetLocal());
            return auth;
          },
        },
        {
          provide: ARTIFACT_STORE,
          useFactory: () => openArtifactStore(config.storage, config.storageDir, db.pool),
        },
        { provide: LiveTickets, useFactory: () => new LiveTickets(db.pool) },
        {
          provide: MetricService,
          useFactory: (runs: RunService, hub: LiveHub) =>
            new MetricService(db.pool, runs, hub, db.ingestPool),
          inject: [RunService, LiveHub],
        },
        {
          provide: ArtifactService,
          useFactory: (runs: RunService, store: ArtifactStore) =>
            new ArtifactService(db.pool, runs, store, config.maxArtifactBytes),
          inject: [RunService, ARTIFACT_STORE],
        },
        {
          provide: DatasetService,
          useFactory: (store: ArtifactStore) => new DatasetService(db.pool, store, config.maxDatasetBytes),
          inject: [ARTIFACT_STORE],
        },
        {
          provide: SweepService,
          useFactory: (runs: RunService) => new SweepService(db.prisma, runs),
          inject: [RunService],
        },
        {
          provide: RunRecords,
          useFactory: (artifacts: ArtifactService) => new RunRecords(db.prisma, artifacts),
          inject: [ArtifactService],
        },
        { provide: TrainerDirectory, useFactory: () => new TrainerDirectory(db.prisma) },
        {
          provide: TokenService,
          useFactory: (auth: TokenAuth) => new TokenService(db.prisma, auth),
          inject: [TokenAuth],
        },
        {
          provide: SERVICES,
          useFactory: (...values: unknown[]): Services => ({
            db,
            cluster,
            ...(Object.fromEntries(Object.keys(BY_NAME).map((k, i) => [k, values[i]])) as Omit<
              Services,
              'db' | 'cluster'
            >),
          }),
          inject: Object.values(BY_NAME),
        },
        ServicesShutdown,
      ],
      exports: [API_CONFIG, DATABASE, SERVICES, PackagedWeightsService, ...Object.values(BY_NAME)],
    };
  }
}
