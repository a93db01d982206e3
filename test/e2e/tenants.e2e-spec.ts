import pg from 'pg';
import { type Api, apiClient } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { suiteDatabaseUrl } from '../support/test-database.js';

const TENANTS = '/api/v1/tenants';
const KEYS = '/api/v1/api-keys';

interface Task {
  task_id: string;
  status: string;
}

describe('tenants: who may manage them, keys, isolation, row-level security', () => {
  let t: TestApp;
  let global: Api;
  /** Tenant admins and clients of tenants A and B. */
  let adminA: Api;
  let clientA: Api;
  let adminB: Api;
  let clientB: Api;
  let taskA: Task;

  const keyIn = async (tenant: string, roles: string[]): Promise<Api> => {
    const res = await global.post<{ key: string; tenant_id: string }>(KEYS, {
      name: `${tenant}-${roles[0]}`,
      roles,
      tenant_id: tenant,
    });
    expect(res.status).toBe(201);
    expect(res.body.data.tenant_id).toBe(tenant);
    return apiClient(t, res.body.data.key);
  };

  beforeAll(async () => {
    t = await startTestApp();
    global = apiClient(t, t.keys.admin);
    for (const [id, name] of [
      ['tenant-a', 'Tenant A'],
      ['tenant-b', 'Tenant B'],
    ]) {
      const res = await global.post(TENANTS, { id, name, limits: { max_tasks: 100 } });
      expect(res.status).toBe(201);
    }
    adminA = await keyIn('tenant-a', ['admin']);
    clientA = await keyIn('tenant-a', ['client', 'worker']);
    adminB = await keyIn('tenant-b', ['admin']);
    clientB = await keyIn('tenant-b', ['client', 'worker']);
    const created = await clientA.post<Task>('/api/v1/tasks', { type: 'prompt', prompt: 'only for A' });
    expect(created.status).toBe(201);
    taskA = created.body.data;
  });
  afterAll(() => t.close());

  describe('tenants CRUD', () => {
    it('a global admin creates, lists, reads and deletes tenants; limits are validated', async () => {
      const made = await global.post(TENANTS, {
        id: 'tmp-1',
        name: 'Temporary',
        limits: { rate_limit_per_minute: 60 },
      });
      expect(made.status).toBe(201);
      expect(made.body.data).toMatchObject({ id: 'tmp-1', name: 'Temporary', limits: { rate_limit_per_minute: 60 } });
      const generated = await global.post<{ id: string }>(TENANTS, { name: 'Generated id' });
      expect(generated.status).toBe(201);
      expect(generated.body.data.id).toMatch(/^[0-9a-f-]{36}$/);
      expect((await global.post(TENANTS, { id: 'tmp-1', name: 'Again' })).status).toBe(409);
      const bad = await global.post(TENANTS, { name: 'x', limits: { max_tasks: 0 } });
      expect(bad.status).toBe(400);
      expect((await global.post(TENANTS, { id: 'Bad Id!', name: 'y' })).status).toBe(400);

      const list = await global.get<{ tenants: { id: string }[]; pagination: { total: number } }>(
        `${TENANTS}?limit=200`,
      );
      expect(list.body.data.tenants.map((x) => x.id)).toEqual(
        expect.arrayContaining(['default', 'tenant-a', 'tenant-b', 'tmp-1']),
      );
      expect((await global.get(`${TENANTS}/tmp-1`)).body.data).toMatchObject({ id: 'tmp-1' });

      // Deleting a tenant deletes its rows.
      const tmpKey = await keyIn('tmp-1', ['client']);
      const tmpTask = await tmpKey.post<Task>('/api/v1/tasks', { prompt: 'goes with its tenant' });
      expect(tmpTask.status).toBe(201);
      expect((await global.delete(`${TENANTS}/tmp-1`)).status).toBe(200);
      expect((await global.get(`${TENANTS}/tmp-1`)).status).toBe(404);
      const [{ n }] = (await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE id = $1`, [
        tmpTask.body.data.task_id,
      ])) as { n: number }[];
      expect(n).toBe(0);
      expect((await global.delete(`${TENANTS}/${generated.body.data.id}`)).status).toBe(200);
    });

    it('default cannot be deleted', async () => {
      const res = await global.delete(`${TENANTS}/default`);
      expect(res.status).toBe(409);
    });

    it('a tenant admin sees its own tenant only: 403 on create, 404 on other tenants', async () => {
      expect((await adminA.post(TENANTS, { name: 'nope' })).status).toBe(403);
      expect((await adminA.get(`${TENANTS}/tenant-a`)).status).toBe(200);
      const other = await adminA.get(`${TENANTS}/tenant-b`);
      expect(other.status).toBe(404);
      expect(other.body.error?.code).toBe('TENANT_NOT_FOUND');
      expect((await adminA.get(`${TENANTS}/nowhere`)).status).toBe(404);
      expect((await adminA.delete(`${TENANTS}/tenant-b`)).status).toBe(404);
      const list = await adminA.get<{ tenants: { id: string }[] }>(TENANTS);
      expect(list.body.data.tenants.map((x) => x.id)).toEqual(['tenant-a']);
    });
  });

  describe('API keys', () => {
    it('a tenant admin makes keys in its own tenant only (another or unknown tenant: 404; global: 403)', async () => {
      const own = await adminA.post<{ tenant_id: string }>(KEYS, { name: 'a-worker', role: 'worker' });
      expect(own.status).toBe(201);
      expect(own.body.data.tenant_id).toBe('tenant-a');
      const explicit = await adminA.post<{ tenant_id: string }>(KEYS, {
        name: 'a-w2',
        role: 'worker',
        tenant_id: 'tenant-a',
      });
      expect(explicit.body.data.tenant_id).toBe('tenant-a');
      const other = await adminA.post(KEYS, { name: 'x', role: 'client', tenant_id: 'tenant-b' });
      expect(other.status).toBe(404);
      expect(other.body.error?.code).toBe('TENANT_NOT_FOUND');
      expect((await adminA.post(KEYS, { name: 'x', role: 'client', tenant_id: 'nowhere' })).status).toBe(404);
      expect((await adminA.post(KEYS, { name: 'x', role: 'admin', tenant_id: null })).status).toBe(403);
      // It lists its tenant's keys only (no global keys, none of B's).
      const list = await adminA.get<{ tenant_id: string | null }[]>(KEYS);
      expect(list.body.data.length).toBeGreaterThan(0);
      expect(new Set(list.body.data.map((k) => k.tenant_id))).toEqual(new Set(['tenant-a']));
    });

    it('a global admin makes keys in any tenant, in default by omission, or global (admin only)', async () => {
      const inB = await global.post<{ tenant_id: string }>(KEYS, {
        name: 'b-c',
        role: 'client',
        tenant_id: 'tenant-b',
      });
      expect(inB.body.data.tenant_id).toBe('tenant-b');
      const omitted = await global.post<{ tenant_id: string }>(KEYS, { name: 'd-c', role: 'client' });
      expect(omitted.body.data.tenant_id).toBe('default');
      const globalAdmin = await global.post<{ tenant_id: string | null }>(KEYS, {
        name: 'g',
        role: 'admin',
        tenant_id: null,
      });
      expect(globalAdmin.status).toBe(201);
      expect(globalAdmin.body.data.tenant_id).toBeNull();
      expect((await global.post(KEYS, { name: 'g2', role: 'client', tenant_id: null })).status).toBe(400);
      expect((await global.post(KEYS, { name: 'g3', role: 'client', tenant_id: 'nowhere' })).status).toBe(404);
      // Acting for tenant A (X-Tenant-Id), an omitted tenant_id means A.
      const res = await fetch(`${t.url}${KEYS}`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${t.keys.admin}`,
          'Content-Type': 'application/json',
          'X-Tenant-Id': 'tenant-a',
        },
        body: JSON.stringify({ name: 'a-by-global', role: 'client' }),
      });
      expect(((await res.json()) as { data: { tenant_id: string } }).data.tenant_id).toBe('tenant-a');
    });
  });

  describe('isolation', () => {
    it("tenant B's key gets 404 on A's task (get, logs, cancel, retry) and an empty list", async () => {
      for (const res of [
        await clientB.get(`/api/v1/tasks/${taskA.task_id}`),
        await clientB.get(`/api/v1/tasks/${taskA.task_id}/logs`),
        await clientB.post(`/api/v1/tasks/${taskA.task_id}/cancel`, {}),
        await clientB.post(`/api/v1/tasks/${taskA.task_id}/retry`, {}),
        await adminB.delete(`/api/v1/tasks/${taskA.task_id}`),
      ])
        expect(res.status).toBe(404);
      const list = await clientB.get<{ tasks: Task[] }>('/api/v1/tasks');
      expect(list.body.data.tasks).toEqual([]);
      // B's worker cannot claim A's task either.
      const next = await clientB.get(`/api/v1/tasks/next?worker_id=b-worker`);
      expect(next.body.data).toBeNull();
      // A's row is unchanged, and A still sees it with its events.
      const mine = await clientA.get<Task>(`/api/v1/tasks/${taskA.task_id}`);
      expect(mine.body.data.status).toBe('waiting'); // pending, in the canonical vocabulary
      const logs = await clientA.get<unknown[]>(`/api/v1/tasks/${taskA.task_id}/logs`);
      expect(logs.status).toBe(200);
      expect(JSON.stringify(logs.body.data)).toContain('created');
    });

    it("A's node is a 404 to B, and B's node list is empty", async () => {
      await t.db.query(`INSERT INTO nodes (id, name, tenant_id) VALUES ('node-of-a', 'A node', 'tenant-a')`);
      expect((await clientA.get('/api/v1/nodes/node-of-a')).status).toBe(200);
      expect((await clientB.get('/api/v1/nodes/node-of-a')).status).toBe(404);
      expect((await adminB.post('/api/v1/nodes/node-of-a/drain', {})).status).toBe(404);
      expect((await adminB.delete('/api/v1/nodes/node-of-a')).status).toBe(404);
      const list = await clientB.get<{ nodes: unknown[] }>('/api/v1/nodes');
      expect(list.body.data.nodes).toEqual([]);
      const [{ draining }] = (await t.db.query(`SELECT draining FROM nodes WHERE id = 'node-of-a'`)) as {
        draining: boolean;
      }[];
      expect(draining).toBe(false);
    });

    it("names are unique per tenant: A and B both have a rule and a service named x; B cannot see or change A's", async () => {
      const ruleA = await adminA.post<{ id: string }>('/api/v1/routing/rules', { name: 'x', conditions: [] });
      expect(ruleA.status).toBe(201);
      const ruleB = await adminB.post<{ id: string }>('/api/v1/routing/rules', { name: 'x', conditions: [] });
      expect(ruleB.status).toBe(201);
      expect((await adminA.post('/api/v1/routing/rules', { name: 'x', conditions: [] })).status).toBe(409);
      expect((await adminB.get(`/api/v1/routing/rules/${ruleA.body.data.id}`)).status).toBe(404);
      expect((await adminB.delete(`/api/v1/routing/rules/${ruleA.body.data.id}`)).status).toBe(404);
      const rulesB = await adminB.get<{ rules: { id: string }[] }>('/api/v1/routing/rules');
      expect(rulesB.body.data.rules.map((r) => r.id)).toEqual([ruleB.body.data.id]);
      expect((await adminA.get(`/api/v1/routing/rules/${ruleA.body.data.id}`)).status).toBe(200);

      const service = { name: 'x', endpoint: 'ws://127.0.0.1:9/agent' };
      const svcA = await adminA.post<unknown>('/api/v1/services', service);
      expect(svcA.status).toBe(201);
      const idA = (svcA.body as unknown as { service_id: string }).service_id;
      expect((await adminB.post('/api/v1/services', service)).status).toBe(201);
      expect((await adminA.post('/api/v1/services', service)).status).toBe(409);
      expect((await adminB.get(`/api/v1/services/${idA}`)).status).toBe(404);
      expect((await adminB.delete(`/api/v1/services/${idA}`)).status).toBe(404);
      expect((await adminA.get(`/api/v1/services/${idA}`)).status).toBe(200);
    });

    it('a global admin sees every tenant, or acts for one with X-Tenant-Id; tenant keys may not', async () => {
      expect((await global.get(`/api/v1/tasks/${taskA.task_id}`)).status).toBe(200);
      const asA = await global.get(`/api/v1/tasks/${taskA.task_id}`, { 'X-Tenant-Id': 'tenant-a' });
      expect(asA.status).toBe(200);
      const asB = await global.get(`/api/v1/tasks/${taskA.task_id}`, { 'X-Tenant-Id': 'tenant-b' });
      expect(asB.status).toBe(404);
      const unknown = await global.get('/api/v1/tasks', { 'X-Tenant-Id': 'nowhere' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error?.code).toBe('TENANT_NOT_FOUND');
      // A tenant key naming another tenant: 404 (never 403); its own: fine.
      const foreign = await clientB.get(`/api/v1/tasks/${taskA.task_id}`, { 'X-Tenant-Id': 'tenant-a' });
      expect(foreign.status).toBe(404);
      expect(foreign.body.error?.code).toBe('TENANT_NOT_FOUND');
      expect((await clientA.get(`/api/v1/tasks/${taskA.task_id}`, { 'X-Tenant-Id': 'tenant-a' })).status).toBe(200);
      // Written by a global admin acting for B: the task is B's.
      const madeForB = await global.post<Task>('/api/v1/tasks', { prompt: 'for B' }, { 'X-Tenant-Id': 'tenant-b' });
      expect((await clientB.get(`/api/v1/tasks/${madeForB.body.data.task_id}`)).status).toBe(200);
      expect((await clientA.get(`/api/v1/tasks/${madeForB.body.data.task_id}`)).status).toBe(404);
    });

    it("seed 001's tenantId / familyId in a body name the tenant as X-Tenant-Id does", async () => {
      // A global admin names B in the body: the task is B's, and the field is not refused as unknown.
      const viaFamily = await global.post<Task>('/api/v1/tasks', { prompt: 'for B', familyId: 'tenant-b' });
      expect(viaFamily.status).toBe(201);
      expect((await clientB.get(`/api/v1/tasks/${viaFamily.body.data.task_id}`)).status).toBe(200);
      expect((await clientA.get(`/api/v1/tasks/${viaFamily.body.data.task_id}`)).status).toBe(404);
      const viaTenant = await global.post<Task>('/api/v1/tasks', { prompt: 'for A', tenantId: 'tenant-a' });
      expect((await clientA.get(`/api/v1/tasks/${viaTenant.body.data.task_id}`)).status).toBe(200);
      // A tenant key naming another tenant in the body: 404, and nothing is made.
      const before = (await global.get<{ tasks: unknown[] }>('/api/v1/tasks?limit=100')).body.data.tasks.length;
      const foreign = await clientB.post('/api/v1/tasks', { prompt: 'sneak', tenantId: 'tenant-a' });
      expect(foreign.status).toBe(404);
      expect(foreign.body.error?.code).toBe('TENANT_NOT_FOUND');
      expect((await global.get<{ tasks: unknown[] }>('/api/v1/tasks?limit=100')).body.data.tasks.length).toBe(before);
      // Its own tenant named in the body is fine.
      expect((await clientB.post('/api/v1/tasks', { prompt: 'mine', familyId: 'tenant-b' })).status).toBe(201);
    });

    it("batched completions stay per tenant: B's complete of A's task in the same tick is a 404, A's applies", async () => {
      const made = await clientA.post<Task>('/api/v1/tasks', { prompt: 'run me', work_directory: '/a-only' });
      const next = await clientA.get<Task>(`/api/v1/tasks/next?worker_id=a-worker&work_path=/a-only`);
      expect(next.body.data.task_id).toBe(made.body.data.task_id);
      const id = made.body.data.task_id;
      const [fromB, fromA] = await Promise.all([
        clientB.post(`/api/v1/tasks/${id}/complete`, { result: { status: 'success', output: 'B' } }),
        clientA.post<Task>(`/api/v1/tasks/${id}/complete`, { result: { status: 'success', output: 'A' } }),
      ]);
      expect(fromB.status).toBe(404);
      expect(fromA.status).toBe(200);
      const [row] = (await t.db.query(`SELECT status, result, tenant_id FROM tasks WHERE id = $1`, [id])) as {
        status: string;
        result: unknown;
        tenant_id: string;
      }[];
      expect(row).toMatchObject({ status: 'completed', result: { output: 'A' }, tenant_id: 'tenant-a' });
    });

    it("rows the system writes about a tenant's row take its tenant (a task's events)", async () => {
      // No context: the system ('*'), as the dispatcher and socket handlers write.
      await t.db.query(`INSERT INTO task_events (task_id, type, message) VALUES ($1, 'note', 'by the system')`, [
        taskA.task_id,
      ]);
      const rows = (await t.db.query(`SELECT tenant_id FROM task_events WHERE task_id = $1 AND type = 'note'`, [
        taskA.task_id,
      ])) as { tenant_id: string }[];
      expect(rows).toEqual([{ tenant_id: 'tenant-a' }]);
    });

    it('the task paths name the tenant themselves: with the inheriting trigger failing, a task still runs end to end', async () => {
      // The dispatcher writes as the system ('*'); the trigger that looks up the parent's tenant is
      // only for inserts that name none (the test above). Made to fail here, as the database owner.
      const [{ def }] = (await t.db.query(`SELECT pg_get_functiondef('taskhub_tenant_from_task'::regproc) AS def`)) as {
        def: string;
      }[];
      const asOwner = (sql: string): Promise<unknown> =>
        t.db.transaction(async (m) => {
          await m.query('SET LOCAL ROLE NONE');
          await m.query(sql);
        });
      await asOwner(`CREATE OR REPLACE FUNCTION taskhub_tenant_from_task() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'inheriting trigger called for %', NEW.type; END $$`);
      const worker = await global.post<{ key: string }>(KEYS, {
        name: 'a-device',
        roles: ['worker'],
        tenant_id: 'tenant-a',
      });
      const device = new TestDevice(t.url, worker.body.data.key);
      try {
        await device.register('tenant-a-device', { capacity: 10 }); // tenant A's other tasks are pending too
        const created = await clientA.post<Task>('/api/v1/tasks', {
          type: 'prompt',
          prompt: 'events name their tenant',
        });
        expect(created.status).toBe(201);
        const id = created.body.data.task_id;
        const assigned = await device.next('new_task', (m) => m.task_id === id);
        expect(
          await device.request('task_progress', { task_id: id, attempt: assigned.attempt, progress: 50 }),
        ).toMatchObject({
          success: true,
        });
        expect(
          await device.request('task_result', { task_id: id, attempt: assigned.attempt, result: { ok: 1 } }),
        ).toMatchObject({
          success: true,
          status: 'completed',
        });
        const events = (await t.db.query(`SELECT type, tenant_id FROM task_events WHERE task_id = $1 ORDER BY id`, [
          id,
        ])) as { type: string; tenant_id: string }[];
        expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['created', 'dispatched', 'completed']));
        expect(new Set(events.map((e) => e.tenant_id))).toEqual(new Set(['tenant-a']));
        // And an insert by the system that names no tenant does reach the (now failing) trigger.
        await expect(
          t.db.query(`INSERT INTO task_events (task_id, type, message) VALUES ($1, 'note', 'x')`, [id]),
        ).rejects.toThrow(/inheriting trigger called for note/);
      } finally {
        device.close();
        await asOwner(def);
      }
    });

    it('idempotency keys are per tenant', async () => {
      const a = await clientA.post<Task>('/api/v1/tasks', { prompt: 'p', idempotency_key: 'same-key' });
      const b = await clientB.post<Task>('/api/v1/tasks', { prompt: 'p', idempotency_key: 'same-key' });
      expect(a.status).toBe(201);
      expect(b.status).toBe(201);
      expect(b.body.data.task_id).not.toBe(a.body.data.task_id);
      const again = await clientA.post<Task>('/api/v1/tasks', { prompt: 'p', idempotency_key: 'same-key' });
      expect(again.body.data.task_id).toBe(a.body.data.task_id);
    });
  });

  describe('row-level security through the app role', () => {
    let raw: pg.Client;
    beforeAll(async () => {
      raw = new pg.Client({ connectionString: await suiteDatabaseUrl() });
      await raw.connect();
      await raw.query('SET ROLE taskhub_app');
    });
    afterAll(() => raw.end());

    it('without taskhub.tenant_id a query sees nothing and an insert fails', async () => {
      const { rows } = await raw.query(`SELECT count(*)::int AS n FROM tasks`);
      expect(rows[0].n).toBe(0);
      // The insert default is NULL here; the policy (checked first) or NOT NULL refuses it.
      const refused = /row-level security|null value/;
      await expect(raw.query(`INSERT INTO tasks (prompt) VALUES ('sneaky')`)).rejects.toThrow(refused);
      await raw.query(`SELECT set_config('taskhub.tenant_id', '', false)`);
      expect((await raw.query(`SELECT count(*)::int AS n FROM tasks`)).rows[0].n).toBe(0);
      await expect(raw.query(`INSERT INTO tasks (prompt) VALUES ('sneaky')`)).rejects.toThrow(refused);
      await expect(raw.query(`INSERT INTO tasks (prompt, tenant_id) VALUES ('sneaky', 'tenant-a')`)).rejects.toThrow(
        refused,
      );
      expect((await raw.query(`SELECT count(*)::int AS n FROM api_keys`)).rows[0].n).toBe(0);
    });

    it("with tenant A set, only A's rows; writing B's rows is refused", async () => {
      await raw.query(`SELECT set_config('taskhub.tenant_id', 'tenant-a', false)`);
      const { rows } = await raw.query<{ tenant_id: string }>(`SELECT DISTINCT tenant_id FROM tasks`);
      expect(rows).toEqual([{ tenant_id: 'tenant-a' }]);
      await expect(raw.query(`INSERT INTO tasks (prompt, tenant_id) VALUES ('x', 'tenant-b')`)).rejects.toThrow(
        /row-level security/,
      );
      const upd = await raw.query(`UPDATE tasks SET prompt = 'changed' WHERE tenant_id = 'tenant-b'`);
      expect(upd.rowCount).toBe(0);
      const [{ n }] = (await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE tenant_id = 'tenant-b'`)) as {
        n: number;
      }[];
      expect(n).toBeGreaterThan(0);
    });
  });
});
