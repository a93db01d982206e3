import { IsOptional, IsString } from 'class-validator';
import { AppConfig, bootSourceOf, CONFIG_KEYS, ConfigError, loadConfig } from '../../src/config/app-config.js';

/** A setting added the way a contributor would: optional, no default, listed nowhere else. */
class WithNewSetting extends AppConfig {
  @IsOptional()
  @IsString()
  SOME_NEW_OPTIONAL_SETTING?: string;
}

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c.PORT).toBe(3000);
    expect(c.DATA_DIR).toBe('./data');
    expect(c.AUTH_REQUIRED).toBe(true);
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.BODY_LIMIT_BYTES).toBe(1024 * 1024);
  });

  it('reads and converts values from the environment', () => {
    const c = loadConfig({
      PORT: '8080',
      AUTH_REQUIRED: 'false',
      DATABASE_URL: 'postgres://x/y',
      TASK_DEFAULT_MAX_RETRIES: '5',
    });
    expect(c.PORT).toBe(8080);
    expect(c.AUTH_REQUIRED).toBe(false);
    expect(c.DATABASE_URL).toBe('postgres://x/y');
    expect(c.TASK_DEFAULT_MAX_RETRIES).toBe(5);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['AUTH_REQUIRED', 'maybe'],
    ['LOG_LEVEL', 'loud'],
    ['TASK_DEFAULT_TIMEOUT_SECONDS', '0'],
    ['METRICS_TOKEN', 'too-short'],
    ['METRICS_TOKEN', 'sixteen chars or more, with spaces'],
  ])('refuses %s=%s with a message naming it', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(`${key}=`));
  });

  it('reads an optional setting without a default from the environment, with no hand-kept list', () => {
    const c = loadConfig({ SOME_NEW_OPTIONAL_SETTING: 'seen', PORT: '8081' }, WithNewSetting);
    expect(c.SOME_NEW_OPTIONAL_SETTING).toBe('seen');
    expect(c.PORT).toBe(8081);
    expect(bootSourceOf(c, 'SOME_NEW_OPTIONAL_SETTING')).toBe('env');
    expect(loadConfig({}, WithNewSetting).SOME_NEW_OPTIONAL_SETTING).toBeUndefined();
  });

  it('knows every optional setting of AppConfig and reads each from the environment', () => {
    const defaults = new AppConfig() as unknown as Record<string, unknown>;
    const optional = CONFIG_KEYS.filter((k) => defaults[k] === undefined);
    expect(optional).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'EMBEDDED_PG_PORT', 'LLM_DEFAULT_MODEL']),
    );
    // '7' is a valid string and a valid port: every optional setting takes it (a token needs 16 characters).
    const value = (key: string): string => (key === 'METRICS_TOKEN' ? '7'.repeat(16) : '7');
    for (const key of optional) expect(loadConfig({ [key]: value(key) })[key as keyof AppConfig]).toBeDefined();
  });
});
