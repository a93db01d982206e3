import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { asOpenAiTool } from '../tools/tool-definition.js';
import { type RegisteredTool, ToolRegistry } from '../tools/tool-registry.service.js';
import { type ModelToolCall, ToolRunner } from '../tools/tool-runner.service.js';
import { parseChatRequest } from './chat-request.js';
import type { LlmTokens } from './llm-accounting.js';
import { LlmError } from './llm-error.js';
import { LlmRouter } from './llm-router.js';
import { asLlmError, type ChatOutcome, type ChatRun, LlmGateway } from './llm-gateway.service.js';
import type { StopReason } from './running-requests.js';
import { TurnStream } from './turn-stream.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A chat turn (seed 001 §7.3 "更新状态并继续对话"): when the request lists tools the hub knows
 * (offered by nodes or plugins) and the model calls them, the hub runs each call as a task on
 * a node, appends the results and calls the model again, until it answers without tool calls
 * — at most LLM_TOOL_MAX_STEPS model calls, within LLM_MAX_REQUEST_MS. The client sees one
 * answer (one stream). A request naming no hub tool, or a model calling a tool the hub does
 * not know, goes to and comes back from the gateway exactly as before: OpenAI clients that run
 * their own tools keep working.
 */
@Injectable()
export class ChatTurns {
  constructor(
    private readonly gateway: LlmGateway,
    private readonly registry: ToolRegistry,
    private readonly runner: ToolRunner,
    private readonly config: AppConfig,
    private readonly router: LlmRouter,
  ) {}

  async chat(raw: unknown, run: ChatRun): Promise<ChatOutcome> {
    const tools = await this.hubToolsOf(raw);
    if (!tools) return this.gateway.chat(raw, run);
    return this.turn(raw as Record<string, unknown>, tools, run);
  }

  /** The hub tools this request names, or null when it names none (or asks for n > 1 choices). */
  private async hubToolsOf(raw: unknown): Promise<Map<string, RegisteredTool> | null> {
    if (this.config.LLM_TOOL_MAX_STEPS === 0 || !isObject(raw) || !Array.isArray(raw.tools)) return null;
    if (raw.n !== undefined && raw.n !== null && raw.n !== 1) return null;
    const named = raw.tools
      .map((t) => (isObject(t) && t.type === 'function' && isObject(t.function) ? t.function.name : undefined))
      .filter((n): n is string => typeof n === 'string');
    if (named.length === 0) return null;
    parseChatRequest(raw); // a bad request is refused before anything is looked up
    const known = await this.registry.available();
    const used = new Map<string, RegisteredTool>();
    for (const name of named) {
      const tool = known.get(name);
      if (tool) used.set(name, tool);
    }
    return used.size > 0 ? used : null;
  }

  private async turn(
    raw: Record<string, unknown>,
    tools: Map<string, RegisteredTool>,
    run: ChatRun,
  ): Promise<ChatOutcome> {
    const request = parseChatRequest(raw);
    const open = this.gateway.open(run, request.model ?? this.router.current.default_model ?? '');
    const deadline = Date.now() + this.config.LLM_MAX_REQUEST_MS;
    const stream = request.stream ? new TurnStream(run.onChunk, request.includeUsage) : null;
    const messages = [...(raw.messages as unknown[])];
    const used: LlmTokens = { prompt_tokens: 0, completion_tokens: 0 };
    // The client's usage chunk is the turn's sum, sent once at the end (TurnStream).
    const { stream_options: _clientStreamOptions, ...base } = raw;
    let toolChoice = raw.tool_choice;
    try {
      for (let step = 1; ; step++) {
        const outcome = await this.gateway.chat(
          { ...base, tools: withDefinitions(raw.tools as unknown[], tools), tool_choice: toolChoice, messages },
          { ...run, turn: open.signal, onChunk: stream ? (chunk) => stream.add(chunk) : undefined },
        );
        used.prompt_tokens += outcome.usage.prompt_tokens;
        used.completion_tokens += outcome.usage.completion_tokens;
        const message = firstMessage(outcome.completion);
        const calls = toolCallsOf(message);
        if (calls.length === 0 || calls.some((c) => !tools.has(c.function.name))) {
          // The answer, or tool calls that are the client's to run: to the client as the model gave them.
          await stream?.release();
          const completion = stream?.finish(outcome.completion, used) ?? withUsage(outcome.completion, used, step);
          await stream?.sendUsage(completion);
          this.gateway.completed(run, completion, null);
          return { ...outcome, completion, usage: used };
        }
        await stream?.drop();
        if (step >= this.config.LLM_TOOL_MAX_STEPS) throw stepLimit(this.config.LLM_TOOL_MAX_STEPS);
        messages.push({ role: 'assistant', content: message?.content ?? null, tool_calls: calls });
        const results = await Promise.all(
          calls.map((c) =>
            this.runner.run(tools.get(c.function.name) as RegisteredTool, c, {
              requestId: run.requestId,
              keyId: run.caller.keyId,
              signal: open.signal,
              deadline,
            }),
          ),
        );
        open.signal.throwIfAborted();
        calls.forEach((c, i) => messages.push({ role: 'tool', tool_call_id: c.id, content: results[i].content }));
        // A forced tool choice applies to the first call: after it, the model may answer.
        if (toolChoice === 'required' || isObject(toolChoice)) toolChoice = 'auto';
      }
    } catch (e) {
      const error = open.signal.aborted ? this.gateway.stopped(open.signal.reason as StopReason) : asLlmError(e);
      this.gateway.completed(run, null, error);
      throw error;
    } finally {
      open.done();
    }
  }
}

/** The request's tools, with the hub's definition for each hub tool (a client may name one only). */
function withDefinitions(requested: unknown[], tools: Map<string, RegisteredTool>): unknown[] {
  return requested.map((t) => {
    const name = isObject(t) && isObject(t.function) ? t.function.name : undefined;
    const tool = typeof name === 'string' ? tools.get(name) : undefined;
    if (!tool) return t;
    const definition = asOpenAiTool(tool);
    const own = (t as { function: Record<string, unknown> }).function.description;
    // The client's description may say more about how to use it; the schema is the hub's (it checks the calls).
    if (typeof own === 'string') definition.function.description = own;
    return definition;
  });
}

function firstMessage(completion: Record<string, unknown>): Record<string, unknown> | undefined {
  const choices = completion.choices as { message?: Record<string, unknown> }[] | undefined;
  return choices?.[0]?.message;
}

function toolCallsOf(message: Record<string, unknown> | undefined): ModelToolCall[] {
  const calls = message?.tool_calls;
  if (!Array.isArray(calls)) return [];
  return calls.filter(
    (c): c is ModelToolCall =>
      isObject(c) &&
      typeof c.id === 'string' &&
      isObject(c.function) &&
      typeof c.function.name === 'string' &&
      typeof c.function.arguments === 'string',
  );
}

/** A JSON answer: the last call's completion, its usage the turn's sum. */
function withUsage(completion: Record<string, unknown>, used: LlmTokens, steps: number): Record<string, unknown> {
  if (steps === 1) return completion;
  return {
    ...completion,
    usage: {
      prompt_tokens: used.prompt_tokens,
      completion_tokens: used.completion_tokens,
      total_tokens: used.prompt_tokens + used.completion_tokens,
    },
  };
}

function stepLimit(steps: number): LlmError {
  return new LlmError(
    500,
    'server_error',
    `The model was still calling tools after ${steps} calls (LLM_TOOL_MAX_STEPS): the turn was stopped`,
    'tool_step_limit',
    null,
    { shouldRetry: false },
  );
}
