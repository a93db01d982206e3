/**
 * Rebuilds the `chat.completion` object a streamed answer amounts to (for node
 * `llm_response`, `chat.completed` and usage): content and tool-call deltas joined by index.
 */
export class CompletionBuilder {
  private id = '';
  private created = Math.floor(Date.now() / 1000);
  private model = '';
  private systemFingerprint: unknown;
  private readonly choices = new Map<
    number,
    { role: string; content: string; refusal: string | null; toolCalls: Map<number, ToolCall>; finish: string | null }
  >();
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null = null;
  /** Characters of content and tool arguments so far (to estimate tokens of a cut stream). */
  chars = 0;

  add(chunk: Record<string, unknown>): void {
    if (typeof chunk.id === 'string') this.id = chunk.id;
    if (typeof chunk.created === 'number') this.created = chunk.created;
    if (typeof chunk.model === 'string') this.model = chunk.model;
    if (chunk.system_fingerprint !== undefined) this.systemFingerprint = chunk.system_fingerprint;
    if (chunk.usage && typeof chunk.usage === 'object') this.usage = chunk.usage as CompletionBuilder['usage'];
    for (const c of (chunk.choices as Record<string, unknown>[] | undefined) ?? []) {
      const index = typeof c.index === 'number' ? c.index : 0;
      let choice = this.choices.get(index);
      if (!choice)
        this.choices.set(
          index,
          (choice = { role: 'assistant', content: '', refusal: null, toolCalls: new Map(), finish: null }),
        );
      const delta = (c.delta ?? {}) as Record<string, unknown>;
      if (typeof delta.role === 'string') choice.role = delta.role;
      if (typeof delta.content === 'string') {
        choice.content += delta.content;
        this.chars += delta.content.length;
      }
      if (typeof delta.refusal === 'string') choice.refusal = (choice.refusal ?? '') + delta.refusal;
      for (const t of (delta.tool_calls as Record<string, unknown>[] | undefined) ?? []) {
        const ti = typeof t.index === 'number' ? t.index : 0;
        let call = choice.toolCalls.get(ti);
        if (!call)
          choice.toolCalls.set(ti, (call = { id: '', type: 'function', function: { name: '', arguments: '' } }));
        if (typeof t.id === 'string') call.id = t.id;
        if (typeof t.type === 'string') call.type = t.type;
        const f = (t.function ?? {}) as { name?: unknown; arguments?: unknown };
        if (typeof f.name === 'string') call.function.name += f.name;
        if (typeof f.arguments === 'string') {
          call.function.arguments += f.arguments;
          this.chars += f.arguments.length;
        }
      }
      if (typeof c.finish_reason === 'string') choice.finish = c.finish_reason;
    }
  }

  build(): Record<string, unknown> {
    return {
      id: this.id,
      object: 'chat.completion',
      created: this.created,
      model: this.model,
      choices: [...this.choices.entries()]
        .sort(([a], [b]) => a - b)
        .map(([index, c]) => ({
          index,
          message: {
            role: c.role,
            content: c.toolCalls.size && !c.content ? null : c.content,
            refusal: c.refusal,
            ...(c.toolCalls.size
              ? { tool_calls: [...c.toolCalls.entries()].sort(([a], [b]) => a - b).map(([, t]) => t) }
              : {}),
          },
          finish_reason: c.finish,
          logprobs: null,
        })),
      ...(this.usage ? { usage: this.usage } : {}),
      ...(this.systemFingerprint !== undefined ? { system_fingerprint: this.systemFingerprint } : {}),
    };
  }
}

interface ToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: string };
}

/** Whether a chunk carries something the client must see (content, a tool call, an end): after it, no retry. */
export function carriesContent(chunk: Record<string, unknown>): boolean {
  if (chunk.usage) return true;
  for (const c of (chunk.choices as Record<string, unknown>[] | undefined) ?? []) {
    const d = (c.delta ?? {}) as Record<string, unknown>;
    if ((typeof d.content === 'string' && d.content.length > 0) || d.tool_calls || d.refusal || c.finish_reason)
      return true;
  }
  return false;
}
