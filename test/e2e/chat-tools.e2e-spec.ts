import { createHmac, randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { apiClient, type Api, type Task } from '../support/api.js';
import { type ApexFrame, ApexSocket } from '../support/apex-node.js';
import { TestDevice } from '../support/device.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

// Seed 001 §7.3 "节点任务流闭环": a chat whose model calls a tool that a node offers runs it as a
// task on that node, and the conversation goes on. The official `openai` client, a fake
// OpenAI-compatible provider (tool call first, then text quoting the tool's result), raw
// WebSocket Apex nodes that declare the tool, real PostgreSQL.
describe('chat tools: the hub runs the tools a chat names on nodes', () => {
  let t: TestApp;
  let llm: FakeProvider;
  let client: OpenAI;
  let api: Api;
  const sockets: ApexSocket[] = [];

  const LOOKUP = {
    name: 'lookup',
    description: 'Looks a word up',
    parameters: {
      type: 'object',
      properties: { input: { type: 'string' } },
      required: ['input'],
      additionalProperties: false,
    },
  };
  const WEATHER = {
    name: 'weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  };

  const ws = (path: string): string => `${t.url.replace('http', 'ws')}${path}`;

  /** A node offering `tools`; it acknowledges every task_assign, and answers with `answer` unless it returns undefined (then the test answers). */
  async function toolNode(
    nodeId: string,
    tools: unknown[],
    answer?: (assign: ApexFrame) => Record<string, unknown> | undefined,
  ): Promise<ApexSocket> {
    const node = await ApexSocket.open(ws(`/abp-distributed-server/VCP_Key=${encodeURIComponent(t.keys.worker)}`));
    sockets.push(node);
    const reply = await node.request('node_register', { node_id: nodeId, type: 'worker', capacity: 4, tools });
    expect(reply.type).toBe('register_success');
    node.ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString()) as ApexFrame;
      if (f.type !== 'task_assign') return;
      node.send('ack', undefined, f.id);
      const result = answer?.(f);
      if (result) node.send('task_result', { task_id: f.data.task_id, attempt: f.data.attempt, ...result });
    });
    return node;
  }

  const assignsOf = (node: ApexSocket): ApexFrame[] => node.frames.filter((f) => f.type === 'task_assign');
  const toolTasks = async (): Promise<Task[]> =>
    (await api.get<{ tasks: Task[] }>('/api/v1/tasks?tag=tool&limit=100')).body.data.tasks;

  beforeAll(async () => {
    llm = await startFakeProvider({ models: ['fake-model'] });
    t = await startTestApp({
      LLM_PROVIDERS: JSON.stringify([{ name: 'fake', base_url: llm.url, models: ['fake-model'] }]),
      LLM_DEFAULT_MODEL: 'fake-model',
      LLM_TOOL_MAX_STEPS: '3',
      NODE_RECONNECT_GRACE_MS: '500',
      SOCKET_PING_INTERVAL_MS: '500',
    });
    client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: t.keys.client, maxRetries: 0 });
    api = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.close());
    llm.reset();
    await truncate(t.db, 'task_events, tasks, nodes, llm_usage, plugins, plugin_deliveries');
  });
  afterAll(async () => {
    await t.close();
    await llm.close();
  });

  it('lists the tools of connected nodes on GET /v1/tools, with the nodes that offer each', async () => {
    await toolNode('tools-a', [LOOKUP]);
    await toolNode('tools-b', [{ type: 'function', function: LOOKUP }, WEATHER]);
    const res = await fetch(`${t.url}/v1/tools`, { headers: { authorization: `Bearer ${t.keys.client}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; data: Record<string, unknown>[] };
    expect(body.object).toBe('list');
    expect(body.data).toEqual([
      {
        type: 'function',
        function: LOOKUP,
        plugin: null,
        nodes: [
          { node_id: 'tools-a', name: null },
          { node_id: 'tools-b', name: null },
        ],
      },
      { type: 'function', function: WEATHER, plugin: null, nodes: [{ node_id: 'tools-b', name: null }] },
    ]);
    // Without a key: refused like every /v1 route.
    expect((await fetch(`${t.url}/v1/tools`)).status).toBe(401);
  });

  it('refuses a node_register whose tools are malformed, naming the field, and registers nothing', async () => {
    const node = await ApexSocket.open(ws(`/abp-distributed-server/VCP_Key=${encodeURIComponent(t.keys.worker)}`));
    sockets.push(node);
    const reply = await node.request('node_register', { node_id: 'bad-tools', tools: [LOOKUP, { name: 'no spaces' }] });
    expect(reply.type).toBe('error');
    expect(JSON.stringify(reply.data)).toContain('tools[1].name');
    const schema = await node.request('node_register', {
      node_id: 'bad-tools',
      tools: [{ name: 'x', parameters: { type: 'object', properties: { a: { type: 'no-such-type' } } } }],
    });
    expect(schema.type).toBe('error');
    expect(JSON.stringify(schema.data)).toContain('tools[0].parameters');
    expect((await api.get(`/api/v1/nodes/bad-tools`)).status).toBe(404);
  });

  it('runs the tool on the node and continues the conversation (JSON answer)', async () => {
    const node = await toolNode('runner', [LOOKUP], (f) => ({
      status: 'success',
      result: { answer: `found ${(f.data.payload as { input: string }).input}` },
    }));
    const { data, response } = await client.chat.completions
      .create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'call tool now' }],
        tools: [{ type: 'function', function: { name: 'lookup' } }],
      })
      .withResponse();
    expect(data.choices[0].message.content).toBe('tool said: {"answer":"found call tool now"}');
    expect(data.choices[0].finish_reason).toBe('stop');
    expect(data.choices[0].message.tool_calls).toBeUndefined();
    const requestId = response.headers.get('x-request-id');

    // The node got exactly one task_assign, with the validated arguments.
    const assigns = assignsOf(node);
    expect(assigns).toHaveLength(1);
    expect(assigns[0].data).toMatchObject({
      action: 'lookup',
      payload: { input: 'call tool now' },
      metadata: { tool: 'lookup', chat_request_id: requestId },
    });
    // A durable task, completed once, linked to the chat.
    const tasks = await toolTasks();
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ state: 'completed', node_id: 'runner', retry_count: 0 });
    expect(tasks[0].metadata).toMatchObject({ chat_request_id: requestId, tool_call_id: 'call_fake000001' });

    // The model was called twice: first with the hub's definition of the tool, then with its result.
    expect(llm.requests).toHaveLength(2);
    expect(llm.requests[0].body?.tools).toEqual([{ type: 'function', function: LOOKUP }]);
    expect(llm.requests[1].body?.messages?.slice(-2)).toEqual([
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_fake000001',
            type: 'function',
            function: { name: 'lookup', arguments: '{"input":"call tool now"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_fake000001', content: '{"answer":"found call tool now"}' },
    ]);
    // Usage: both model calls.
    expect(data.usage?.prompt_tokens).toBeGreaterThan(
      (llm.requests[0].body?.messages ?? []).length, // the second call's prompt is longer than the first's alone
    );
  });

  it('streams the whole turn as one OpenAI stream: text only, one id, the turn usage last, progress on /ws', async () => {
    const watch = await ApexSocket.open(ws(`/ws?token=${t.keys.client}`));
    sockets.push(watch);
    await toolNode('streamer', [LOOKUP], () => ({ status: 'success', result: 'sunny' }));
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'call tool please' }],
      tools: [{ type: 'function', function: { name: 'lookup' } }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe('tool said: sunny');
    expect(chunks.some((c) => c.choices[0]?.delta?.tool_calls)).toBe(false);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    const usage = chunks.filter((c) => c.usage);
    expect(usage).toHaveLength(1);
    expect(chunks[chunks.length - 1].usage?.total_tokens).toBeGreaterThan(0);
    expect(chunks[chunks.length - 1].choices).toEqual([]);
    // The upstream calls were both streamed.
    expect(llm.requests.map((r) => r.stream)).toEqual([true, true]);
    const [task] = await toolTasks();
    const started = await watch.nextOf(
      'notification',
      (f) => f.data.task_id === task.task_id && f.data.source === 'tool',
    );
    expect(String(started.data.message)).toContain('lookup');
  });

  it('a Socket.IO device (seed 004 vocabulary) may offer a tool too: it gets new_task and its result continues the chat', async () => {
    const device = new TestDevice(t.url, t.keys.worker);
    try {
      await device.register('sio-tools', { capacity: 2, tools: [LOOKUP] });
      device.socket.on('new_task', (m: { task_id: string; data: { input: string } }, ack?: (a: unknown) => void) => {
        ack?.({ received: true });
        device.socket.emit('task_result', {
          task_id: m.task_id,
          status: 'completed',
          result: { looked_up: m.data.input },
        });
      });
      const r = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'call tool over socket.io' }],
        tools: [{ type: 'function', function: { name: 'lookup' } }],
      });
      expect(r.choices[0].message.content).toContain('"looked_up":"call tool over socket.io"');
      const [task] = await toolTasks();
      expect(task).toMatchObject({ state: 'completed', node_id: 'sio-tools' });
    } finally {
      device.close();
    }
  });

  it("tenants: a tenant's chat runs its own node's tool; a global key's chat gets no other tenant's node", async () => {
    const admin = apiClient(t, t.keys.admin);
    expect((await admin.post('/api/v1/tenants', { id: 'tools-b', name: 'Tools B' })).status).toBe(201);
    const keyOf = async (role: string): Promise<string> => {
      const res = await admin.post<{ key: string }>('/api/v1/api-keys', {
        name: `tools-b-${role}`,
        role,
        tenant_id: 'tools-b',
      });
      expect(res.status).toBe(201);
      return res.body.data.key;
    };
    const [workerB, clientB] = [await keyOf('worker'), await keyOf('client')];
    const node = await ApexSocket.open(ws(`/abp-distributed-server/VCP_Key=${encodeURIComponent(workerB)}`));
    sockets.push(node);
    expect((await node.request('node_register', { node_id: 'b-node', tools: [LOOKUP] })).type).toBe('register_success');
    node.ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString()) as ApexFrame;
      if (f.type !== 'task_assign') return;
      node.send('ack', undefined, f.id);
      node.send('task_result', { task_id: f.data.task_id, status: 'success', result: 'tenant b ran it' });
    });
    const ask = (key: string) =>
      new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0 }).chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'call tool in a tenant' }],
        tools: [{ type: 'function', function: { name: 'lookup' } }],
      });
    expect((await ask(clientB)).choices[0].message.content).toBe('tool said: tenant b ran it');
    // The default tenant's client does not even see B's tool: it goes back to the client.
    expect((await ask(t.keys.client)).choices[0].finish_reason).toBe('tool_calls');
    // A global admin sees every tenant's tools, but its tasks are the default tenant's: no node of B is used.
    const global = await ask(t.keys.admin);
    expect(global.choices[0].message.content).toContain('no node offers the tool lookup');
    expect(assignsOf(node)).toHaveLength(1);
    await admin.delete('/api/v1/tenants/tools-b');
  });

  it('returns tool calls the hub does not know to the client, as before', async () => {
    await toolNode('other', [LOOKUP]);
    const r = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'call tool mine' }],
      tools: [{ type: 'function', function: { name: 'client_side', parameters: { type: 'object' } } }],
    });
    expect(r.choices[0].finish_reason).toBe('tool_calls');
    expect(r.choices[0].message.tool_calls?.[0]).toMatchObject({ function: { name: 'client_side' } });
    expect(await toolTasks()).toHaveLength(0);
  });

  it('never sends a bad call to a node: the schema error goes back to the model', async () => {
    const node = await toolNode('weather-node', [WEATHER], () => ({ status: 'success', result: 'rain' }));
    llm.setBehavior({ toolCall: true, toolArguments: '{"town":"Paris"}', times: 1 });
    const r = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'weather' } }],
    });
    expect(r.choices[0].message.content).toContain('tool said: {"error":"arguments do not match');
    expect(r.choices[0].message.content).toContain('city');
    expect(assignsOf(node)).toHaveLength(0);
    expect(await toolTasks()).toHaveLength(0);
  });

  it('ends a loop that never stops at LLM_TOOL_MAX_STEPS with a clear error', async () => {
    await toolNode('looper', [LOOKUP], () => ({ status: 'success', result: 'again' }));
    llm.setBehavior({ toolCall: true });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.client}` },
      body: JSON.stringify({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'loop' }],
        tools: [{ type: 'function', function: { name: 'lookup' } }],
      }),
    });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-should-retry')).toBe('false');
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('tool_step_limit');
    expect(body.error.message).toContain('3');
    expect(llm.requests).toHaveLength(3);
    expect((await toolTasks()).map((x) => x.state)).toEqual(['completed', 'completed']);
  });

  it('an interrupt mid-tool cancels the task on its node and stops the turn', async () => {
    const node = await toolNode('slow', [LOOKUP]); // never answers by itself
    const chat = fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.client}` },
      body: JSON.stringify({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'call tool slowly' }],
        tools: [{ type: 'function', function: { name: 'lookup' } }],
      }),
    });
    const assign = await node.nextOf('task_assign');
    const requestId = (assign.data.metadata as { chat_request_id: string }).chat_request_id;
    const stop = await fetch(`${t.url}/v1/interrupt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.client}` },
      body: JSON.stringify({ request_id: requestId }),
    });
    expect(stop.status).toBe(200);
    const cancel = await node.nextOf('cancel_task');
    expect(cancel.data).toMatchObject({ task_id: assign.data.task_id });
    const res = await chat;
    expect(res.status).toBe(499);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('interrupted');
    const [task] = await toolTasks();
    expect(task.state).toBe('cancelled');
    expect(llm.requests).toHaveLength(1); // the model was not called again
  });

  it('a client that goes away mid-tool: the task is cancelled on its node', async () => {
    const node = await toolNode('abandoned', [LOOKUP]);
    const gone = new AbortController();
    const chat = fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      signal: gone.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.client}` },
      body: JSON.stringify({
        model: 'fake-model',
        stream: true,
        messages: [{ role: 'user', content: 'call tool then leave' }],
        tools: [{ type: 'function', function: { name: 'lookup' } }],
      }),
    }).catch((e: unknown) => e);
    const assign = await node.nextOf('task_assign');
    gone.abort();
    await chat;
    const cancel = await node.nextOf('cancel_task');
    expect(cancel.data).toMatchObject({ task_id: assign.data.task_id });
    const [task] = await toolTasks();
    expect(task.state).toBe('cancelled');
    expect(llm.requests).toHaveLength(1);
  });

  it('a node lost mid-tool: the task goes to another node offering the tool, and the chat completes', async () => {
    const first = await toolNode('doomed', [LOOKUP]); // takes the task, then dies
    const chat = client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'call tool resiliently' }],
      tools: [{ type: 'function', function: { name: 'lookup' } }],
    });
    const assign = await first.nextOf('task_assign');
    await toolNode('survivor', [LOOKUP], () => ({ status: 'success', result: 'from survivor' }));
    first.ws.terminate();
    const r = await chat;
    expect(r.choices[0].message.content).toBe('tool said: from survivor');
    const [task] = await toolTasks();
    expect(task).toMatchObject({ task_id: assign.data.task_id, state: 'completed', node_id: 'survivor' });
  }, 20_000);

  it("charges a node's llm_request for a chat's tool to the chat's key and request", async () => {
    await toolNode('asker', [LOOKUP], (f) => {
      // The node asks the hub's LLM while it runs the tool, then answers with what it heard.
      void (async () => {
        const heard = await nodeOf('asker').request('llm_request', {
          task_id: f.data.task_id,
          model: 'fake-model',
          messages: [{ role: 'user', content: 'inner question' }],
        });
        const text = (heard.data.choices as { message: { content: string } }[])[0].message.content;
        nodeOf('asker').send('task_result', { task_id: f.data.task_id, status: 'success', result: text });
      })();
      return undefined;
    });
    const { data, response } = await client.chat.completions
      .create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'call tool with help' }],
        tools: [{ type: 'function', function: { name: 'lookup' } }],
      })
      .withResponse();
    expect(data.choices[0].message.content).toBe('tool said: echo: inner question');
    const requestId = response.headers.get('x-request-id');
    // Usage rows are written in batches: wait for the three calls' rows.
    let rows: { request_id: string; key_id: string; node_id: string | null }[] = [];
    for (let i = 0; i < 100 && rows.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
      rows = await t.db.query(`SELECT request_id, key_id, node_id FROM llm_usage WHERE request_id = $1 ORDER BY id`, [
        requestId,
      ]);
    }
    const clientKeyId: string = (
      await t.db.query(`SELECT id FROM api_keys WHERE role = 'client' ORDER BY created_at DESC LIMIT 1`)
    )[0].id;
    expect(rows).toHaveLength(3);
    // All three under the chat's request id, charged to the chat's (client) key, not the node's (worker) key.
    expect(rows.map((r) => r.key_id)).toEqual([clientKeyId, clientKeyId, clientKeyId]);
    expect(rows.filter((r) => r.node_id === 'asker')).toHaveLength(1);

    // A task the node does not hold cannot be named.
    const refused = await nodeOf('asker').request('llm_request', {
      task_id: '00000000-0000-4000-8000-000000000000',
      model: 'fake-model',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect((refused.data.error as { param: string }).param).toBe('task_id');
  });

  it('a plugin tool: the node answers pending, the signed plugin callback finishes the task, the chat goes on', async () => {
    const organize = {
      name: 'organize',
      description: 'Organizes a folder',
      parameters: { type: 'object', properties: { input: { type: 'string' } } },
    };
    const admin = apiClient(t, t.keys.admin);
    const plugin = await admin.post<{ name: string; secret: string }>('/api/v1/plugins', {
      name: 'FileOrganizer',
      tools: [organize],
    });
    expect(plugin.status).toBe(201);
    // The node names the tool only: its definition is the plugin's.
    const node = await toolNode('organizer-node', [{ name: 'organize' }], () => ({ status: 'pending' }));
    const listed = (await (
      await fetch(`${t.url}/v1/tools`, { headers: { authorization: `Bearer ${t.keys.client}` } })
    ).json()) as { data: unknown[] };
    expect(listed.data).toEqual([
      {
        type: 'function',
        function: organize,
        plugin: 'FileOrganizer',
        nodes: [{ node_id: 'organizer-node', name: null }],
      },
    ]);
    const chat = client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'call tool on D:/docs' }],
      tools: [{ type: 'function', function: { name: 'organize' } }],
    });
    const assign = await node.nextOf('task_assign');
    const taskId = assign.data.task_id as string;
    expect(assign.data.callback).toBe(`/plugin-callback/FileOrganizer/${taskId}`);
    // The node's `pending` is in: the task now waits for the plugin.
    let holder: string | null = null;
    for (let i = 0; i < 100 && holder !== 'plugin:FileOrganizer'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const rows: { worker_id: string | null }[] = await t.db.query(`SELECT worker_id FROM tasks WHERE id = $1`, [
        taskId,
      ]);
      holder = rows[0]?.worker_id ?? null;
    }
    expect(holder).toBe('plugin:FileOrganizer');
    const body = JSON.stringify({ status: 'success', output: { summary: '已完成文件整理' } });
    const id = `msg_${randomUUID()}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const key = Buffer.from(plugin.body.data.secret.slice('whsec_'.length), 'base64');
    const sig = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
    const callback = await fetch(`${t.url}${assign.data.callback as string}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': ts,
        'webhook-signature': `v1,${sig}`,
      },
      body,
    });
    expect(callback.status).toBe(200);
    const r = await chat;
    expect(r.choices[0].message.content).toContain('已完成文件整理');
    const [task] = await toolTasks();
    expect(task).toMatchObject({ task_id: taskId, state: 'completed' });
    expect(task.metadata).toMatchObject({ plugin: 'FileOrganizer', tool: 'organize' });
  });

  const nodeOf = (id: string): ApexSocket => {
    const found = sockets.find((s) => s.frames.some((f) => f.type === 'register_success' && f.data.node_id === id));
    if (!found) throw new Error(`no node ${id}`);
    return found;
  };
});
