import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TimeInput,
  trace,
  type Tracer,
  createTraceState,
} from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type IdGenerator,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { PACKAGE } from '../package-info.js';
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from './traceparent.js';

export { SpanKind, SpanStatusCode, type Span, type Attributes };

type Env = Record<string, string | undefined>;

/**
 * Span ids come from the pooled random source, except for the span being started with an id
 * chosen ahead (a task's spans: its stored context and the ids derived from it, so that any hub
 * can make the next span of a task without asking which hub made the last one). Starting a span
 * is synchronous, so the chosen id cannot be taken by another span.
 */
class HubIdGenerator implements IdGenerator {
  chosen: string | undefined;
  generateTraceId(): string {
    return newTraceId();
  }
  generateSpanId(): string {
    const id = this.chosen;
    if (id === undefined) return newSpanId();
    this.chosen = undefined;
    return id;
  }
}

interface Tracing {
  tracer: Tracer;
  provider: BasicTracerProvider;
  ids: HubIdGenerator;
  users: number;
}

let active: Tracing | undefined;

/** Whether spans are recorded (an OTLP endpoint is configured): every span site checks this first, so off costs nothing. */
export const tracingEnabled = (): boolean => active !== undefined;

/** Why tracing is off for this environment, or undefined when it is on (the standard OTEL_* variables). */
export function tracingDisabledReason(env: Env): string | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return 'OTEL_SDK_DISABLED=true';
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter === 'none') return 'OTEL_TRACES_EXPORTER=none';
  if (exporter && exporter !== 'otlp') return `OTEL_TRACES_EXPORTER=${exporter} is not supported (otlp or none)`;
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim())
    return 'no OTEL_EXPORTER_OTLP_ENDPOINT';
  const protocol = otlpProtocol(env);
  if (protocol !== 'http/json' && protocol !== 'http/protobuf')
    return `OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported (http/protobuf or http/json)`;
  return undefined;
}

const otlpProtocol = (env: Env): string =>
  (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim().toLowerCase();

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** OTEL_TRACES_SAMPLER / _ARG (the specification's names); parent-based always-on by default. */
function samplerFrom(env: Env): Sampler {
  const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
  const ratioSampler = new TraceIdRatioBasedSampler(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : 1);
  switch (env.OTEL_TRACES_SAMPLER?.trim().toLowerCase()) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratioSampler;
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratioSampler });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

function exporterFrom(env: Env): SpanExporter {
  // The exporters read the endpoint, headers, timeout and compression from OTEL_EXPORTER_OTLP_* themselves.
  return otlpProtocol(env) === 'http/json' ? new OtlpJsonExporter() : new OtlpProtobufExporter();
}

/**
 * Starts recording spans when the environment asks for OTLP export (docs/observability.md,
 * "Traces"); a no-op otherwise. Reference-counted: each app in a process (tests build several)
 * starts and stops it once; the last stop flushes what is queued.
 */
export function startTracing(env: Env, instanceId: string): void {
  if (active) {
    active.users += 1;
    return;
  }
  if (tracingDisabledReason(env) !== undefined) return;
  const ids = new HubIdGenerator();
  const resource = detectResources({ detectors: [envDetector] }).merge(
    resourceFromAttributes({
      'service.name': env.OTEL_SERVICE_NAME?.trim() || 'taskhub',
      'service.version': PACKAGE.version,
      'service.instance.id': instanceId,
    }),
  );
  const provider = new BasicTracerProvider({
    resource,
    sampler: samplerFrom(env),
    idGenerator: ids,
    spanProcessors: [
      new BatchSpanProcessor(exporterFrom(env), {
        scheduledDelayMillis: positiveInt(env.OTEL_BSP_SCHEDULE_DELAY, 5000),
        maxQueueSize: positiveInt(env.OTEL_BSP_MAX_QUEUE_SIZE, 2048),
        maxExportBatchSize: positiveInt(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512),
        exportTimeoutMillis: positiveInt(env.OTEL_BSP_EXPORT_TIMEOUT, 30000),
      }),
    ],
  });
  active = { tracer: provider.getTracer('taskhub', PACKAGE.version), provider, ids, users: 1 };
}

/** Flushes and stops recording when the last user stops. */
export async function stopTracing(): Promise<void> {
  if (!active) return;
  active.users -= 1;
  if (active.users > 0) return;
  const { provider } = active;
  active = undefined;
  // What is queued gets one short chance to go: an unreachable collector must neither fail the
  // hub's shutdown nor hold it for the exporter's own timeout (30 s by default).
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    provider.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS).unref())),
  ]);
  clearTimeout(timer);
}

/** The longest a shutdown waits for the last spans to be exported. */
const SHUTDOWN_FLUSH_MS = 2000;

/** Sends what is queued now (tests; the batch processor otherwise sends every OTEL_BSP_SCHEDULE_DELAY). */
export async function flushTracing(): Promise<void> {
  await active?.provider.forceFlush();
}

export interface SpanOptions {
  /** The W3C context this span continues; none starts a new trace. */
  parent?: string | null;
  parentTracestate?: string | null;
  kind?: SpanKind;
  attributes?: Attributes;
  startTime?: TimeInput;
  /** The span's id, chosen ahead (a task's spans); random otherwise. */
  spanId?: string;
}

/** Starts a span, or undefined when tracing is off (callers guard with tracingEnabled() to skip building options). */
export function startSpan(name: string, options: SpanOptions = {}): Span | undefined {
  if (!active) return undefined;
  const parent = parseTraceparent(options.parent);
  const context = parent
    ? trace.setSpanContext(ROOT_CONTEXT, {
        traceId: parent.traceId,
        spanId: parent.spanId,
        traceFlags: parent.flags,
        isRemote: true,
        traceState: options.parentTracestate ? createTraceState(options.parentTracestate) : undefined,
      })
    : ROOT_CONTEXT;
  active.ids.chosen = options.spanId;
  try {
    return active.tracer.startSpan(
      name,
      { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, startTime: options.startTime },
      context,
    );
  } finally {
    active.ids.chosen = undefined; // a sampled-out span takes no id: never leave one for the next span
  }
}

/** The W3C `traceparent` of a span (what work it starts continues). */
export function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return formatTraceparent({ traceId: c.traceId, spanId: c.spanId, flags: c.traceFlags });
}

/** Ends a span as failed with `message` (an OpenTelemetry error status and `error.type`). */
export function endWithError(span: Span, errorType: string, message?: string, endTime?: TimeInput): void {
  span.setAttribute('error.type', errorType);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.end(endTime);
}
