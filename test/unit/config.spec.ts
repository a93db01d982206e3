import { ConfigError, loadConfig } from '../../src/config/app-config.js';

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
  ])('refuses %s=%s with a message naming it', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(`${key}=`));
  });
});
