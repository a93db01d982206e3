import type { LlmTokens } from './llm-accounting.js';

type Chunk = Record<string, unknown>;
type Send = ((chunk: Chunk) => void | Promise<void>) | undefined;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a chunk carries part of a tool call, or ends a message with tool calls. */
function holdsToolCall(chunk: Chunk): boolean {
  for (const c of (chunk.choices as Chunk[] | undefined) ?? []) {
    if (c.finish_reason === 'tool_calls') return true;
    if (isObject(c.delta) && c.delta.tool_calls !== undefined) return true;
  }
  return false;
}

/**
 * One client stream over the several model calls of a turn: every chunk goes out under the
 * first call's id and time; the chunks of a tool call are held until the call's end says whose
 * it is — the hub's (dropped: the client sees the results in the answer that follows) or the
 * client's (sent as they came). The usage chunk, when asked for, is the turn's sum, last.
 */
export class TurnStream {
  private id: unknown;
  private created: unknown;
  private held: Chunk[] = [];

  constructor(
    private readonly send: Send,
    private readonly includeUsage: boolean,
  ) {}

  add(upstream: Chunk): void | Promise<void> {
    this.id ??= upstream.id;
    this.created ??= upstream.created;
    // A new object, not the upstream's changed in place: that one goes out as the upstream's bytes (upstreamJson).
    const chunk = { ...upstream, id: this.id, created: this.created };
    if (holdsToolCall(chunk)) {
      this.held.push(chunk);
      return;
    }
    return this.send?.(chunk);
  }

  /** The held tool-call chunks are the client's: out they go. */
  async release(): Promise<void> {
    for (const chunk of this.held.splice(0)) await this.send?.(chunk);
  }

  /** The held tool calls were the hub's: only text that came along with them goes out. */
  async drop(): Promise<void> {
    for (const chunk of this.held.splice(0)) {
      const choices = ((chunk.choices as Chunk[] | undefined) ?? [])
        .map((c) => {
          const delta = isObject(c.delta) ? c.delta : {};
          return { ...c, delta: { content: delta.content }, finish_reason: null };
        })
        .filter((c) => typeof c.delta.content === 'string' && c.delta.content.length > 0);
      if (choices.length > 0) await this.send?.({ ...chunk, choices });
    }
  }

  /** The turn's completion as the stream amounts to: the last call's, under the first id, with the turn's usage. */
  finish(completion: Chunk, used: LlmTokens): Chunk {
    return {
      ...completion,
      ...(this.id !== undefined ? { id: this.id } : {}),
      usage: {
        prompt_tokens: used.prompt_tokens,
        completion_tokens: used.completion_tokens,
        total_tokens: used.prompt_tokens + used.completion_tokens,
      },
    };
  }

  /** `stream_options.include_usage`: one last chunk with no choices and the turn's usage. */
  async sendUsage(completion: Chunk): Promise<void> {
    if (!this.includeUsage) return;
    await this.send?.({
      id: completion.id,
      object: 'chat.completion.chunk',
      created: this.created ?? completion.created,
      model: completion.model,
      choices: [],
      usage: completion.usage,
    });
  }
}
