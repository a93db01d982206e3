import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { apiClient } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

// The edge of raw WebSocket upgrades (docs/edge.md): connection limits per address and per
// key, handshakes in flight, the handshake timeout, coded refusals and their counters, and
// resets at every stage of an upgrade. Real hub, real sockets, real PostgreSQL.

interface Answer {
  status: number;
  head: string;
  body: Record<string, unknown> | null;
  socket: Socket;
}

const UPGRADE_HEADERS =
  'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

describe('The edge: raw WebSocket upgrades', () => {
  let t: TestApp;
  const open: { close(): void }[] = [];

  const port = (): number => Number(new URL(t.url).port);

  /** Sends an upgrade request and reads the answer's head (and a refusal's JSON body). */
  function upgrade(path: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port(), '127.0.0.1', () =>
        socket.write(`GET ${path} HTTP/1.1\r\nHost: hub\r\n${UPGRADE_HEADERS}\r\n`),
      );
      open.push({ close: () => socket.destroy() });
      let text = '';
      const done = (): void => {
        const [head, body = ''] = text.split('\r\n\r\n');
        const status = Number(head.split(' ')[1]);
        resolve({ status, head, body: status === 101 || !body ? null : (JSON.parse(body) as never), socket });
      };
      socket.on('data', (d) => {
        text += d.toString();
        if (text.startsWith('HTTP/1.1 101') && text.includes('\r\n\r\n')) done();
      });
      socket.on('end', done);
      socket.on('error', reject);
    });
  }

  async function wsOpen(path: string): Promise<WebSocket> {
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}${path}`);
    open.push({ close: () => ws.terminate() });
    await new Promise((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    return ws;
  }

  async function counter(name: string, labels: string): Promise<number> {
    const res = await fetch(`${t.url}/metrics`, {
      headers: { Accept: 'text/plain', Authorization: `Bearer ${t.keys.admin}` },
    });
    const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  async function hubAnswers(): Promise<void> {
    const res = await fetch(`${t.url}/healthz`, { signal: AbortSignal.timeout(1000) });
    expect(res.status).toBe(200);
  }

  beforeAll(async () => {
    t = await startTestApp({ WS_HANDSHAKE_TIMEOUT_MS: '1000' });
  });

  afterEach(() => {
    open.splice(0).forEach((s) => s.close());
  });

  afterAll(async () => {
    await t.close();
  });

  it.each([
    ['the node channel, wrong key', '/abp-distributed-server/VCP_Key=wrong'],
    ['the log channel, wrong key', '/ABPlog/VCP_Key=wrong'],
    ['/ws without a key', '/ws'],
    ['the agent proxy without a key', '/ws?service=nope'],
    ['a raw upgrade to /events', '/events'],
    ['an unknown path', '/nope'],
  ])('a client that resets before and after the refusal of %s leaves the hub up', async (_what, path) => {
    for (let i = 0; i < 10; i++) {
      const early = connect(port(), '127.0.0.1', () => {
        early.write(`GET ${path} HTTP/1.1\r\nHost: hub\r\n${UPGRADE_HEADERS}\r\n`);
        early.resetAndDestroy();
      });
      early.on('error', () => undefined);
      const answer = await upgrade(path);
      expect(answer.status).toBeGreaterThanOrEqual(400);
      answer.socket.resetAndDestroy();
    }
    await hubAnswers();
  });

  it('a client that resets after the 101, or mid-frame, leaves the hub up; the stream still serves others', async () => {
    for (const path of [`/ws?token=${t.keys.client}`, `/abp-distributed-server/VCP_Key=${t.keys.worker}`]) {
      const answer = await upgrade(path);
      expect(answer.status).toBe(101);
      // Half a masked text frame (header promising 100 bytes, 3 sent), then a reset.
      answer.socket.write(Buffer.from([0x81, 0x80 | 100, 1, 2, 3, 4, 0x41, 0x42, 0x43]));
      answer.socket.resetAndDestroy();
    }
    const ws = await wsOpen(`/ws?token=${t.keys.client}`);
    const pong = new Promise<{ type: string }>((ok) =>
      ws.on('message', (m) => {
        const frame = JSON.parse(m.toString()) as { type: string };
        if (frame.type === 'pong') ok(frame);
      }),
    );
    ws.send(JSON.stringify({ type: 'ping' }));
    expect((await pong).type).toBe('pong');
    await hubAnswers();
  });

  it('refuses an unknown path 404 with a coded body, and counts it', async () => {
    const before = await counter('taskhub_edge_refused_total', 'channel="upgrade",reason="not_found"');
    const answer = await upgrade('/nope');
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({ code: 'NOT_FOUND', event: 'connect' });
    expect(await counter('taskhub_edge_refused_total', 'channel="upgrade",reason="not_found"')).toBe(before + 1);
  });

  it('limits connections per source address (hot), 429 RATE_LIMITED naming the address, and frees a place on close', async () => {
    const admin = apiClient(t, t.keys.admin);
    expect((await admin.patch('/v1/config', { MAX_CONNECTIONS_PER_ADDRESS: 3 })).status).toBe(200);
    try {
      const held = [
        await wsOpen(`/ws?token=${t.keys.client}`),
        await wsOpen(`/ABPlog/VCP_Key=${t.keys.admin}`),
        await wsOpen(`/abp-distributed-server/VCP_Key=${t.keys.worker}`),
      ];
      const refused = await upgrade(`/ws?token=${t.keys.client}`);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'RATE_LIMITED', details: { field: 'address' } });
      expect(await counter('taskhub_edge_refused_total', 'channel="upgrade",reason="address_limit"')).toBeGreaterThan(
        0,
      );
      // Refused or reset upgrades do not hold places: after closing one, the next is admitted.
      held[0].close();
      await new Promise((r) => held[0].once('close', r));
      await waitFor(async () => (await upgrade(`/ws?token=${t.keys.client}`)).status === 101);
    } finally {
      await admin.patch('/v1/config', { MAX_CONNECTIONS_PER_ADDRESS: 1000 });
    }
  });

  it('limits connections per API key on each channel, 429 naming the key', async () => {
    const admin = apiClient(t, t.keys.admin);
    await admin.patch('/v1/config', { MAX_CONNECTIONS_PER_KEY: 2 });
    try {
      await wsOpen(`/ws?token=${t.keys.client}`);
      await wsOpen(`/ws?token=${t.keys.client}`);
      const refused = await upgrade(`/ws?token=${t.keys.client}`);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'RATE_LIMITED', details: { field: 'key' } });
      // Another channel of the same key has its own count.
      expect((await upgrade(`/ABPlog/VCP_Key=${t.keys.client}`)).status).not.toBe(429);
    } finally {
      await admin.patch('/v1/config', { MAX_CONNECTIONS_PER_KEY: 10000 });
    }
  });

  it('a key check that does not end is answered 503 after WS_HANDSHAKE_TIMEOUT_MS; handshakes in flight are bounded', async () => {
    const admin = apiClient(t, t.keys.admin);
    await admin.patch('/v1/config', { MAX_PENDING_HANDSHAKES: 2 });
    // Unknown keys are looked up in api_keys: hold that table so the lookups wait.
    const runner = t.db.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      await runner.query('LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      const waiting = [upgrade('/ws?token=unknown-1'), upgrade('/ws?token=unknown-2')];
      await new Promise((r) => setTimeout(r, 200));
      const third = await upgrade('/ws?token=unknown-3');
      expect(third.status).toBe(503);
      expect(third.body).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      expect(Date.now() - started).toBeLessThan(900); // refused at once, not after the timeout
      for (const answer of await Promise.all(waiting)) {
        expect(answer.status).toBe(503);
        expect(answer.body?.message).toMatch(/too long/);
      }
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
      await admin.patch('/v1/config', { MAX_PENDING_HANDSHAKES: 500 });
    }
    expect(
      await counter('taskhub_edge_refused_total', 'channel="upgrade",reason="handshake_timeout"'),
    ).toBeGreaterThanOrEqual(2);
    // The lookups that timed out end later without opening anything; the next handshake is fine.
    expect((await upgrade(`/ws?token=${t.keys.client}`)).status).toBe(101);
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
