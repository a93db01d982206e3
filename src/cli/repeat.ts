import { type CliContext, formatError } from './context.js';
import { HubError } from './http-client.js';

/**
 * The signal that ends a long-running command: `deps.stop` when given, else SIGINT or
 * SIGTERM (the listeners are removed by `dispose`).
 */
export function stopSignal(ctx: CliContext): { signal: AbortSignal; dispose: () => void } {
  if (ctx.deps.stop) return { signal: ctx.deps.stop, dispose: () => undefined };
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Waits `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A failure worth retrying on the next round: the hub unreachable, restarting or failing. */
function transient(e: unknown): e is HubError {
  return e instanceof HubError && (e.code === 'NETWORK_ERROR' || e.code === 'BAD_RESPONSE' || e.status >= 500);
}

/**
 * Calls `tick(i)` now, then every `ms` until stopped or after `count` calls. The first call's
 * errors end the command; later ones end it too unless the hub is merely unreachable or
 * failing, which is reported on stderr and retried on the next round.
 */
export async function repeat(
  ctx: CliContext,
  ms: number,
  count: number | undefined,
  tick: (i: number) => Promise<void>,
): Promise<void> {
  const stop = stopSignal(ctx);
  try {
    for (let i = 0; count === undefined || i < count; i++) {
      if (i > 0) {
        await sleep(ms, stop.signal);
        if (stop.signal.aborted) break;
      }
      try {
        await tick(i);
      } catch (e) {
        if (i === 0 || !transient(e)) throw e;
        ctx.io.err(`${formatError(e)} (retrying)`);
      }
    }
  } finally {
    stop.dispose();
  }
}
