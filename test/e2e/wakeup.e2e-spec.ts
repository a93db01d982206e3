import pg from 'pg';
import { WAKEUP_CHANNEL } from '../../src/modules/dispatch/wakeup-channel.service.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { suiteDatabaseUrl } from '../support/test-database.js';

describe('dispatcher wake-ups over LISTEN/NOTIFY', () => {
  let t: TestApp;
  let notifier: pg.Client;

  beforeAll(async () => {
    // Safety tick far away: only the notification can wake the dispatcher in this test.
    t = await startTestApp({ DISPATCH_SAFETY_TICK_MS: '600000' });
    notifier = new pg.Client({ connectionString: await suiteDatabaseUrl() });
    await notifier.connect();
  });
  afterAll(async () => {
    await notifier.end();
    await t.close();
  });

  it('a NOTIFY from another process wakes this dispatcher', async () => {
    const d = new TestDevice(t.url, t.keys.worker);
    try {
      await d.register('woken');
      // Let the round the registration started finish (on a loaded machine it can still be running).
      await new Promise((r) => setTimeout(r, 300));
      // A task made ready behind this process's back (as another hub would, in its tenant).
      const [{ id }] = (
        await notifier.query(`INSERT INTO tasks (prompt, tenant_id) VALUES ('from elsewhere', 'default') RETURNING id`)
      ).rows as { id: string }[];
      await new Promise((r) => setTimeout(r, 300));
      expect(d.received.some((r) => r.event === 'new_task')).toBe(false);
      await notifier.query(`SELECT pg_notify($1, 'another-hub')`, [WAKEUP_CHANNEL]);
      expect((await d.next('new_task', () => true, 3000)).task_id).toBe(id);
    } finally {
      d.close();
    }
  });
});
