import { AppConfig, CONFIG_KEYS } from '../../src/config/app-config.js';
import { ApiKeysService } from '../../src/modules/auth/api-keys.service.js';
import { CONFIG_LISTENER_APPLICATION } from '../../src/modules/runtime-config/config-channel.service.js';
import { HubProcess } from '../support/hub-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { createEmptyDatabase } from '../support/test-database.js';

interface Setting {
  key: string;
  value: string | number | boolean | null;
  source: 'default' | 'env' | 'file' | 'runtime';
  hot: boolean;
  description?: string;
  updated_by?: string | null;
}
interface Reply<T> {
  status: number;
  text: string;
  body: {
    success: boolean;
    data: T;
    error: { code: string; message: string; details?: Record<string, unknown> } | null;
    request_id: string;
  };
}

async function call<T>(
  base: string,
  key: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<Reply<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(key ? { Authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds (or the deadline passes); answers how long it took. */
async function within(ms: number, check: () => Promise<boolean> | boolean): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await sleep(25);
  }
  return Date.now() - started;
}

describe('runtime configuration /v1/config (one hub)', () => {
  let t: TestApp;
  const admin = <T>(method: string, path: string, body?: unknown) => call<T>(t.url, t.keys.admin, method, path, body);
  const setting = async (key: string) => (await admin<Setting>('GET', `/v1/config/${key}`)).body.data;

  beforeAll(async () => {
    t = await startTestApp({ RATE_LIMIT_WINDOW_MS: '60000' });
    await t.db.query('DELETE FROM runtime_settings');
  });
  afterAll(async () => {
    await t?.db.query('DELETE FROM runtime_settings');
    await t?.close();
  });
  afterEach(async () => {
    for (const key of [
      'LOG_LEVEL',
      'DISPATCH_STRATEGY',
      'RATE_LIMIT_MAX',
      'TASK_DEFAULT_MAX_RETRIES',
      'TASK_DEFAULT_TIMEOUT_SECONDS',
      'RETRY_BACKOFF_BASE_MS',
      'RETRY_BACKOFF_CAP_MS',
    ]) {
      await admin('DELETE', `/v1/config/${key}`);
    }
  });

  it('lists every setting in the envelope with its source and hot flag, and masks the database password', async () => {
    const res = await admin<{ settings: Setting[] }>('GET', '/v1/config');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, error: null });
    expect(typeof res.body.request_id).toBe('string');
    const byKey = new Map(res.body.data.settings.map((s) => [s.key, s]));
    expect([...byKey.keys()].sort()).toEqual([...CONFIG_KEYS].sort());
    expect(byKey.get('LOG_LEVEL')).toMatchObject({ value: 'silent', source: 'env', hot: true });
    expect(byKey.get('RATE_LIMIT_WINDOW_MS')).toMatchObject({ value: 60000, source: 'env', hot: true });
    expect(byKey.get('DISPATCH_STRATEGY')).toMatchObject({ value: 'least-loaded', source: 'default', hot: true });
    expect(byKey.get('PORT')).toMatchObject({ source: 'env', hot: false });
    expect(byKey.get('REDIS_URL')).toMatchObject({ value: null, source: 'default', hot: false });
    expect(byKey.get('PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE')).toMatchObject({ value: 60, hot: true });
    expect(byKey.get('RATE_LIMIT_MAX')?.description).toMatch(/per window/);

    const real = new URL(t.app.get(AppConfig).DATABASE_URL as string);
    const shown = byKey.get('DATABASE_URL');
    expect(shown).toMatchObject({ source: 'env', hot: false });
    expect(shown?.value).toContain(real.host);
    if (real.password) {
      expect(res.text).not.toContain(real.password);
      expect(shown?.value).toContain(':****@');
    }
  });

  it('answers one setting, 404 NOT_FOUND for an unknown one', async () => {
    expect(await setting('TASK_DEFAULT_MAX_RETRIES')).toMatchObject({
      key: 'TASK_DEFAULT_MAX_RETRIES',
      value: 3,
      source: 'default',
      hot: true,
    });
    const res = await admin('GET', '/v1/config/NO_SUCH_SETTING');
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('NOT_FOUND');
  });

  it('is for admins only (403 for a client key, 401 without one)', async () => {
    for (const [method, path, body] of [
      ['GET', '/v1/config', undefined],
      ['GET', '/v1/config/LOG_LEVEL', undefined],
      ['PATCH', '/v1/config', { LOG_LEVEL: 'debug' }],
      ['DELETE', '/v1/config/LOG_LEVEL', undefined],
    ] as const) {
      expect((await call(t.url, t.keys.client, method, path, body)).status).toBe(403);
      expect((await call(t.url, t.keys.worker, method, path, body)).status).toBe(403);
      expect((await call(t.url, undefined, method, path, body)).status).toBe(401);
    }
    expect(t.app.get(AppConfig).LOG_LEVEL).toBe('silent');
  });

  it.each([
    ['an unknown key', { NO_SUCH_SETTING: 1 }, 'NO_SUCH_SETTING', /Unknown setting/],
    ['a restart-only key', { PORT: 4000 }, 'PORT', /needs a restart/],
    [
      'a restart-only key beside a hot one',
      { LOG_LEVEL: 'debug', DATABASE_POOL_SIZE: 5 },
      'DATABASE_POOL_SIZE',
      /needs a restart/,
    ],
    ['a bad type', { RATE_LIMIT_MAX: 'lots' }, 'RATE_LIMIT_MAX', /integer/],
    ['a fraction', { RATE_LIMIT_MAX: 2.5 }, 'RATE_LIMIT_MAX', /integer/],
    ['null', { TASK_DEFAULT_MAX_RETRIES: null }, 'TASK_DEFAULT_MAX_RETRIES', /integer/],
    ['out of range', { TASK_DEFAULT_MAX_RETRIES: 101 }, 'TASK_DEFAULT_MAX_RETRIES', /greater than 100/],
    ['out of range as a string', { RATE_LIMIT_WINDOW_MS: '5' }, 'RATE_LIMIT_WINDOW_MS', /less than 100/],
    ['not one of the choices', { DISPATCH_STRATEGY: 'fastest' }, 'DISPATCH_STRATEGY', /one of/],
    [
      'one bad value among good ones',
      { LOG_LEVEL: 'debug', RATE_LIMIT_MAX: 10, PROXY_DEFAULT_STRATEGY: 'best' },
      'PROXY_DEFAULT_STRATEGY',
      /one of/,
    ],
    ['an empty body', {}, 'body', /No settings/],
    ['an array body', [{ LOG_LEVEL: 'debug' }], 'body', /JSON object/],
    ['a string body', '"LOG_LEVEL=debug"', 'body', /JSON/],
  ])('PATCH with %s is 400 VALIDATION_ERROR naming the field; nothing changes', async (_what, body, field, message) => {
    const before = await admin<{ settings: Setting[] }>('GET', '/v1/config');
    const res = await admin('PATCH', '/v1/config', body);
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('VALIDATION_ERROR');
    expect(res.body.error?.details?.field).toBe(field);
    expect(`${res.body.error?.message} ${String(res.body.error?.details?.message)}`).toMatch(message);
    const after = await admin<{ settings: Setting[] }>('GET', '/v1/config');
    expect(after.body.data).toEqual(before.body.data);
    expect((await t.db.query('SELECT count(*)::int AS n FROM runtime_settings'))[0].n).toBe(0);
  });

  it('PATCH applies LOG_LEVEL and DISPATCH_STRATEGY at once, stores them, and DELETE reverts to env and default', async () => {
    const config = t.app.get(AppConfig);
    const res = await admin<{ settings: Setting[] }>('PATCH', '/v1/config', {
      LOG_LEVEL: 'error',
      DISPATCH_STRATEGY: 'round-robin',
    });
    expect(res.status).toBe(200);
    expect(res.body.data.settings).toEqual([
      expect.objectContaining({
        key: 'LOG_LEVEL',
        value: 'error',
        source: 'runtime',
        hot: true,
        updated_by: 'test-admin',
      }),
      expect.objectContaining({ key: 'DISPATCH_STRATEGY', value: 'round-robin', source: 'runtime', hot: true }),
    ]);
    expect(config.LOG_LEVEL).toBe('error');
    expect(config.DISPATCH_STRATEGY).toBe('round-robin');
    const rows = await t.db.query(`SELECT key, value, updated_by FROM runtime_settings ORDER BY key`);
    expect(rows).toEqual([
      { key: 'DISPATCH_STRATEGY', value: 'round-robin', updated_by: 'test-admin' },
      { key: 'LOG_LEVEL', value: 'error', updated_by: 'test-admin' },
    ]);

    const log = await admin<Setting>('DELETE', '/v1/config/LOG_LEVEL');
    expect(log.status).toBe(200);
    expect(log.body.data).toMatchObject({ key: 'LOG_LEVEL', value: 'silent', source: 'env' });
    expect(config.LOG_LEVEL).toBe('silent');
    expect((await admin<Setting>('DELETE', '/v1/config/DISPATCH_STRATEGY')).body.data).toMatchObject({
      value: 'least-loaded',
      source: 'default',
    });
    expect(config.DISPATCH_STRATEGY).toBe('least-loaded');
    // Idempotent: nothing to remove is still 200 with the setting; an unknown key is 404.
    expect((await admin<Setting>('DELETE', '/v1/config/DISPATCH_STRATEGY')).status).toBe(200);
    expect((await admin<Setting>('DELETE', '/v1/config/PORT')).body.data).toMatchObject({ key: 'PORT', source: 'env' });
    expect((await admin('DELETE', '/v1/config/NO_SUCH_SETTING')).status).toBe(404);
    expect(await t.db.query('SELECT key FROM runtime_settings')).toEqual([]);
  });

  it('accepts integers as strings (like the environment) and new tasks take the new defaults', async () => {
    const res = await admin<{ settings: Setting[] }>('PATCH', '/v1/config', {
      TASK_DEFAULT_MAX_RETRIES: '7',
      TASK_DEFAULT_TIMEOUT_SECONDS: 120,
    });
    expect(res.status).toBe(200);
    expect(res.body.data.settings.map((s) => s.value)).toEqual([7, 120]);
    const task = await call<{ max_retries: number; timeout_seconds?: number; task_id: string }>(
      t.url,
      t.keys.client,
      'POST',
      '/api/v1/tasks',
      { prompt: 'defaults' },
    );
    expect(task.status).toBe(201);
    expect(task.body.data.max_retries).toBe(7);
    const [row] = await t.db.query(`SELECT max_retries, timeout_seconds FROM tasks WHERE id = $1`, [
      task.body.data.task_id,
    ]);
    expect(row).toEqual({ max_retries: 7, timeout_seconds: 120 });
  });

  it('retry backoff follows RETRY_BACKOFF_* at once', async () => {
    await admin('PATCH', '/v1/config', { RETRY_BACKOFF_BASE_MS: 600_000, RETRY_BACKOFF_CAP_MS: 600_000 });
    const created = await call<{ task_id: string }>(t.url, t.keys.client, 'POST', '/api/v1/tasks', {
      prompt: 'backoff',
      max_retries: 2,
      work_directory: '/backoff',
    });
    const id = created.body.data.task_id;
    const next = await call<{ task_id: string; attempt: number }>(
      t.url,
      t.keys.worker,
      'GET',
      '/api/v1/tasks/next?worker_id=w-backoff&work_path=/backoff',
    );
    expect(next.body.data.task_id).toBe(id);
    const failed = await call(t.url, t.keys.worker, 'POST', `/api/v1/tasks/${id}/fail`, {
      worker_id: 'w-backoff',
      error: 'boom',
    });
    expect(failed.status).toBe(200);
    const [{ wait }] = await t.db.query(
      `SELECT extract(epoch FROM run_at - now())::float8 AS wait FROM tasks WHERE id = $1`,
      [id],
    );
    expect(wait).toBeGreaterThan(290); // d/2 + jitter with d = 600 s: at least 300 s (the default base would be ~1 s)
  });

  it('RATE_LIMIT_MAX applies to the next request; /v1/config itself is not limited, so it can be undone', async () => {
    const { key } = await t.app.get(ApiKeysService).create('rate-probe', 'client'); // a bucket nobody used yet
    await admin('PATCH', '/v1/config', { RATE_LIMIT_MAX: 2 });
    const probe = () => call(t.url, key, 'GET', '/api/v1/tasks?limit=1');
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await probe()).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect((await admin('GET', '/v1/config')).status).toBe(200);
    expect((await admin('DELETE', '/v1/config/RATE_LIMIT_MAX')).status).toBe(200);
    expect((await probe()).status).toBe(200);
  });
});

describe('runtime configuration shared by two apps on one database', () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    a = await startTestApp();
    await a.db.query('DELETE FROM runtime_settings');
    b = await startTestApp({}, { keepData: true });
  });
  afterAll(async () => {
    await a?.db.query('DELETE FROM runtime_settings');
    await b?.close();
    await a?.close();
  });

  it('a PATCH on one reaches the other through NOTIFY, and so does a DELETE', async () => {
    await call(a.url, a.keys.admin, 'PATCH', '/v1/config', { NODE_RECONNECT_GRACE_MS: 4321 });
    const took = await within(1000, () => b.app.get(AppConfig).NODE_RECONNECT_GRACE_MS === 4321);
    expect(took).toBeLessThan(1000);
    expect(
      (await call<Setting>(b.url, b.keys.admin, 'GET', '/v1/config/NODE_RECONNECT_GRACE_MS')).body.data,
    ).toMatchObject({ value: 4321, source: 'runtime' });
    await call(b.url, b.keys.admin, 'DELETE', '/v1/config/NODE_RECONNECT_GRACE_MS');
    await within(1000, () => a.app.get(AppConfig).NODE_RECONNECT_GRACE_MS === 15_000);
  });

  it('a lost LISTEN connection reconnects and reloads what it missed', async () => {
    // The hub's pool acts as taskhub_app (docs/tenants.md), which may not end the listeners'
    // sessions; for this transaction the connection's own user (the server's superuser) does.
    const terminated: unknown[] = await a.db.transaction(async (tx) => {
      await tx.query('SET LOCAL ROLE NONE');
      return tx.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
        [CONFIG_LISTENER_APPLICATION],
      );
    });
    expect(terminated.length).toBe(2);
    // Written behind the hubs' backs (no NOTIFY) while they are not listening.
    await a.db.query(`INSERT INTO runtime_settings (key, value) VALUES ('NODE_HEARTBEAT_INTERVAL_MS', '2345')`);
    await within(
      5000,
      () =>
        a.app.get(AppConfig).NODE_HEARTBEAT_INTERVAL_MS === 2345 &&
        b.app.get(AppConfig).NODE_HEARTBEAT_INTERVAL_MS === 2345,
    );
    // And it listens again.
    await call(a.url, a.keys.admin, 'DELETE', '/v1/config/NODE_HEARTBEAT_INTERVAL_MS');
    await within(1000, () => b.app.get(AppConfig).NODE_HEARTBEAT_INTERVAL_MS === 10_000);
  });

  it('an app started later applies stored settings at boot and skips rows it cannot use', async () => {
    await a.db.query(
      `INSERT INTO runtime_settings (key, value) VALUES
         ('PROXY_DEFAULT_STRATEGY', '"hash"'), ('FUTURE_SETTING', '1'), ('PORT', '1'), ('TASK_DEFAULT_MAX_RETRIES', '"many"')`,
    );
    const c = await startTestApp({}, { keepData: true });
    try {
      const config = c.app.get(AppConfig);
      expect(config.PROXY_DEFAULT_STRATEGY).toBe('hash');
      expect(config.TASK_DEFAULT_MAX_RETRIES).toBe(3);
      expect(config.PORT).toBe(0);
      const list = await call<{ settings: Setting[] }>(c.url, c.keys.admin, 'GET', '/v1/config');
      const byKey = new Map(list.body.data.settings.map((s) => [s.key, s]));
      expect(byKey.get('PROXY_DEFAULT_STRATEGY')).toMatchObject({ value: 'hash', source: 'runtime' });
      expect(byKey.get('TASK_DEFAULT_MAX_RETRIES')).toMatchObject({ value: 3, source: 'default' });
      expect(byKey.has('FUTURE_SETTING')).toBe(false);
    } finally {
      await c.close();
      await a.db.query('DELETE FROM runtime_settings');
    }
  });
});

// Real hub processes (the built app) on one database, no Redis: each enforces its own rate limit.
const skipReason = HubProcess.skipReason();
if (skipReason) process.stdout.write(`\n[runtime-config hubs] skipped: ${skipReason}\n`);

(skipReason ? describe.skip : describe)('runtime configuration across hub processes', () => {
  let a: HubProcess;
  let b: HubProcess;
  let c: HubProcess | undefined;
  let env: Record<string, string>;
  const get = <T>(h: HubProcess, path: string, key?: string) => call<T>(h.url, key, 'GET', path);
  /** Requests with a bearer nobody used before: a fresh rate-limit bucket (auth is off, the bucket is per key). */
  const burst = async (h: HubProcess, n: number): Promise<number[]> => {
    const key = `probe-${Math.random().toString(36).slice(2)}`;
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await get(h, '/api/v1/tasks?limit=1', key)).status);
    return out;
  };

  beforeAll(async () => {
    const databaseUrl = await createEmptyDatabase('runtime_config_hubs');
    env = { DATABASE_URL: databaseUrl, AUTH_REQUIRED: 'false', LOG_LEVEL: 'warn' };
    a = await new HubProcess(env).start();
    b = await new HubProcess(env).start();
  }, 60_000);

  afterAll(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    if (codes.some((code) => code !== 0 && code !== undefined))
      process.stdout.write(`\n[runtime-config hubs] output:\n${a.output.slice(-3000)}\n${b.output.slice(-3000)}\n`);
    expect(codes.filter((code) => code !== undefined)).toEqual(c ? [0, 0, 0] : [0, 0]);
  }, 30_000);

  it('RATE_LIMIT_MAX patched on A is enforced by B within a second, by a hub started later at boot, and DELETE restores both', async () => {
    expect(await burst(b, 4)).toEqual([200, 200, 200, 200]);
    const patched = await call<{ settings: Setting[] }>(a.url, undefined, 'PATCH', '/v1/config', { RATE_LIMIT_MAX: 3 });
    expect(patched.status).toBe(200);
    expect(patched.body.data.settings[0]).toMatchObject({
      key: 'RATE_LIMIT_MAX',
      value: 3,
      source: 'runtime',
      updated_by: 'anonymous',
    });

    const took = await within(
      2000,
      async () => (await get<Setting>(b, '/v1/config/RATE_LIMIT_MAX')).body.data.value === 3,
    );
    expect(took).toBeLessThan(1500);
    expect(await burst(b, 5)).toEqual([200, 200, 200, 429, 429]);
    expect(await burst(a, 4)).toEqual([200, 200, 200, 429]);

    c = await new HubProcess(env).start();
    expect((await get<Setting>(c, '/v1/config/RATE_LIMIT_MAX')).body.data).toMatchObject({
      value: 3,
      source: 'runtime',
    });
    expect(await burst(c, 4)).toEqual([200, 200, 200, 429]);

    expect((await call<Setting>(a.url, undefined, 'DELETE', '/v1/config/RATE_LIMIT_MAX')).body.data).toMatchObject({
      value: 6000,
      source: 'default',
    });
    for (const h of [b, c]) {
      await within(
        2000,
        async () => (await get<Setting>(h, '/v1/config/RATE_LIMIT_MAX')).body.data.source === 'default',
      );
      expect(await burst(h, 5)).toEqual([200, 200, 200, 200, 200]);
    }
  }, 60_000);

  it('LOG_LEVEL patched on A changes the running logger of B (its access log at debug), DELETE turns it back', async () => {
    const before = b.output.length;
    await burst(b, 1);
    await sleep(200);
    expect(b.output.slice(before)).not.toContain('request completed');

    await call(a.url, undefined, 'PATCH', '/v1/config', { LOG_LEVEL: 'debug' });
    await within(2000, async () => (await get<Setting>(b, '/v1/config/LOG_LEVEL')).body.data.value === 'debug');
    await within(2000, async () => {
      await burst(b, 1);
      return b.output.slice(before).includes('request completed');
    });

    await call(a.url, undefined, 'DELETE', '/v1/config/LOG_LEVEL');
    await within(2000, async () => (await get<Setting>(b, '/v1/config/LOG_LEVEL')).body.data.value === 'warn');
    await sleep(200);
    const after = b.output.length;
    await burst(b, 2);
    await sleep(200);
    expect(b.output.slice(after)).not.toContain('request completed');
  }, 30_000);
});
