import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { currentTenantSetting, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { EventBus } from '../../common/events/event-bus.js';
import {
  DEFAULT_HEALTH_CHECK,
  DEFAULT_SERVICE_CONFIG,
  type HealthCheckRow,
  type HealthResult,
  type ServiceRow,
  type ServiceStatus,
} from './agent-service.types.js';
import { AgentServicesRepository, DUPLICATE_NAME } from './agent-services.repository.js';
import type { CreateServiceDto, UpdateServiceConfigDto } from './dto/service.dto.js';
import { hostsOverlap } from './host-addresses.js';
import { processUsage } from './process-usage.js';
import { ConnectionRegistry } from './proxy/connection-registry.js';
import { mapService } from './service.mapper.js';
import { ServiceLifecycle } from './service-lifecycle.service.js';
import { ServiceLogStore } from './service-logs.store.js';
import { EMPTY_STATS, SessionStatsRepository } from './session-stats.repository.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Own fields that are set: DTO instances carry every declared field, unset ones as undefined. */
function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function serviceNotFound(ref: string): AppError {
  const what = UUID.test(ref) ? `Service with ID '${ref}'` : `Service named '${ref}'`;
  return new AppError(ErrorCode.SERVICE_NOT_FOUND, `${what} not found`, {
    service_id: ref,
    timestamp: new Date().toISOString(),
  });
}

const alreadyExists = (name: string): AppError =>
  new AppError(ErrorCode.SERVICE_ALREADY_EXISTS, `A service named '${name}' already exists`, { field: 'name', name });

/** The agent-service registry: registration, lookup by id or name, config, and lifecycle calls. */
@Injectable()
export class AgentServicesService {
  constructor(
    private readonly repo: AgentServicesRepository,
    private readonly lifecycle: ServiceLifecycle,
    private readonly registry: ConnectionRegistry,
    private readonly logs: ServiceLogStore,
    private readonly events: EventBus,
    private readonly stored: SessionStatsRepository,
  ) {}

  async register(dto: CreateServiceDto): Promise<ServiceRow> {
    const managed = Boolean(dto.agent_factory_path || dto.command);
    if (managed && dto.endpoint) {
      throw AppError.validation(
        'endpoint',
        'give either endpoint (external service) or agent_factory_path/command (managed), not both',
      );
    }
    if (dto.agent_factory_path && dto.command)
      throw AppError.validation('command', 'give agent_factory_path or command, not both');
    if (!managed && !dto.endpoint)
      throw AppError.validation('agent_factory_path', 'agent_factory_path, command or endpoint is required');
    if (dto.env && Object.values(dto.env).some((v) => typeof v !== 'string'))
      throw AppError.validation('env', 'env values must be strings');
    const host = dto.host ?? '127.0.0.1';
    // A taken name is reported before a claimed port: re-sending a registration is SERVICE_ALREADY_EXISTS.
    if (await this.repo.findByName(dto.name)) throw alreadyExists(dto.name);
    if (managed && dto.port) await this.assertPortUnclaimed(host, dto.port, null);
    const row = await this.repo.insert({
      name: dto.name,
      description: dto.description ?? null,
      kind: managed ? 'managed' : 'external',
      agent_factory_path: dto.agent_factory_path ?? null,
      command: dto.command ?? null,
      args: dto.args ?? [],
      cwd: dto.cwd ?? null,
      env: dto.env ?? {},
      host,
      port: dto.port ?? 0,
      endpoint: dto.endpoint ?? null,
      health_check: { ...DEFAULT_HEALTH_CHECK, ...defined(dto.health_check) },
      tags: dto.tags ?? [],
      config: { ...DEFAULT_SERVICE_CONFIG, ...defined(dto.config) },
      weight: dto.weight ?? 1,
      status: 'stopped',
      desired_state: 'stopped',
    });
    if (row === DUPLICATE_NAME) throw alreadyExists(dto.name);
    this.logs.append(row.id, 'info', 'hub', `registered (${row.kind})`);
    // An external service is someone else's process: it is routable as soon as it is registered.
    return row.kind === 'external' ? this.lifecycle.start(row) : row;
  }

  async list(q: {
    tag?: string;
    status?: ServiceStatus;
    limit: number;
    offset: number;
  }): Promise<{ rows: ServiceRow[]; total: number }> {
    return this.repo.list(q);
  }

  /**
   * The services the caller may see, or null for the system and global admins ('*': all).
   * Connections and log rings live in this process's memory, hub-wide, so their routes filter
   * by these ids: row-level security cannot reach them.
   */
  async visibleIds(): Promise<ReadonlySet<string> | null> {
    if (currentTenantSetting() === SYSTEM_TENANT) return null;
    return new Set(await this.repo.ids());
  }

  /** By UUID or by name. */
  async get(ref: string): Promise<ServiceRow> {
    const row = UUID.test(ref)
      ? ((await this.repo.findById(ref)) ?? (await this.repo.findByName(ref)))
      : await this.repo.findByName(ref);
    if (!row) throw serviceNotFound(ref);
    return row;
  }

  async start(ref: string): Promise<ServiceRow> {
    return this.lifecycle.start(await this.get(ref));
  }

  async stop(ref: string): Promise<ServiceRow> {
    return this.lifecycle.stop(await this.get(ref));
  }

  async restart(ref: string): Promise<ServiceRow> {
    return this.lifecycle.restart(await this.get(ref));
  }

  async updateConfig(ref: string, dto: UpdateServiceConfigDto): Promise<ServiceRow> {
    const s = await this.get(ref);
    const { weight, tags, description, health_check, ...config } = dto;
    const row = await this.repo.updateConfig(
      s.id,
      { ...s.config, ...defined(config) },
      {
        weight,
        tags,
        description,
        health_check: health_check ? { ...s.health_check, ...defined(health_check) } : undefined,
      },
    );
    if (!row) throw serviceNotFound(ref);
    this.logs.append(s.id, 'info', 'hub', `config updated: ${JSON.stringify(defined(dto))}`);
    return row;
  }

  /** Stops the service first, then forgets it. */
  async remove(ref: string): Promise<ServiceRow> {
    const s = await this.get(ref);
    if (s.status !== 'stopped') await this.lifecycle.stop(s, 'service_removed');
    const row = await this.repo.delete(s.id);
    if (!row) throw serviceNotFound(ref);
    this.events.publish('service.down', { serviceId: s.id, reason: 'service_removed' });
    this.logs.drop(s.id);
    this.registry.forget(s.id);
    return row;
  }

  async check(ref: string): Promise<{ row: ServiceRow; result: HealthResult }> {
    const s = await this.get(ref);
    if (s.status !== 'running') {
      throw new AppError(
        ErrorCode.HEALTH_CHECK_FAILED,
        `Service '${s.name}' is ${s.status}; only a running service can be checked`,
        {
          service_id: s.id,
          status: s.status,
        },
      );
    }
    const checked = await this.lifecycle.check(s);
    // Seed 003: HEALTH_CHECK_FAILED is a check that did not pass (it is recorded in the history all the same).
    if (checked.result.status !== 'healthy') {
      throw new AppError(
        ErrorCode.HEALTH_CHECK_FAILED,
        `Health check of service '${s.name}' failed: ${checked.result.message ?? 'unhealthy'}`,
        {
          service_id: s.id,
          name: s.name,
          status: s.status,
          health: {
            ...checked.result,
            last_check: checked.row.health_checked_at ? new Date(checked.row.health_checked_at).toISOString() : null,
          },
        },
      );
    }
    return checked;
  }

  async healthHistory(ref: string, limit: number): Promise<{ service: ServiceRow; checks: HealthCheckRow[] }> {
    const service = await this.get(ref);
    return { service, checks: await this.repo.healthHistory(service.id, limit) };
  }

  /** The seed's service view with live stats and, for a process of this hub, its memory and CPU. */
  async view(s: ServiceRow): Promise<Record<string, unknown>> {
    const pid = this.lifecycle.pidOf(s.id);
    await this.registry.settled();
    const stats = (await this.stored.statsFor([s.id])).get(s.id) ?? EMPTY_STATS;
    // Stored up to each hub process's last sample, plus what this one relayed since its own.
    const live = this.registry.allCounters().get(s.id);
    return mapService(s, {
      stats: live
        ? {
            ...stats,
            messages: stats.messages + live.messagesSinceSample,
            responses: stats.responses + live.responsesSinceSample,
            response_ms_sum: stats.response_ms_sum + live.responseMsSinceSample,
          }
        : stats,
      usage: pid ? await processUsage(pid) : null,
    });
  }

  /**
   * PORT_IN_USE when another managed service claims this port on an overlapping address
   * (`localhost` and `127.0.0.1` are one; `0.0.0.0` / `::` overlap every host): see hostsOverlap.
   */
  private async assertPortUnclaimed(host: string, port: number, exceptId: string | null): Promise<void> {
    const samePort = (await this.repo.all()).filter(
      (s) => s.id !== exceptId && s.kind === 'managed' && s.port === port,
    );
    let other: ServiceRow | undefined;
    for (const s of samePort) {
      if (s.host === host || (await hostsOverlap(s.host, host))) {
        other = s;
        break;
      }
    }
    if (other) {
      throw new AppError(
        ErrorCode.PORT_IN_USE,
        `Port ${port} on ${host} is already claimed by service '${other.name}' (${other.host}:${port})`,
        {
          field: 'port',
          port,
          host: other.host,
          service_id: other.id,
          timestamp: new Date().toISOString(),
        },
      );
    }
  }
}
