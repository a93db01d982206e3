#!/usr/bin/env node
// `npm run openapi:check` (after `npm run build`): fails when the committed contract drifted from
// the code, or when an operation does not document what it answers.
//  1. regenerates openapi.json and src/sdk/http/openapi-types.ts into a temp dir and compares
//     them with the committed files (`npm run openapi` rewrites them);
//  2. every operation needs a 2xx response with content, and a 4xx error response (or an
//     `x-taskhub-no-4xx` reason: open endpoints that refuse nothing).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FILES = [
  ['openapi.json', 'openapi.json'],
  ['src/sdk/http/openapi-types.ts', 'openapi-types.ts'],
];
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

const dir = mkdtempSync(join(tmpdir(), 'openapi-check-'));
const failures = [];
try {
  const doc = join(dir, 'openapi.json');
  try {
    execFileSync(process.execPath, ['dist/src/openapi/export-openapi.js', doc], { stdio: 'inherit' });
  } catch {
    console.error('openapi check failed: the document cannot be generated (see above; is dist/ built?)');
    process.exit(1);
  }
  execFileSync(
    process.execPath,
    [
      'node_modules/openapi-typescript/bin/cli.js',
      doc,
      '-o',
      join(dir, 'openapi-types.ts'),
      '--default-non-nullable',
      'false',
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );

  for (const [committed, fresh] of FILES) {
    const a = readFileSync(committed, 'utf8');
    const b = readFileSync(join(dir, fresh), 'utf8');
    if (a === b) continue;
    const diff = spawnSync(
      'diff',
      [
        '-u',
        '--label',
        `${committed} (committed)`,
        '--label',
        `${committed} (from the code)`,
        committed,
        join(dir, fresh),
      ],
      {
        encoding: 'utf8',
      },
    ).stdout;
    const lines = diff.split('\n');
    failures.push(
      `${committed} differs from what the code generates (run \`npm run openapi\` and commit):\n${lines.slice(0, 40).join('\n')}${lines.length > 40 ? `\n… ${lines.length - 40} more diff lines` : ''}`,
    );
  }

  const document = JSON.parse(readFileSync(doc, 'utf8'));
  let operations = 0;
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      operations++;
      const name = `${method.toUpperCase()} ${path} (${op.operationId})`;
      const responses = Object.entries(op.responses ?? {});
      if (!responses.some(([s, r]) => /^2\d\d$/.test(s) && r.content && Object.keys(r.content).length > 0))
        failures.push(`${name}: no 2xx response with a schema`);
      if (!responses.some(([s]) => /^4\d\d$/.test(s)) && !op['x-taskhub-no-4xx'])
        failures.push(`${name}: no 4xx error response`);
    }
  }
  if (failures.length === 0) console.log(`openapi: ${operations} operations documented, committed files up to date`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (failures.length > 0) {
  console.error(`openapi check failed:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
