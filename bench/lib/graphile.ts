import { EventEmitter } from 'node:events';
import { Logger, makeWorkerUtils, run, type Runner, type Task } from 'graphile-worker';

/**
 * graphile-worker logs every completed job at info level on stdout, burying the summary lines:
 * only its warnings and errors are shown, on stderr.
 */
export const graphileLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`graphile-worker ${level}: ${message}`);
});

/** graphile-worker 0.17.3 on its own database: the anchor of BENCHMARKS.md. */
export async function graphileDrain(
  connectionString: string,
  jobs: number,
  concurrency: number,
): Promise<{ seconds: number; perSecond: number }> {
  const utils = await makeWorkerUtils({ connectionString, logger: graphileLogger });
  await utils.migrate();
  await utils.withPgClient((c) =>
    c.query(`SELECT graphile_worker.add_job('noop', '{}'::json) FROM generate_series(1, $1)`, [jobs]),
  );
  await utils.release();
  const events = new EventEmitter();
  let done = 0;
  let started = 0;
  let finishedAt = 0;
  const allDone = new Promise<void>((resolve) =>
    events.on('job:success', () => {
      if (++done === 1) started ||= performance.now();
      if (done === jobs) {
        finishedAt = performance.now();
        resolve();
      }
    }),
  );
  events.on('job:start', () => {
    started ||= performance.now();
  });
  const noop: Task = async () => undefined;
  const runner = await run({
    connectionString,
    concurrency,
    noHandleSignals: true,
    pollInterval: 2000,
    taskList: { noop },
    events,
    logger: graphileLogger,
  });
  await allDone;
  await runner.stop();
  const seconds = (finishedAt - started) / 1000;
  return { seconds, perSecond: jobs / seconds };
}

/** Sequential pickup latency: addJob → the task function starts. */
export async function graphilePickup(connectionString: string, samples: number, warmup = 0): Promise<number[]> {
  const utils = await makeWorkerUtils({ connectionString, logger: graphileLogger });
  await utils.migrate();
  let arrived: ((at: number) => void) | undefined;
  const pickup: Task = async () => {
    arrived?.(performance.now());
  };
  const runner: Runner = await run({
    connectionString,
    concurrency: 1,
    noHandleSignals: true,
    pollInterval: 2000,
    taskList: { pickup },
    logger: graphileLogger,
  });
  const latencies: number[] = [];
  for (let i = 0; i < warmup + samples; i++) {
    const got = new Promise<number>((r) => (arrived = r));
    const t0 = performance.now();
    await utils.addJob('pickup', { i });
    const at = await got;
    if (i >= warmup) latencies.push(at - t0);
  }
  await runner.stop();
  await utils.release();
  return latencies;
}
