import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createApp } from '../../src/app.factory.js';
import { loadConfig } from '../../src/config/app-config.js';

/** The default a new user gets: no DATABASE_URL, the embedded PGlite in DATA_DIR. */
describe('embedded database (no DATABASE_URL)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskhub-embedded-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function boot(): Promise<{ app: NestExpressApplication; url: string }> {
    const app = await createApp(loadConfig({ DATA_DIR: dir, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' }));
    await app.listen(0, '127.0.0.1');
    return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}` };
  }

  it('migrates, writes the first admin key to DATA_DIR, and keeps tasks across a restart', async () => {
    const first = await boot();
    let taskId: string;
    let key: string;
    try {
      expect(existsSync(join(dir, 'pgdata'))).toBe(true);
      key = readFileSync(join(dir, 'admin.key'), 'utf8').trim();
      expect(key).toMatch(/^th_/);
      const res = await fetch(`${first.url}/api/v1/tasks`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ prompt: 'survive a restart', priority: 'high' }),
      });
      expect(res.status).toBe(201);
      taskId = ((await res.json()) as { data: { task_id: string } }).data.task_id;
    } finally {
      await first.app.close();
    }

    const second = await boot();
    try {
      expect(readFileSync(join(dir, 'admin.key'), 'utf8').trim()).toBe(key); // no second admin key
      const res = await fetch(`${second.url}/api/v1/tasks/${taskId}`, { headers: { Authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { data: { prompt: string; priority: string } }).data).toMatchObject({ prompt: 'survive a restart', priority: 'high' });
    } finally {
      await second.app.close();
    }
  }, 120_000);
});
