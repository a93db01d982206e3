import { randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): `traceparent` is
 * `version-traceid-parentid-flags`, lower-case hex. A context the hub cannot read is dropped and
 * a new trace started, as the specification asks of a receiver.
 */
export interface TraceParent {
  traceId: string; // 32 hex, not all zero
  spanId: string; // 16 hex, not all zero
  /** Bit 0: sampled. */
  flags: number;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** Longest `tracestate` kept (the specification's limit is 32 members; 512 bytes is what proxies keep). */
const TRACESTATE_MAX = 512;

export function parseTraceparent(header: unknown): TraceParent | undefined {
  if (typeof header !== 'string' || header.length > 256) return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  // Version ff is invalid; version 00 has nothing after the flags; later versions may.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

export function formatTraceparent(t: TraceParent): string {
  return `00-${t.traceId}-${t.spanId}-${(t.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** A `tracestate` worth passing on (printable, bounded), else undefined. */
export function cleanTracestate(header: unknown): string | undefined {
  if (typeof header !== 'string' || header.length === 0 || header.length > TRACESTATE_MAX) return undefined;
  return /^[\x20-\x7e]+$/.test(header) ? header : undefined;
}

export const traceIdOf = (traceparent: string | null | undefined): string | null =>
  traceparent ? traceparent.slice(3, 35) : null;

export const isSampled = (t: TraceParent): boolean => (t.flags & 1) === 1;

// Random ids from a pooled buffer: one getrandom per 512 ids instead of one per id.
const pool = Buffer.alloc(4096);
let offset = pool.length;
function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

export function newSpanId(): string {
  const id = randomHex(8);
  return id === ZERO_SPAN ? newSpanId() : id;
}

export function newTraceId(): string {
  const id = randomHex(16);
  return id === ZERO_TRACE ? newTraceId() : id;
}

/** The root of a new trace (sampled: whether a span is exported is the sampler's call). */
export function newTraceparent(): TraceParent {
  return { traceId: newTraceId(), spanId: newSpanId(), flags: 1 };
}
