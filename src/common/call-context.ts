import { currentCall } from '../database/tenant-context.js';

/**
 * What the request or socket message being handled is, read from the hub's async-local store
 * (src/database/tenant-context.ts): logs add these to every line, and new work (a task, an
 * upstream LLM call) continues the trace, without passing either around by hand.
 */
export const currentRequestId = (): string | undefined => currentCall()?.requestId;

/** The W3C `traceparent` the current call's work continues, if any. */
export const currentTraceparent = (): string | undefined => currentCall()?.traceparent;

/** The caller's W3C `tracestate` that goes with currentTraceparent(). */
export const currentTracestate = (): string | undefined => currentCall()?.tracestate;
