import { request as httpRequest } from 'node:http';
import pg from 'pg';
import { HubProcess, freshDatabase } from '../support/hub-process.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** A trigger that fails every task insert the way an unforeseen bug would: a plain error with a private message. */
const BREAK_TASK_INSERTS = `
  CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'secret internal detail'; END $$;
  CREATE TRIGGER test_boom BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION test_boom();`;
const MEND_TASK_INSERTS = `DROP TRIGGER test_boom ON tasks; DROP FUNCTION test_boom();`;

/** DDL as the connection's own user: the hub's pool acts as taskhub_app, which may not create (docs/tenants.md). */
function asOwner(t: TestApp, sql: string): Promise<void> {
  return t.db.transaction(async (tx) => {
    await tx.query('SET LOCAL ROLE NONE');
    await tx.query(sql);
  });
}

/** Sends raw bytes with the given headers (fetch would fix up what we want to get wrong). */
function rawPost(
  url: string,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Every error status is its own, with its own code; nothing unknown is a guessed 400. */
describe('error statuses and codes over real HTTP', () => {
  let t: TestApp;
  let client: Api;

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
  });
  afterAll(() => t.close());

  it('a text/plain body on a JSON route is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await rawPost(
      t.url,
      '/api/v1/tasks',
      { Authorization: `Bearer ${t.keys.client}`, 'Content-Type': 'text/plain' },
      'do the thing',
    );
    expect(res.status).toBe(415);
    expect(res.body).toMatchObject({
      success: false,
      error: { code: 'UNSUPPORTED_MEDIA_TYPE', details: { field: 'Content-Type' } },
    });
    expect((await t.db.query(`SELECT count(*)::int AS n FROM tasks`))[0].n).toBe(0);
  });

  it('a JSON body in a charset the parser cannot read is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await rawPost(
      t.url,
      '/api/v1/tasks',
      { Authorization: `Bearer ${t.keys.client}`, 'Content-Type': 'application/json; charset=klingon' },
      '{"prompt":"x"}',
    );
    expect(res.status).toBe(415);
    expect(res.body).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
  });

  it('a +json media type is JSON', async () => {
    const res = await rawPost(
      t.url,
      '/api/v1/tasks',
      { Authorization: `Bearer ${t.keys.client}`, 'Content-Type': 'application/vnd.taskhub+json' },
      '{"prompt":"x"}',
    );
    expect(res.status).toBe(201);
  });

  it('a body over the limit is 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await client.post('/api/v1/tasks', { prompt: 'x'.repeat(3 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { field: 'body' } });
  });

  it('malformed JSON is 400 VALIDATION_ERROR naming the body', async () => {
    const res = await client.post('/api/v1/tasks', '{"prompt": tru');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'body' } });
  });

  it('an unknown route is 404 NOT_FOUND, whatever the method', async () => {
    for (const res of [await client.get('/api/v1/no-such-thing'), await client.delete('/api/v1/tasks')]) {
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ success: false, error: { code: 'NOT_FOUND' } });
    }
  });

  it('an unforeseen error is 500 INTERNAL_ERROR with the request id and without its message', async () => {
    await asOwner(t, BREAK_TASK_INSERTS);
    try {
      const res = await client.post('/api/v1/tasks', { prompt: 'x' }, { 'X-Request-Id': 'req-boom-1' });
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject({
        success: false,
        error: { code: 'INTERNAL_ERROR', message: 'Internal server error' },
        request_id: 'req-boom-1',
      });
      expect(JSON.stringify(res.body)).not.toMatch(/secret|stack|trigger/i);
    } finally {
      await asOwner(t, MEND_TASK_INSERTS);
    }
  });
});

const skipReason = HubProcess.skipReason();
if (skipReason) process.stdout.write(`\n[errors] 5xx log check skipped: ${skipReason}\n`);

/** Each exception filter (canonical, Codex, seed 004) logs a 5xx with the request id and the stack. */
(skipReason ? describe.skip : describe)('5xx answers are logged on every surface', () => {
  let hub: HubProcess;
  let db: pg.Client;

  beforeAll(async () => {
    const url = await freshDatabase('errors-log');
    hub = await new HubProcess({ DATABASE_URL: url, AUTH_REQUIRED: 'false', LOG_LEVEL: 'error' }).start();
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(BREAK_TASK_INSERTS);
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    await hub?.stop();
  });

  /** The hub's JSON log lines. */
  const logLines = (): Record<string, unknown>[] =>
    hub.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it.each([
    ['canonical', '/api/v1/tasks', { prompt: 'x' }, 'req-log-canonical'],
    ['Codex (seed 000)', '/tasks', { prompt: 'x' }, 'req-log-codex'],
    ['seed 004', '/api/dispatch-task', { task_type: 'DELIST', data: { a: 1 } }, 'req-log-seed004'],
  ])('%s: a 5xx is logged with the request id and the stack', async (_surface, path, body, requestId) => {
    const res = await fetch(`${hub.url}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(500);
    expect(await res.text()).not.toMatch(/secret internal detail/);
    const deadline = Date.now() + 5000;
    let line: Record<string, unknown> | undefined;
    while (!line && Date.now() < deadline) {
      line = logLines().find((l) => l.request_id === requestId && l.context === 'HTTP');
      if (!line) await new Promise((r) => setTimeout(r, 50));
    }
    expect(line).toBeDefined();
    expect(line?.msg).toMatch(new RegExp(`POST ${path} failed: .*secret internal detail`));
    expect((line?.err as { stack?: string } | undefined)?.stack).toMatch(/secret internal detail[\s\S]*\n\s+at /);
  });
});
