#!/usr/bin/env node
import { basename } from 'node:path';
import { runCli } from './program.js';

const io = {
  out: (s: string): void => void process.stdout.write(`${s}\n`),
  err: (s: string): void => void process.stderr.write(`${s}\n`),
};

// Installed as `taskhub`, and as the seeds' own names (`codex-father`, `myagent-manager`): help speaks the name it was run by.
const invokedAs = basename(process.argv[1] ?? 'taskhub').replace(/\.js$/, '');
process.exitCode = await runCli(process.argv.slice(2), io, process.env, {
  name: invokedAs === 'main' ? 'taskhub' : invokedAs,
});
