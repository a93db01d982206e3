// W13 (issue 23): a mixed fleet behind a lopsided backlog. 8 device classes (tag `class-0` …
// `class-7`) × 4 Socket.IO devices (capacity 4, as W2) in a separate process, each task ~5 ms of
// simulated work, then `task_result`. A backlog of 100,000 tasks is loaded first with the batch
// API (90 % `required_tags: [class-0]`, the rest spread evenly over classes 1–7, interleaved in a
// fixed pseudo-random order), then the fleet connects and, for a bounded time (60 s):
// - probes: every 100 ms one batch of two probe tasks per class: `queued` (priority medium, the
//   backlog's: it waits behind its class's backlog, what a new task of that class waits) and
//   `urgent` (priority high: ahead of every backlog, so only the dispatch path is timed); pickup
//   = POST sent → the device has it, p50/p99 per class. A probe still not picked up 2 s after
//   the last was sent counts with its wait so far, and a percentile it may have moved is printed
//   as "≥ x";
// - idle-while-eligible: once in every 100 ms (at a random point of it) one SQL statement on the
//   hub's database reads every online node's free slots (capacity − dispatched − running) and,
//   for each class, whether a task it may take is still pending (its submitted tasks are checked
//   oldest first by primary key, so the statement stays cheap with 90,000 pending); the seconds
//   since the previous sample are added for every device with a free slot while its class had a
//   pending backlog task (and, in a second sum, a pending backlog task or probe: a probe waits
//   its pickup latency, during which its class's idle devices count too);
// - drain: tasks completed in the window, backlog and probes (rows in the database); per class,
//   backlog tasks completed by the window's end, still pending, and when the last was dispatched.
// A real hub process (dist/src/main.js) on each hub mode.
//
//   node dist/bench/w13-mixed-fleet.js [--mode=embedded|postgres|both]     (npm run bench:w13)
//   --mode / BENCH_MODE  embedded: the default `npm start` (its own PostgreSQL in a temp DATA_DIR);
//                    postgres: a fresh database on the local PostgreSQL; both (default)
//   BENCH_TASKS      backlog size (default 100000)
//   BENCH_SECONDS    measured window after the fleet is registered (default 60)
//   BENCH_TASK_MS    simulated work per task in ms (default 5)
//   BENCH_DB_SUFFIX  appended to the bench database name
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import pg from 'pg';
import { type HubMode, postJson, round, selectedModes, sleep, startModeHub } from './lib/services.js';

const N = Number(process.env.BENCH_TASKS ?? 100_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const TASK_MS = Number(process.env.BENCH_TASK_MS ?? 5);
const MODES = selectedModes();
const CLASSES = 8;
const PER_CLASS = 4;
const CAPACITY = 4;
const HOT_SHARE = 0.9;
const PROBE_EVERY_MS = 100;
const SAMPLE_EVERY_MS = 100;
/** Probes still out this long after the last was sent are counted as not picked up. */
const PROBE_GRACE_MS = 2000;
/** Submitted ids per class looked up per sampling statement (oldest first). */
const CHECK_PER_CLASS = 32;

const wallMs = (): number => performance.timeOrigin + performance.now();
const loadNow = (): number[] => loadavg().map((l) => round(l));

/** Deterministic mix (mulberry32), so both builds get the same backlog in the same order. */
function backlogClasses(n: number): number[] {
  let s = 0x2317;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: n }, () => (rand() < HOT_SHARE ? 0 : 1 + Math.floor(rand() * (CLASSES - 1))));
}

type BatchAnswer = { data: { results: { success: boolean; task_id?: string }[] } };

/** Submits tasks with the batch API; the created ids, in order. */
async function submit(hubUrl: string, tasks: Record<string, unknown>[]): Promise<string[]> {
  const answer = await postJson<BatchAnswer>(`${hubUrl}/api/v1/tasks/batch`, { tasks });
  return answer.data.results.map((r) => {
    if (!r.success || !r.task_id) throw new Error(`batch item refused: ${JSON.stringify(r)}`);
    return r.task_id;
  });
}

/**
 * Per class, the ids submitted that may still be pending, oldest first. `sample` answers, in
 * one statement (more only when a class's oldest ids were all taken), each online node's free
 * slots and which classes have a pending task.
 */
class ReadyTracker {
  /** Lists 0..CLASSES-1: each class's backlog tasks; CLASSES + k: class k's probes. */
  private readonly open: string[][] = Array.from({ length: 2 * CLASSES }, () => []);
  private readonly head: number[] = Array.from({ length: 2 * CLASSES }, () => 0);
  statements = 0;
  statementMs = 0;

  constructor(private readonly db: pg.Client) {}

  add(cls: number, id: string, probe = false): void {
    this.open[probe ? CLASSES + cls : cls].push(id);
  }

  /** `ready[k]`: class k has a pending backlog task; `ready[CLASSES + k]`: a pending probe. */
  async sample(): Promise<{ free: Map<number, number[]>; ready: boolean[] }> {
    const ready: boolean[] = Array.from({ length: 2 * CLASSES }, () => false);
    let todo = Array.from({ length: 2 * CLASSES }, (_, k) => k).filter((k) => this.head[k] < this.open[k].length);
    let free: Map<number, number[]> | undefined;
    while (free === undefined || todo.length > 0) {
      const chunks = new Map(todo.map((k) => [k, this.open[k].slice(this.head[k], this.head[k] + CHECK_PER_CLASS)]));
      const t0 = performance.now();
      // Primary-key lookups only (`id = ANY`): a join on the array would hash the whole table.
      const { rows } = await this.db.query<{
        nodes: { id: string; tags: string[]; free: number }[];
        pending: string[];
      }>(
        `WITH held AS (
           SELECT n.id, n.tags, n.capacity - (SELECT count(*)::int FROM tasks t
                                              WHERE t.node_id = n.id AND t.status IN ('dispatched', 'running')) AS free
           FROM nodes n WHERE n.status = 'online' AND NOT n.draining AND $2::bool
         )
         SELECT (SELECT COALESCE(json_agg(held), '[]'::json) FROM held) AS nodes,
                ARRAY(SELECT id FROM tasks WHERE id = ANY ($1::uuid[]) AND status = 'pending' AND run_at <= now()) AS pending`,
        [[...chunks.values()].flat(), free === undefined],
      );
      this.statementMs += performance.now() - t0;
      this.statements++;
      if (free === undefined) {
        free = new Map();
        for (const n of rows[0].nodes) {
          const tag = n.tags.find((t) => t.startsWith('class-'));
          if (!tag) continue;
          const k = Number(tag.slice('class-'.length));
          free.set(k, [...(free.get(k) ?? []), n.free]);
        }
      }
      const pending = new Set(rows[0].pending);
      const again: number[] = [];
      for (const [k, chunk] of chunks) {
        const first = chunk.findIndex((id) => pending.has(id));
        // Everything before the oldest pending id was taken: never looked up again.
        this.head[k] += first === -1 ? chunk.length : first;
        if (first !== -1) ready[k] = true;
        else if (this.head[k] < this.open[k].length) again.push(k);
      }
      todo = again;
    }
    return { free, ready };
  }
}

interface ProbeSent {
  kind: 'queued' | 'urgent';
  cls: number;
  t0: number;
  at?: number;
}

/** p50/p99 of pickups where some probes were never picked up: "≥ x" when those could move it. */
function censoredPercentiles(probes: ProbeSent[], end: number): Record<string, unknown> {
  const picked = probes.filter((p) => p.at !== undefined).map((p) => (p.at as number) - p.t0);
  const waiting = probes.filter((p) => p.at === undefined).map((p) => end - p.t0);
  const all = [...picked.map((v) => ({ v, open: false })), ...waiting.map((v) => ({ v, open: true }))].sort(
    (a, b) => a.v - b.v,
  );
  const at = (p: number): number | string => {
    if (all.length === 0) return NaN;
    const i = Math.min(all.length - 1, Math.floor((p / 100) * all.length));
    const x = all[i];
    // Exact only when it is a real pickup and every unfinished wait is already beyond it.
    const exact = !x.open && waiting.every((w) => w >= x.v);
    return exact ? round(x.v) : `≥ ${round(x.v)}`;
  };
  return {
    sent: probes.length,
    picked: picked.length,
    p50_ms: at(50),
    p99_ms: at(99),
    ...(waiting.length
      ? { not_picked: waiting.length, not_picked_min_wait_s: round(Math.min(...waiting) / 1000) }
      : {}),
  };
}

async function run(mode: HubMode): Promise<Record<string, unknown>> {
  const started = await startModeHub(mode, 'taskhub_bench_w13');
  const db = new pg.Client({ connectionString: started.databaseUrl });
  let fleet: ReturnType<typeof fork> | undefined;
  try {
    await db.connect();
    const tracker = new ReadyTracker(db);
    // 1. The backlog, 1,000 tasks a request, before any device is there.
    const classes = backlogClasses(N);
    const loadStart = performance.now();
    for (let i = 0; i < N; i += 1000) {
      const slice = classes.slice(i, i + 1000);
      const ids = await submit(
        started.hub.url,
        slice.map((k, j) => ({ type: 'w13', required_tags: [`class-${k}`], data: { n: i + j } })),
      );
      ids.forEach((id, j) => tracker.add(slice[j], id));
    }
    const preloadSeconds = (performance.now() - loadStart) / 1000;
    const perClass = Array.from({ length: CLASSES }, (_, k) => classes.filter((c) => c === k).length);

    // 2. The fleet; the window starts once every device is registered.
    const probes = new Map<number, ProbeSent>();
    const f = fork(
      resolve('dist/bench/mixed-fleet.js'),
      [started.hub.url, String(CLASSES), String(PER_CLASS), String(CAPACITY), String(TASK_MS)],
      { stdio: 'inherit' },
    );
    fleet = f;
    let fleetFinished: number[] = [];
    const ready = new Promise<void>((ok, fail) => {
      f.on('message', (m: { type: string; seq?: number; at?: number; finished?: number[] }) => {
        if (m.type === 'ready') ok();
        else if (m.type === 'probe') {
          const p = probes.get(m.seq as number);
          if (p && p.at === undefined) p.at = m.at;
        } else if (m.type === 'progress') fleetFinished = m.finished ?? [];
      });
      f.once('exit', (code) => fail(new Error(`device fleet exited (code ${code}) before it was ready`)));
    });
    await ready;
    const loadAtStart = loadNow();
    const windowStart = wallMs();
    const windowEnd = windowStart + SECONDS * 1000;
    const completedAt = async (): Promise<number> =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE status = 'completed'`)).rows[0].n;
    const completedBefore = await completedAt();

    // 3a. Probes: one batch per tick, two per class.
    let seq = 0;
    let proberError: unknown;
    const prober = (async () => {
      for (let tick = windowStart; wallMs() < windowEnd; tick += PROBE_EVERY_MS) {
        const batch: { task: Record<string, unknown>; p: ProbeSent; seq: number }[] = [];
        const t0 = wallMs();
        for (let k = 0; k < CLASSES; k++) {
          for (const kind of ['queued', 'urgent'] as const) {
            const s = seq++;
            const p: ProbeSent = { kind, cls: k, t0 };
            probes.set(s, p);
            batch.push({
              p,
              seq: s,
              task: {
                type: 'w13-probe',
                required_tags: [`class-${k}`],
                priority: kind === 'urgent' ? 'high' : 'medium',
                data: { probe: s },
              },
            });
          }
        }
        const ids = await submit(
          started.hub.url,
          batch.map((b) => b.task),
        );
        ids.forEach((id, i) => tracker.add(batch[i].p.cls, id, true));
        const wait = tick + PROBE_EVERY_MS - wallMs();
        if (wait > 0) await sleep(wait);
      }
    })().catch((e: unknown) => {
      proberError = e;
    });

    // 3b. Idle-while-eligible, sampled once in every 100 ms at a random point of it (a fixed
    // phase would beat against the probes' ticks). Backlog only (`idle`), and backlog or probes.
    const idle = Array.from({ length: CLASSES }, () => 0);
    const idleWithProbes = Array.from({ length: CLASSES }, () => 0);
    const freeSlotSeconds = Array.from({ length: CLASSES }, () => 0);
    const drainedAt: (number | null)[] = Array.from({ length: CLASSES }, () => null);
    let samples = 0;
    let last = wallMs();
    for (let stratum = windowStart; ; stratum += SAMPLE_EVERY_MS) {
      if (wallMs() >= stratum + SAMPLE_EVERY_MS) continue; // a slow statement overran this one
      const wait = stratum + Math.random() * SAMPLE_EVERY_MS - wallMs();
      if (wait > 0) await sleep(wait);
      const { free, ready: readyNow } = await tracker.sample();
      const now = wallMs();
      const dt = (Math.min(now, windowEnd) - last) / 1000;
      last = now;
      samples++;
      for (let k = 0; k < CLASSES; k++) {
        const slots = free.get(k) ?? [];
        freeSlotSeconds[k] += slots.reduce((a, b) => a + Math.max(0, b), 0) * dt;
        const open = slots.filter((s) => s > 0).length * dt;
        if (readyNow[k]) idle[k] += open;
        if (readyNow[k] || readyNow[CLASSES + k]) idleWithProbes[k] += open;
      }
      if (now >= windowEnd) break;
    }
    const completedInWindow = (await completedAt()) - completedBefore;
    const loadAtEnd = loadNow();
    await prober;
    if (proberError) throw proberError;
    const probesSentEnd = wallMs();
    while (wallMs() < probesSentEnd + PROBE_GRACE_MS && [...probes.values()].some((p) => p.at === undefined))
      await sleep(50);
    const end = wallMs();

    // 4. Per class from the rows: backlog completed by the window's end (the few before it included), still
    // pending, when its last was dispatched.
    const { rows } = await db.query<{ cls: string; completed: number; pending: number; last_dispatch: number | null }>(
      `SELECT required_tags[1] AS cls,
              count(*) FILTER (WHERE status = 'completed' AND completed_at <= to_timestamp($1::float8 / 1000))::int AS completed,
              count(*) FILTER (WHERE status = 'pending')::int AS pending,
              extract(epoch FROM max(dispatched_at))::float8 * 1000 AS last_dispatch
       FROM tasks WHERE type = 'w13' GROUP BY 1`,
      [windowEnd],
    );
    const byClass = new Map(rows.map((r) => [Number(r.cls.slice('class-'.length)), r]));
    for (let k = 0; k < CLASSES; k++) {
      const r = byClass.get(k);
      if (r && r.pending === 0 && r.last_dispatch !== null)
        drainedAt[k] = round((r.last_dispatch - windowStart) / 1000);
    }
    const all = [...probes.values()];
    const classLines = Array.from({ length: CLASSES }, (_, k) => {
      const r = byClass.get(k);
      return {
        class: `class-${k}`,
        backlog: perClass[k],
        completed_by_window_end: r?.completed ?? 0,
        backlog_pending_at_end: r?.pending ?? 0,
        backlog_dispatched_by_s: drainedAt[k],
        idle_while_eligible_s: round(idle[k], 1),
        idle_while_eligible_incl_probes_s: round(idleWithProbes[k], 1),
        free_slot_s: round(freeSlotSeconds[k], 1),
        probe_queued: censoredPercentiles(
          all.filter((p) => p.cls === k && p.kind === 'queued'),
          end,
        ),
        probe_urgent: censoredPercentiles(
          all.filter((p) => p.cls === k && p.kind === 'urgent'),
          end,
        ),
      };
    });
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    const totalIdle = sum(idle);
    return {
      workload: 'W13-mixed-fleet',
      mode,
      database: started.database,
      tasks: N,
      mix: `${HOT_SHARE * 100} % class-0, the rest over class-1..${CLASSES - 1}`,
      devices: `${CLASSES} classes x ${PER_CLASS} x capacity ${CAPACITY}`,
      task_ms: TASK_MS,
      preload_tasks_per_s: round(N / preloadSeconds, 0),
      window_s: SECONDS,
      completed_in_window: completedInWindow,
      drain_tasks_per_s: round(completedInWindow / SECONDS, 0),
      idle_while_eligible_s: round(totalIdle, 1),
      idle_while_eligible_share: round(totalIdle / (CLASSES * PER_CLASS * SECONDS), 3),
      idle_while_eligible_class0_s: round(idle[0], 1),
      idle_while_eligible_others_s: round(sum(idle.slice(1)), 1),
      idle_while_eligible_incl_probes_s: round(sum(idleWithProbes), 1),
      free_slot_s: round(sum(freeSlotSeconds), 1),
      probe_queued_all: censoredPercentiles(
        all.filter((p) => p.kind === 'queued'),
        end,
      ),
      probe_urgent_all: censoredPercentiles(
        all.filter((p) => p.kind === 'urgent'),
        end,
      ),
      classes: classLines,
      fleet_finished: fleetFinished.reduce((a, b) => a + b, 0),
      sampler: {
        samples,
        statements: tracker.statements,
        mean_statement_ms: round(tracker.statementMs / Math.max(1, tracker.statements)),
      },
      load_avg_start: loadAtStart,
      load_avg_end: loadAtEnd,
    };
  } finally {
    if (fleet?.connected) fleet.send({ type: 'stop' });
    await db.end().catch(() => undefined);
    await started.close();
  }
}

async function main(): Promise<void> {
  for (const mode of MODES) console.log(JSON.stringify(await run(mode)));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
