// The API's feature modules. Services come from the global ServicesModule; the guard and the filter
// apply to every HTTP route.
import type { ServerResponse } from 'node:http';
import { Controller, Get, Inject, Module, Res } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { Database } from '../db/database.js';
import { AccessGuard } from '../http/access.guard.js';
import { ErrorsFilter } from '../http/errors.filter.js';
import { API_CONFIG, type ApiConfig, DATABASE } from '../services/services.module.js';
import { ArtifactsController } from './artifacts.controller.js';
import { DatasetsController } from './datasets.controller.js';
import { LiveGateway, TrainerGateway } from './live.gateways.js';
import { WeightsController } from './weights.controller.js';

/** A database that does not answer within this is reported down. */
const PING_MS = 2000;

@Controller()
export class HealthController {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  /** 200 when the database answers, 503 (with what is known) when it does not. No token needed. */
  @Get('health')
  async health(@Res({ passthrough: true }) res: ServerResponse) {
    let timer: NodeJS.Timeout | undefined;
    const database = await Promise.race([
      this.db.pool.query('SELECT 1').then(
        () => 'up' as const,
        () => 'down' as const,
      ),
      new Promise<'down'>((r) => {
        timer = setTimeout(() => r('down'), PING_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    const e = this.config.embedded;
    const ok = database === 'up';
    res.statusCode = ok ? 200 : 503;
    return {
      ok,
      service: 'headbench-api',
      database,
      ...(e ? { embeddedPostgres: { state: e.state, restarts: e.restarts } } : {}),
    };
  }
}

@Module({ controllers: [HealthController] })
export class HealthModule {}

@Module({ controllers: [ArtifactsController], providers: [AccessGuard] })
export class ArtifactsModule {}

@Module({ controllers: [DatasetsController], providers: [AccessGuard] })
export class DatasetsModule {}

@Module({ controllers: [WeightsController], providers: [AccessGuard] })
export class WeightsModule {}

@Module({ providers: [LiveGateway, TrainerGateway] })
export class LiveModule {}

@Module({
  imports: [HealthModule, ArtifactsModule, DatasetsModule, WeightsModule, LiveModule],
  providers: [{ provide: APP_FILTER, useClass: ErrorsFilter }],
})
export class FeaturesModule {}
