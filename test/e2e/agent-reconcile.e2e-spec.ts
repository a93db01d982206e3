import pg from 'pg';
import { alive, ECHO_AGENT, eventually, type ServiceView, startEcho } from '../support/agents.js';
import { apiClient, type Api } from '../support/api.js';
import { HubProcess } from '../support/hub-process.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';
import { suiteDatabaseUrl } from '../support/test-database.js';

const SERVICES = '/api/v1/services';

/** Managed services across hub restarts: a clean stop stops them, the next start brings them back. */
describe('agent services across hub restarts', () => {
  it('a clean hub shutdown stops managed processes; the next hub start restarts the services that were running', async () => {
    let t: TestApp = await startTestApp({ SERVICE_STOP_GRACE_MS: '1000' });
    try {
      const admin = apiClient(t, t.keys.admin);
      const running = await startEcho(admin, 'echo-survivor');
      const stopped = await startEcho(admin, 'echo-stopped-by-user');
      await admin.post(`${SERVICES}/${stopped.service_id}/stop`);
      await t.close();
      expect(alive(running.pid as number)).toBe(false);
      const db = new pg.Client({ connectionString: await suiteDatabaseUrl() });
      await db.connect();
      const { rows } = await db.query(
        `SELECT status, desired_state, owner_instance, pid FROM agent_services WHERE id = $1`,
        [running.service_id],
      );
      await db.end();
      expect(rows[0]).toEqual({ status: 'stopped', desired_state: 'running', owner_instance: null, pid: null });

      t = await startTestApp({ SERVICE_STOP_GRACE_MS: '1000' }, { keepData: true });
      const client = apiClient(t, t.keys.client);
      const back = await eventually(async () => {
        const v = (await client.get(`${SERVICES}/${running.service_id}`)).body.data as unknown as ServiceView;
        return v.status === 'running' ? v : null;
      });
      expect(back.pid).not.toBe(running.pid);
      expect(alive(back.pid as number)).toBe(true);
      const other = (await client.get(`${SERVICES}/${stopped.service_id}`)).body.data as unknown as ServiceView;
      expect(other.status).toBe('stopped');
      const logs = (await client.get(`/api/v1/logs/services/${running.service_id}`)).body as unknown as {
        logs: { message: string }[];
      };
      expect(logs.logs.some((l) => l.message.includes('no hub runs it: restarting'))).toBe(true);
    } finally {
      const admin = apiClient(t, t.keys.admin);
      const list = await admin.get<{ services: ServiceView[] }>(`${SERVICES}?limit=200`);
      for (const s of list.body.data.services) await admin.delete(`${SERVICES}/${s.service_id}`);
      await t.close();
    }
  });

  const skip = !HubProcess.canRun() ? 'dist/src/main.js is missing (run npm run build)' : null;
  if (skip) process.stdout.write(`\n[agent-reconcile] hub-crash test skipped: ${skip}\n`);

  (skip ? it.skip : it)(
    'after a hub is killed (SIGKILL), the next hub kills the orphaned process and restarts the service',
    async () => {
      const dbUrl = await suiteDatabaseUrl();
      const db = new pg.Client({ connectionString: dbUrl });
      await db.connect();
      const env = {
        DATABASE_URL: dbUrl,
        AUTH_REQUIRED: 'false',
        SERVICE_OWNER_STALE_MS: '1000',
        SERVICE_STOP_GRACE_MS: '1000',
      };
      let hub = await new HubProcess(env).start();
      try {
        await truncate({ query: (sql: string) => db.query(sql) } as never, 'agent_services');
        const api: Api = apiClient({ url: hub.url } as TestApp, undefined);
        const reg = await api.post(SERVICES, {
          name: 'echo-orphan',
          agent_factory_path: ECHO_AGENT,
          health_check: { type: 'ws', interval: 1, timeout: 2 },
        });
        expect(reg.status).toBe(201);
        const started = await api.post<ServiceView>(`${SERVICES}/echo-orphan/start`);
        expect(started.status).toBe(200);
        const orphanPid = started.body.data.pid as number;

        await hub.kill();
        expect(alive(orphanPid)).toBe(true); // nobody stopped it

        hub = await new HubProcess(env).start();
        const api2: Api = apiClient({ url: hub.url } as TestApp, undefined);
        const back = await eventually(async () => {
          const v = (await api2.get(`${SERVICES}/echo-orphan`)).body.data as unknown as ServiceView;
          return v.status === 'running' && v.pid !== orphanPid ? v : null;
        }, 20_000);
        expect(alive(orphanPid)).toBe(false);
        expect(alive(back.pid as number)).toBe(true);
        const logs = (await api2.get(`/api/v1/logs/search?query=left%20by%20a%20hub&service_id=echo-orphan`))
          .body as unknown as { logs: unknown[] };
        expect(logs.logs).toHaveLength(1);
        await api2.delete(`${SERVICES}/echo-orphan`);
        expect(alive(back.pid as number)).toBe(false);
      } finally {
        await hub.stop();
        await db.end();
      }
    },
    60_000,
  );
});
