import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/**
 * Shapes of the system endpoints: seed 002 `/health`, Codex `/healthz`, `/status`, `/metrics`,
 * `/shutdown`. The open ones carry the same fields with or without a key; counts are null without
 * one (docs/security.md).
 */

const counts = { type: 'object', additionalProperties: { type: 'number' } } as const;

export class ComponentHealthView {
  @ApiProperty({
    enum: ['healthy', 'unhealthy', 'not_configured'],
    description: '`not_configured`: the hub runs without it (no REDIS_URL, no LLM provider); `healthy` is then true',
  })
  status: 'healthy' | 'unhealthy' | 'not_configured';
  @ApiProperty() healthy: boolean;
  @ApiProperty({ description: 'ms' }) response_time: number;
  @ApiProperty({ format: 'date-time' }) last_checked: string;
  @ApiPropertyOptional({ description: 'PostgreSQL server version' }) version?: string;
}

export class HealthReportView {
  @ApiProperty({ enum: ['healthy', 'unhealthy'] }) status: 'healthy' | 'unhealthy';
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty() version: string;
  @ApiProperty({ example: '1h2m' }) uptime: string;
  @ApiProperty() uptime_seconds: number;
  @ApiProperty({
    type: 'object',
    description:
      'always `database`, `cache` (Redis) and `external_services` (the LLM providers, with `providers`); ' +
      'the last two `not_configured` without REDIS_URL or providers. Only the database decides the overall status',
    additionalProperties: { $ref: '#/components/schemas/ComponentHealthView' },
    example: {
      database: { status: 'healthy', healthy: true, response_time: 2, last_checked: '2026-01-01T00:00:00.000Z' },
      cache: { status: 'not_configured', healthy: true, response_time: 0, last_checked: '2026-01-01T00:00:00.000Z' },
      external_services: {
        status: 'not_configured',
        healthy: true,
        response_time: 0,
        last_checked: '2026-01-01T00:00:00.000Z',
        providers: [],
      },
    },
  })
  components: Record<string, ComponentHealthView>;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description:
      'memory_usage, rss_bytes, heap_used_bytes, cpu_usage, active_connections, queue_size (null without a valid key)',
  })
  metrics: Record<string, unknown>;
}

export class CodexTaskCountsView {
  @ApiProperty() total: number;
  @ApiProperty() pending: number;
  @ApiProperty() running: number;
  @ApiProperty() completed: number;
  @ApiProperty() failed: number;
  @ApiProperty() cancelled: number;
}

export class CodexHealthzView {
  @ApiProperty({ enum: ['healthy', 'shutting_down'] }) status: string;
  @ApiProperty() version: string;
  @ApiProperty({ description: 'ms' }) uptime: number;
  @ApiProperty({
    type: CodexTaskCountsView,
    nullable: true,
    description: 'null without a valid key, or when the database is slow',
  })
  tasks: CodexTaskCountsView | null;
  @ApiProperty({ type: 'object', properties: { memory: { type: 'string' }, cpu: { type: 'string' } } })
  system: { memory: string; cpu: string };
}

export class CodexStatusDataView {
  @ApiProperty({ enum: ['running', 'shutting_down'] }) status: string;
  @ApiProperty() version: string;
  @ApiProperty({ description: 'ms' }) uptime: number;
  @ApiProperty({ type: CodexTaskCountsView, nullable: true, description: 'null without a valid key' })
  tasks: CodexTaskCountsView | null;
  @ApiProperty({ ...counts, nullable: true, description: 'online, total; null without a valid key' })
  nodes: { online: number; total: number } | null;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
}

export class CodexStatusView {
  @ApiProperty({ enum: [true] }) success: boolean;
  @ApiProperty({ type: CodexStatusDataView }) data: CodexStatusDataView;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty() requestId: string;
}

export class CodexMetricsView {
  @ApiProperty({ enum: [true] }) success: boolean;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'tasks, performance (avgExecutionTime, successRate, throughput), system (memory, cpu, uptime)',
  })
  data: Record<string, unknown>;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty() requestId: string;
}

export class ShutdownAcceptedView {
  @ApiProperty({ enum: [true] }) success: boolean;
  @ApiProperty({ example: 'Shutting down' }) message: string;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
}
