import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiClient, type Api, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { parsePromText } from '../support/prom-text.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The operations files (ops/, docs/observability.md) against a running hub: every metric the
 * Grafana dashboard and the alert rules query exists in its exposition after some real work
 * (tasks run by a Socket.IO device, one failed by a pull worker, LLM calls through the fake
 * provider). `promtool check rules` / `test rules` run in CI (.ci/run).
 */
const OPS = join(process.cwd(), 'ops');

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

/** Words of PromQL that are not metric names. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers that are not functions, keywords,
 * label names (inside `{…}` or a grouping `(…)` after by/without/on/ignoring), strings or ranges.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1].toLowerCase())) continue;
    names.add(m[1]);
  }
  return [...names];
}

/** The `expr:` of every rule in the alerts file (inline, or a `|` block), without a YAML parser. */
export function ruleExprs(yaml: string): string[] {
  const lines = yaml.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i]);
    if (!m) continue;
    if (m[2] !== '|' && m[2] !== '>-' && m[2] !== '|-') {
      out.push(m[2]);
      continue;
    }
    const block: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1].trim() === '' || lines[i + 1].search(/\S/) > m[1].length))
      block.push(lines[++i]);
    out.push(block.join('\n'));
  }
  return out;
}

describe('operations files: ops/grafana and ops/prometheus', () => {
  let t: TestApp;
  let client: Api;
  let llm: FakeProvider;
  let exposed: Set<string>;

  const dashboard = JSON.parse(readFileSync(join(OPS, 'grafana/taskhub-dashboard.json'), 'utf8')) as {
    title: string;
    panels: Panel[];
  };
  const rules = readFileSync(join(OPS, 'prometheus/taskhub-alerts.yml'), 'utf8');

  const scrape = async (): Promise<Set<string>> => {
    const res = await fetch(`${t.url}/metrics`, {
      headers: { Accept: 'text/plain;version=0.0.4', Authorization: `Bearer ${t.keys.admin}` },
    });
    expect(res.status).toBe(200);
    return new Set(parsePromText(await res.text()).map((s) => s.name));
  };

  beforeAll(async () => {
    llm = await startFakeProvider({ models: ['fake-model'] });
    t = await startTestApp({
      LLM_PROVIDERS: JSON.stringify([{ name: 'fake', base_url: llm.url, models: ['fake-model'] }]),
    });
    client = apiClient(t, t.keys.client);

    // A task failed for good by a pull worker (before any device is online to take it).
    const doomed = await client.post<Task>('/api/v1/tasks', { type: 'doomed', prompt: 'x', max_retries: 0 });
    expect(doomed.status).toBe(201);
    const worker = apiClient(t, t.keys.worker);
    const taken = await worker.get<Task | null>('/api/v1/tasks/next?worker_id=ops-worker');
    expect(taken.body.data?.task_id).toBe(doomed.body.data.task_id);
    const failed = await worker.post(`/api/v1/tasks/${doomed.body.data.task_id}/fail`, {
      worker_id: 'ops-worker',
      error: 'broken on purpose',
      retryable: false,
    });
    expect(failed.status).toBe(200);

    // Tasks pushed to a Socket.IO device, which stays online; one delayed task stays pending.
    const d = new TestDevice(t.url, t.keys.worker);
    await d.register('ops-device');
    for (const type of ['render', 'render', 'upload']) {
      expect((await client.post('/api/v1/tasks', { type, prompt: 'p' })).status).toBe(201);
      const job = await d.next('new_task');
      expect(await d.request('task_result', { task_id: job.task_id, result: { success: true } })).toMatchObject({
        success: true,
      });
    }
    const later = new Date(Date.now() + 3_600_000).toISOString();
    expect((await client.post('/api/v1/tasks', { prompt: 'later', run_at: later })).status).toBe(201);

    // LLM calls: one streamed (time to first token, tokens), one the upstream fails.
    const chat = (stream: boolean): Promise<Response> =>
      fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.client}` },
        body: JSON.stringify({ model: 'fake-model', stream, messages: [{ role: 'user', content: 'hello' }] }),
      });
    const streamed = await chat(true);
    expect(streamed.status).toBe(200);
    await streamed.text();
    llm.setBehavior({ status: 500, times: 1 });
    await (await chat(false)).text();

    // Usage rows are recorded after the answer: wait for both calls' series.
    for (let i = 0; i < 100; i++) {
      exposed = await scrape();
      if (exposed.has('taskhub_llm_ttft_seconds_bucket') && exposed.has('taskhub_llm_upstream_errors_total')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    d.close();
  });
  afterAll(async () => {
    await t.close();
    await llm.close();
  });

  it('the PromQL name extractor finds metric names, not functions, labels or keywords', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, type) (rate(taskhub_task_pickup_seconds_bucket{job=~"$job"}[$__rate_interval])))',
      ),
    ).toEqual(['taskhub_task_pickup_seconds_bucket']);
    expect(metricNames('max(a_total) == 0 and on() max(b{status="pending"}) > 0')).toEqual(['a_total', 'b']);
  });

  it('the dashboard parses, and every metric a panel queries exists on the running hub', () => {
    expect(dashboard.title).toBe('taskhub');
    const queried = new Map<string, string>();
    for (const panel of dashboard.panels)
      for (const target of panel.targets ?? [])
        for (const name of metricNames(target.expr)) queried.set(name, panel.title);
    expect(queried.size).toBeGreaterThan(15);
    const missing = [...queried].filter(([name]) => !exposed.has(name)).map(([name, panel]) => `${name} (${panel})`);
    expect(missing).toEqual([]);
    // The panels the operator asked for are there.
    for (const name of [
      'taskhub_http_request_duration_seconds_bucket',
      'taskhub_queue_depth',
      'taskhub_queue_oldest_age_seconds',
      'taskhub_task_pickup_seconds_bucket',
      'taskhub_task_run_seconds_bucket',
      'taskhub_tasks_failed_total',
      'taskhub_nodes_connected',
      'taskhub_socket_connections',
      'taskhub_dispatch_round_seconds_bucket',
      'taskhub_llm_ttft_seconds_bucket',
      'taskhub_llm_tokens_total',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
    ])
      expect(queried.has(name)).toBe(true);
  });

  it('every metric the alert rules query exists on the running hub', () => {
    const exprs = ruleExprs(rules);
    expect(exprs).toHaveLength(6);
    const names = new Set(exprs.flatMap(metricNames));
    expect([...names].filter((n) => !exposed.has(n))).toEqual([]);
    for (const name of [
      'taskhub_queue_oldest_age_seconds',
      'taskhub_tasks_failed_total',
      'taskhub_nodes_connected',
      'taskhub_database_up',
      'taskhub_llm_upstream_errors_total',
    ])
      expect(names.has(name)).toBe(true);
  });
});
