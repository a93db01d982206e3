import { Injectable, Logger } from '@nestjs/common';
import { AppError } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { AppConfig } from '../../config/app-config.js';
import { currentTenantSetting, DEFAULT_TENANT, SYSTEM_TENANT } from '../../database/tenant-context.js';
import type { CreateTaskDto } from '../tasks/dto/create-task.dto.js';
import { TaskActionsService } from '../tasks/task-actions.service.js';
import { TaskIntakeService } from '../tasks/task-intake.service.js';
import { TaskWaiters } from '../tasks/task-waiters.js';
import type { TaskRow } from '../tasks/task.types.js';
import { parseToolArguments } from './tool-arguments.js';
import { toolTag } from './tool-definition.js';
import type { RegisteredTool } from './tool-registry.service.js';

/** A tool call as the model made it (`choices[0].message.tool_calls[i]`). */
export interface ModelToolCall {
  id: string;
  function: { name: string; arguments: string };
}

/** The chat a tool call belongs to. */
export interface ToolCallContext {
  /** The chat's x-request-id: stored on the task, so its usage and events join up. */
  requestId: string;
  /** The key that made the chat: a node's `llm_request` for this task is charged to it. */
  keyId: string | null;
  /** Aborts on interrupt, client disconnect or the turn's deadline: the task is cancelled. */
  signal: AbortSignal;
  /** Epoch ms by which the result must be in. */
  deadline: number;
}

/** How a call ended; `content` is the `tool` message the model reads next. */
export interface ToolOutcome {
  content: string;
  status: 'completed' | 'failed' | 'invalid_arguments' | 'no_node' | 'cancelled' | 'timeout';
  taskId: string | null;
}

/** The tag every tool task carries, to find them in task lists. */
export const TOOL_TASK_TAG = 'tool';

/**
 * Runs one tool call of a model as a durable task on a node that offers the tool: checks the
 * arguments against the tool's schema (a bad call goes back to the model, never to a node),
 * submits the task (the same dispatcher, leases, retries and fencing as any task), and waits
 * for its end — a `task_result` over the channel or the plugin's callback, on any hub. An
 * abort cancels the task, so its node gets `cancel_task`.
 */
@Injectable()
export class ToolRunner {
  private readonly logger = new Logger('ToolRunner');

  constructor(
    private readonly intake: TaskIntakeService,
    private readonly actions: TaskActionsService,
    private readonly waiters: TaskWaiters,
    private readonly events: EventBus,
    private readonly config: AppConfig,
  ) {}

  async run(tool: RegisteredTool, call: ModelToolCall, ctx: ToolCallContext): Promise<ToolOutcome> {
    const args = parseToolArguments(call.function.arguments, tool.parameters);
    if (!args.ok) return { status: 'invalid_arguments', taskId: null, content: toolError(args.error) };
    // A global key sees every tenant's nodes, but its task is the default tenant's: only nodes
    // of the task's tenant could ever take it (no task is queued for a node that cannot).
    const tenant = currentTenantSetting() === SYSTEM_TENANT ? DEFAULT_TENANT : currentTenantSetting();
    if (!tool.nodes.some((n) => n.tenant_id === tenant))
      return { status: 'no_node', taskId: null, content: toolError(`no node offers the tool ${tool.name} right now`) };
    const dto: CreateTaskDto = {
      type: tool.name,
      data: args.value,
      required_tags: [toolTag(tool.name)],
      tags: [TOOL_TASK_TAG],
      // A person is waiting on this answer: ahead of batch work.
      priority: 'high',
      timeout_seconds: this.config.LLM_TOOL_TIMEOUT_SECONDS,
      metadata: {
        tool: tool.name,
        tool_call_id: call.id,
        chat_request_id: ctx.requestId,
        ...(ctx.keyId ? { chat_key_id: ctx.keyId } : {}),
        ...(tool.plugin ? { plugin: tool.plugin } : {}),
      },
    };
    let row: TaskRow;
    try {
      ({ row } = await this.intake.submit(dto));
    } catch (e) {
      // Refused (the tenant's max_tasks, a database outage): the model hears why, the turn goes on.
      if (!(e instanceof AppError)) throw e;
      return { status: 'failed', taskId: null, content: toolError(`the tool could not be started: ${e.message}`) };
    }
    this.notify(row, `Running ${tool.name} (task ${row.id})`);
    const finished = await this.waiters.wait(row.id, Math.max(0, ctx.deadline - Date.now()), ctx.signal);
    if (!finished) {
      const reason = ctx.signal.aborted ? String(ctx.signal.reason) : 'timeout';
      await this.cancel(row.id, `chat ${ctx.requestId} stopped: ${reason}`);
      return {
        status: ctx.signal.aborted ? 'cancelled' : 'timeout',
        taskId: row.id,
        content: toolError(`the tool did not finish (${reason})`),
      };
    }
    this.notify(finished, `${tool.name} ${finished.status} (task ${row.id})`);
    return outcomeOf(finished);
  }

  private async cancel(id: string, reason: string): Promise<void> {
    try {
      await this.actions.cancel(id, reason);
    } catch (e) {
      // Finished meanwhile: nothing to stop.
      if (!(e instanceof AppError)) this.logger.warn({ err: e, task_id: id }, 'could not cancel a tool task');
    }
  }

  private notify(task: TaskRow, message: string): void {
    this.events.publish('hub.notification', {
      message,
      source: 'tool',
      severity: task.status === 'failed' ? 'warning' : 'info',
      task_id: task.id,
      ...(task.node_id ? { node_id: task.node_id } : {}),
      tenant_id: task.tenant_id,
    });
  }
}

/** What the model reads when a call could not be made or failed. */
const toolError = (message: string): string => JSON.stringify({ error: message });

function outcomeOf(task: TaskRow): ToolOutcome {
  if (task.status === 'completed') {
    const r = task.result;
    return { status: 'completed', taskId: task.id, content: typeof r === 'string' ? r : JSON.stringify(r ?? null) };
  }
  if (task.status === 'cancelled')
    return { status: 'cancelled', taskId: task.id, content: toolError(`the tool task was cancelled`) };
  return { status: 'failed', taskId: task.id, content: JSON.stringify({ error: task.error ?? 'the tool failed' }) };
}
