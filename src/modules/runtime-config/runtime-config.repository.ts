import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { SettingValue } from './settings-catalog.js';

/** Every hub instance LISTENs here; the payload is `{"keys": [...]}` (listeners reload all rows anyway). */
export const CONFIG_CHANNEL = 'taskhub_config';

export interface RuntimeSettingRow {
  key: string;
  value: unknown;
  updated_at: Date;
  updated_by: string | null;
}

const notifySql = `SELECT pg_notify('${CONFIG_CHANNEL}', $1)`;

/** All SQL over runtime_settings. Each write and its NOTIFY commit together (NOTIFY is sent at commit). */
@Injectable()
export class RuntimeConfigRepository {
  constructor(private readonly db: DataSource) {}

  async list(): Promise<RuntimeSettingRow[]> {
    return this.db.query(`SELECT key, value, updated_at, updated_by FROM runtime_settings ORDER BY key`);
  }

  /** Stores every entry or none, and tells the other instances. */
  async upsertMany(values: Record<string, SettingValue>, updatedBy: string | null): Promise<void> {
    const keys = Object.keys(values);
    await this.db.transaction(async (m) => {
      await m.query(
        `INSERT INTO runtime_settings (key, value, updated_at, updated_by)
         SELECT x.key, x.value, now(), $2 FROM jsonb_each($1::jsonb) AS x(key, value)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
        [JSON.stringify(values), updatedBy],
      );
      await m.query(notifySql, [JSON.stringify({ keys })]);
    });
  }

  /** Removes the runtime value of `key` (and tells the other instances); false when there was none. */
  async delete(key: string): Promise<boolean> {
    return this.db.transaction(async (m) => {
      const rows: { key: string }[] = await m.query(
        `WITH d AS (DELETE FROM runtime_settings WHERE key = $1 RETURNING key) SELECT key FROM d`,
        [key],
      );
      if (rows.length === 0) return false;
      await m.query(notifySql, [JSON.stringify({ keys: [key] })]);
      return true;
    });
  }
}
