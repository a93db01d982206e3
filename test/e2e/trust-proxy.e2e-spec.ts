import { connect } from 'node:net';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { AppConfig } from '../../src/config/app-config.js';
import { clientAddress } from '../../src/modules/edge/client-address.js';
import { DeviceGateway } from '../../src/modules/realtime/device.gateway.js';
import { eventually, startEcho } from '../support/agents.js';
import { apiClient } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { WsClient } from '../support/ws-client.js';

// TRUST_PROXY (docs/configuration.md, docs/deployment.md): which X-Forwarded-For the hub
// believes when it counts connections and requests per client address. The test client is on
// loopback, so `loopback` makes it a trusted proxy whose forwarded addresses count. Real hub,
// real sockets, real PostgreSQL.

const UPGRADE_HEADERS =
  'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

function suite(name: string, env: Record<string, string>, body: (app: () => TestApp) => void): void {
  describe(name, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ AUTH_REQUIRED: 'false', MAX_CONNECTIONS_PER_ADDRESS: '2', ...env });
    });
    afterEach(() => open.splice(0).forEach((c) => c()));
    afterAll(async () => {
      // Closing the app stops the echo service it started.
      await t.close();
    });
    body(() => t);
  });
}

const open: (() => void)[] = [];

/** A /ws upgrade sending this X-Forwarded-For (none when undefined): the answer's status, the socket kept open. */
function upgrade(t: TestApp, forwardedFor?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(t.url);
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: hub\r\n${forwardedFor === undefined ? '' : `X-Forwarded-For: ${forwardedFor}\r\n`}${UPGRADE_HEADERS}\r\n`,
      ),
    );
    open.push(() => socket.destroy());
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\r\n')) resolve(Number(text.split(' ')[1]));
    });
    socket.on('error', reject);
  });
}

/** An open /ws WebSocket whose upgrade carried this X-Forwarded-For. */
async function held(t: TestApp, forwardedFor: string): Promise<WebSocket> {
  const ws = new WebSocket(`${t.url.replace('http', 'ws')}/ws`, { headers: { 'X-Forwarded-For': forwardedFor } });
  open.push(() => ws.terminate());
  await new Promise((ok, fail) => {
    ws.once('open', ok);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', fail);
  });
  return ws;
}

/**
 * What clientAddress() reads for the Engine.IO request of a Socket.IO connection (polling, then
 * WebSocket) sending this X-Forwarded-For: Engine.IO's requests never pass through Express.
 */
async function engineIoAddresses(t: TestApp, forwardedFor: string): Promise<string[]> {
  const server = t.app.get(DeviceGateway).server;
  const seen: string[] = [];
  for (const transport of ['polling', 'websocket'] as const) {
    const connected = new Promise<string>((ok) => server.once('connection', (s) => ok(clientAddress(s.conn.request))));
    const c = io(t.url, {
      transports: [transport],
      extraHeaders: { 'X-Forwarded-For': forwardedFor },
      forceNew: true,
      reconnection: false,
    });
    open.push(() => c.disconnect());
    seen.push(await connected);
  }
  return seen;
}

/** GET /api/v1/tasks with this X-Forwarded-For: what is left of its rate-limit bucket (X-RateLimit-Remaining). */
async function remaining(t: TestApp, forwardedFor: string): Promise<number> {
  const res = await fetch(`${t.url}/api/v1/tasks?limit=1`, { headers: { 'X-Forwarded-For': forwardedFor } });
  await res.arrayBuffer();
  expect(res.status).toBe(200);
  return Number(res.headers.get('x-ratelimit-remaining'));
}

/**
 * The agent proxy's `client_ip` of a connection to a fresh echo service whose upgrade carried
 * this X-Forwarded-For, as GET /api/v1/connections shows it.
 */
async function proxiedClientIp(t: TestApp, name: string, forwardedFor: string): Promise<unknown> {
  const admin = apiClient(t, undefined);
  await startEcho(admin, name, { env: { ECHO_QUIET: '1' } });
  const c = await WsClient.open(`${t.url.replace('http', 'ws')}/ws?service=${name}`, {
    'X-Forwarded-For': forwardedFor,
  });
  open.push(() => c.close());
  await c.event('connection_routed');
  const list = await eventually(async () => {
    const body = (await admin.get(`/api/v1/connections?service_id=${name}&status=active`)).body as unknown as {
      connections: { client_ip: string }[];
    };
    return body.connections.length > 0 && body.connections;
  });
  return list[0].client_ip;
}

suite('TRUST_PROXY unset (false): a spoofed X-Forwarded-For is ignored', {}, (app) => {
  it('the per-address connection limit counts the socket peer, whatever X-Forwarded-For says', async () => {
    const t = app();
    await held(t, '198.51.100.1');
    await held(t, '198.51.100.2');
    // A third "address": still 127.0.0.1 to the hub, past MAX_CONNECTIONS_PER_ADDRESS=2.
    expect(await upgrade(t, '198.51.100.3')).toBe(429);
    expect(await upgrade(t)).toBe(429);
  });

  it('Socket.IO (Engine.IO) requests read the socket peer', async () => {
    expect(await engineIoAddresses(app(), '198.51.100.44')).toEqual(['127.0.0.1', '127.0.0.1']);
  });

  it("the agent proxy's client_ip is the socket peer", async () => {
    expect(await proxiedClientIp(app(), 'echo-untrusted', '198.51.100.7')).toBe('127.0.0.1');
  }, 20_000);

  it('the rate limit without a key counts the socket peer, whatever X-Forwarded-For says', async () => {
    const t = app();
    const first = await remaining(t, '203.0.113.1');
    // Another "address", the same bucket.
    expect(await remaining(t, '203.0.113.2')).toBe(first - 1);
    expect(await remaining(t, '203.0.113.3')).toBe(first - 2);
  });
});

suite(
  'TRUST_PROXY=loopback: behind a proxy on loopback, the forwarded address counts',
  { TRUST_PROXY: 'loopback' },
  (app) => {
    it('the per-address connection limit counts each forwarded address on its own', async () => {
      const t = app();
      await held(t, '198.51.100.1');
      await held(t, '198.51.100.1');
      expect(await upgrade(t, '198.51.100.1')).toBe(429);
      // Other clients behind the same proxy are not held to 198.51.100.1's count.
      expect(await upgrade(t, '198.51.100.2')).toBe(101);
      // The proxy's own connections (no header) count as its own address.
      expect(await upgrade(t)).toBe(101);
    });

    it('the client is the right-most untrusted hop: trusted (loopback) hops are skipped, a spoofed left part is not believed', async () => {
      const t = app();
      // Client 198.51.100.9 wrote "203.0.113.7" itself; a proxy appended the address it saw.
      await held(t, '203.0.113.7, 198.51.100.9');
      await held(t, '198.51.100.9, 127.0.0.1');
      expect(await upgrade(t, '198.51.100.9')).toBe(429);
      expect(await upgrade(t, '203.0.113.7')).toBe(101);
    });

    it('Socket.IO (Engine.IO) requests read the forwarded address, polling and WebSocket alike', async () => {
      expect(await engineIoAddresses(app(), '198.51.100.44')).toEqual(['198.51.100.44', '198.51.100.44']);
    });

    it("the agent proxy's client_ip is the forwarded address", async () => {
      expect(await proxiedClientIp(app(), 'echo-trusted', 'spoofed, 198.51.100.7')).toBe('198.51.100.7');
    }, 20_000);

    it('the rate limit without a key counts each forwarded address in its own bucket', async () => {
      const t = app();
      const first = await remaining(t, '203.0.113.1');
      expect(await remaining(t, '203.0.113.1')).toBe(first - 1);
      // A new address starts a full bucket (RATE_LIMIT_MAX - this request).
      expect(await remaining(t, '203.0.113.2')).toBe(t.app.get(AppConfig).RATE_LIMIT_MAX - 1);
      expect(await remaining(t, '203.0.113.2')).toBe(t.app.get(AppConfig).RATE_LIMIT_MAX - 2);
    });
  },
);
