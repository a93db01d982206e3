import { ApiProperty } from '@nestjs/swagger';
import { HEALTH_CHECK_TYPES, HEALTH_STATUSES, SERVICE_STATUSES } from '../agent-service.types.js';

/** Response shapes of the seed 003 routes (answered with `@FlatEnvelope()`: these fields at the top level). */

const nullableString = { type: String, nullable: true } as const;
const nullableNumber = { type: Number, nullable: true } as const;
const nullableDate = { type: String, format: 'date-time', nullable: true } as const;

export class HealthCheckSpecView {
  @ApiProperty({ enum: HEALTH_CHECK_TYPES }) type: string;
  @ApiProperty() path: string;
  @ApiProperty({ description: 'seconds between checks' }) interval: number;
  @ApiProperty({ description: 'seconds before a check fails' }) timeout: number;
}

export class ServiceConfigView {
  @ApiProperty() max_sessions: number;
  @ApiProperty() session_timeout: number;
  @ApiProperty() auto_restart: boolean;
  @ApiProperty() health_check_enabled: boolean;
  @ApiProperty() max_restarts: number;
  @ApiProperty() restart_window: number;
  @ApiProperty() start_timeout: number;
  @ApiProperty() proxy_metadata: boolean;
}

export class ServiceStatsView {
  @ApiProperty() total_connections: number;
  @ApiProperty() active_connections: number;
  @ApiProperty() peak_connections: number;
  @ApiProperty() total_sessions: number;
  @ApiProperty() active_sessions: number;
  @ApiProperty() completed_sessions: number;
  @ApiProperty() avg_session_duration: number;
  @ApiProperty({ description: 'messages relayed either way (stored at each stats sample)' }) messages: number;
  @ApiProperty({
    ...nullableNumber,
    description: 'mean time from a client message forwarded to the agent to its next message back, ms',
  })
  avg_response_time_ms: number | null;
  @ApiProperty() uptime_seconds: number;
  @ApiProperty(nullableNumber) memory_usage_mb: number | null;
  @ApiProperty(nullableNumber) cpu_usage_percent: number | null;
  @ApiProperty() error_count: number;
  @ApiProperty() error_rate: number;
}

export class ServiceHealthSummaryView {
  @ApiProperty({ enum: HEALTH_STATUSES }) status: string;
  @ApiProperty(nullableDate) last_check: string | null;
  @ApiProperty(nullableNumber) response_time_ms: number | null;
  @ApiProperty(nullableString) message: string | null;
}

export class ServiceView {
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty() name: string;
  @ApiProperty(nullableString) description: string | null;
  @ApiProperty({ enum: ['managed', 'external'] }) kind: 'managed' | 'external';
  @ApiProperty() host: string;
  @ApiProperty(nullableNumber) port: number | null;
  @ApiProperty(nullableString) endpoint: string | null;
  @ApiProperty({ enum: SERVICE_STATUSES }) status: string;
  @ApiProperty({ type: [String] }) tags: string[];
  @ApiProperty() weight: number;
  @ApiProperty(nullableString) agent_factory_path: string | null;
  @ApiProperty(nullableString) command: string | null;
  @ApiProperty({ type: [String] }) args: string[];
  @ApiProperty(nullableString) cwd: string | null;
  @ApiProperty({ type: HealthCheckSpecView }) health_check: HealthCheckSpecView;
  @ApiProperty({ type: ServiceConfigView }) config: ServiceConfigView;
  @ApiProperty(nullableNumber) pid: number | null;
  @ApiProperty() restart_count: number;
  @ApiProperty(nullableNumber) last_exit_code: number | null;
  @ApiProperty(nullableString) last_error: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
  @ApiProperty(nullableDate) started_at: string | null;
  @ApiProperty(nullableDate) stopped_at: string | null;
  @ApiProperty({ type: ServiceStatsView }) stats: ServiceStatsView;
  @ApiProperty({ type: ServiceHealthSummaryView }) health: ServiceHealthSummaryView;
}

/** start, stop, restart: the service after the change, and what happened. */
export class ServiceActionView extends ServiceView {
  @ApiProperty({ example: 'Service started' }) message: string;
}

export class ServicePageView {
  @ApiProperty() limit: number;
  @ApiProperty() offset: number;
  @ApiProperty() has_next: boolean;
}

export class ServiceListView {
  @ApiProperty({ type: [ServiceView] }) services: ServiceView[];
  @ApiProperty() total: number;
  @ApiProperty({ type: ServicePageView }) page: ServicePageView;
}

export class RegisteredServiceView {
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty({ example: 'Service registered successfully' }) message: string;
  @ApiProperty(nullableString) endpoint: string | null;
  @ApiProperty({ type: ServiceView }) service: ServiceView;
}

export class RemovedServiceView {
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ example: 'Service deleted' }) message: string;
}

export class NotificationView {
  @ApiProperty({ example: 'announcement' }) type: string;
  @ApiProperty() message: string;
  @ApiProperty({ example: 'info' }) severity: string;
  @ApiProperty({ required: false }) countdown_seconds?: number;
}

export class NotifiedView {
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty({ description: 'proxied clients on this hub that were sent the notification' }) delivered: number;
  @ApiProperty({ type: NotificationView }) notification: NotificationView;
}

export class ServiceHealthView {
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: HEALTH_STATUSES }) status: string;
  @ApiProperty({ enum: SERVICE_STATUSES }) service_status: string;
  @ApiProperty(nullableDate) last_check: string | null;
  @ApiProperty(nullableNumber) response_time_ms: number | null;
  @ApiProperty(nullableString) message: string | null;
  @ApiProperty({ type: HealthCheckSpecView }) health_check: HealthCheckSpecView;
  @ApiProperty() health_check_enabled: boolean;
}

export class HealthCheckResultView {
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ['healthy', 'unhealthy'] }) status: 'healthy' | 'unhealthy';
  @ApiProperty() response_time_ms: number;
  @ApiProperty(nullableString) message: string | null;
  @ApiProperty(nullableDate) checked_at: string | null;
}

export class HealthHistoryEntryView {
  @ApiProperty({ enum: ['healthy', 'unhealthy'] }) status: string;
  @ApiProperty(nullableNumber) response_time_ms: number | null;
  @ApiProperty(nullableString) message: string | null;
  @ApiProperty(nullableDate) checked_at: string | null;
}

export class HealthHistoryView {
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ type: [HealthHistoryEntryView] }) history: HealthHistoryEntryView[];
  @ApiProperty() total: number;
}

export class ServiceLogEntryView {
  @ApiProperty({ description: 'increasing; follow with ?after_seq' }) seq: number;
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty({ enum: ['debug', 'info', 'warn', 'error'] }) level: string;
  @ApiProperty({ enum: ['stdout', 'stderr', 'hub'] }) source: string;
  @ApiProperty() message: string;
}

export class ServiceLogsView {
  @ApiProperty({ format: 'uuid' }) service_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ type: [ServiceLogEntryView] }) logs: ServiceLogEntryView[];
  @ApiProperty() total: number;
}

export class LogSearchView {
  @ApiProperty() query: string;
  @ApiProperty({ type: [ServiceLogEntryView] }) logs: ServiceLogEntryView[];
  @ApiProperty() total: number;
}

const counters = { type: 'object', additionalProperties: { type: 'number', nullable: true } } as const;

export class StatsOverviewView {
  @ApiProperty({ ...counters, description: 'total, running, stopped, starting, error' })
  services: Record<string, number>;
  @ApiProperty({ ...counters, description: 'total, active, peak_today' }) connections: Record<string, number>;
  @ApiProperty({ ...counters, description: 'total_today, active, completed_today' }) sessions: Record<string, number>;
  @ApiProperty({
    ...counters,
    description:
      "avg_response_time_ms (the agents', last hour), avg_health_check_ms, throughput_per_minute, error_rate",
  })
  performance: Record<string, number | null>;
  @ApiProperty({ ...counters, description: 'total_memory_mb, total_cpu_percent, processes' })
  resources: Record<string, number>;
  @ApiProperty({ format: 'date-time' }) day_starts_at: string;
}

export class TimeseriesPointView {
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty(nullableNumber) value: number | null;
}

export class TimeseriesView {
  @ApiProperty() metric: string;
  @ApiProperty({ example: '1h' }) period: string;
  @ApiProperty({ example: '5m' }) interval: string;
  @ApiProperty(nullableString) service_id: string | null;
  @ApiProperty({ type: [TimeseriesPointView] }) data: TimeseriesPointView[];
}

export class ConnectionView {
  @ApiProperty() connection_id: string;
  @ApiProperty() session_id: string;
  @ApiProperty() client_ip: string;
  @ApiProperty(nullableString) target_service_id: string | null;
  @ApiProperty(nullableString) target_service: string | null;
  @ApiProperty(nullableString) routing_strategy: string | null;
  @ApiProperty({ enum: ['active', 'closed'] }) status: string;
  @ApiProperty({ format: 'date-time' }) connected_at: string;
  @ApiProperty({ format: 'date-time' }) last_activity: string;
  @ApiProperty(nullableDate) closed_at: string | null;
  @ApiProperty(nullableString) close_reason: string | null;
  @ApiProperty() bytes_sent: number;
  @ApiProperty() bytes_received: number;
  @ApiProperty() messages_sent: number;
  @ApiProperty() messages_received: number;
  @ApiProperty() message_count: number;
  @ApiProperty() switches: number;
}

export class ConnectionListView {
  @ApiProperty({ type: [ConnectionView] }) connections: ConnectionView[];
  @ApiProperty() total: number;
}

export class ClosedConnectionView extends ConnectionView {
  @ApiProperty({ example: 'Connection closed' }) message: string;
}
