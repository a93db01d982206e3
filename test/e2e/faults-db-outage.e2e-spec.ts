import pg from 'pg';
import { freshDatabase, HubProcess } from '../support/hub-process.js';
import {
  byStatus,
  concurrentDuplicates,
  SeedFleet,
  sleep,
  submitTasks,
  taskRows,
  untilCompleted,
  waitFor,
} from '../support/seed-devices.js';
import { proxiedUrl, TcpProxy } from '../support/tcp-proxy.js';

// Issue 9: PostgreSQL goes away for ~3 s while seed devices are reporting results, then comes
// back. The hub reaches PostgreSQL only through a TCP proxy the test cuts and restores (the
// server itself stays up for everyone else). Real hub process, real sockets, a fresh database.
// Without a built dist it is skipped, saying why.
const skipReason = HubProcess.skipReason();
if (skipReason) process.stdout.write(`\n[faults-db-outage] skipped: ${skipReason}\n`);

const DEVICES = 4;
const TASKS = 40;
const TASK_MS = 300;
const OUTAGE_MS = 3000;
/** After PostgreSQL is back: /health is 200 again within this, and every task completed. */
const HEALTH_BACK_MS = 10_000;
const COMPLETE_AFTER_RESTORE_MS = 15_000;

interface HealthSample {
  at: number;
  status: number | 'timeout' | 'error';
}

async function health(url: string): Promise<HealthSample> {
  const at = Date.now();
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return { at, status: res.status };
  } catch (e) {
    return { at, status: (e as Error).name === 'TimeoutError' ? 'timeout' : 'error' };
  }
}

(skipReason ? describe.skip : describe)('faults: PostgreSQL outage mid-flight', () => {
  let proxy: TcpProxy;
  let hub: HubProcess;
  let fleet: SeedFleet | undefined;
  let db: pg.Client;
  let ids: string[] = [];

  beforeAll(async () => {
    const databaseUrl = await freshDatabase('db_outage');
    const target = new URL(databaseUrl);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
    hub = new HubProcess({
      DATABASE_URL: proxiedUrl(databaseUrl, proxy.port),
      REDIS_URL: '',
      AUTH_REQUIRED: 'false',
      RATE_LIMIT_MAX: '0',
      NODE_RECONNECT_GRACE_MS: '5000',
      REPORT_RETRY_MS: '60000',
    });
    await hub.start();
    db = new pg.Client({ connectionString: databaseUrl }); // the test's own view, not through the proxy
    await db.connect();
  }, 60_000);

  afterAll(async () => {
    fleet?.close();
    await hub?.kill();
    await db?.end().catch(() => undefined);
    await proxy?.close();
  }, 20_000);

  it('loses no result: every task completes, /health is 503 during the outage and 200 after, the hub stays up', async () => {
    fleet = await SeedFleet.start(DEVICES, { url: hub.url, taskMs: TASK_MS });
    const submitted = await submitTasks(hub.url, TASKS, (i) => ({ type: 'CHAOS', data: { n: i } }));
    ids = submitted.ids;
    expect(submitted.refused).toBe(0);

    // Mid-flight: a third done, every device busy with one of the rest.
    // (Wait for both: on a loaded machine the next dispatch round can lag the completions.)
    await waitFor(
      'a third of the tasks completed and every device holding one',
      async () => {
        const rows = await taskRows(db, ids);
        return (
          rows.filter((r) => r.status === 'completed').length >= TASKS / 3 &&
          rows.filter((r) => r.status === 'dispatched' || r.status === 'running').length >= DEVICES
        );
      },
      20_000,
      20,
    );
    const resultsBeforeCut = fleet.done.length;
    proxy.cut();
    const cutAt = Date.now();
    const during: HealthSample[] = [];
    while (Date.now() - cutAt < OUTAGE_MS) {
      during.push(await health(hub.url));
      await sleep(200);
    }
    const resultsDuringCut = fleet.done.length - resultsBeforeCut;
    proxy.restore();
    const restoredAt = Date.now();

    const after: HealthSample[] = [];
    const healthyAgain = await waitFor(
      '/health 200 after PostgreSQL is back',
      async () => {
        const s = await health(hub.url);
        after.push(s);
        return s.status === 200 ? s : null;
      },
      HEALTH_BACK_MS,
      200,
    ).catch(() => null);

    const { notCompleted, doneAt } = await untilCompleted(
      db,
      ids,
      Math.max(0, COMPLETE_AFTER_RESTORE_MS - (Date.now() - restoredAt)),
    );
    const completed = new Set((await taskRows(db, ids)).filter((r) => r.status === 'completed').map((r) => r.id));
    // A device may have got an `error` for a result (tolerable) but no result it sent may be lost.
    const resultErrors = fleet.devices.flatMap((d) => d.errors.filter((e) => e.data.event === 'task_result'));
    const resultsLost = [...new Set(fleet.done.map((r) => r.taskId))].filter((id) => !completed.has(id));

    // Samples from 0.5 s into the cut on (the pool needs a moment to notice).
    const inOutage = during.filter((s) => s.at - cutAt >= 500);
    process.stdout.write(
      `\n[faults-db-outage] results sent during the cut: ${resultsDuringCut}; tasks after recovery ${JSON.stringify(byStatus(await taskRows(db, ids)))}; ` +
        `${doneAt ? `all completed ${doneAt - restoredAt} ms after PostgreSQL was back` : 'NOT all completed'}; ` +
        `/health during the cut ${JSON.stringify(inOutage.map((s) => s.status))}, after ${JSON.stringify(after.map((s) => s.status))}; ` +
        `error events for results seen by devices: ${resultErrors.length} (${JSON.stringify(resultErrors[0]?.data ?? null)})\n`,
    );
    const unhandled = hub.output.split('\n').filter((l) => /unhandled rejection|uncaught exception/i.test(l));

    expect(resultsDuringCut).toBeGreaterThan(0); // the fault really hit results in flight
    // One comparison, so a failure shows every broken property at once:
    // - every task completed (no result lost, none stuck);
    // - no result a device sent was lost (an `error` for it is tolerated if the task still completed);
    // - /health answered 503 (promptly) throughout the outage and 200 once PostgreSQL was back;
    // - no task ran on two devices at once; the hub process is alive and logged no unhandled rejection.
    expect({
      notCompleted: byStatus(notCompleted),
      resultsLost,
      healthDuringOutage: [...new Set(inOutage.map((s) => s.status))],
      healthyAgain: healthyAgain !== null,
      duplicates: concurrentDuplicates(fleet.runs).length,
      hubRunning: hub.running,
      unhandled,
    }).toEqual({
      notCompleted: {},
      resultsLost: [],
      healthDuringOutage: [503],
      healthyAgain: true,
      duplicates: 0,
      hubRunning: true,
      unhandled: [],
    });
  }, 60_000);
});
