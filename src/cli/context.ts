import { HubError } from './http-client.js';

/** Where the CLI writes: one call per block of text, without a trailing newline. */
export interface CliIo {
  out(s: string): void;
  err(s: string): void;
}

export type CliEnv = Record<string, string | undefined>;

/** Injected for tests; real defaults otherwise. */
export interface CliDeps {
  /** Starts the hub (default: `startServer` from src/server.ts, imported on demand). */
  startServer?: (env: CliEnv) => Promise<void>;
  /** Directory relative paths (./data/admin.key) are resolved against (default: process.cwd()). */
  cwd?: string;
  /** Ends long-running commands (`device`, `monitor`, `logs --follow`); default: SIGINT or SIGTERM. */
  stop?: AbortSignal;
  /** Whether stdout is a terminal (`monitor` clears the screen between refreshes); default: process.stdout.isTTY. */
  tty?: boolean;
  /** The name it was run by (`taskhub`, or the seeds' `codex-father` / `myagent-manager`), for help and usage. */
  name?: string;
}

export interface CliContext {
  io: CliIo;
  env: CliEnv;
  deps: CliDeps;
}

/** Thrown by a command to end the run with this exit code (caught by runCli). */
export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/**
 * `error CODE: message`, plus the offending field when the hub names one and the last lines
 * of a process that failed to start (SERVICE_START_FAILED's `details.last_output`).
 */
export function formatError(e: HubError): string {
  const lines = [`error ${e.code}: ${e.message}`];
  const field = e.details?.field;
  if (typeof field === 'string') {
    const why = e.details?.message;
    lines.push(`  field ${field}${typeof why === 'string' ? `: ${why}` : ''}`);
  }
  const output = e.details?.last_output;
  if (Array.isArray(output) && output.length > 0) {
    lines.push('  last output:', ...output.map((l) => `    ${String(l)}`));
  }
  return lines.join('\n');
}

/**
 * Wraps a command's logic: a HubError is printed to stderr and ends the run with 1;
 * a non-zero return value ends the run with that code.
 */
export function action<A extends unknown[]>(
  ctx: CliContext,
  fn: (...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    let code: number | void;
    try {
      code = await fn(...args);
    } catch (e) {
      if (e instanceof HubError) {
        ctx.io.err(formatError(e));
        throw new CliExit(1);
      }
      throw e;
    }
    if (code) throw new CliExit(code);
  };
}
