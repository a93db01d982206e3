import { type ApexFrame, ApexSocket } from '../support/apex-node.js';
import { TestDevice } from '../support/device.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { freshDatabase, HubProcess } from '../support/hub-process.js';

// Logs you can join (docs/observability.md, Logs): a line written deep inside a request or a
// socket message carries that call's id (`req_id`) and, with a traceparent, its `trace_id`,
// though nothing passes either by hand. The line: the LLM router's warning that a deployment
// cooled down, written when the upstream refuses the deployment's key (401) in the middle of
// a chat call. A real hub process (its stdout is JSON: not a terminal), real sockets.
const skipReason = HubProcess.skipReason();
if (skipReason) process.stdout.write(`\n[log-request-id] skipped: ${skipReason}\n`);

type Line = Record<string, unknown> & { msg?: string };

(skipReason ? describe.skip : describe)('log lines carry the request id', () => {
  let hub: HubProcess;
  let provider: FakeProvider;
  const closers: { close(): void }[] = [];

  beforeAll(async () => {
    // The upstream wants another key: each call is a 401, and the model's deployment cools down.
    const models = ['m-http', 'm-trace', 'm-socket', 'm-node'];
    provider = await startFakeProvider({ models, apiKey: 'sk-the-right-one' });
    hub = await new HubProcess({
      DATABASE_URL: await freshDatabase('log_request_id'),
      AUTH_REQUIRED: 'false',
      RATE_LIMIT_MAX: '0',
      LOG_LEVEL: 'warn',
      LLM_PROVIDERS: JSON.stringify([{ name: 'fake', base_url: provider.url, api_key: 'sk-stale', models }]),
    }).start();
  }, 60_000);
  afterAll(async () => {
    closers.forEach((c) => c.close());
    const code = await hub?.stop();
    await provider?.close();
    expect(code).toBe(0);
  }, 30_000);

  /** The hub's JSON lines so far (a line still being written is skipped). */
  const lines = (): Line[] =>
    hub.output.split('\n').flatMap((l) => {
      if (!l.startsWith('{')) return [];
      try {
        return [JSON.parse(l) as Line];
      } catch {
        return [];
      }
    });
  async function linesWhere(match: (l: Line) => boolean, atLeast = 1, ms = 5000): Promise<Line[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = lines().filter(match);
      if (found.length >= atLeast || Date.now() > deadline) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const cooledDown = (model: string) => (l: Line) =>
    typeof l.msg === 'string' && l.msg.includes('cooled down') && l.msg.includes(`|${model} `);

  const chat = (model: string, headers: Record<string, string>): Promise<Response> =>
    fetch(`${hub.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });

  it("a service's warning deep inside an HTTP request carries the request's X-Request-Id, as does its access line", async () => {
    const r = await chat('m-http', { 'X-Request-Id': 'log-test-http-1' });
    expect(r.ok).toBe(false);
    expect(r.headers.get('x-request-id')).toBe('log-test-http-1');
    const [warning] = await linesWhere(cooledDown('m-http'));
    expect(warning).toMatchObject({ level: 40, context: 'LlmRouter', req_id: 'log-test-http-1' });
    // No traceparent sent: the request started a trace of its own, and its lines say which.
    expect(warning.trace_id).toMatch(/^[0-9a-f]{32}$/);
    const [access] = await linesWhere(
      (l) => l.msg === 'request completed' && (l.req as { url?: string }).url === '/v1/chat/completions',
    );
    expect(access).toMatchObject({ req_id: 'log-test-http-1', trace_id: warning.trace_id });
    // A line outside any call (the start's warning that auth is off) has none.
    const [atStart] = await linesWhere((l) => typeof l.msg === 'string' && l.msg.startsWith('AUTH_REQUIRED=false'));
    expect(atStart).toBeDefined();
    expect(atStart).not.toHaveProperty('req_id');
  }, 20_000);

  it("a request's traceparent puts its trace id on the lines written while handling it", async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const r = await chat('m-trace', {
      'X-Request-Id': 'log-test-trace-1',
      traceparent: `00-${traceId}-b7ad6b7169203331-01`,
    });
    expect(r.ok).toBe(false);
    const [warning] = await linesWhere(cooledDown('m-trace'));
    expect(warning).toMatchObject({ req_id: 'log-test-trace-1', trace_id: traceId });
  }, 20_000);

  it("a line logged while handling a Socket.IO device message carries that message's id (<socket id>:<n>)", async () => {
    const device = new TestDevice(hub.url);
    closers.push(device);
    await device.connected();
    await device.register('log-device-1'); // message 1
    const answer = await device.request('llm_request', {
      id: 'q1',
      model: 'm-socket',
      messages: [{ role: 'user', content: 'hi' }],
    }); // message 2
    expect(answer).toMatchObject({ id: 'q1', error: expect.any(Object) });
    const [warning] = await linesWhere(cooledDown('m-socket'));
    expect(warning).toMatchObject({ context: 'LlmRouter', req_id: `${device.socket.id}:2` });
  }, 20_000);

  it('a line logged while handling a raw WebSocket node frame carries that frame’s id', async () => {
    const node = await ApexSocket.open(`${hub.url.replace('http', 'ws')}/abp-distributed-server/VCP_Key=any`);
    closers.push(node);
    expect((await node.request('node_register', { node_id: 'log-node-1' })).type).toBe('register_success'); // frame 1
    const answer: ApexFrame = await node.request('llm_request', {
      id: 'q2',
      model: 'm-node',
      messages: [{ role: 'user', content: 'hi' }],
    }); // frame 2
    expect(answer.type).toBe('llm_response');
    const [warning] = await linesWhere(cooledDown('m-node'));
    // The connection id is the hub's (`ws:<uuid>`): the node does not see it, the lines share it.
    expect(warning.req_id).toMatch(/^ws:[0-9a-f-]{36}:2$/);
  }, 20_000);
});
