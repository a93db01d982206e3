import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { CliContext } from './context.js';
import { HubClient } from './http-client.js';

export const DEFAULT_URL = 'http://127.0.0.1:3000';

export interface ClientOptions {
  url?: string;
  key?: string;
  json?: boolean;
}

/** Adds --url, --key and --json: every command that talks to a running hub has them. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', `hub base URL (default: $TASKHUB_URL or ${DEFAULT_URL})`)
    .option('--key <key>', 'API key (default: $TASKHUB_KEY, else ./data/admin.key if present)')
    .option('--json', 'print the raw `data` of the answer as JSON');
}

/** --key, else TASKHUB_KEY, else the admin key an embedded hub wrote to DATA_DIR (./data). */
export function resolveKey(opts: ClientOptions, ctx: CliContext): string | undefined {
  if (opts.key) return opts.key;
  if (ctx.env.TASKHUB_KEY) return ctx.env.TASKHUB_KEY;
  const file = resolve(ctx.deps.cwd ?? process.cwd(), ctx.env.DATA_DIR || 'data', 'admin.key');
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').trim() || undefined;
}

export function makeClient(opts: ClientOptions, ctx: CliContext): HubClient {
  return new HubClient(opts.url || ctx.env.TASKHUB_URL || DEFAULT_URL, resolveKey(opts, ctx));
}

/** Prints `data` as JSON with --json, else the human rendering. */
export function emit(ctx: CliContext, opts: ClientOptions, data: unknown, human: () => string): void {
  ctx.io.out(opts.json ? JSON.stringify(data, null, 2) : human());
}

export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError('not an integer.');
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}.`);
    return n;
  };
}
