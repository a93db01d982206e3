// BullMQ 6.7.0 on the local Redis: the second anchor of BENCHMARKS.md ("what a user would pick
// instead"), measured in the same run as the hub and graphile-worker. Its workers run in-process,
// like graphile-worker's; the hub pays an HTTP hop in and a socket hop out.
//
//   BENCH_REDIS_URL   default redis://127.0.0.1:6379
// Keys live under the prefix `bull_bench` + BENCH_DB_SUFFIX; each measurement starts by
// obliterating its own queue and obliterates it again when done.
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { DB_SUFFIX } from './services.js';

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bull_bench${DB_SUFFIX}`;
const BULK_SIZE = 1000;
const BULK_IN_FLIGHT = 4;
export const BULLMQ = 'BullMQ 6.7.0 (Redis)';

/** BullMQ wants maxRetriesPerRequest null (blocking commands); our own clients, closed by us. */
function redis(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: null });
}

/**
 * Fails fast with a reason when Redis is not there: without this, ioredis retries forever and
 * the benchmark would hang instead of printing "skipped: …".
 */
async function requireRedis(): Promise<void> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // connect() then only says "Connection is closed"; the socket error says why (ECONNREFUSED …).
  let socketError: (Error & { code?: string }) | undefined;
  probe.on('error', (e: Error) => (socketError ??= e));
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    const why = socketError ? socketError.message || socketError.code : (e as Error).message;
    throw new Error(`Redis at ${REDIS_URL} unreachable: ${why}`, { cause: e });
  } finally {
    probe.disconnect();
  }
}

/** A queue of its own for one measurement, emptied first (a previous run may have been cut off). */
async function freshQueue(name: string, connection: Redis): Promise<Queue> {
  const queue = new Queue(name, { connection, prefix: PREFIX });
  await queue.obliterate({ force: true });
  return queue;
}

/** BullMQ leaves a connection it was handed open (it may be shared): each one is ours to close. */
async function dispose(queue: Queue, connections: Redis[], worker?: Worker): Promise<void> {
  await worker?.close();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  connections.forEach((c) => c.disconnect());
}

/** Runs `add` from `concurrency` callers for `seconds`; jobs added per second (`per` jobs a call). */
async function rate(
  seconds: number,
  concurrency: number,
  add: () => Promise<unknown>,
  per: number,
): Promise<{ perSecond: number; added: number }> {
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  let added = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await add();
        added += per;
      }
    }),
  );
  return { perSecond: added / ((performance.now() - t0) / 1000), added };
}

export interface BullmqIntake {
  anchor: string;
  /** Queue.add, `producers` callers in flight. */
  add_jobs_per_s: number;
  producers: number;
  /** Queue.addBulk of 1,000, 4 calls in flight (as the hub's batch phase: 4 connections). */
  add_bulk_jobs_per_s: number;
  bulk_size: number;
  bulk_in_flight: number;
  /** Jobs waiting in Redis afterwards equal the jobs counted as added. */
  jobs_match: boolean;
}

/** W1's anchor: enqueue rate of single `add` and of `addBulk`, `seconds` each after `warmup`. */
export async function bullmqIntake(seconds: number, warmup: number, producers: number): Promise<BullmqIntake> {
  await requireRedis();
  const connection = redis();
  const queue = await freshQueue('w1-intake', connection);
  try {
    const payload = { prompt: 'bench', tags: ['bench'] };
    const single = (): Promise<unknown> => queue.add('noop', payload);
    let added = 0;
    if (warmup > 0) added += (await rate(warmup, producers, single, 1)).added;
    const one = await rate(seconds, producers, single, 1);
    const jobs = Array.from({ length: BULK_SIZE }, () => ({ name: 'noop', data: payload }));
    const bulk = await rate(seconds, BULK_IN_FLIGHT, () => queue.addBulk(jobs), BULK_SIZE);
    added += one.added + bulk.added;
    const waiting = await queue.getWaitingCount();
    return {
      anchor: `${BULLMQ} Queue.add / Queue.addBulk`,
      add_jobs_per_s: one.perSecond,
      producers,
      add_bulk_jobs_per_s: bulk.perSecond,
      bulk_size: BULK_SIZE,
      bulk_in_flight: BULK_IN_FLIGHT,
      jobs_match: waiting === added,
    };
  } finally {
    await dispose(queue, [connection]);
  }
}

export interface BullmqDrain {
  anchor: string;
  jobs: number;
  completed: number;
  concurrency: number;
  seconds: number;
  jobs_per_s: number;
}

/** W2's anchor: `jobs` no-op jobs pre-loaded, one Worker (concurrency 16); first processor start → last completion. */
export async function bullmqDrain(jobs: number, concurrency: number): Promise<BullmqDrain> {
  await requireRedis();
  const connection = redis();
  const queue = await freshQueue('w2-drain', connection);
  const workerConnection = redis();
  let worker: Worker | undefined;
  try {
    for (let i = 0; i < jobs; i += BULK_SIZE) {
      await queue.addBulk(
        Array.from({ length: Math.min(BULK_SIZE, jobs - i) }, (_, j) => ({ name: 'noop', data: { n: i + j } })),
      );
    }
    let started = 0;
    let completed = 0;
    let finishedAt = 0;
    const allDone = new Promise<void>((resolve, reject) => {
      // Default job options (completed jobs kept), as a user who just adds jobs gets them.
      worker = new Worker(
        queue.name,
        async () => {
          started ||= performance.now();
        },
        { connection: workerConnection, prefix: PREFIX, concurrency },
      );
      worker.on('completed', () => {
        if (++completed === jobs) {
          finishedAt = performance.now();
          resolve();
        }
      });
      worker.on('failed', (_job: Job | undefined, e: Error) => reject(e));
      worker.on('error', reject);
    });
    await allDone;
    const seconds = (finishedAt - started) / 1000;
    return {
      anchor: `${BULLMQ} Worker drain, concurrency ${concurrency}`,
      jobs,
      completed,
      concurrency,
      seconds,
      jobs_per_s: completed / seconds,
    };
  } finally {
    await dispose(queue, [connection, workerConnection], worker);
  }
}

/** W3's anchor: `samples` sequential Queue.add → the processor starts, on an idle Worker (concurrency 1). */
export async function bullmqPickup(samples: number, warmup = 0): Promise<number[]> {
  await requireRedis();
  const connection = redis();
  const queue = await freshQueue('w3-pickup', connection);
  const workerConnection = redis();
  let arrived: ((at: number) => void) | undefined;
  const worker = new Worker(
    queue.name,
    async () => {
      arrived?.(performance.now());
    },
    { connection: workerConnection, prefix: PREFIX, concurrency: 1 },
  );
  try {
    await worker.waitUntilReady();
    const latencies: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      const got = new Promise<number>((r) => (arrived = r));
      const t0 = performance.now();
      await queue.add('pickup', { i });
      const at = await got;
      if (i >= warmup) latencies.push(at - t0);
    }
    return latencies;
  } finally {
    await dispose(queue, [connection, workerConnection], worker);
  }
}
