import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { type Context, type ContextManager, context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { DeviceClient } from '../../src/sdk/device-client.js';
import { apiClient, type Api, type Task } from '../support/api.js';
import { ApexSocket } from '../support/apex-node.js';
import { startEcho } from '../support/agents.js';
import { WsClient } from '../support/ws-client.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

// Issue 28: W3C trace context from submit to result, exported over OTLP/HTTP (JSON) to a
// collector of the test's own, as an operator's OTEL_EXPORTER_OTLP_ENDPOINT would send it.
describe('traces: one task followed across the hub', () => {
  const receiver = new OtlpReceiver();
  let t: TestApp;
  let client: Api;
  let worker: Api;
  let provider: FakeProvider;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    await receiver.start();
    provider = await startFakeProvider({ models: ['fake-model'] });
    // Read by the tracing module as the app starts (jest gives each suite its own process.env).
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'taskhub-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    t = await startTestApp({
      NODE_RECONNECT_GRACE_MS: '10000',
      LLM_PROVIDERS: JSON.stringify([{ name: 'fake', base_url: provider.url, models: ['fake-model'] }]),
    });
    client = apiClient(t, t.keys.client);
    worker = apiClient(t, t.keys.worker);
  });
  afterEach(async () => {
    closers.splice(0).forEach((c) => c());
    await truncate(t.db, 'task_events, tasks, nodes');
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
    await provider.close();
  });

  const newTrace = (): { traceId: string; spanId: string; header: string } => {
    const traceId = randomBytes(16).toString('hex');
    const spanId = randomBytes(8).toString('hex');
    return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
  };
  const byName = (spans: ReceivedSpan[], name: string): ReceivedSpan => {
    const found = spans.filter((s) => s.name === name);
    if (found.length !== 1)
      throw new Error(`${found.length} spans named ${name}: ${spans.map((s) => s.name).join(', ')}`);
    return found[0];
  };
  const has = (names: string[]) => (spans: ReceivedSpan[]) => names.every((n) => spans.some((s) => s.name === n));
  const getTask = async (id: string): Promise<Task> => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data;
  const until = async (what: () => Promise<boolean>, ms = 10_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!(await what())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  it('a Socket.IO device: the submitter’s trace holds intake, dispatch, delivery, run and completion, in order; the device got the run’s context', async () => {
    const seen: { traceparent?: string }[] = [];
    const device = new DeviceClient({ url: t.url, key: t.keys.worker, id: 'traced-device' }).onTask(
      async ({ task }) => {
        seen.push({ traceparent: task.traceparent });
        return { ok: true };
      },
    );
    closers.push(() => device.close());
    await device.connect();

    const caller = newTrace();
    const created = await client.post<Task>(
      '/api/v1/tasks',
      { type: 'echo', data: { n: 1 } },
      { traceparent: caller.header },
    );
    expect(created.status).toBe(201);
    const id = created.body.data.task_id;
    await until(async () => (await getTask(id)).state === 'completed');
    expect((await getTask(id)).trace_id).toBe(caller.traceId);

    const spans = await receiver.waitFor(
      caller.traceId,
      has(['POST /api/v1/tasks', 'task.intake', 'task.dispatch', 'task.delivery', 'task.run', 'task.completion']),
    );
    const http = byName(spans, 'POST /api/v1/tasks');
    const intake = byName(spans, 'task.intake');
    const dispatch = byName(spans, 'task.dispatch');
    const delivery = byName(spans, 'task.delivery');
    const run = byName(spans, 'task.run');
    const completion = byName(spans, 'task.completion');
    // Parent/child order, starting under the caller's own span.
    expect(http.parentSpanId).toBe(caller.spanId);
    expect(intake.parentSpanId).toBe(http.spanId);
    expect(dispatch.parentSpanId).toBe(intake.spanId);
    expect(delivery.parentSpanId).toBe(dispatch.spanId);
    expect(run.parentSpanId).toBe(delivery.spanId);
    expect(completion.parentSpanId).toBe(run.spanId);
    expect(http.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/api/v1/tasks',
      'http.response.status_code': 201,
    });
    expect(http.kind).toBe(2); // SERVER
    for (const s of [intake, dispatch, delivery, run, completion])
      expect(s.attributes).toMatchObject({
        'taskhub.task.id': id,
        'taskhub.task.type': 'echo',
        'taskhub.task.attempt': 1,
      });
    expect(dispatch.attributes['taskhub.node.id']).toBe('traced-device');
    expect(run.attributes['taskhub.task.outcome']).toBe('completed');
    expect(http.resource['service.name']).toBe('taskhub-under-test');
    // Each step starts no earlier than the one before it ends... within the database's clock (same machine).
    expect(run.startMs).toBeGreaterThanOrEqual(intake.startMs - 5);
    expect(completion.endMs).toBeGreaterThanOrEqual(run.startMs);

    // The device was handed the run span's context, in the caller's trace.
    expect(seen).toEqual([{ traceparent: `00-${caller.traceId}-${run.spanId}-01` }]);
  });

  it('a raw WebSocket node sees the trace in task_assign; a failed attempt’s run span is an error', async () => {
    const node = await ApexSocket.open(
      `${t.url.replace('http', 'ws')}/abp-distributed-server/VCP_Key=${t.keys.worker}`,
    );
    closers.push(() => node.close());
    expect((await node.request('node_register', { node_id: 'traced-node' })).type).toBe('register_success');
    const caller = newTrace();
    const id = (
      await client.post<Task>(
        '/api/v1/tasks',
        { type: 'organize', data: { path: '/x' }, max_retries: 0 },
        { traceparent: caller.header },
      )
    ).body.data.task_id;
    const assign = await node.nextOf('task_assign');
    const sent = assign.data.traceparent as string;
    expect(sent).toMatch(new RegExp(`^00-${caller.traceId}-[0-9a-f]{16}-01$`));
    node.send('ack', undefined, assign.id);
    await node.request('task_result', { task_id: id, status: 'failed', error: 'disk full' });
    const spans = await receiver.waitFor(caller.traceId, has(['task.run', 'task.completion']));
    const run = byName(spans, 'task.run');
    expect(sent).toBe(`00-${caller.traceId}-${run.spanId}-01`);
    expect(run.status.code).toBe(2); // ERROR
    expect(run.attributes['taskhub.task.outcome']).toBe('failed');
  });

  it('a pull worker gets the trace in its `next` answer', async () => {
    const caller = newTrace();
    const id = (
      await client.post<Task>('/api/v1/tasks', { type: 'pulled', prompt: 'p' }, { traceparent: caller.header })
    ).body.data.task_id;
    const next = await worker.get<Task>('/api/v1/tasks/next?worker_id=w-traced');
    expect(next.body.data.task_id).toBe(id);
    const traceparent = next.body.data.traceparent as string;
    expect(traceparent).toMatch(new RegExp(`^00-${caller.traceId}-[0-9a-f]{16}-01$`));
    const done = await worker.post(`/api/v1/tasks/${id}/complete`, {
      worker_id: 'w-traced',
      result: { status: 'success', output: 'ok' },
    });
    expect(done.status).toBe(200);
    const spans = await receiver.waitFor(caller.traceId, has(['task.dispatch', 'task.run', 'task.completion']));
    expect(byName(spans, 'task.dispatch').attributes).toMatchObject({
      'taskhub.worker.id': 'w-traced',
      'taskhub.dispatch.to': 'worker',
    });
    expect(traceparent).toBe(`00-${caller.traceId}-${byName(spans, 'task.run').spanId}-01`);
  });

  it('a request without a traceparent starts a new trace; an invalid one is not continued', async () => {
    const fresh = await client.post<Task>('/api/v1/tasks', { type: 'plain', prompt: 'p' });
    const bad = await client.post<Task>(
      '/api/v1/tasks',
      { type: 'plain', prompt: 'p' },
      { traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` },
    );
    const [a, b] = [fresh.body.data.trace_id, bad.body.data.trace_id];
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(b).toMatch(/^[0-9a-f]{32}$/);
    expect(b).not.toBe('0'.repeat(32));
    expect(a).not.toBe(b);
    const spans = await receiver.waitFor(a as string, has(['POST /api/v1/tasks', 'task.intake']));
    expect(byName(spans, 'POST /api/v1/tasks').parentSpanId).toBe('');
  });

  it('an LLM call: a GenAI client span under the request, with the model, the tokens and the time to the first chunk; the provider got its context', async () => {
    const caller = newTrace();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${t.keys.client}`,
        traceparent: caller.header,
      },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hello' }], stream: true }),
    });
    expect(res.status).toBe(200);
    await res.text();
    const spans = await receiver.waitFor(caller.traceId, has(['POST /v1/chat/completions', 'chat fake-model']));
    const http = byName(spans, 'POST /v1/chat/completions');
    const chat = byName(spans, 'chat fake-model');
    expect(chat.parentSpanId).toBe(http.spanId);
    expect(chat.kind).toBe(3); // CLIENT
    expect(chat.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'fake-model',
      'gen_ai.provider.name': 'fake',
      'gen_ai.request.stream': true,
    });
    expect(chat.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    expect(chat.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    expect(chat.attributes['taskhub.llm.time_to_first_chunk_ms']).toBeGreaterThanOrEqual(0);
    expect(provider.lastRequest()?.headers.traceparent).toBe(`00-${caller.traceId}-${chat.spanId}-01`);
  });

  it('a node’s llm_request continues the traceparent it sends (not passed to the provider as a parameter)', async () => {
    const node = await ApexSocket.open(
      `${t.url.replace('http', 'ws')}/abp-distributed-server/VCP_Key=${t.keys.worker}`,
    );
    closers.push(() => node.close());
    expect((await node.request('node_register', { node_id: 'llm-node' })).type).toBe('register_success');
    const caller = newTrace();
    node.send('llm_request', {
      id: 'q1',
      model: 'fake-model',
      messages: [{ role: 'user', content: 'hi' }],
      traceparent: caller.header,
    });
    const answer = await node.nextOf('llm_response');
    expect(answer.data.error).toBeUndefined();
    const spans = await receiver.waitFor(caller.traceId, has(['chat fake-model']));
    expect(byName(spans, 'chat fake-model').parentSpanId).toBe(caller.spanId);
    expect(provider.lastRequest()?.body).not.toHaveProperty('traceparent');
  });

  it('an agent proxy session is a server span under the upgrade’s context; the agent got the session’s context', async () => {
    const admin = apiClient(t, t.keys.admin);
    const service = await startEcho(admin, 'traced-echo');
    closers.push(() => void admin.delete(`/api/v1/services/${service.service_id}`));
    const caller = newTrace();
    const c = await WsClient.open(`${t.url.replace('http', 'ws')}/ws?service=traced-echo&token=${t.keys.client}`, {
      traceparent: caller.header,
    });
    await c.event('connection_routed');
    const hello = (await c.message()) as { hello: string; traceparent?: string };
    c.send('{"say":"hi"}', false);
    expect(await c.message()).toEqual({ say: 'hi' });
    c.close();
    const spans = await receiver.waitFor(caller.traceId, has(['agent.proxy.session']));
    const session = byName(spans, 'agent.proxy.session');
    expect(session.parentSpanId).toBe(caller.spanId);
    expect(session.attributes).toMatchObject({
      'taskhub.agent.service': 'traced-echo',
      'taskhub.agent.messages_received': 1,
    });
    expect(hello.traceparent).toBe(`00-${caller.traceId}-${session.spanId}-01`);
  });

  it('the SDK DeviceClient runs its handler in the run span’s context: a span the device starts is its child', async () => {
    // What an OpenTelemetry SDK in the device's process registers (a context manager); a stack suffices here.
    class StackContextManager implements ContextManager {
      private current: Context = ROOT_CONTEXT;
      active(): Context {
        return this.current;
      }
      with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
        ctx: Context,
        fn: F,
        thisArg?: ThisParameterType<F>,
        ...args: A
      ): ReturnType<F> {
        const previous = this.current;
        this.current = ctx;
        try {
          return fn.call(thisArg, ...args);
        } finally {
          this.current = previous;
        }
      }
      bind<T>(_ctx: Context, target: T): T {
        return target;
      }
      enable(): this {
        return this;
      }
      disable(): this {
        this.current = ROOT_CONTEXT;
        return this;
      }
    }
    const manager = new StackContextManager();
    expect(context.setGlobalContextManager(manager)).toBe(true);
    try {
      let seen: { traceId?: string; spanId?: string; given?: string } = {};
      const device = new DeviceClient({ url: t.url, key: t.keys.worker, id: 'sdk-traced' }).onTask(
        async ({ traceparent }) => {
          const parent = trace.getSpanContext(context.active());
          seen = { traceId: parent?.traceId, spanId: parent?.spanId, given: traceparent };
          return null;
        },
      );
      closers.push(() => device.close());
      await device.connect();
      const caller = newTrace();
      const id = (
        await client.post<Task>('/api/v1/tasks', { type: 'sdk', prompt: 'p' }, { traceparent: caller.header })
      ).body.data.task_id;
      await until(async () => (await getTask(id)).state === 'completed');
      const spans = await receiver.waitFor(caller.traceId, has(['task.run']));
      const run = byName(spans, 'task.run');
      expect(seen).toEqual({
        traceId: caller.traceId,
        spanId: run.spanId,
        given: `00-${caller.traceId}-${run.spanId}-01`,
      });
    } finally {
      context.disable();
    }
  });

  it('a plugin callback continues the traceparent it sends: its request span, and the task it completes, are in that trace', async () => {
    const admin = apiClient(t, t.keys.admin);
    const plugin = (await admin.post<{ secret: string }>('/api/v1/plugins', { name: 'traced-plugin' })).body.data;
    closers.push(() => void admin.delete('/api/v1/plugins/traced-plugin'));
    const submitter = newTrace();
    const task = (
      await client.post<Task>(
        '/api/v1/tasks',
        { prompt: 'organize', awaits_callback: 'traced-plugin' },
        { traceparent: submitter.header },
      )
    ).body.data;
    expect(task.trace_id).toBe(submitter.traceId);
    // The plugin answers in its own trace (Standard Webhooks signature over the body).
    const body = JSON.stringify({ status: 'success', output: { ok: true } });
    const id = `msg_${randomUUID()}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const key = Buffer.from(plugin.secret.slice('whsec_'.length), 'base64');
    const sig = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
    const callback = newTrace();
    const res = await fetch(`${t.url}/plugin-callback/traced-plugin/${task.task_id}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': ts,
        'webhook-signature': `v1,${sig}`,
        traceparent: callback.header,
      },
      body,
    });
    expect(res.status).toBe(200);
    const spans = await receiver.waitFor(callback.traceId, has(['POST /plugin-callback/:plugin/:taskId']));
    expect(byName(spans, 'POST /plugin-callback/:plugin/:taskId').parentSpanId).toBe(callback.spanId);
    // The task's own chain ends in the submitter's trace.
    const chain = await receiver.waitFor(submitter.traceId, has(['task.intake', 'task.completion']));
    expect(byName(chain, 'task.completion').attributes['taskhub.task.outcome']).toBe('completed');
  });
});
