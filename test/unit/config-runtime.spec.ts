import { runCli, type CliEnv } from '../../src/cli/program.js';
import { bootSourceOf, CONFIG_KEYS, loadConfig } from '../../src/config/app-config.js';
import { HOT_KEYS, maskSetting, maskUrl } from '../../src/modules/runtime-config/settings-catalog.js';
import { checkSettings } from '../../src/modules/runtime-config/validate-settings.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('runtime configuration: masking', () => {
  it.each([
    ['postgres://u:secret@h/db', 'postgres://u:****@h/db'],
    [
      'postgres://u:s%40cr%3At@db.example:5432/taskhub?sslmode=require',
      'postgres://u:****@db.example:5432/taskhub?sslmode=require',
    ],
    ['redis://:pw@127.0.0.1:6379/0', 'redis://:****@127.0.0.1:6379/0'],
    ['redis://user:pw@127.0.0.1:1', 'redis://user:****@127.0.0.1:1'],
    ['postgres://h/db?user=u&password=secret', 'postgres://h/db?user=u&password=****'],
    ['postgres://u@h/db', 'postgres://u@h/db'],
  ])('%s → %s', (url, masked) => {
    expect(maskUrl(url)).toBe(masked);
    expect(maskSetting('DATABASE_URL', url)).toBe(masked);
  });

  it('hides an unparseable URL that carries credentials', () => {
    expect(maskUrl('not a url but u:pw@host')).toBe('****');
    expect(maskUrl('postgres://u:p w@h o/db')).toBe('postgres://u:****@h o/db');
  });

  it('masks any other secret-named value whole, and leaves other settings alone', () => {
    expect(maskSetting('WEBHOOK_SECRET', 'whsec_abc')).toBe('****');
    expect(maskSetting('ADMIN_TOKEN', 'tok')).toBe('****');
    expect(maskSetting('SMTP_PASSWORD', 'pw')).toBe('****');
    expect(maskSetting('OPENAI_API_KEY', 'sk-1')).toBe('****');
    expect(maskSetting('DATABASE_URL', null)).toBeNull();
    expect(maskSetting('CORS_ORIGIN', 'http://a:b@c')).toBe('http://a:b@c');
    expect(maskSetting('PORT', 3000)).toBe(3000);
  });
});

describe('runtime configuration: validation like the boot', () => {
  const config = loadConfig({});

  it('accepts strings as from the environment, and JSON numbers', () => {
    expect(checkSettings(config, { RATE_LIMIT_MAX: '120', RETRY_BACKOFF_BASE_MS: 250, LOG_LEVEL: 'debug' })).toEqual({
      ok: true,
      values: { RATE_LIMIT_MAX: 120, RETRY_BACKOFF_BASE_MS: 250, LOG_LEVEL: 'debug' },
    });
  });

  it.each([
    [{ NO_SUCH: 1 }, 'NO_SUCH', /Unknown setting/],
    [{ PORT: 1 }, 'PORT', /needs a restart/],
    [{ RATE_LIMIT_MAX: 'many' }, 'RATE_LIMIT_MAX', /integer/],
    [{ RATE_LIMIT_MAX: -1 }, 'RATE_LIMIT_MAX', /less than 0/],
    [{ RATE_LIMIT_MAX: 1.5 }, 'RATE_LIMIT_MAX', /integer/],
    [{ RATE_LIMIT_MAX: null }, 'RATE_LIMIT_MAX', /integer/],
    [{ DISPATCH_STRATEGY: 'fastest' }, 'DISPATCH_STRATEGY', /one of/],
    [{ LOG_LEVEL: 'debug', TASK_DEFAULT_TIMEOUT_SECONDS: 0 }, 'TASK_DEFAULT_TIMEOUT_SECONDS', /less than 1/],
  ])('refuses %j naming %s', (patch, field, message) => {
    const checked = checkSettings(config, patch);
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems[0].field).toBe(field);
    expect(checked.problems[0].message).toMatch(message);
  });

  it('has every hot key among the settings, and leaves the config untouched', () => {
    for (const key of HOT_KEYS) expect(CONFIG_KEYS).toContain(key);
    checkSettings(config, { RATE_LIMIT_MAX: 1 });
    expect(config.RATE_LIMIT_MAX).toBe(6000);
  });
});

describe('runtime configuration: boot sources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskhub-sources-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('tells default from env', () => {
    const c = loadConfig({ PORT: '8080', DATABASE_URL: 'postgres://x/y' });
    expect(bootSourceOf(c, 'PORT')).toBe('env');
    expect(bootSourceOf(c, 'DATABASE_URL')).toBe('env');
    expect(bootSourceOf(c, 'HOST')).toBe('default');
    expect(bootSourceOf(c, 'REDIS_URL')).toBe('default');
  });

  it('reports file for what the config file decided (env and flags win)', async () => {
    const file = join(dir, 'seed.json');
    writeFileSync(
      file,
      JSON.stringify({ server: { port: 3100, host: 'localhost', rateLimit: { max: 100, windowMs: 900000 } } }),
    );
    const seen: CliEnv[] = [];
    await runCli(
      ['server', '--config', file, '--host', '0.0.0.0'],
      { out: () => undefined, err: () => undefined },
      { RATE_LIMIT_MAX: '7' },
      {
        startServer: async (e) => void seen.push(e),
      },
    );
    const c = loadConfig(seen[0]);
    expect(c).toMatchObject({ PORT: 3100, HOST: '0.0.0.0', RATE_LIMIT_MAX: 7, RATE_LIMIT_WINDOW_MS: 900000 });
    expect(bootSourceOf(c, 'PORT')).toBe('file');
    expect(bootSourceOf(c, 'RATE_LIMIT_WINDOW_MS')).toBe('file');
    expect(bootSourceOf(c, 'HOST')).toBe('env');
    expect(bootSourceOf(c, 'RATE_LIMIT_MAX')).toBe('env');
    expect(bootSourceOf(c, 'LOG_LEVEL')).toBe('default');
  });
});
