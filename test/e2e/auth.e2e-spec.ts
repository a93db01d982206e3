import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminKeyBootstrap } from '../../src/modules/auth/admin-key.bootstrap.js';
import { loadConfig } from '../../src/config/app-config.js';
import { ApiKeysService } from '../../src/modules/auth/api-keys.service.js';
import { apiClient, hubApi, type Task } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

describe('auth: API keys and roles', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('refuses requests without a key, with a bad key, or with a malformed header', async () => {
    const none = await apiClient(t, undefined).get('/api/v1/tasks');
    expect(none.status).toBe(401);
    expect(none.body.error?.code).toBe('UNAUTHORIZED');
    const bad = await apiClient(t, 'th_not-a-real-key').get('/api/v1/tasks');
    expect(bad.status).toBe(401);
    const malformed = await apiClient(t, undefined).get('/api/v1/tasks', { Authorization: 'Basic abc' });
    expect(malformed.status).toBe(401);
  });

  it('keeps health and docs open', async () => {
    const anon = apiClient(t, undefined);
    expect((await anon.get('/healthz')).status).toBe(200);
    expect((await anon.get('/health')).status).toBe(200);
    expect((await fetch(`${t.url}/docs-json`)).status).toBe(200);
  });

  it('lets an admin create, list and revoke keys; a revoked key stops working at once', async () => {
    // Through the SDK's typed client (the contract says: 201, in the envelope).
    const admin = hubApi(t, t.keys.admin);
    const created = await admin.POST('/api/v1/api-keys', { body: { name: 'ci', role: 'client' } });
    expect(created.response.status).toBe(201);
    const made = created.data!.data;
    expect(made.key).toMatch(/^th_/);
    expect(made.key.startsWith(made.prefix)).toBe(true);
    const ci = apiClient(t, made.key);
    expect((await ci.get('/api/v1/tasks')).status).toBe(200);

    const list = await admin.GET('/api/v1/api-keys');
    expect(list.data?.data.map((k) => k.name)).toEqual(expect.arrayContaining(['ci', 'test-admin']));
    expect(JSON.stringify(list.data)).not.toContain(made.key);
    const stored = await t.db.query(`SELECT key_hash FROM api_keys WHERE id = $1`, [made.id]);
    expect(stored[0].key_hash).not.toContain(made.key);

    const revoked = await admin.DELETE('/api/v1/api-keys/{id}', { params: { path: { id: made.id } } });
    expect(revoked.response.status).toBe(200);
    expect(revoked.data?.data.revoked_at).toBeTruthy();
    const after = await ci.get('/api/v1/tasks');
    expect(after.status).toBe(401);
    expect(after.body.error?.code).toBe('UNAUTHORIZED');

    const unknown = await admin.DELETE('/api/v1/api-keys/{id}', {
      params: { path: { id: '00000000-0000-4000-8000-000000000000' } },
    });
    expect(unknown.response.status).toBe(404);
    expect(unknown.error?.error.code).toBe('NOT_FOUND');
    // A body the contract refuses does not compile; sent anyway, the hub names the field.
    const badRole = await admin.POST('/api/v1/api-keys', {
      body: { name: 'x', role: 'root' as unknown as 'client' },
    });
    expect(badRole.error?.error.details?.field).toBe('role');
  });

  it('enforces roles: clients submit and read, workers pull and report, only admins manage keys', async () => {
    const client = apiClient(t, t.keys.client);
    const worker = apiClient(t, t.keys.worker);
    const task = (await client.post<Task>('/api/v1/tasks', { prompt: 'roles' })).body.data;

    const workerSubmits = await worker.post('/api/v1/tasks', { prompt: 'nope' });
    expect(workerSubmits.status).toBe(403);
    expect(workerSubmits.body.error?.code).toBe('FORBIDDEN');
    expect((await worker.post(`/api/v1/tasks/${task.task_id}/cancel`, {})).status).toBe(403);

    const clientPulls = await client.get('/api/v1/tasks/next?worker_id=w');
    expect(clientPulls.status).toBe(403);
    expect(
      (await client.post(`/api/v1/tasks/${task.task_id}/complete`, { result: { status: 'success' } })).status,
    ).toBe(403);

    expect((await client.get('/api/v1/api-keys')).status).toBe(403);
    expect((await worker.post('/api/v1/api-keys', { name: 'x', role: 'admin' })).status).toBe(403);

    expect((await worker.get(`/api/v1/tasks/${task.task_id}`)).status).toBe(200);
    expect((await worker.get('/api/v1/tasks/next?worker_id=w')).status).toBe(200);
    const admin = apiClient(t, t.keys.admin);
    expect((await admin.post(`/api/v1/tasks/${task.task_id}/cancel`, {})).status).toBe(200);
  });

  it('a key may hold several roles: one seed 002 client key creates, pulls and completes', async () => {
    const admin = apiClient(t, t.keys.admin);
    const made = await admin.post<{ key: string; role: string; roles: string[] }>('/api/v1/api-keys', {
      name: 'orchestrator-client',
      roles: ['client', 'worker'],
    });
    expect(made.status).toBe(201);
    expect(made.body.data).toMatchObject({ role: 'client', roles: ['client', 'worker'] });
    const both = apiClient(t, made.body.data.key);
    const task = (await both.post<Task>('/api/v1/tasks', { prompt: 'one key', work_directory: '/work/one' })).body.data;
    const pulled = await both.get<Task>('/api/v1/tasks/next?worker_id=one-key&work_path=/work/one');
    expect(pulled.body.data?.task_id).toBe(task.task_id);
    const done = await both.post<Task>(`/api/v1/tasks/${task.task_id}/complete`, {
      worker_id: 'one-key',
      result: { status: 'success', output: 'ok' },
    });
    expect(done.status).toBe(200);
    // Still no admin powers.
    expect((await both.get('/api/v1/api-keys')).status).toBe(403);
    // The socket channels read roles too: the key may register a device.
    const listed = await admin.get<{ roles: string[] }[]>('/api/v1/api-keys');
    expect(
      listed.body.data.find((k) => (k as unknown as { name: string }).name === 'orchestrator-client')?.roles,
    ).toEqual(['client', 'worker']);
    for (const [body, field] of [
      [{ name: 'x' }, 'role'],
      [{ name: 'x', roles: [] }, 'roles'],
      [{ name: 'x', roles: ['client', 'root'] }, 'roles'],
      [{ name: 'x', roles: 'client' }, 'roles'],
      [{ name: 'x', roles: ['client', 'client'] }, 'roles'],
    ] as const) {
      const bad = await admin.post('/api/v1/api-keys', body);
      expect(bad.status).toBe(400);
      expect(bad.body.error?.details?.field).toBe(field);
    }
  });

  it('creates the first admin key once and writes it to DATA_DIR/admin.key in embedded mode', async () => {
    await t.db.query(`UPDATE api_keys SET revoked_at = now() WHERE role = 'admin'`);
    const dir = mkdtempSync(join(tmpdir(), 'taskhub-auth-'));
    try {
      // Same services, but configured as embedded mode (no DATABASE_URL) writing to a temp DATA_DIR.
      const keys = t.app.get(ApiKeysService);
      const bootstrap = new AdminKeyBootstrap(keys, loadConfig({ DATA_DIR: dir }));
      await bootstrap.onApplicationBootstrap();
      const key = readFileSync(join(dir, 'admin.key'), 'utf8').trim();
      expect(key).toMatch(/^th_/);
      expect((await apiClient(t, key).get('/api/v1/api-keys')).status).toBe(200);
      const admins = await t.db.query(
        `SELECT count(*)::int AS n FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL`,
      );
      expect(admins[0].n).toBe(1);
      await bootstrap.onApplicationBootstrap(); // an admin exists now: no second key
      const again = await t.db.query(
        `SELECT count(*)::int AS n FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL`,
      );
      expect(again[0].n).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('auth off (AUTH_REQUIRED=false)', () => {
  it('accepts requests without a key', async () => {
    const t = await startTestApp({ AUTH_REQUIRED: 'false' });
    try {
      const anon = apiClient(t, undefined);
      const created = await anon.post<Task>('/api/v1/tasks', { prompt: 'open' });
      expect(created.status).toBe(201);
      expect((await anon.get('/api/v1/tasks/next?worker_id=w')).body.data).toMatchObject({
        task_id: created.body.data.task_id,
      });
    } finally {
      await t.close();
    }
  });
});
