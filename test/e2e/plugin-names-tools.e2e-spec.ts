import { createHmac, randomUUID } from 'node:crypto';
import { runAsTenant } from '../../src/database/tenant-context.js';
import { PluginsService } from '../../src/modules/plugin-callbacks/plugins.service.js';
import { apiClient, type Api, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

interface Issued {
  name: string;
  secret: string;
  token: string;
  tools: unknown[];
}

/** Standard Webhooks headers for `body`, as docs/plugin-callbacks.md says. */
function signedHeaders(secret: string, body: string, id = `msg_${randomUUID()}`): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const sig = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  return {
    'Content-Type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': ts,
    'webhook-signature': `v1,${sig}`,
  };
}

// Issue 26: plugin names as Apex Bridge spells them (case-preserving, matched case-insensitively)
// and the tools a plugin declares. Real hub, real PostgreSQL.
describe('plugin names as Apex Bridge spells them, and plugin tools', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    t = await startTestApp({ PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE: '10000' });
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    devices.splice(0).forEach((d) => d.close());
    await truncate(t.db, 'task_events, tasks, nodes, plugins, plugin_deliveries');
  });
  afterAll(() => t.close());

  const register = async (body: Record<string, unknown>): Promise<Issued> => {
    const res = await admin.post<Issued>('/api/v1/plugins', body);
    expect(res.status).toBe(201);
    return res.body.data;
  };
  const callback = async (path: string, body: string, headers: Record<string, string>) => {
    const res = await fetch(`${t.url}${path}`, { method: 'POST', headers, body });
    return { status: res.status, body: (await res.json()) as { data: Record<string, unknown>; error: unknown } };
  };
  const task = async (id: string): Promise<Task> => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data;

  describe('names', () => {
    it('accepts FileOrganizer and SciCalculator, keeps their case, and finds them in any case', async () => {
      const made = await register({ name: 'FileOrganizer' });
      expect(made.name).toBe('FileOrganizer');
      await register({ name: 'SciCalculator' });
      const one = await admin.get<{ name: string }>('/api/v1/plugins/fileorganizer');
      expect(one.status).toBe(200);
      expect(one.body.data.name).toBe('FileOrganizer');
      const list = await admin.get<{ plugins: { name: string }[] }>('/api/v1/plugins');
      expect(list.body.data.plugins.map((p) => p.name)).toEqual(['FileOrganizer', 'SciCalculator']);

      // One name per tenant whatever its case.
      for (const name of ['fileorganizer', 'FILEORGANIZER', 'FileOrganizer']) {
        const taken = await admin.post('/api/v1/plugins', { name });
        expect([name, taken.status, taken.body.error?.code]).toEqual([name, 409, 'CONFLICT']);
      }
      for (const name of ['Bad Name', '-lead', '_lead', 'x'.repeat(65), 'Ünicode']) {
        const bad = await admin.post('/api/v1/plugins', { name });
        expect([name, bad.status, bad.body.error?.details?.field]).toEqual([name, 400, 'name']);
      }
      expect((await admin.post('/api/v1/plugins/SCICALCULATOR/rotate')).status).toBe(200);
      const removed = await admin.delete<{ name: string }>('/api/v1/plugins/scicalculator');
      expect(removed.body.data.name).toBe('SciCalculator');
      expect((await admin.get('/api/v1/plugins/SciCalculator')).status).toBe(404);
    });

    it('a task naming fileorganizer awaits FileOrganizer, and a callback path in any case settles it (one delivery id across spellings)', async () => {
      const p = await register({ name: 'FileOrganizer' });
      const created = (
        await client.post<Task>('/api/v1/tasks', { prompt: 'sort D:/docs', awaits_callback: 'fileorganizer' })
      ).body.data;
      expect(created).toMatchObject({
        state: 'running',
        worker_id: 'plugin:FileOrganizer',
        awaits_callback: 'FileOrganizer',
      });
      const body = JSON.stringify({ status: 'success', output: { moved: 3 } });
      const headers = signedHeaders(p.secret, body, 'same-delivery');
      const res = await callback(`/plugin-callback/fileorganizer/${created.task_id}`, body, headers);
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({ task_id: created.task_id, status: 'completed' });
      // The same delivery through another spelling is the same plugin's delivery: a duplicate.
      const again = await callback(`/plugin-callback/FILEORGANIZER/${created.task_id}`, body, headers);
      expect(again.body.data).toMatchObject({ duplicate: true });
      expect(await task(created.task_id)).toMatchObject({ state: 'completed', result: { moved: 3 } });
      const rows: { plugin: string }[] = await t.db.query(`SELECT plugin FROM plugin_deliveries`);
      expect(rows).toEqual([{ plugin: 'FileOrganizer' }]);
    });

    it("a node's pending result naming the plugin in another case hands the task to it", async () => {
      const p = await register({ name: 'SciCalculator' });
      const d = new TestDevice(t.url, t.keys.worker);
      devices.push(d);
      await d.register('calc-node', { capacity: 1 });
      const created = (
        await client.post<Task>('/api/v1/tasks', { type: 'calc', prompt: '1+1', metadata: { plugin: 'scicalculator' } })
      ).body.data;
      const assigned = await d.next('new_task');
      const ack = await d.request('task_result', {
        task_id: created.task_id,
        attempt: assigned.attempt,
        status: 'pending',
        plugin: 'SCICALCULATOR',
      });
      expect(ack).toMatchObject({ success: true, status: 'running' });
      expect(await task(created.task_id)).toMatchObject({ worker_id: 'plugin:SciCalculator', node_id: null });
      const body = JSON.stringify({ status: 'success', output: 2 });
      const res = await callback(`/plugin-callback/scicalculator/${created.task_id}`, body, {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${p.token}`,
      });
      expect(res.body.data).toEqual({ task_id: created.task_id, status: 'completed' });
    });
  });

  describe('tools', () => {
    const organize = {
      type: 'object',
      properties: { path: { type: 'string' } },
      required: ['path'],
    };

    it('takes both OpenAI shapes, normalises them, shows them in every view, and PATCH replaces them', async () => {
      const made = await register({
        name: 'FileOrganizer',
        tools: [
          { name: 'organize_files', description: 'Sort a folder', parameters: organize },
          { type: 'function', function: { name: 'list-Files', strict: true } },
        ],
      });
      const normalised = [
        { name: 'organize_files', description: 'Sort a folder', parameters: organize },
        { name: 'list-Files', description: null, parameters: null },
      ];
      expect(made.tools).toEqual(normalised);
      expect((await admin.get<{ tools: unknown }>('/api/v1/plugins/fileorganizer')).body.data.tools).toEqual(
        normalised,
      );
      const list = await admin.get<{ plugins: { tools: unknown }[] }>('/api/v1/plugins');
      expect(list.body.data.plugins[0].tools).toEqual(normalised);
      // Without tools: an empty list.
      expect((await register({ name: 'plain' })).tools).toEqual([]);

      const patched = await admin.patch<{ name: string; tools: unknown }>('/api/v1/plugins/FILEORGANIZER', {
        tools: [{ type: 'function', function: { name: 'undo', description: 'Put them back' } }],
      });
      expect(patched.status).toBe(200);
      expect(patched.body.data).toEqual(
        expect.objectContaining({
          name: 'FileOrganizer',
          tools: [{ name: 'undo', description: 'Put them back', parameters: null }],
        }),
      );
      expect((await admin.patch('/api/v1/plugins/ghost', { tools: [] })).status).toBe(404);
      expect((await admin.patch('/api/v1/plugins/plain', {})).body.error?.details?.field).toBe('tools');
      expect((await client.patch('/api/v1/plugins/plain', { tools: [] })).status).toBe(403);
    });

    it('bad tools are a 400 naming the field, and nothing is stored', async () => {
      const tooMany = Array.from({ length: 129 }, (_, i) => ({ name: `t${i}` }));
      const cases: [unknown, string][] = [
        ['nope', 'tools'],
        [tooMany, 'tools'],
        [[{ name: 'ok' }, 'string'], 'tools[1]'],
        [[{ name: 'ok' }, { name: 'has space' }], 'tools[1].name'],
        [[{ name: 'a'.repeat(65) }], 'tools[0].name'],
        [[{ description: 'no name' }], 'tools[0].name'],
        [[{ name: 'a' }, { name: 'b' }, { name: 'a' }], 'tools[2].name'],
        [[{ name: 'a', description: 5 }], 'tools[0].description'],
        [[{ name: 'a', parameters: 'object' }], 'tools[0].parameters'],
        [[{ name: 'a', parameters: [] }], 'tools[0].parameters'],
        [[{ name: 'a', parameters: { type: 'array', items: {} } }], 'tools[0].parameters'],
        [[{ name: 'a', parameters: { properties: {} } }], 'tools[0].parameters'],
        [[{ type: 'retrieval' }], 'tools[0].type'],
        [[{ type: 'function' }], 'tools[0].function'],
        [[{ type: 'function', function: { name: 'bad name' } }], 'tools[0].function.name'],
        [
          [{ type: 'function', function: { name: 'x', parameters: { type: 'string' } } }],
          'tools[0].function.parameters',
        ],
      ];
      for (const [tools, field] of cases) {
        const res = await admin.post('/api/v1/plugins', { name: 'Broken', tools });
        expect([field, res.status, res.body.error?.code, res.body.error?.details?.field]).toEqual([
          field,
          400,
          'VALIDATION_ERROR',
          field,
        ]);
      }
      expect((await admin.get('/api/v1/plugins/broken')).status).toBe(404);
      await register({ name: 'Kept', tools: [{ name: 'keep' }] });
      const patched = await admin.patch('/api/v1/plugins/kept', { tools: [{ name: 'x' }, { name: 'x' }] });
      expect([patched.status, patched.body.error?.details?.field]).toEqual([400, 'tools[1].name']);
      expect((await admin.get<{ tools: unknown }>('/api/v1/plugins/kept')).body.data.tools).toEqual([
        { name: 'keep', description: null, parameters: null },
      ]);
      // 128 is the limit, not past it.
      const most = Array.from({ length: 128 }, (_, i) => ({ name: `t${i}` }));
      expect((await admin.patch('/api/v1/plugins/kept', { tools: most })).status).toBe(200);
    });

    it("PluginsService.tools() answers the current tenant's plugins' tools only", async () => {
      const global = admin;
      expect((await global.post('/api/v1/tenants', { id: 'tools-b', name: 'Tools B' })).status).toBe(201);
      const key = await global.post<{ key: string }>('/api/v1/api-keys', {
        name: 'tools-b-admin',
        roles: ['admin'],
        tenant_id: 'tools-b',
      });
      const adminB = apiClient(t, key.body.data.key);
      await register({
        name: 'FileOrganizer',
        tools: [
          { name: 'organize_files', description: 'Sort a folder', parameters: organize },
          { type: 'function', function: { name: 'undo' } },
        ],
      });
      await register({ name: 'Alpha', tools: [{ name: 'first' }] });
      await register({ name: 'none' });
      const b = await adminB.post('/api/v1/plugins', {
        name: 'FileOrganizer', // the same name in another tenant is another plugin
        tools: [{ name: 'b_only', description: 'B' }],
      });
      expect(b.status).toBe(201);

      const plugins = t.app.get(PluginsService);
      expect(await runAsTenant('default', () => plugins.tools())).toEqual([
        { plugin: 'Alpha', name: 'first', description: null, parameters: null },
        { plugin: 'FileOrganizer', name: 'organize_files', description: 'Sort a folder', parameters: organize },
        { plugin: 'FileOrganizer', name: 'undo', description: null, parameters: null },
      ]);
      expect(await runAsTenant('tools-b', () => plugins.tools())).toEqual([
        { plugin: 'FileOrganizer', name: 'b_only', description: 'B', parameters: null },
      ]);
      expect(await runAsTenant('no-such-tenant', () => plugins.tools())).toEqual([]);
      expect((await adminB.get<{ plugins: { name: string }[] }>('/api/v1/plugins')).body.data.plugins).toHaveLength(1);
    });
  });
});
