import { parseTraceparent } from '../../common/tracing/traceparent.js';
import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { LlmError } from '../llm/llm-error.js';
import { LlmGateway } from '../llm/llm-gateway.service.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';
import { isHeld } from '../tasks/task-state.js';
import { runWithTenantSetting, SYSTEM_TENANT } from '../../database/tenant-context.js';
import type { LlmResponse, LlmResponseChunk } from '../../contracts/sockets/device.js';
import type { DeviceSession } from './device-protocol.js';

/** Sends the answer to the node that asked (whatever carries it). */
export interface NodeSend {
  chunk(data: LlmResponseChunk): void;
  response(data: LlmResponse): void;
}

/**
 * Seed 001 `llm_request`: a node asks the hub to call an LLM for it. The same gateway as
 * /v1/chat/completions, charged to the node's key; answered `llm_response {id, …completion}`,
 * or `llm_response_chunk {id, chunk}` frames then `llm_response` when `stream` is true, or
 * `llm_response {id, error}`. Not queued behind the node's other messages: a long call must
 * not hold up its reports.
 */
@Injectable()
export class NodeLlmBridge {
  constructor(
    private readonly gateway: LlmGateway,
    private readonly tasks: TaskQueriesService,
  ) {}

  async handle(session: DeviceSession, payload: unknown, send: NodeSend, gone: AbortSignal): Promise<void> {
    const p =
      typeof payload === 'object' && payload !== null && !Array.isArray(payload)
        ? (payload as Record<string, unknown>)
        : undefined;
    const id = p?.id;
    const idOk =
      typeof id === 'string' ? id.length > 0 && id.length <= 128 : typeof id === 'number' && Number.isFinite(id);
    const requestId = randomUUID();
    const fail = (e: LlmError): void =>
      send.response({ id: idOk ? (id as string | number) : null, request_id: requestId, error: e.body().error });
    if (!p) return fail(LlmError.invalid('payload', 'llm_request needs an object {id, model, messages, stream?, …}'));
    if (!idOk) return fail(LlmError.invalid('id', 'llm_request needs an id (a string or a number) to answer with'));
    if (!session.nodeId)
      return fail(new LlmError(409, 'invalid_request_error', 'Register first (node_register)', 'not_registered'));
    // `traceparent`/`tracestate` ride beside the request (a node that traces continues its own trace): not for the provider.
    const { id: _id, task_id: taskId, traceparent, tracestate: _tracestate, ...body } = p;
    try {
      // A node running a chat's tool asks on that chat's behalf: charged to the chat's key, counted under its request id.
      const chat = taskId === undefined ? undefined : await this.chatOf(session, taskId);
      const outcome = await this.gateway.chat(body, {
        requestId,
        usageRequestId: chat?.requestId,
        caller: { keyId: chat ? chat.keyId : (session.keyId ?? null), nodeId: session.nodeId, source: 'node' },
        clientSignal: gone,
        traceparent: parseTraceparent(traceparent) ? (traceparent as string) : undefined,
        onChunk:
          body.stream === true
            ? (chunk) => send.chunk({ id: id as string | number, request_id: requestId, chunk })
            : undefined,
      });
      // The completion's own id moves to completion_id: `id` is the node's, to match its request.
      send.response({
        ...outcome.completion,
        ...(typeof outcome.completion.id === 'string' ? { completion_id: outcome.completion.id } : {}),
        id: id as string | number,
        request_id: requestId,
      });
    } catch (e) {
      fail(e instanceof LlmError ? e : new LlmError(500, 'server_error', 'The gateway failed', 'internal_error'));
    }
  }

  /**
   * The chat a tool task of this node belongs to (its metadata, set by the ToolRunner). Only a
   * task the node holds now counts: a node cannot charge another's chat.
   */
  private async chatOf(
    session: DeviceSession,
    taskId: unknown,
  ): Promise<{ requestId: string; keyId: string | null } | undefined> {
    const refuse = (): LlmError =>
      LlmError.invalid('task_id', 'task_id must name a task this node is running (or be left out)');
    if (typeof taskId !== 'string' || !UUID.test(taskId)) throw refuse();
    const task = await runWithTenantSetting(session.tenant ?? SYSTEM_TENANT, () =>
      this.tasks.get(taskId).catch(() => undefined),
    );
    if (!task || task.node_id !== session.nodeId || !isHeld(task.status)) throw refuse();
    const requestId = task.metadata?.chat_request_id;
    if (typeof requestId !== 'string') return undefined; // not a chat's tool: the node's own call
    const keyId = task.metadata?.chat_key_id;
    return { requestId, keyId: typeof keyId === 'string' ? keyId : (session.keyId ?? null) };
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
