#!/usr/bin/env node
import { runCli } from './program.js';

const io = {
  out: (s: string): void => void process.stdout.write(`${s}\n`),
  err: (s: string): void => void process.stderr.write(`${s}\n`),
};

process.exitCode = await runCli(process.argv.slice(2), io, process.env);
