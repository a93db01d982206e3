import { Injectable, Logger } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { isUUID, validate } from 'class-validator';
import { EventBus, type NodeVocabulary } from '../../common/events/event-bus.js';
import { normalizeTools, type ToolDefinition, toolTag } from '../tools/tool-definition.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { validationError } from '../../common/validation.js';
import { AppConfig } from '../../config/app-config.js';
import { DatabaseStatus } from '../../database/database-status.js';
import { NodeLogsService } from '../nodes/node-logs.service.js';
import { NodesService } from '../nodes/nodes.service.js';
import type { HeldTask } from '../nodes/node.types.js';
import { TaskHoldersService } from '../tasks/task-holders.service.js';
import { serverTime } from './device-outbound.js';
import type { TaskRow } from '../tasks/task.types.js';
import { runWithTenantSetting, SYSTEM_TENANT } from '../../database/tenant-context.js';
import {
  DEVICE_INBOUND_EVENTS,
  type HeartbeatAck,
  type OkAck,
  type RegisterAck,
  type RegisterSuccess,
  type TaskReportAck,
} from '../../contracts/sockets/device.js';
import {
  DeviceRegisterMessage,
  HeartbeatMessage,
  LogMessage,
  NodeRegisterMessage,
  NotificationMessage,
  reportedSuccess,
  type RunningTaskRef,
  TaskProgressMessage,
  TaskResultMessage,
} from './device-messages.js';

/** One connection of a device or node, whatever carries it (Socket.IO today, raw WebSocket later). */
export interface DeviceSession {
  readonly connectionId: string;
  /** The API key it connected with (null with auth off): `llm_request` is charged to it. */
  keyId?: string | null;
  /**
   * The tenant setting its messages run under: the connection's (its key's tenant, or what a
   * global admin named; absent: the system), then its node's tenant once registered.
   */
  tenant?: string;
  nodeId?: string;
  vocabulary?: NodeVocabulary;
}

/** What to send back: an event to emit (if the protocol defines one) and the ack payload. */
export interface ProtocolReply {
  emit?: { event: 'register_success'; data: RegisterSuccess } | { event: 'heartbeat_ack'; data: HeartbeatAck };
  ack: RegisterAck | HeartbeatAck | TaskReportAck | OkAck;
  /** Set on registration: the connection this one replaced, to be told and closed. */
  replacedConnectionId?: string | null;
  /** Set on registration: held tasks to send to this connection again (same attempt), after the reply. */
  deliver?: TaskRow[];
  /** Set on registration: tasks it reported running that it no longer holds, to be told to stop. */
  revoke?: { task_id: string; attempt: number | null }[];
}

/** A task reference a node reported, matched against what it holds (no attempt = any attempt). */
const sameTask = (r: RunningTaskRef, h: HeldTask): boolean =>
  r.task_id === h.task_id && (r.attempt === undefined || r.attempt === h.attempt);

export const INBOUND_EVENTS = DEVICE_INBOUND_EVENTS;
export type InboundEvent = (typeof INBOUND_EVENTS)[number];

export async function parse<T extends object>(cls: new () => T, payload: unknown): Promise<T> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new AppError(ErrorCode.VALIDATION_ERROR, 'Payload must be a JSON object', { field: 'payload' });
  }
  const message = plainToInstance(cls, payload);
  const errors = await validate(message, { whitelist: true, forbidNonWhitelisted: false });
  if (errors.length) throw validationError(errors);
  return message;
}

const RESULT_KEYS = new Set(['task_id', 'result', 'success', 'status', 'error', 'retryable', 'attempt']);
const RESULT_STATUSES = new Set(['success', 'completed', 'ok', 'failed', 'error', 'pending']);
const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;

/** Only JSON's values (what socket.io's parser makes of a frame without binary attachments), not too deep. */
function isJson(v: unknown, depth = 0): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return true;
  if (depth > 16) return false;
  if (Array.isArray(v)) return v.every((x) => isJson(x, depth + 1));
  return isPlain(v) && Object.values(v).every((x) => isJson(x, depth + 1));
}

/**
 * `task_result` as devices usually send it (every task's hot path), accepted without
 * class-transformer's walk of `result`: the same rules as TaskResultMessage's decorators, for
 * the common members only, each absent or valid. Anything else (null members, `plugin`, binary
 * results, any invalid member) answers undefined and goes through parse(), which alone words errors.
 */
export function quickTaskResult(p: unknown): TaskResultMessage | undefined {
  if (!isPlain(p)) return undefined;
  for (const k in p) if (!RESULT_KEYS.has(k) || p[k] === null) return undefined;
  if (typeof p.task_id !== 'string' || !isUUID(p.task_id, 'all')) return undefined;
  if (p.success !== undefined && typeof p.success !== 'boolean') return undefined;
  if (p.retryable !== undefined && typeof p.retryable !== 'boolean') return undefined;
  if (p.status !== undefined && !(typeof p.status === 'string' && RESULT_STATUSES.has(p.status))) return undefined;
  if (p.attempt !== undefined && !(Number.isInteger(p.attempt) && (p.attempt as number) >= 1)) return undefined;
  if (p.error !== undefined && typeof p.error !== 'string' && !isPlain(p.error)) return undefined;
  if (p.error !== undefined && !isJson(p.error)) return undefined;
  if (p.result !== undefined && !isJson(p.result)) return undefined;
  return Object.assign(new TaskResultMessage(), p);
}

/**
 * The device/node channel of seeds 004 and 001, independent of the transport: validates
 * each inbound message, calls the services and says what to answer. Throws AppError for
 * anything the client did wrong; nothing is changed in that case.
 */
@Injectable()
export class DeviceProtocol {
  private readonly logger = new Logger('DeviceProtocol');

  constructor(
    private readonly nodes: NodesService,
    private readonly holders: TaskHoldersService,
    private readonly config: AppConfig,
    private readonly database: DatabaseStatus,
    private readonly nodeLogs: NodeLogsService,
    private readonly events: EventBus,
  ) {}

  /**
   * Handles one inbound message. A database outage does not drop it: it is retried until the
   * database is back (up to REPORT_RETRY_MS) and only then answered, so an ack always means
   * "committed".
   */
  handle(session: DeviceSession, event: InboundEvent, payload: unknown): Promise<ProtocolReply> {
    return runWithTenantSetting(session.tenant ?? SYSTEM_TENANT, () =>
      this.database.retry(() => this.apply(session, event, payload)),
    );
  }

  /**
   * The node answered the ack of an assignment: dispatched → running. Quiet when the task
   * moved on meanwhile (the node hears `cancel_task` for that).
   */
  async acknowledge(nodeId: string, taskId: string, attempt: number): Promise<void> {
    await this.database.retry(() => this.holders.acknowledge({ id: taskId, node_id: nodeId, attempt }));
  }

  private async apply(session: DeviceSession, event: InboundEvent, payload: unknown): Promise<ProtocolReply> {
    switch (event) {
      case 'device_register':
        return this.registerDevice(session, await parse(DeviceRegisterMessage, payload));
      case 'node_register':
        return this.registerNode(session, await parse(NodeRegisterMessage, payload));
      case 'heartbeat':
        return this.heartbeat(session, await parse(HeartbeatMessage, payload ?? {}));
      case 'task_progress':
        return this.progress(session, await parse(TaskProgressMessage, payload));
      case 'task_result':
        return this.result(session, quickTaskResult(payload) ?? (await parse(TaskResultMessage, payload)));
      case 'log':
        return this.log(session, await parse(LogMessage, payload));
      case 'notification':
        return this.notification(session, await parse(NotificationMessage, payload));
    }
  }

  private async registerDevice(session: DeviceSession, m: DeviceRegisterMessage): Promise<ProtocolReply> {
    const offered = offeredTools(m.tools, m.tags ?? [], m.capabilities ?? []);
    return this.register(session, 'device', {
      id: m.device_id,
      name: m.device_name ?? null,
      capacity: m.capacity ?? 1,
      tags: offered.tags,
      capabilities: offered.capabilities,
      info: { ...(m.device_info ?? {}), ...offered.info },
      version: m.version ?? (typeof m.device_info?.app_version === 'string' ? m.device_info.app_version : null),
      acks: m.acks,
      shared: m.shared,
      running: m.running_tasks ?? [],
    });
  }

  private async registerNode(session: DeviceSession, m: NodeRegisterMessage): Promise<ProtocolReply> {
    const declared = (m.capabilities ?? []).filter((c): c is string => typeof c === 'string');
    const offered = offeredTools(m.tools, m.tags ?? [], declared);
    return this.register(session, 'node', {
      id: (m.node_id ?? m.nodeId) as string,
      name: m.name ?? null,
      capacity: m.capacity ?? 1,
      tags: offered.tags,
      capabilities: offered.capabilities,
      info: {
        ...(m.info ?? {}),
        ...(m.type !== undefined ? { type: m.type } : {}),
        ...(m.persona !== undefined ? { persona: m.persona } : {}),
        capabilities: m.capabilities ?? [],
        ...offered.info,
      },
      version: m.version ?? null,
      acks: m.acks,
      shared: m.shared,
      running: m.running_tasks ?? [],
    });
  }

  private async register(
    session: DeviceSession,
    vocabulary: NodeVocabulary,
    r: {
      id: string;
      name: string | null;
      capacity: number;
      tags: string[];
      capabilities: string[];
      info: Record<string, unknown>;
      version: string | null;
      acks?: boolean;
      shared?: boolean;
      running: RunningTaskRef[];
    },
  ): Promise<ProtocolReply> {
    if (session.nodeId && session.nodeId !== r.id) {
      throw new AppError(ErrorCode.CONFLICT, `This connection is already registered as ${session.nodeId}`, {
        field: vocabulary === 'node' ? 'node_id' : 'device_id',
      });
    }
    // Serving every tenant is for a global key acting for all of them (docs/flow-control.md, "Fairness").
    const global = (session.tenant ?? SYSTEM_TENANT) === SYSTEM_TENANT;
    if (r.shared && !global)
      throw new AppError(ErrorCode.FORBIDDEN, 'shared: true needs a global admin key (it serves every tenant)', {
        field: 'shared',
      });
    const { running, ...registration } = r;
    const { node, replacedSocketId, held } = await this.nodes.register({
      ...registration,
      shared: r.shared === true,
      kind: vocabulary,
      vocabulary,
      socketId: session.connectionId,
    });
    session.nodeId = node.id;
    session.vocabulary = vocabulary;
    // A shared node's messages (its results for any tenant's tasks) go on running for every tenant.
    session.tenant = node.shared ? SYSTEM_TENANT : node.tenant_id;
    // held: tasks it still holds (a reconnect within the grace); the client resumes or reports them.
    const data: RegisterSuccess = {
      ...(vocabulary === 'node' ? { node_id: node.id } : { device_id: node.id }),
      message: '注册成功',
      server_time: serverTime(vocabulary),
      heartbeat_interval: this.config.NODE_HEARTBEAT_INTERVAL_MS,
      capacity: node.capacity,
      held_tasks: held,
    };
    // At-least-once: every held task the node does not say it is on goes to it again (seed
    // devices say nothing, so they get all of them); one it is on but no longer holds is stopped.
    const resend = held.filter((h) => !running.some((r) => sameTask(r, h)));
    const deliver = await this.holders.redeliver(
      node.id,
      resend.map((h) => h.task_id),
    );
    const revoke = running
      .filter((r) => !held.some((h) => sameTask(r, h)))
      .map((r) => ({ task_id: r.task_id, attempt: r.attempt ?? null }));
    // Reporting a dispatched task as running is as good as its ack.
    for (const h of held) {
      if (h.status === 'dispatched' && running.some((r) => sameTask(r, h)))
        void this.acknowledge(node.id, h.task_id, h.attempt).catch(() => undefined);
    }
    return {
      emit: { event: 'register_success', data },
      ack: { success: true, ...data },
      replacedConnectionId: replacedSocketId,
      deliver,
      revoke,
    };
  }

  private requireNode(session: DeviceSession): string {
    if (!session.nodeId)
      throw new AppError(ErrorCode.NOT_REGISTERED, 'Register first (device_register or node_register)');
    return session.nodeId;
  }

  private heartbeat(session: DeviceSession, m: HeartbeatMessage): ProtocolReply {
    const nodeId = this.requireNode(session);
    const claimed = m.device_id ?? m.node_id;
    if (claimed !== undefined && claimed !== nodeId) {
      throw new AppError(ErrorCode.VALIDATION_ERROR, `This connection is registered as ${nodeId}`, {
        field: m.device_id !== undefined ? 'device_id' : 'node_id',
      });
    }
    const reported = m.status !== undefined || m.resources !== undefined || m.stats !== undefined;
    this.nodes.heartbeat(nodeId, reported ? { status: m.status, resources: m.resources, stats: m.stats } : null);
    const data = { server_time: serverTime(session.vocabulary) };
    return { emit: { event: 'heartbeat_ack', data }, ack: data };
  }

  private async progress(session: DeviceSession, m: TaskProgressMessage): Promise<ProtocolReply> {
    const nodeId = this.requireNode(session);
    const task = await this.holders.progress(m.task_id, {
      worker_id: nodeId,
      attempt: m.attempt,
      progress: m.progress,
      message: m.message,
    });
    return { ack: { success: true, task_id: task.id, status: task.status, progress: task.progress } };
  }

  private async result(session: DeviceSession, m: TaskResultMessage): Promise<ProtocolReply> {
    const nodeId = this.requireNode(session);
    const holder = { worker_id: nodeId, attempt: m.attempt };
    // Seed 001 Hybrid plugins answer `{taskId, status: 'pending'}`: the task now awaits the plugin's callback.
    const r = m.result as { status?: unknown; plugin?: unknown } | null | undefined;
    const plugin = m.plugin ?? (r && typeof r === 'object' && typeof r.plugin === 'string' ? r.plugin : undefined);
    if (m.status === 'pending' || (plugin !== undefined && r?.status === 'pending')) {
      const awaiting = await this.holders.awaitPlugin(m.task_id, holder, plugin);
      return { ack: { success: true, task_id: awaiting.id, status: awaiting.status, plugin: awaitedPlugin(awaiting) } };
    }
    const task = reportedSuccess(m)
      ? await this.holders.succeed(m.task_id, holder, m.result ?? null, durationOf(m.result))
      : await this.holders.failAttempt(
          m.task_id,
          holder,
          { code: 'TASK_FAILED', message: errorMessage(m), result: m.result ?? null },
          m.retryable ?? true,
        );
    return { ack: { success: true, task_id: task.id, status: task.status } };
  }

  /** A line about a task goes into the task's logs (holder checked first); every line into node_logs and the log channel. */
  private async log(session: DeviceSession, m: LogMessage): Promise<ProtocolReply> {
    const nodeId = this.requireNode(session);
    const level = m.level ?? 'info';
    if (m.task_id) await this.holders.appendHolderLog(m.task_id, nodeId, level, m.message, m.data);
    await this.nodeLogs.record({ node_id: nodeId, task_id: m.task_id, level, message: m.message, data: m.data });
    return { ack: { success: true } };
  }

  /** A node tells the users something (seed 001 `notification`): relayed to /ws and /events clients. */
  private notification(session: DeviceSession, m: NotificationMessage): ProtocolReply {
    const nodeId = this.requireNode(session);
    this.events.publish('hub.notification', {
      severity: m.severity ?? 'info',
      source: 'node',
      node_id: nodeId,
      message: m.message,
      ...(m.task_id ? { task_id: m.task_id } : {}),
      ...(m.data !== undefined ? { data: m.data } : {}),
    });
    return { ack: { success: true } };
  }
}

function durationOf(result: unknown): number | undefined {
  const r = result as { execution_time?: unknown; duration?: unknown } | null;
  if (r && typeof r === 'object') {
    if (typeof r.duration === 'number') return r.duration;
    if (typeof r.execution_time === 'number') return r.execution_time * 1000; // seed 004 reports seconds
  }
  return undefined;
}

function errorMessage(m: TaskResultMessage): string {
  if (typeof m.error === 'string') return m.error;
  if (m.error && typeof m.error.message === 'string') return m.error.message;
  const r = m.result as { message?: unknown } | null;
  if (r && typeof r === 'object' && typeof r.message === 'string') return r.message;
  return 'The device reported a failure';
}

/** The plugin a task now waits for (its holder is `plugin:<name>`). */
function awaitedPlugin(task: TaskRow): string | undefined {
  return task.worker_id?.startsWith('plugin:') ? task.worker_id.slice('plugin:'.length) : undefined;
}

/**
 * The tools a node or device declares, checked (an error names `tools[i]…`), and what offering
 * them means for its registration: a tag `tool:<name>` each (tasks calling the tool require
 * it) and, when it limits its task types, the tool names among them; its other work is
 * untouched. The definitions are kept in `info.tools` (GET /v1/tools reads them there).
 */
function offeredTools(
  raw: unknown,
  tags: string[],
  capabilities: string[],
): { tags: string[]; capabilities: string[]; info: { tools?: ToolDefinition[] } } {
  const tools = normalizeTools(raw);
  if (tools.length === 0) return { tags, capabilities, info: {} };
  const names = tools.map((t) => t.name);
  return {
    tags: [...new Set([...tags, ...names.map(toolTag)])],
    capabilities: capabilities.length > 0 ? [...new Set([...capabilities, ...names])] : capabilities,
    info: { tools },
  };
}
