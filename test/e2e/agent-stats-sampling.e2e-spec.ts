import { ServiceStatsService } from '../../src/modules/agent-services/service-stats.service.js';
import { startEcho } from '../support/agents.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { WsClient } from '../support/ws-client.js';

// The relayed messages a sample is storing stay visible until it has stored them: the sampler
// used to zero the live counters before its insert committed, so a read in between saw neither
// (CI caught it as flaky stats suites under load). A lock holds the insert open here.
describe('agent stats: a sample in flight loses nothing and counts nothing twice', () => {
  let t: TestApp;
  let admin: Api;

  beforeAll(async () => {
    t = await startTestApp({ STATS_SAMPLE_INTERVAL_MS: '600000' }); // only the test samples
    admin = apiClient(t, t.keys.admin);
  });
  afterAll(() => t.close());

  const messagesOf = async (id: string): Promise<number> =>
    ((await admin.get(`/api/v1/services/${id}`)).body.data as { stats: { messages: number } }).stats.messages;

  it('messages relayed before a sample show while its write waits, and once after it', async () => {
    const s = await startEcho(admin, 'sampled-echo', { env: { ECHO_QUIET: '1' } });
    const c = await WsClient.open(`${t.url.replace('http', 'ws')}/ws?service=sampled-echo&token=${t.keys.client}`);
    await c.event('connection_routed');
    for (let i = 0; i < 3; i++) {
      c.send(`m${i}`, false);
      expect(await c.message()).toBe(`m${i}`);
    }
    expect(await messagesOf(s.service_id)).toBe(6);

    // Hold the sample's write of the stored counters (readers still read).
    const lock = t.db.createQueryRunner();
    await lock.connect();
    await lock.startTransaction();
    await lock.query('LOCK TABLE agent_service_counters IN SHARE MODE');
    const sampling = t.app.get(ServiceStatsService).sample();
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(await messagesOf(s.service_id)).toBe(6);
    } finally {
      await lock.rollbackTransaction();
      await lock.release();
    }
    await sampling;
    expect(await messagesOf(s.service_id)).toBe(6);
    c.close();
    await admin.delete(`/api/v1/services/${s.service_id}`);
  });
});
