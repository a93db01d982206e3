// Dashboard (issue 16): page weight, time to first render, and the event rate the page keeps up
// with. A hub on its own embedded PostgreSQL (--mode=postgres: the local server), headless
// Chromium through puppeteer-core (/usr/bin/chromium or CHROMIUM_PATH).
//
// Load: every 100 ms one POST /api/v1/tasks/batch of RATE/30 tasks; two seed 004 devices (capacity
// 200 each) complete each task at once. Each task is three pushed events (task_created,
// task_started on hand-out, task_completed), so RATE events/s reach the page over /events.
// Measured in the page: long tasks (PerformanceObserver 'longtask'), gaps between animation
// frames, and whether the counts end equal to the hub's.
import { gzipSync } from 'node:zlib';
import { io, type Socket } from 'socket.io-client';
import { browserMissing, launchBrowser, testIdText } from '../test/support/browser.js';
import { percentile, round, sleep, startModeHub } from './lib/services.js';

const RATE = Number(process.env.BENCH_DASH_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_DASH_SECONDS ?? 10);
const RENDER_RUNS = 5;
const TICK_MS = 100;
/** --created-only: no devices, every task is one event (task_created): the page's side alone at RATE. */
const CREATED_ONLY = process.argv.includes('--created-only');
const EVENTS_PER_TASK = CREATED_ONLY ? 1 : 3;

/** Injected before the page's own scripts: what the bench reads back. */
const PROBE = `
  window.__bench = { longtasks: [], frames: [], firstCounts: null };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__bench.longtasks.push([e.startTime, e.duration]);
  }).observe({ entryTypes: ['longtask'] });
  let last = performance.now();
  const frame = (t) => { window.__bench.frames.push([t, t - last]); last = t; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  const seen = () => {
    const el = document.querySelector('[data-testid="count-pending"]');
    if (window.__bench.firstCounts === null && el && /^\\d+$/.test(el.textContent)) window.__bench.firstCounts = performance.now();
  };
  document.addEventListener('DOMContentLoaded', () =>
    new MutationObserver(seen).observe(document.body, { subtree: true, childList: true, characterData: true }));
`;

interface Probe {
  longtasks: [number, number][];
  frames: [number, number][];
  firstCounts: number | null;
}

async function main(): Promise<void> {
  const missing = browserMissing();
  if (missing) {
    console.log(`dashboard bench skipped: ${missing}`);
    return;
  }
  // Embedded by default: a database of its own, nothing shared touched.
  const mode = process.argv.includes('--mode=postgres') ? 'postgres' : 'embedded';
  const started = await startModeHub(mode, 'taskhub_bench_dashboard', {
    env: { METRICS_UPDATE_INTERVAL_MS: '5000' },
  });
  const { hub } = started;
  console.error(`hub up (${started.database}) at ${hub.url}`);
  const { browser, close } = await launchBrowser();
  const devices: Socket[] = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.evaluateOnNewDocument(PROBE);
    const assets = new Set<string>();
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (url.pathname.startsWith('/dashboard')) assets.add(url.pathname);
    });

    // Time to first render: navigation start → the counts show numbers. First run: cold cache.
    const renders: number[] = [];
    for (let i = 0; i < RENDER_RUNS; i++) {
      if (i === 0) await page.goto(`${hub.url}/dashboard#key=bench`, { waitUntil: 'domcontentloaded' });
      else await page.reload({ waitUntil: 'domcontentloaded' });
      await page.waitForFunction('window.__bench.firstCounts !== null', { timeout: 10_000, polling: 20 });
      renders.push(round(((await page.evaluate('window.__bench.firstCounts')) as number) ?? NaN, 1));
    }

    console.error(`first render: ${renders.join(', ')} ms`);
    // Page weight: every asset the page loaded, raw and gzip (what the hub's compression sends).
    let raw = 0;
    let gzip = 0;
    const files: Record<string, { raw: number; gzip: number }> = {};
    for (const path of [...assets].sort()) {
      const body = Buffer.from(await (await fetch(`${hub.url}${path}`)).arrayBuffer());
      const z = gzipSync(body).length;
      files[path] = { raw: body.length, gzip: z };
      raw += body.length;
      gzip += z;
    }

    console.error(`page weight: ${raw} B raw, ${gzip} B gzip`);
    // Load: RATE events/s for SECONDS.
    // Seed 004 devices on plain socket.io-client: each new_task is answered with its result at once.
    for (let d = 0; d < (CREATED_ONLY ? 0 : 2); d++) {
      const device = io(hub.url, { transports: ['websocket'] });
      devices.push(device);
      device.on('new_task', (task: { task_id: string; attempt: number }) =>
        device.emit('task_result', { task_id: task.task_id, attempt: task.attempt, result: { success: true } }),
      );
      await new Promise<void>((ok) => {
        device.once('register_success', () => ok());
        device.on('connect', () => device.emit('device_register', { device_id: `bench-dash-${d}`, capacity: 200 }));
      });
    }
    const listener = io(`${hub.url}/events`, { transports: ['websocket'] });
    let events = 0;
    listener.onAny(() => events++);
    await new Promise<void>((ok) => listener.on('connect', () => ok()));
    await listener.emitWithAck('subscribe_tasks', { all: true });
    const perTick = Math.max(1, Math.round(RATE / EVENTS_PER_TASK / (1000 / TICK_MS)));
    const loadStart = (await page.evaluate('performance.now()')) as number;
    const t0 = Date.now();
    let submitted = 0;
    const inflight: Promise<unknown>[] = [];
    for (let tick = 0; Date.now() - t0 < SECONDS * 1000; tick++) {
      const tasks = Array.from({ length: perTick }, (_, i) => ({ type: 'bench-dash', prompt: `t${tick}-${i}` }));
      inflight.push(
        fetch(`${hub.url}/api/v1/tasks/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tasks }),
        }).then((r) => r.arrayBuffer()),
      );
      submitted += perTick;
      await sleep(Math.max(0, t0 + (tick + 1) * TICK_MS - Date.now()));
    }
    await Promise.all(inflight);
    const eventsInDrive = events;
    console.error(`submitted ${submitted} tasks; draining`);
    const driveSeconds = (Date.now() - t0) / 1000;
    const loadEnd = (await page.evaluate('performance.now()')) as number;
    // Drained: every task finished at the hub.
    const status = async (): Promise<Record<string, number>> =>
      ((await (await fetch(`${hub.url}/status`)).json()) as { data: { tasks: Record<string, number> } }).data.tasks;
    const drainDeadline = Date.now() + 60_000;
    let hubCounts = await status();
    const finished = (c: Record<string, number>): number => (CREATED_ONLY ? c.pending : c.completed);
    while (Date.now() < drainDeadline && (finished(hubCounts) < submitted || events < submitted * EVENTS_PER_TASK)) {
      await sleep(200);
      hubCounts = await status();
    }
    const drainedSeconds = (Date.now() - t0) / 1000;
    // The page's counts converge to the hub's (the last get_status after the last event).
    const exact = (await (await fetch(`${hub.url}/api/v1/statistics`)).json()) as {
      data: { status_distribution: Record<string, number> };
    };
    const want = String(exact.data.status_distribution[CREATED_ONLY ? 'waiting' : 'completed']);
    const convergeStart = Date.now();
    const countId = CREATED_ONLY ? 'count-pending' : 'count-completed';
    let shown = await testIdText(page, countId);
    while (shown !== want && Date.now() - convergeStart < 10_000) {
      await sleep(50);
      shown = await testIdText(page, countId);
    }
    const probe = (await page.evaluate('window.__bench')) as Probe;
    const during = (x: [number, number]): boolean => x[0] >= loadStart && x[0] <= loadEnd;
    const long = probe.longtasks.filter(during).map((x) => x[1]);
    const gaps = probe.frames
      .filter(during)
      .map((x) => x[1])
      .sort((a, b) => a - b);
    const result = {
      bench: 'dashboard',
      database: started.database,
      page_weight: { files: Object.keys(files).length, raw_bytes: raw, gzip_bytes: gzip, by_file: files },
      first_render_ms: {
        cold: renders[0],
        warm_median: percentile(
          renders.slice(1).sort((a, b) => a - b),
          50,
        ),
      },
      load: {
        target_events_per_s: RATE,
        events: CREATED_ONLY ? 'task_created only (no devices)' : 'task_created + task_started + task_completed',
        tasks_submitted: submitted,
        drive_seconds: round(driveSeconds, 1),
        // What the hub pushed to /events while tasks were submitted, and until all were done.
        events_per_s_during_drive: round(eventsInDrive / driveSeconds),
        events_total: events,
        drained_seconds: round(drainedSeconds, 1),
        events_per_s_until_drained: round(events / drainedSeconds),
      },
      main_thread: {
        long_tasks: long.length,
        long_task_ms_total: round(long.reduce((a, b) => a + b, 0)),
        long_task_ms_max: round(Math.max(0, ...long)),
        frames: gaps.length,
        frame_gap_ms_p50: round(percentile(gaps, 50)),
        frame_gap_ms_p99: round(percentile(gaps, 99)),
        frame_gap_ms_max: round(gaps[gaps.length - 1] ?? NaN),
      },
      counts: {
        counted: CREATED_ONLY ? 'pending' : 'completed',
        hub: Number(want),
        page: Number(shown),
        correct: shown === want,
        converged_ms_after_drain: Date.now() - convergeStart,
      },
    };
    console.log(JSON.stringify(result, null, 2));
    listener.close();
  } catch (e) {
    console.error(e);
    throw e;
  } finally {
    devices.forEach((d) => d.close());
    await close();
    await started.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
