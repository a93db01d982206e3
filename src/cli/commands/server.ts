import type { Command } from 'commander';
import { intArg } from '../client-options.js';
import { CONFIG_FILE_KEYS_ENV } from '../../config/app-config.js';
import { envFromConfigFile } from '../../config/config-file.js';
import { action, type CliContext, type CliEnv } from '../context.js';

interface ServerOptions {
  config?: string;
  enableWebsocket?: boolean;
  port?: number;
  host?: string;
  corsOrigin?: string;
  auth: boolean;
  dataDir?: string;
  databaseUrl?: string;
}

/** The environment the hub starts with: the config file, then our environment, then the flags. */
export function serverEnv(env: CliEnv, opts: ServerOptions): CliEnv {
  const file = opts.config ? envFromConfigFile(opts.config) : {};
  const out: CliEnv = { ...file, ...env };
  if (opts.enableWebsocket !== undefined) out.WS_ENABLED = String(opts.enableWebsocket);
  if (opts.port !== undefined) out.PORT = String(opts.port);
  if (opts.host !== undefined) out.HOST = opts.host;
  if (opts.corsOrigin !== undefined) out.CORS_ORIGIN = opts.corsOrigin;
  if (!opts.auth) out.AUTH_REQUIRED = 'false';
  if (opts.dataDir !== undefined) out.DATA_DIR = opts.dataDir;
  if (opts.databaseUrl !== undefined) out.DATABASE_URL = opts.databaseUrl;
  // Which settings the file decided (neither the environment nor a flag overrode them): source `file` in /v1/config.
  const fromFile = Object.keys(file).filter((k) => !env[k] && out[k] === file[k]);
  if (fromFile.length > 0) out[CONFIG_FILE_KEYS_ENV] = fromFile.join(',');
  return out;
}

export function registerServer(program: Command, ctx: CliContext): void {
  program
    .command('server')
    .description('start the hub (flags override the environment; docs/configuration.md lists every variable)')
    .option(
      '--config <file>',
      'Codex Father config file (server.port/host/cors/rateLimit/websocket/security, top-level cors/rateLimit, runner.maxConcurrency/defaultTimeout); env and flags override it',
    )
    .option('--enable-websocket', 'serve the raw /ws stream (WS_ENABLED=true, the default)')
    .option('--port <n>', 'listen port (PORT)', intArg(0, 65535))
    .option('--host <host>', 'listen address (HOST)')
    .option('--cors-origin <origin>', 'allowed origins, comma list or * (CORS_ORIGIN)')
    .option('--no-auth', 'accept requests without an API key (AUTH_REQUIRED=false)')
    .option('--data-dir <dir>', 'embedded database and admin.key directory (DATA_DIR)')
    .option('--database-url <url>', 'postgres://… of a real server (DATABASE_URL)')
    .action(
      action(ctx, async (opts: ServerOptions) => {
        const start = ctx.deps.startServer ?? (await import('../../server.js')).startServer;
        await start(serverEnv(ctx.env, opts));
      }),
    );
}
