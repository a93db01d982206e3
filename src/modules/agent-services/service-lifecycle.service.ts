import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { Periodic } from '../../common/periodic.js';
import { INSTANCE_ID } from '../nodes/nodes.service.js';
import { type HealthResult, type ServiceRow, type ServiceStatus } from './agent-service.types.js';
import { AgentServicesRepository } from './agent-services.repository.js';
import { endpointAddress, probe } from './health-probe.js';
import { type ExitInfo, freePort, isPortFree, killOrphan, ProcessSupervisor } from './process-supervisor.js';
import { ServiceLogStore } from './service-logs.store.js';

const RESTART_BACKOFF_BASE_MS = 250;
const RESTART_BACKOFF_CAP_MS = 10_000;
const START_PROBE_EVERY_MS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const conflict = (s: ServiceRow, doing: string): AppError =>
  new AppError(ErrorCode.CONFLICT, `Service '${s.name}' is ${s.status}; cannot ${doing} now`, {
    service_id: s.id,
    status: s.status,
  });

/** Where a service answers: the running process's port, or the external endpoint. */
export function probeTarget(s: ServiceRow): { host: string; port: number; endpoint: string | null } {
  if (s.endpoint) return { ...endpointAddress(s.endpoint), endpoint: s.endpoint };
  return { host: s.host, port: s.runtime_port ?? s.port ?? 0, endpoint: null };
}

/**
 * Starts, stops and restarts agent services. Managed services are child processes of this hub
 * process: a start waits for the first passing health check, a crash is restarted with
 * backoff while the restart budget lasts, and shutdown stops them. Every status change is a
 * compare-and-set in the repository, so two callers cannot both start one service.
 */
@Injectable()
export class ServiceLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AgentServices');
  /** Crash times per service, for the restart budget. */
  private readonly crashes = new Map<string, number[]>();
  /** Services this process runs or is starting (their ownership is kept fresh). */
  private readonly owned = new Set<string>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private readonly ownership: Periodic;
  private stopping = false;

  constructor(
    private readonly repo: AgentServicesRepository,
    private readonly supervisor: ProcessSupervisor,
    private readonly logs: ServiceLogStore,
    private readonly events: EventBus,
    private readonly config: AppConfig,
  ) {
    this.logs.capacity = config.SERVICE_LOG_LINES;
    this.ownership = new Periodic('service ownership', this.logger, () => this.keepOwnership());
  }

  /**
   * Reconcile: managed services that were meant to run and have no live owner (this is a
   * fresh start, or their hub went silent) are started again by this process.
   */
  async onApplicationBootstrap(): Promise<void> {
    this.ownership.start(Math.max(1000, Math.floor(this.config.SERVICE_OWNER_STALE_MS / 3)));
    await this.adoptOrphans();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    for (const t of this.restartTimers.values()) clearTimeout(t);
    await this.ownership.stop();
    // Within the hub's own bound: half of SHUTDOWN_TIMEOUT_MS at most, then SIGKILL.
    await this.supervisor.stopAll(Math.min(this.config.SERVICE_STOP_GRACE_MS, this.config.SHUTDOWN_TIMEOUT_MS / 2));
    await this.repo
      .releaseOwner(INSTANCE_ID)
      .catch((e: unknown) => this.logger.warn({ err: e }, 'could not release managed services'));
  }

  async start(s: ServiceRow): Promise<ServiceRow> {
    if (s.status === 'running') return s;
    if (s.status !== 'stopped' && s.status !== 'error') throw conflict(s, 'start');
    if (s.kind === 'external') return this.startExternal(s);
    const starting = await this.repo.transition(s.id, ['stopped', 'error'], 'starting', {
      owner_instance: INSTANCE_ID,
      desired_state: 'running',
      last_error: null,
    });
    if (!starting) throw conflict((await this.repo.findById(s.id)) ?? s, 'start');
    this.owned.add(s.id);
    this.hubLog(s, 'info', 'starting');
    return this.launch(starting);
  }

  async stop(s: ServiceRow, reason: 'service_stopped' | 'service_removed' = 'service_stopped'): Promise<ServiceRow> {
    this.cancelRestart(s.id);
    if (s.status === 'stopped') {
      return (await this.repo.transition(s.id, ['stopped'], 'stopped', { desired_state: 'stopped' })) ?? s;
    }
    if (s.status === 'stopping') throw conflict(s, 'stop');
    const from: ServiceStatus[] = ['running', 'starting', 'error'];
    const stopping = await this.repo.transition(s.id, from, 'stopping', { desired_state: 'stopped' });
    if (!stopping) throw conflict((await this.repo.findById(s.id)) ?? s, 'stop');
    this.events.publish('service.down', { serviceId: s.id, reason });
    if (s.kind === 'managed') {
      const exit = await this.supervisor.stop(s.id, this.config.SERVICE_STOP_GRACE_MS);
      if (exit) this.hubLog(s, 'info', `stopped (${exit.signal ?? `exit ${exit.code}`})`);
    }
    this.owned.delete(s.id);
    const stopped = await this.repo.transition(s.id, ['stopping'], 'stopped', { stopped: true, owner_instance: null });
    return stopped ?? (await this.repo.findById(s.id)) ?? s;
  }

  async restart(s: ServiceRow): Promise<ServiceRow> {
    const stopped = s.status === 'stopped' ? s : await this.stop(s);
    return this.start(stopped);
  }

  /** One health check now, recorded in the history; `service.down`/`up` when routing changes. */
  async check(s: ServiceRow): Promise<{ row: ServiceRow; result: HealthResult }> {
    const result = await probe(probeTarget(s), s.health_check);
    const row = (await this.repo.recordHealth(s.id, result)) ?? s;
    if (s.health_status !== result.status && s.status === 'running') {
      this.hubLog(
        s,
        result.status === 'healthy' ? 'info' : 'warn',
        `health ${s.health_status} -> ${result.status}${result.message ? `: ${result.message}` : ''}`,
      );
      if (result.status === 'unhealthy')
        this.events.publish('service.down', { serviceId: s.id, reason: 'service_unhealthy' });
      else this.events.publish('service.up', { serviceId: s.id });
    }
    return { row, result };
  }

  pidOf(serviceId: string): number | null {
    return this.supervisor.pid(serviceId);
  }

  private async startExternal(s: ServiceRow): Promise<ServiceRow> {
    const row = await this.repo.transition(s.id, ['stopped', 'error'], 'running', {
      desired_state: 'running',
      started: true,
      last_error: null,
    });
    if (!row) throw conflict((await this.repo.findById(s.id)) ?? s, 'start');
    this.hubLog(s, 'info', `routing to external endpoint ${s.endpoint}`);
    this.events.publish('service.up', { serviceId: s.id });
    return row;
  }

  /**
   * Spawns the process of a service in `starting` and waits for its first healthy check.
   * On failure the process is stopped, the service goes to `error` and the caller gets
   * SERVICE_START_FAILED (or PORT_IN_USE) with the process's last output.
   */
  private async launch(s: ServiceRow): Promise<ServiceRow> {
    const fail = async (code: ErrorCode, message: string, details: Record<string, unknown> = {}): Promise<never> => {
      await this.supervisor.stop(s.id, this.config.SERVICE_STOP_GRACE_MS);
      this.owned.delete(s.id);
      this.hubLog(s, 'error', message);
      await this.repo.transition(s.id, ['starting'], 'error', {
        last_error: message,
        desired_state: 'stopped',
        stopped: true,
      });
      throw new AppError(code, message, { service_id: s.id, ...details, last_output: this.logs.tail(s.id, 20) });
    };
    const port = s.port ? s.port : await freePort(s.host);
    if (s.port && !(await isPortFree(s.host, s.port))) {
      return fail(ErrorCode.PORT_IN_USE, `Port ${s.port} on ${s.host} is already in use`, {
        port: s.port,
        host: s.host,
      });
    }
    let exit: ExitInfo | null = null;
    let pid: number;
    try {
      pid = await this.supervisor.spawn(s, port, (info) => {
        exit = info;
        void this.onExit(s.id, info);
      });
    } catch (e) {
      return fail(ErrorCode.SERVICE_START_FAILED, `Service '${s.name}' could not be spawned: ${(e as Error).message}`);
    }
    const running = { ...s, runtime_port: port };
    const deadline = Date.now() + s.config.start_timeout * 1000;
    let last: HealthResult;
    for (;;) {
      if (exit) {
        const e = exit as ExitInfo;
        return fail(
          ErrorCode.SERVICE_START_FAILED,
          `Service '${s.name}' exited during start (${e.signal ?? `exit code ${e.code}`})`,
          { exit_code: e.code, signal: e.signal },
        );
      }
      last = await probe(probeTarget(running), { ...s.health_check, timeout: Math.min(s.health_check.timeout, 2) });
      if (last.status === 'healthy') break;
      if (Date.now() >= deadline) {
        return fail(
          ErrorCode.SERVICE_START_FAILED,
          `Service '${s.name}' did not pass its ${s.health_check.type} health check within ${s.config.start_timeout} s: ${last.message}`,
        );
      }
      await sleep(START_PROBE_EVERY_MS);
    }
    const row = await this.repo.transition(s.id, ['starting'], 'running', {
      pid,
      runtime_port: port,
      started: true,
      owner_instance: INSTANCE_ID,
    });
    if (!row) {
      // Stopped (or deleted) while starting: the stop owns the process now.
      return (await this.repo.findById(s.id)) ?? running;
    }
    await this.repo.recordHealth(s.id, last);
    this.hubLog(s, 'info', `running (pid ${pid}, port ${port}, healthy in ${last.response_time_ms} ms)`);
    this.events.publish('service.up', { serviceId: s.id });
    return { ...row, health_status: 'healthy' };
  }

  /** A process ended. Expected exits (stop, restart) are the caller's business; crashes are ours. */
  private async onExit(serviceId: string, info: ExitInfo): Promise<void> {
    if (info.expected || this.stopping) return;
    const s = await this.repo.findById(serviceId);
    if (!s) return;
    const how = info.signal ?? `exit code ${info.code}`;
    this.hubLog(s, 'error', `process exited unexpectedly (${how})`);
    if (s.status !== 'running') return; // a start in progress sees the exit itself
    const crashed = await this.repo.transition(s.id, ['running'], 'error', {
      last_exit_code: info.code ?? -1,
      last_error: `exited (${how})`,
      stopped: true,
    });
    if (!crashed) return;
    this.events.publish('service.down', { serviceId: s.id, reason: 'service_crashed' });
    if (!s.config.auto_restart) {
      this.owned.delete(s.id);
      return;
    }
    const now = Date.now();
    const recent = (this.crashes.get(s.id) ?? []).filter((t) => now - t < s.config.restart_window * 1000);
    recent.push(now);
    this.crashes.set(s.id, recent);
    if (recent.length > s.config.max_restarts) {
      this.owned.delete(s.id);
      this.hubLog(
        s,
        'error',
        `restart budget spent (${s.config.max_restarts} in ${s.config.restart_window} s); left in error`,
      );
      await this.repo.transition(s.id, ['error'], 'error', { desired_state: 'stopped' });
      return;
    }
    const delay = Math.min(RESTART_BACKOFF_CAP_MS, RESTART_BACKOFF_BASE_MS * 2 ** (recent.length - 1));
    this.hubLog(s, 'warn', `restarting in ${delay} ms (crash ${recent.length} of ${s.config.max_restarts} allowed)`);
    const timer = setTimeout(() => {
      this.restartTimers.delete(s.id);
      void this.autoRestart(s.id);
    }, delay);
    this.restartTimers.set(s.id, timer);
  }

  private async autoRestart(serviceId: string): Promise<void> {
    if (this.stopping) return;
    const restarting = await this.repo.transition(serviceId, ['error'], 'starting', {
      owner_instance: INSTANCE_ID,
      count_restart: true,
    });
    if (!restarting) return; // stopped or removed meanwhile
    try {
      await this.launch(restarting);
    } catch (e) {
      this.logger.warn(`auto-restart of ${restarting.name} failed: ${(e as Error).message}`);
    }
  }

  private cancelRestart(serviceId: string): void {
    clearTimeout(this.restartTimers.get(serviceId));
    this.restartTimers.delete(serviceId);
  }

  private async keepOwnership(): Promise<void> {
    await this.repo.touchOwner([...this.owned], INSTANCE_ID);
    await this.adoptOrphans();
  }

  private async adoptOrphans(): Promise<void> {
    if (this.stopping) return;
    const orphans = await this.repo.claimOrphans(INSTANCE_ID, this.config.SERVICE_OWNER_STALE_MS);
    for (const { orphan_pid, ...s } of orphans) {
      this.hubLog(s, 'warn', 'meant to run but no hub runs it: restarting');
      const cleanup = orphan_pid ? killOrphan(orphan_pid, s.id) : Promise.resolve(false);
      cleanup
        .then((killed) => {
          if (killed) this.hubLog(s, 'warn', `killed process ${orphan_pid} left by a hub that died`);
          return this.start(s);
        })
        .catch((e: unknown) => this.logger.warn(`reconcile start of ${s.name} failed: ${(e as Error).message}`));
    }
  }

  private hubLog(s: Pick<ServiceRow, 'id' | 'name'>, level: 'info' | 'warn' | 'error', message: string): void {
    this.logs.append(s.id, level, 'hub', message);
    if (level !== 'info') this.logger.warn(`${s.name}: ${message}`);
  }
}
