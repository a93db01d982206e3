import { currentTraceparent } from '../../common/call-context.js';
import { endWithError, type Span, SpanKind, startSpan } from '../../common/tracing/tracer.js';
import type { ChatRequest } from './chat-request.js';
import type { LlmCallStatus, LlmTokens } from './llm-accounting.js';
import type { Deployment } from './llm-router.js';

/**
 * The span of one upstream call, after OpenTelemetry's GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/): `chat {model}`, a client
 * span, a child of the request that asked (or of the context a node's `llm_request` sent).
 * Each retry on another deployment is a span of its own.
 */
export function upstreamSpan(
  d: Deployment,
  request: ChatRequest,
  requested: string,
  run: { traceparent?: string },
  startedAt: number,
): Span | undefined {
  const body = request.body;
  const server = serverOf(d.provider.base_url);
  return startSpan(`chat ${d.model}`, {
    parent: run.traceparent ?? currentTraceparent(),
    kind: SpanKind.CLIENT,
    startTime: startedAt,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': d.provider.name,
      'gen_ai.request.model': d.model,
      'gen_ai.request.max_tokens': request.maxTokens,
      'gen_ai.request.temperature': typeof body.temperature === 'number' ? body.temperature : undefined,
      'gen_ai.request.top_p': typeof body.top_p === 'number' ? body.top_p : undefined,
      'gen_ai.request.stream': request.stream,
      'server.address': server?.address,
      'server.port': server?.port,
      // What the client asked for, when an alias or fallback chain chose the deployment's model.
      'taskhub.llm.requested_model': requested,
    },
  });
}

/** What the answer said about itself (`id`, `model`, finish reasons). */
export function describeResponse(span: Span | undefined, completion: Record<string, unknown>): void {
  if (!span) return;
  const choices = Array.isArray(completion.choices) ? (completion.choices as { finish_reason?: unknown }[]) : [];
  const reasons = choices.map((c) => c.finish_reason).filter((r): r is string => typeof r === 'string');
  span.setAttributes({
    'gen_ai.response.id': typeof completion.id === 'string' ? completion.id : undefined,
    'gen_ai.response.model': typeof completion.model === 'string' ? completion.model : undefined,
    'gen_ai.response.finish_reasons': reasons.length ? reasons : undefined,
  });
}

export function endUpstreamSpan(
  span: Span,
  status: LlmCallStatus,
  error: string | null,
  tokens: LlmTokens,
  ttftMs: number | null,
  upstreamStatus: number | null,
): void {
  span.setAttributes({
    'gen_ai.usage.input_tokens': tokens.prompt_tokens,
    'gen_ai.usage.output_tokens': tokens.completion_tokens,
    'http.response.status_code': upstreamStatus ?? undefined,
    // Time to the first chunk of content (the whole answer when not streamed).
    'taskhub.llm.time_to_first_chunk_ms': ttftMs ?? undefined,
  });
  if (ttftMs !== null) span.addEvent('gen_ai.first_chunk', { 'taskhub.llm.time_to_first_chunk_ms': ttftMs });
  if (status === 'completed') span.end();
  else
    endWithError(span, upstreamStatus && upstreamStatus >= 400 ? String(upstreamStatus) : status, error ?? undefined);
}

function serverOf(baseUrl: string): { address: string; port: number } | undefined {
  try {
    const url = new URL(baseUrl);
    return { address: url.hostname, port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80) };
  } catch {
    return undefined;
  }
}
