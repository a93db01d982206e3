import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { apiClient, type Api, type Task } from '../support/api.js';
import {
  browserMissing,
  launchBrowser,
  type PageWatch,
  testIdText,
  waitForTestIdText,
  watchPage,
} from '../support/browser.js';
import { ApexSocket } from '../support/apex-node.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const missing = browserMissing();
const BUILT = resolve('dist/web/dashboard/main.js');
if (missing) console.warn(`dashboard e2e skipped: ${missing}`);
const describeBrowser = missing ? describe.skip : describe;
const SHOTS = resolve('artifacts/dashboard');
const STATES = ['pending', 'dispatched', 'running', 'completed', 'failed', 'cancelled', 'timed_out'];

/**
 * The dashboard in a real headless Chromium against a real hub: auth through the fragment,
 * live counts over /events, nodes, cancel, and that nothing is fetched from anywhere but the hub.
 */
describeBrowser('dashboard (headless Chromium)', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  let worker: Api;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  let page: Page;
  let watch: PageWatch;

  beforeAll(async () => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` first`);
    mkdirSync(SHOTS, { recursive: true });
    t = await startTestApp();
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
    worker = apiClient(t, t.keys.worker);
    ({ browser, close: closeBrowser } = await launchBrowser());
  });
  afterAll(async () => {
    await closeBrowser?.();
    await t?.close();
  });

  beforeEach(async () => {
    page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    watch = await watchPage(page);
  });
  afterEach(async () => {
    await page.close();
    // No request leaves the hub: every URL the page asked for (HTTP and WebSocket) is the hub's.
    const hub = new URL(t.url);
    const foreign = watch.urls.filter((u) => {
      const url = new URL(u);
      return url.host !== hub.host || !['http:', 'ws:'].includes(url.protocol);
    });
    expect(foreign).toEqual([]);
  });

  const submit = async (n: number, extra: Record<string, unknown> = {}): Promise<Task[]> => {
    const tasks: Task[] = [];
    for (let i = 0; i < n; i++) {
      const r = await client.post<Task>('/api/v1/tasks', { type: 'dash', prompt: `task ${i}`, ...extra });
      expect(r.status).toBe(201);
      tasks.push(r.body.data);
    }
    return tasks;
  };
  const completeNext = async (): Promise<void> => {
    const next = await worker.get<Task>('/api/v1/tasks/next?worker_id=dash-worker');
    expect(next.body.data).not.toBeNull();
    const done = await worker.post(`/api/v1/tasks/${next.body.data.task_id}/complete`, {
      worker_id: 'dash-worker',
      result: { status: 'success', output: 'ok' },
    });
    expect(done.status).toBe(200);
  };
  const open = async (key: string): Promise<void> => {
    await page.goto(`${t.url}/dashboard#key=${encodeURIComponent(key)}`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('[data-testid="conn"].live', { timeout: 5000 });
    // Not displayed (computed style), not just marked hidden.
    await page.waitForSelector('#login', { hidden: true, timeout: 1000 });
  };
  const showView = async (id: string): Promise<void> => {
    await page.click(`nav button[data-view="${id}"]`);
  };
  const shot = (name: string): Promise<unknown> => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

  it('serves the page and its assets without a key, with a strict CSP and no CDN', async () => {
    const res = await fetch(`${t.url}/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self' ws: wss:");
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    const js = await fetch(`${t.url}/dashboard/assets/main.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('cache-control')).toContain('max-age');
    const again = await fetch(`${t.url}/dashboard/assets/main.js`, {
      headers: { 'if-none-match': js.headers.get('etag') ?? '' },
    });
    expect(again.status).toBe(304);
    expect((await fetch(`${t.url}/dashboard/assets/socket.io.esm.min.js`)).status).toBe(200);
    expect((await fetch(`${t.url}/dashboard/assets/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${t.url}/dashboard/assets/nope.js`)).status).toBe(404);
  });

  it('without a key shows the prompt and no data', async () => {
    await page.goto(`${t.url}/dashboard`, { waitUntil: 'networkidle0' });
    expect(await page.$eval('#login', (el) => (el as unknown as { hidden: boolean }).hidden)).toBe(false);
    expect(await page.$eval('#app', (el) => (el as unknown as { hidden: boolean }).hidden)).toBe(true);
    expect(await page.$('[data-testid^="count-"]')).toBeNull();
    expect(watch.urls.filter((u) => u.includes('/api/') || u.includes('/socket.io/'))).toEqual([]);
    await shot('login');
    expect(watch.errors).toEqual([]);
  });

  it('takes the key from #key=, removes it from the address, and shows counts that match the API and rise live', async () => {
    await submit(3);
    await submit(2);
    await completeNext();
    await open(t.keys.admin);
    expect(await page.evaluate('location.href')).toBe(`${t.url}/dashboard`);
    expect(await page.evaluate('location.hash')).toBe('');
    expect(await page.evaluate(`sessionStorage.getItem('taskhub.dashboard.key')`)).toBe(t.keys.admin);

    // Counts match the API (/status reports exact hub states through the Codex view; the
    // statistics route gives the orchestrator buckets).
    const stats = (await admin.get<{ status_distribution: Record<string, number> }>('/api/v1/statistics')).body.data;
    await waitForTestIdText(page, 'count-completed', String(stats.status_distribution.completed));
    const shown = Object.fromEntries(
      await Promise.all(STATES.map(async (s) => [s, Number(await testIdText(page, `count-${s}`))])),
    );
    expect(shown.pending + shown.dispatched).toBe(stats.status_distribution.waiting);
    expect(shown.running).toBe(stats.status_distribution.working);
    for (const s of ['completed', 'failed', 'cancelled', 'timed_out'])
      expect(shown[s]).toBe(stats.status_distribution[s]);
    expect(shown).toMatchObject({ pending: 4, completed: 1 });

    // Completing tasks through the API raises the count within 3 s, without a reload.
    await page.evaluate('window.__sameDocument = true');
    await completeNext();
    await completeNext();
    const started = Date.now();
    await waitForTestIdText(page, 'count-completed', '3', 3000);
    expect(Date.now() - started).toBeLessThan(3000);
    await waitForTestIdText(page, 'count-pending', '2', 3000);
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    await page.waitForSelector('[data-testid="throughput"]');
    await shot('overview');

    // A reload keeps the key (sessionStorage), so it is asked for once per tab.
    await page.reload({ waitUntil: 'domcontentloaded' });
    await waitForTestIdText(page, 'count-completed', '3', 5000);
    expect(watch.errors).toEqual([]);
  });

  it('cancels a task from its detail, after a confirm step', async () => {
    const [task] = await submit(1, { type: 'to-cancel' });
    await open(t.keys.admin);
    await showView('tasks');
    await page.waitForSelector(`[data-testid="task-${task.task_id}"]`);
    await page.click(`[data-testid="task-${task.task_id}"]`);
    await page.waitForSelector('[data-testid="cancel-task"]');
    await page.click('[data-testid="cancel-task"]');
    // The first click only asks; nothing happened yet.
    expect((await client.get<Task>(`/api/v1/tasks/${task.task_id}`)).body.data.state).toBe('pending');
    await shot('task-detail');
    await page.click('[data-testid="confirm"]');
    await page.waitForFunction(`document.querySelector('[data-testid="detail-state"]')?.textContent === 'cancelled'`, {
      timeout: 5000,
    });
    expect((await client.get<Task>(`/api/v1/tasks/${task.task_id}`)).body.data.state).toBe('cancelled');
    await shot('tasks');
    expect(watch.errors).toEqual([]);
  });

  it('shows a device that connects in Nodes, live', async () => {
    await open(t.keys.admin);
    await showView('nodes');
    await page.waitForSelector('[data-testid="node-table"]');
    const device = new TestDevice(t.url, t.keys.worker);
    try {
      await device.register('dash-device-1', { capacity: 2 });
      await page.waitForSelector('[data-testid="node-dash-device-1"]', { timeout: 3000 });
      expect(await testIdText(page, 'node-status-dash-device-1')).toMatch(/online|busy/);
      expect(await page.$('[data-testid="drain-dash-device-1"]')).not.toBeNull();
      expect(await page.$('[data-testid="node-shared-dash-device-1"]')).toBeNull();
      // A global key's shared device is marked (docs/flow-control.md, "Fairness").
      const pool = new TestDevice(t.url, t.keys.admin);
      try {
        await pool.register('dash-pool-1', { shared: true });
        await page.waitForSelector('[data-testid="node-shared-dash-pool-1"]', { timeout: 3000 });
      } finally {
        pool.close();
      }
      await shot('nodes');
      for (const view of ['services', 'llm']) {
        await showView(view);
        await page.waitForSelector(`#h-${view}`, { visible: true });
        await new Promise((r) => setTimeout(r, 300));
        await shot(view);
      }
    } finally {
      device.close();
    }
    expect(watch.errors).toEqual([]);
  });

  it('with a non-admin key shows what the API lets it see and hides admin actions', async () => {
    await open(t.keys.client);
    await showView('nodes');
    await page.waitForSelector('[data-testid="node-table"]');
    await page.waitForFunction(`document.querySelector('[data-testid="node-dash-device-1"]') !== null`, {
      timeout: 3000,
    });
    expect(await page.$('[data-testid^="drain-"]')).toBeNull();
    await showView('llm');
    await page.waitForFunction(`document.body.textContent.includes('Cooldowns need an admin key')`, { timeout: 3000 });
    // The only errors are the browser's notes about the 403s that told the page what to hide.
    expect(watch.errors.filter((e) => !/status of 403/.test(e))).toEqual([]);
  });

  it('lists the tools nodes offer (GET /v1/tools) in the LLM view', async () => {
    const node = await ApexSocket.open(
      `${t.url.replace('http', 'ws')}/abp-distributed-server/VCP_Key=${encodeURIComponent(t.keys.worker)}`,
    );
    try {
      const reply = await node.request('node_register', {
        node_id: 'dash-tool-node',
        name: 'Kitchen PC',
        tools: [{ name: 'lookup', description: 'Looks a word up', parameters: { type: 'object' } }],
      });
      expect(reply.type).toBe('register_success');
      await open(t.keys.client);
      await showView('llm');
      await page.waitForSelector('[data-testid="tool-lookup"]', { timeout: 5000 });
      expect(await testIdText(page, 'tool-nodes-lookup')).toBe('Kitchen PC');
      expect(await testIdText(page, 'tool-lookup')).toContain('Looks a word up');
    } finally {
      node.close();
    }
    expect(watch.errors.filter((e) => !/status of 403/.test(e))).toEqual([]);
  });

  it('asks for the key again when the stored one is refused', async () => {
    await page.goto(`${t.url}/dashboard#key=not-a-key`, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(`!document.getElementById('login').hidden`, { timeout: 5000 });
    expect(await page.evaluate(`sessionStorage.getItem('taskhub.dashboard.key')`)).toBeNull();
    expect(await page.$('[data-testid^="count-"]')).toBeNull();
    // Typing a good key opens it.
    await page.type('[data-testid="key-input"]', t.keys.admin);
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid="conn"].live', { timeout: 5000 });
    expect(watch.errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  });
});
