// Issue 28: what tracing costs. W1 (single and batch submits) and W2 (a 10,000-task drain by 16
// devices) on the default `npm start` hub (embedded PostgreSQL), each run with tracing off (no
// OTEL_* variables) and on (OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP/HTTP sink that
// takes every export, protobuf as the default protocol, and answers 200), alternating off/on so
// drift of the machine hits both alike. With tracing on every request starts a sampled trace
// (the default parentbased_always_on), so every span is made and exported: the worst case.
//
//   node dist/bench/tracing-overhead.js          (npm run bench:tracing)
//   BENCH_TRACING_ROUNDS  off/on pairs (default 2)
//
// Prints one JSON line per workload with the runs of each setting and the median change.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const ROUNDS = Number(process.env.BENCH_TRACING_ROUNDS ?? 2);

interface Sink {
  url: string;
  requests: number;
  bytes: number;
  close(): Promise<void>;
}

/** An OTLP/HTTP endpoint that accepts any export (JSON or protobuf) and counts what arrived. */
async function startSink(): Promise<Sink> {
  const sink = { url: '', requests: 0, bytes: 0, close: () => Promise.resolve() };
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (sink.bytes += c.length));
    req.on('end', () => {
      sink.requests++;
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  sink.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  sink.close = () => new Promise((ok) => server.close(() => ok()));
  return sink;
}

/** Runs one bench script (embedded mode, no anchors) and returns its JSON lines. */
function run(script: string, env: Record<string, string>): Promise<Record<string, unknown>[]> {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path, '--mode=embedded'], {
      env: { ...process.env, BENCH_ANCHORS: '0', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${script} exited with ${code}`));
      resolve(
        out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      );
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

const FIELDS: Record<string, string[]> = {
  'W1a-single-submit': ['hub_rps', 'p50_ms', 'p99_ms', 'hub_cpu_us_per_request'],
  'W1b-batch-submit': ['hub_tasks_per_s', 'p99_ms', 'hub_cpu_us_per_task'],
  'W2-drain': ['hub_tasks_per_s', 'hub_cpu_us_per_task'],
};

async function main(): Promise<void> {
  const sink = await startSink();
  const tracingOn = {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_SERVICE_NAME: 'taskhub-bench',
  };
  const results: Record<string, { off: Record<string, unknown>[]; on: Record<string, unknown>[] }> = {};
  const exports = { requests: 0, bytes: 0 };
  const load = loadavg().map((l) => round(l, 2));
  for (let r = 0; r < ROUNDS; r++) {
    for (const setting of ['off', 'on'] as const) {
      const before = { requests: sink.requests, bytes: sink.bytes };
      for (const script of ['w1-intake.js', 'w2-drain.js']) {
        for (const line of await run(script, setting === 'on' ? tracingOn : {})) {
          const workload = String(line.workload);
          results[workload] ??= { off: [], on: [] };
          results[workload][setting].push(line);
        }
      }
      if (setting === 'on') {
        exports.requests += sink.requests - before.requests;
        exports.bytes += sink.bytes - before.bytes;
      } else if (sink.requests !== before.requests) throw new Error('spans were exported with tracing off');
    }
  }
  await sink.close();
  for (const [workload, { off, on }] of Object.entries(results)) {
    const fields = FIELDS[workload] ?? [];
    const summary: Record<string, unknown> = {};
    for (const f of fields) {
      const a = off.map((l) => Number(l[f])).filter(Number.isFinite);
      const b = on.map((l) => Number(l[f])).filter(Number.isFinite);
      if (!a.length || !b.length) continue;
      summary[f] = {
        off: a,
        on: b,
        off_median: median(a),
        on_median: median(b),
        change_pct: round(((median(b) - median(a)) / median(a)) * 100),
      };
    }
    console.log(
      JSON.stringify({ workload: `${workload} tracing off vs on`, mode: 'embedded', ...summary, load_avg: load }),
    );
  }
  console.log(
    JSON.stringify({
      workload: 'tracing export',
      otlp_requests: exports.requests,
      otlp_megabytes: round(exports.bytes / 1e6, 1),
      rounds: ROUNDS,
    }),
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
