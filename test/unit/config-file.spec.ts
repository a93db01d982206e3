import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliEnv } from '../../src/cli/program.js';
import { loadConfig } from '../../src/config/app-config.js';
import { envFromConfigFile } from '../../src/config/config-file.js';

describe('Codex Father config file (taskhub server --config)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskhub-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, content: unknown): string => {
    const file = join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };

  const seedFile = {
    server: {
      port: 3100,
      host: 'localhost',
      enableWebSocket: true,
      cors: { origin: ['http://a.test', 'http://b.test'] },
      rateLimit: { windowMs: 900000, max: 100 },
      websocket: { heartbeatInterval: 15000, maxConnections: 50 },
    },
    runner: { maxConcurrency: 4, defaultTimeout: 300500 },
  };

  it('maps the seed keys to the hub settings, which then validate', () => {
    const env = envFromConfigFile(write('seed.json', seedFile));
    expect(env).toEqual({
      PORT: '3100',
      HOST: 'localhost',
      CORS_ORIGIN: 'http://a.test,http://b.test',
      WS_ENABLED: 'true',
      RATE_LIMIT_WINDOW_MS: '900000',
      RATE_LIMIT_MAX: '100',
      WS_HEARTBEAT_INTERVAL_MS: '15000',
      WS_MAX_CONNECTIONS: '50',
      TASK_MAX_ACTIVE: '4',
      TASK_DEFAULT_TIMEOUT_SECONDS: '301',
    });
    const config = loadConfig(env);
    expect(config).toMatchObject({
      PORT: 3100,
      RATE_LIMIT_MAX: 100,
      WS_MAX_CONNECTIONS: 50,
      TASK_DEFAULT_TIMEOUT_SECONDS: 301,
    });
  });

  it('lets the environment and then the flags override the file', async () => {
    const file = write('layers.json', seedFile);
    const seen: CliEnv[] = [];
    const code = await runCli(
      ['server', '--config', file, '--host', '0.0.0.0'],
      { out: () => undefined, err: () => undefined },
      { PORT: '4000' },
      { startServer: async (e) => void seen.push(e) },
    );
    expect(code).toBe(0);
    expect(seen[0]).toMatchObject({
      PORT: '4000',
      HOST: '0.0.0.0',
      RATE_LIMIT_MAX: '100',
      CORS_ORIGIN: 'http://a.test,http://b.test',
    });
  });

  it('names a broken file and refuses a bad value by its setting', async () => {
    const err: string[] = [];
    const code = await runCli(
      ['server', '--config', write('broken.json', '{ not json')],
      { out: () => undefined, err: (s) => err.push(s) },
      {},
      { startServer: async () => undefined },
    );
    expect(code).toBe(1);
    expect(err.join('\n')).toContain('broken.json');
    expect(() => loadConfig(envFromConfigFile(write('bad.json', { server: { port: 'eighty' } })))).toThrow(/PORT=/);
  });

  it('maps the seed security settings, server.* over the top-level cors / rateLimit blocks', () => {
    const env = envFromConfigFile(
      write('security.json', {
        server: {
          cors: {
            origin: ['http://localhost:3000', 'https://myapp.com'],
            methods: ['GET', 'POST', 'PUT', 'DELETE'],
            credentials: true,
          },
          rateLimit: { windowMs: 60000, max: 100, message: '请求过于频繁，请稍后再试' },
          security: { helmet: true, compression: false },
        },
        cors: {
          origin: ['https://trusted-domain.com'],
          methods: ['GET', 'POST'],
          allowedHeaders: ['Content-Type', 'Authorization'],
          credentials: true,
        },
        rateLimit: { windowMs: 30000, max: 50, skipSuccessfulRequests: false, skipFailedRequests: true },
        runner: { maxConcurrency: 10 },
      }),
    );
    expect(env).toMatchObject({
      CORS_ORIGIN: 'http://localhost:3000,https://myapp.com',
      CORS_METHODS: 'GET,POST,PUT,DELETE',
      CORS_ALLOWED_HEADERS: 'Content-Type,Authorization',
      CORS_CREDENTIALS: 'true',
      RATE_LIMIT_WINDOW_MS: '60000',
      RATE_LIMIT_MAX: '100',
      RATE_LIMIT_MESSAGE: '请求过于频繁，请稍后再试',
      RATE_LIMIT_SKIP_SUCCESSFUL: 'false',
      RATE_LIMIT_SKIP_FAILED: 'true',
      SECURITY_HEADERS: 'true',
      COMPRESSION: 'false',
      TASK_MAX_ACTIVE: '10',
    });
    expect(loadConfig(env)).toMatchObject({
      CORS_CREDENTIALS: true,
      RATE_LIMIT_SKIP_FAILED: true,
      COMPRESSION: false,
      TASK_MAX_ACTIVE: 10,
    });
  });

  it('takes hub settings by name from a settings block, optional ones without a default included', () => {
    const env = envFromConfigFile(
      write('named.json', { server: { port: 3100 }, settings: { LLM_DEFAULT_MODEL: 'm1', PORT: 3200 } }),
    );
    expect(env).toMatchObject({ LLM_DEFAULT_MODEL: 'm1', PORT: '3200' });
    expect(loadConfig(env).LLM_DEFAULT_MODEL).toBe('m1');
    expect(() => envFromConfigFile(write('bad-named.json', { settings: { NOT_A_SETTING: 1 } }))).toThrow(
      /unknown setting NOT_A_SETTING/,
    );
  });
});
