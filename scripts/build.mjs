// `npm run build`: compile the hub (tsconfig.build.json) and the dashboard into dist/, from clean,
// and record in dist/.build-stamp.json a content hash of everything the build reads. `npm start`
// (scripts/start.mjs) compares that hash with the sources' and builds only when they differ.
//
//   node scripts/build.mjs               always build
//   node scripts/build.mjs --if-changed  build only when the sources differ from the last build's
//
// Content, not mtimes: a `git pull`, a checkout or a copied tree that changes one byte rebuilds,
// and nothing else does. The hash is taken before compiling, so an edit made during a build is
// seen by the next start.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.build-stamp.json');

/** What the build reads: sources, dashboard, TypeScript settings, dependencies, and this script. */
const INPUT_DIRS = ['src', 'web'];
const INPUT_FILES = [
  'ormconfig.ts',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'scripts/build.mjs',
  'scripts/copy-dashboard-assets.mjs',
];
/** What the build writes (removed first, so a source deleted upstream leaves no stale .js behind). */
const OUTPUTS = ['dist/src', 'dist/web', 'dist/ormconfig.js', 'dist/ormconfig.js.map'];

function filesUnder(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** sha256 over the path and content of every input file, in a fixed order. */
export function sourceHash() {
  const files = [
    ...INPUT_DIRS.flatMap((d) => (existsSync(join(ROOT, d)) ? filesUnder(join(ROOT, d)) : [])),
    ...INPUT_FILES.map((f) => join(ROOT, f)).filter((f) => existsSync(f)),
  ]
    .map((f) => relative(ROOT, f).split('\\').join('/'))
    .sort();
  const hash = createHash('sha256');
  for (const file of files)
    hash
      .update(`${file}\0`)
      .update(readFileSync(join(ROOT, file)))
      .update('\0');
  return hash.digest('hex');
}

/** Whether dist/ holds a build of exactly these sources. */
export function upToDate(hash) {
  if (!existsSync(join(DIST, 'src/main.js'))) return false;
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8')).hash === hash;
  } catch {
    return false;
  }
}

/** Runs `node <args>`; a SIGINT/SIGTERM meanwhile stops the child too (no compiler left writing into dist/). */
function run(args) {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      if (code === 0) return resolveRun();
      process.stderr.write(`taskhub: build failed: node ${args.map((a) => relative(ROOT, a) || a).join(' ')}\n`);
      process.exit(code ?? (signal === 'SIGINT' ? 130 : 143));
    });
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

function lockHolder(lock) {
  try {
    return Number(readFileSync(join(lock, 'pid'), 'utf8')) || undefined;
  } catch {
    return undefined; // just taken, the pid not written yet (or never: then it goes stale)
  }
}

/** A lock whose builder died (or never wrote its pid within 10 s). */
function stale(lock, holder) {
  try {
    return holder === undefined ? Date.now() - statSync(lock).mtimeMs > 10_000 : !alive(holder);
  } catch {
    return false; // released meanwhile: take it on the next turn
  }
}

/** One build at a time per checkout (two `npm start`s after a pull): the second waits, then rechecks. */
async function withLock(fn) {
  const lock = join(DIST, '.build-lock');
  mkdirSync(DIST, { recursive: true });
  for (let waited = false; ;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const holder = lockHolder(lock);
      if (stale(lock, holder)) {
        rmSync(lock, { recursive: true, force: true }); // left by a build that was killed
        continue;
      }
      if (!waited) process.stderr.write(`taskhub: another build (pid ${holder ?? '?'}) is running: waiting for it\n`);
      waited = true;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  writeFileSync(join(lock, 'pid'), String(process.pid));
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Clean build of dist/src and dist/web, then the stamp for `hash` (taken before the build began).
 * With `ifChanged`, nothing happens when dist/ already holds a build of these sources. Whether it built.
 */
export async function build({ ifChanged = false } = {}) {
  if (ifChanged && upToDate(sourceHash())) return false; // the usual start: no lock, nothing written
  return withLock(async () => {
    const hash = sourceHash();
    if (ifChanged && upToDate(hash)) return false;
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    rmSync(STAMP, { force: true });
    for (const out of OUTPUTS) rmSync(join(ROOT, out), { recursive: true, force: true });
    await run([tsc, '-p', 'tsconfig.build.json']);
    await run([tsc, '-p', 'web/dashboard/tsconfig.json']);
    await run([join(ROOT, 'scripts/copy-dashboard-assets.mjs')]);
    const tmp = `${STAMP}.${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify({ hash, built: new Date().toISOString() })}\n`);
    renameSync(tmp, STAMP);
    return true;
  });
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const built = await build({ ifChanged: process.argv.includes('--if-changed') });
  process.stderr.write(
    built
      ? `taskhub: built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s\n`
      : 'taskhub: dist/ is up to date with the sources\n',
  );
}
