import { Global, Injectable, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { INSTANCE_ID } from '../../modules/nodes/nodes.service.js';
import { startTracing, stopTracing, tracingDisabledReason, tracingEnabled } from './tracer.js';

/**
 * Starts span recording when the standard OTEL_* variables ask for OTLP export, and flushes it
 * at shutdown. Started in the constructor: every provider's onModuleInit (the task spans'
 * listeners) runs after every constructor, so they see whether tracing is on.
 */
@Injectable()
export class TracingLifecycle implements OnApplicationShutdown {
  constructor() {
    startTracing(process.env, INSTANCE_ID);
    const off = tracingDisabledReason(process.env);
    const logger = new Logger('Tracing');
    if (tracingEnabled()) logger.log('exporting spans over OTLP');
    // Only a setting that asked for export and cannot have it is worth a line; no endpoint is the default.
    else if (off && off !== 'no OTEL_EXPORTER_OTLP_ENDPOINT') logger.warn(`traces are not exported: ${off}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await stopTracing();
  }
}

@Global()
@Module({ providers: [TracingLifecycle], exports: [TracingLifecycle] })
export class TracingModule {}
