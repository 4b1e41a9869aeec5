// The API's feature modules. Services come from the global ServicesModule; the guard and the filter
// apply to every HTTP route.
import { Controller, Get, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AccessGuard } from '../http/access.guard.js';
import { ErrorsFilter } from '../http/errors.filter.js';
import { ArtifactsController } from './artifacts.controller.js';
import { DatasetsController } from './datasets.controller.js';
import { LiveGateway, TrainerGateway } from './live.gateways.js';
import { WeightsController } from './weights.controller.js';

@Controller()
export class HealthController {
  @Get('health')
  health() {
    return { ok: true, service: 'headbench-api' };
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
