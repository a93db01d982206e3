import { Command, CommanderError } from 'commander';
import { PACKAGE } from '../common/package-info.js';
import { registerConnections } from './commands/connections.js';
import { registerDevice } from './commands/device.js';
import { registerRoutes } from './commands/routes.js';
import { registerServer } from './commands/server.js';
import { registerServiceMonitoring } from './commands/service-monitor.js';
import { registerServices } from './commands/services.js';
import { registerTasks } from './commands/tasks.js';
import { CliExit, type CliContext, type CliDeps, type CliEnv, type CliIo } from './context.js';

export type { CliDeps, CliEnv, CliIo } from './context.js';

/**
 * Command groups, one file each under commands/. A new group (devices, services, routes…)
 * is a `registerX(program, ctx)` function added here.
 */
const GROUPS: ((program: Command, ctx: CliContext) => void)[] = [
  registerServer,
  registerTasks,
  registerDevice,
  registerServices,
  registerServiceMonitoring,
  registerConnections,
  registerRoutes,
];

const chomp = (s: string): string => s.replace(/\n$/, '');

/**
 * The `taskhub` command tree. It never calls process.exit: commander's exits become
 * CommanderError (exitOverride) and failed commands throw CliExit; use runCli for the code.
 */
export function buildProgram(io: CliIo, env: CliEnv = process.env, deps: CliDeps = {}): Command {
  const ctx: CliContext = { io, env, deps };
  // Settings made before .command() are inherited by every subcommand.
  const program = new Command(deps.name ?? 'taskhub')
    .description('taskhub: task orchestration hub — run the server or talk to one')
    .version(PACKAGE.version)
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({ writeOut: (s) => io.out(chomp(s)), writeErr: (s) => io.err(chomp(s)) });
  for (const register of GROUPS) register(program, ctx);
  return program;
}

/** Runs one command line (without `node script`) and returns the exit code. */
export async function runCli(
  argv: string[],
  io: CliIo,
  env: CliEnv = process.env,
  deps: CliDeps = {},
): Promise<number> {
  const program = buildProgram(io, env, deps);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CliExit) return e.code;
    if (e instanceof CommanderError) return e.exitCode;
    io.err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
