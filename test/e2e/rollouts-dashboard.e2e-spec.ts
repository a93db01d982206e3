import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { apiClient, type Api } from '../support/api.js';
import { browserMissing, launchBrowser, type PageWatch, testIdText, watchPage } from '../support/browser.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const missing = browserMissing();
const BUILT = resolve('dist/web/dashboard/rollouts.js');
if (missing) console.warn(`rollouts dashboard e2e skipped: ${missing}`);
const describeBrowser = missing ? describe.skip : describe;
const SHOTS = resolve('artifacts/dashboard');

/** The Rollouts view in a real headless Chromium: a progress bar per rollout that moves live, and cancel. */
describeBrowser('dashboard: rollouts (headless Chromium)', () => {
  let t: TestApp;
  let client: Api;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  let page: Page;
  let watch: PageWatch;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` first`);
    mkdirSync(SHOTS, { recursive: true });
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
    ({ browser, close: closeBrowser } = await launchBrowser());
    page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    watch = await watchPage(page);
  });
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await closeBrowser?.();
    await t?.close();
  });

  /** Waits until the element with this data-testid shows `text` (among other things). */
  const showsText = (id: string, text: string): Promise<unknown> =>
    page.waitForFunction(
      `document.querySelector('[data-testid="${id}"]')?.textContent?.includes(${JSON.stringify(text)}) === true`,
      { timeout: 5000, polling: 50 },
    );
  const progress = (id: string): Promise<{ now: string | null; max: string | null; widths: string[] }> =>
    page.$eval(`[data-testid="rollout-progress-${id}"]`, (el) => ({
      now: el.getAttribute('aria-valuenow'),
      max: el.getAttribute('aria-valuemax'),
      widths: [...el.querySelectorAll('.progress-seg')].map((s) => `${s.className}:${s.getAttribute('style')}`),
    }));

  it('shows each rollout with a progress bar that fills as its nodes finish, and cancels one', async () => {
    // Three healthy nodes; each answers once the test says so.
    const held: ((ok: boolean) => void)[] = [];
    for (let i = 0; i < 3; i++) {
      const d = new TestDevice(t.url, t.keys.worker);
      devices.push(d);
      d.socket.on('new_task', (m: { task_id: string }) =>
        held.push((ok) =>
          d.socket.emit(
            'task_result',
            ok
              ? { task_id: m.task_id, result: { success: true } }
              : { task_id: m.task_id, success: false, error: 'no' },
          ),
        ),
      );
      await d.register(`dash-node-${i}`, { tags: ['dash'] });
    }
    const created = await client.post<{ rollout_id: string }>('/api/v1/rollouts', {
      name: 'dash rollout',
      task: { type: 'firmware', data: { v: 1 }, max_retries: 0 },
      target: { tags: ['dash'] },
      rate: { per_minute: 600 },
    });
    expect(created.status).toBe(201);
    const id = created.body.data.rollout_id;

    await page.goto(`${t.url}/dashboard#key=${encodeURIComponent(t.keys.client)}`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('[data-testid="conn"].live', { timeout: 5000 });
    await page.click('nav button[data-view="rollouts"]');
    await page.waitForSelector(`[data-testid="rollout-progress-${id}"]`, { timeout: 5000 });
    expect(await testIdText(page, `rollout-status-${id}`)).toMatch(/in_progress/);

    // Nodes finish one by one (one fails): the bar follows, pushed by the task events.
    while (held.length < 3) await new Promise((r) => setTimeout(r, 20));
    held[0](true);
    await page.waitForSelector(`[data-testid="rollout-progress-${id}"][aria-valuenow="1"]`, { timeout: 5000 });
    held[1](false);
    held[2](true);
    await page.waitForSelector(`[data-testid="rollout-progress-${id}"][aria-valuenow="3"]`, { timeout: 5000 });
    const done = await progress(id);
    expect(done.max).toBe('3');
    expect(done.widths.sort()).toEqual([
      'progress-seg seg-bad:width: 33.3333%;',
      'progress-seg seg-ok:width: 66.6667%;',
    ]);
    await showsText(`rollout-status-${id}`, 'completed');
    await page.screenshot({ path: `${SHOTS}/rollouts.png`, fullPage: true });

    // A slow one, cancelled from its row after the confirm step.
    const slow = await client.post<{ rollout_id: string }>('/api/v1/rollouts', {
      name: 'slow rollout',
      task: { type: 'firmware', data: { v: 2 } },
      target: { tags: ['dash'] },
      rate: { per_minute: 1 },
    });
    const slowId = slow.body.data.rollout_id;
    await page.click('nav button[data-view="rollouts"]');
    await page.waitForSelector(`[data-testid="cancel-rollout-${slowId}"]`, { timeout: 5000 });
    await page.click(`[data-testid="cancel-rollout-${slowId}"]`);
    await page.click('[data-testid="confirm"]');
    await showsText(`rollout-status-${slowId}`, 'cancelled');
    expect((await client.get<{ status: string }>(`/api/v1/rollouts/${slowId}`)).body.data.status).toBe('cancelled');
    // A client key: the only errors are the browser's notes about the 403 that told the page it is no admin.
    expect(watch.errors.filter((e) => !/status of 403/.test(e))).toEqual([]);
  });
});
