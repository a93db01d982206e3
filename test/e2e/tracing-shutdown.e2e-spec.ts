import { createServer, type Server, type Socket } from 'node:net';
import { startTestApp } from '../support/test-app.js';

// Issue 28: an unreachable OTLP collector must not hold a hub's shutdown for the exporter's own
// timeout. The collector here accepts connections and never answers (a black hole), the worst kind.
describe('traces: shutdown with a collector that never answers', () => {
  let blackHole: Server;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    blackHole = createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((ok) => blackHole.listen(0, '127.0.0.1', ok));
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(blackHole.address() as { port: number }).port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '20000',
    });
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((ok) => blackHole.close(ok));
  });

  it('closes within a few seconds though spans are queued and the export hangs', async () => {
    const t = await startTestApp();
    for (let i = 0; i < 5; i++) expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const started = Date.now();
    await t.close();
    const took = Date.now() - started;
    // The flush gets 2 s; the exporter alone would wait its 20 s timeout.
    expect(took).toBeLessThan(6000);
  }, 30_000);
});
