import { Logger } from '@nestjs/common';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options.js';
import { installTenantHook } from '../../src/database/tenant-connection.js';
import { runAsSystem, runAsTenant } from '../../src/database/tenant-context.js';
import { createSuiteDatabase } from '../support/test-database.js';

// The pool hands a statement a connection that already carries its caller's tenant setting when
// one is idle (src/database/tenant-connection.ts): a request's statement and the dispatcher's,
// taking turns, must not pay a `set_config` round trip each (W3 measured 1.8 per submitted task).
describe('tenant setting: connection affinity', () => {
  let ds: DataSource;
  const setConfigs: string[] = [];
  const realQuery = pg.Client.prototype.query;

  beforeAll(async () => {
    ds = new DataSource(dataSourceOptions(await createSuiteDatabase('affinity'), 4));
    await ds.initialize();
    await installTenantHook(ds, new Logger('test'));
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
      if (text?.includes("set_config('taskhub.tenant_id'")) setConfigs.push(text);
      return (realQuery as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof realQuery;
  });

  afterAll(async () => {
    pg.Client.prototype.query = realQuery;
    await ds.destroy();
  });

  const setting = async (): Promise<string> =>
    ((await ds.query(`SELECT current_setting('taskhub.tenant_id') AS s`)) as { s: string }[])[0].s;

  it('alternating tenant and system statements reuse a connection each, with the right setting every time', async () => {
    // Two connections open and idle, one per setting.
    await Promise.all([runAsTenant('tenant-a', setting), runAsSystem(setting)]);
    setConfigs.length = 0;
    for (let i = 0; i < 20; i++) {
      expect(await runAsTenant('tenant-a', setting)).toBe('tenant-a');
      expect(await runAsSystem(setting)).toBe('*');
    }
    // Without affinity the pool's last-in-first-out order flips the setting on every statement (40).
    expect(setConfigs.length).toBeLessThanOrEqual(2);
  });

  it('a third setting still gets its own value (the hook sets it when no idle connection carries it)', async () => {
    setConfigs.length = 0;
    expect(await runAsTenant('tenant-b', setting)).toBe('tenant-b');
    expect(setConfigs.length).toBe(1);
    expect(await runAsTenant('tenant-a', setting)).toBe('tenant-a');
    expect(await runAsSystem(setting)).toBe('*');
  });
});
