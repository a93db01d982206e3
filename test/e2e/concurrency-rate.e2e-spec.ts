import type { Api } from '../support/api.js';
import { allRuns, ExecDevice, maxStartsInWindow, waitFor } from '../support/exec-device.js';
import type { TestApp } from '../support/test-app.js';

/**
 * `max_per_minute` (issue 29, docs/flow-control.md) with a 3 s window: the hidden test knob
 * CONCURRENCY_RATE_WINDOW_MS, read when the hub's modules load, so it is set before the app is
 * imported. The safety tick is an hour: the held tasks can only start again through the timer
 * the round arms for the window's opening (no polling).
 */
const WINDOW_MS = 3000;
process.env.CONCURRENCY_RATE_WINDOW_MS = String(WINDOW_MS);

describe('concurrency keys: max_per_minute over a rolling window', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const devices: ExecDevice[] = [];

  beforeAll(async () => {
    const { startTestApp } = await import('../support/test-app.js');
    const { apiClient } = await import('../support/api.js');
    t = await startTestApp({ DISPATCH_SAFETY_TICK_MS: '3600000' });
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
  });

  afterAll(async () => {
    devices.forEach((d) => d.close());
    await t.close();
    delete process.env.CONCURRENCY_RATE_WINDOW_MS;
  });

  it('12 fast tasks, 5 per window, 6 devices: no window starts more than 5; the rest start as windows open', async () => {
    expect((await admin.put('/api/v1/concurrency/rate-1', { max_per_minute: 5 })).status).toBe(200);
    for (let i = 0; i < 6; i++) devices.push(await ExecDevice.connect(t.url, t.keys.worker, `rate-dev-${i}`, 30));
    const res = await client.post<{ results: { task_id: string }[] }>('/api/v1/tasks/batch', {
      tasks: Array.from({ length: 12 }, (_, i) => ({ prompt: `r-${i}`, concurrency_key: 'rate-1' })),
    });
    expect(res.status).toBe(201);
    const ids = new Set(res.body.data.results.map((r) => r.task_id));
    await waitFor('5 started', () => allRuns(devices).length >= 5, 5000);
    const limit = await admin.get<{ started_last_minute: number }>('/api/v1/concurrency/rate-1');
    expect(limit.body.data.started_last_minute).toBe(5);
    await waitFor('12 ran', () => allRuns(devices).length === 12, 3 * WINDOW_MS + 4000);
    const starts = allRuns(devices)
      .map((r) => r.start)
      .sort((a, b) => a - b);
    // at most 5 in any window (less a little for the devices' own delivery jitter)
    expect(maxStartsInWindow(allRuns(devices), ids, WINDOW_MS - 150)).toBe(5);
    // the first 5 at once, the next 5 when the window opened, the last 2 a window later
    expect(starts[4] - starts[0]).toBeLessThan(1000);
    expect(starts[5] - starts[0]).toBeGreaterThanOrEqual(WINDOW_MS - 150);
    expect(starts[5] - starts[0]).toBeLessThan(WINDOW_MS + 1500);
    expect(starts[10] - starts[5]).toBeGreaterThanOrEqual(WINDOW_MS - 150);
  }, 30_000);
});
