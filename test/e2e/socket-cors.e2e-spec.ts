import { io, type Socket } from 'socket.io-client';
import { startTestApp, type TestApp } from '../support/test-app.js';

const ALLOWED = 'http://allowed.example';
const EVIL = 'http://evil.example';

/** An Engine.IO polling handshake (the first request a browser's socket.io-client makes), from `origin`. */
async function handshake(app: TestApp, origin: string, namespacePath = ''): Promise<Response> {
  return fetch(`${app.url}/socket.io/?EIO=4&transport=polling${namespacePath}`, { headers: { Origin: origin } });
}

/** The CORS preflight a browser sends before a polling POST. */
async function preflight(app: TestApp, origin: string): Promise<Response> {
  return fetch(`${app.url}/socket.io/?EIO=4&transport=polling`, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' },
  });
}

function connect(app: TestApp, origin: string, nsp = ''): Promise<{ socket: Socket; error?: Error }> {
  const socket = io(`${app.url}${nsp}`, {
    transports: ['websocket'],
    extraHeaders: { Origin: origin },
    auth: { token: app.keys.admin },
    reconnection: false,
  });
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ socket }));
    socket.once('connect_error', (error) => resolve({ socket, error }));
  });
}

describe('Socket.IO CORS follows CORS_ORIGIN and CORS_CREDENTIALS', () => {
  describe('with CORS_ORIGIN=http://allowed.example and credentials', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp({ CORS_ORIGIN: ALLOWED, CORS_CREDENTIALS: 'true' });
    });
    afterAll(() => app.close());

    it('answers the allowed origin with its ACAO and credentials headers', async () => {
      const res = await handshake(app, ALLOWED);
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
      expect(await res.text()).toMatch(/^0\{"sid":/);
      const pre = await preflight(app, ALLOWED);
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    });

    it('refuses a handshake from another origin, without an ACAO header for it', async () => {
      const res = await handshake(app, EVIL);
      expect(res.status).toBe(403);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      const pre = await preflight(app, EVIL);
      expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('applies to the WebSocket transport and to /events too (browsers do not apply CORS to WebSockets)', async () => {
      const evil = await connect(app, EVIL, '/events');
      expect(evil.error).toBeDefined();
      evil.socket.close();
      const good = await connect(app, ALLOWED, '/events');
      expect(good.error).toBeUndefined();
      good.socket.close();
    });

    it('lets clients outside a browser (no Origin header) connect as before', async () => {
      const res = await fetch(`${app.url}/socket.io/?EIO=4&transport=polling`);
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('is the same policy as HTTP', async () => {
      const good = await fetch(`${app.url}/healthz`, { headers: { Origin: ALLOWED } });
      expect(good.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      const evil = await fetch(`${app.url}/healthz`, { headers: { Origin: EVIL } });
      expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    });
  });

  describe('by default (CORS_ORIGIN=*)', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp();
    });
    afterAll(() => app.close());

    it('stays permissive: any origin is echoed, as on HTTP', async () => {
      const res = await handshake(app, EVIL);
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(EVIL);
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      const { socket, error } = await connect(app, EVIL);
      expect(error).toBeUndefined();
      socket.close();
    });
  });
});
