import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { EnvelopeInterceptor } from './common/envelope.js';
import { GlobalExceptionFilter } from './common/exception.filter.js';
import { createValidationPipe } from './common/validation.js';
import { EventsModule } from './common/events/events.module.js';
import { TracingModule } from './common/tracing/tracing.module.js';
import { ApexCompatModule } from './compat/apex/apex.module.js';
import { CodexCompatModule } from './compat/codex/codex.module.js';
import { DistributedCompatModule } from './compat/distributed/distributed.module.js';
import { AgentServicesModule } from './modules/agent-services/agent-services.module.js';
import { AuthModule } from './modules/auth/auth.module.js';
import { DashboardModule } from './modules/dashboard/dashboard.module.js';
import { DispatchModule } from './modules/dispatch/dispatch.module.js';
import { LlmAccountingModule } from './modules/llm/accounting/llm-accounting.module.js';
import { NodesModule } from './modules/nodes/nodes.module.js';
import { PluginCallbacksModule } from './modules/plugin-callbacks/plugin-callbacks.module.js';
import { RateLimitGuard } from './modules/rate-limit/rate-limit.guard.js';
import { RateLimitModule } from './modules/rate-limit/rate-limit.module.js';
import { RetentionModule } from './modules/retention/retention.module.js';
import { RealtimeModule } from './modules/realtime/realtime.module.js';
import { ConcurrencyModule } from './modules/concurrency/concurrency.module.js';
import { RoutingModule } from './modules/routing/routing.module.js';
import { LlmModule } from './modules/llm/llm.module.js';
import { RolloutsModule } from './modules/rollouts/rollouts.module.js';
import { SchedulesModule } from './modules/schedules/schedules.module.js';
import { RuntimeConfigModule } from './modules/runtime-config/runtime-config.module.js';
import { MetricsModule } from './modules/metrics/metrics.module.js';
import { EdgeModule } from './modules/edge/edge.module.js';
import { TasksModule } from './modules/tasks/tasks.module.js';
import { TenantsModule } from './modules/tenants/tenants.module.js';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        TracingModule,
        EventsModule,
        EdgeModule,
        DatabaseModule,
        RetentionModule,
        LlmModule,
        RuntimeConfigModule,
        AuthModule,
        TenantsModule,
        RateLimitModule,
        TasksModule,
        NodesModule,
        DispatchModule,
        RoutingModule,
        ConcurrencyModule,
        SchedulesModule,
        RolloutsModule,
        AgentServicesModule,
        PluginCallbacksModule,
        RealtimeModule,
        MetricsModule,
        LlmAccountingModule,
        DistributedCompatModule,
        CodexCompatModule,
        ApexCompatModule,
        DashboardModule,
      ],
      providers: [
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_FILTER, useClass: GlobalExceptionFilter },
        { provide: APP_INTERCEPTOR, useClass: EnvelopeInterceptor },
        // After AuthModule's key guard (registered first), so limits are per key.
        { provide: APP_GUARD, useClass: RateLimitGuard },
      ],
    };
  }
}
