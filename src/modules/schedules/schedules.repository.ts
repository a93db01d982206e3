import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { FireOutcome, ScheduleInput, ScheduleRow } from './schedule.types.js';

const COLUMNS = ['name', 'cron', 'timezone', 'at', 'task', 'notification', 'enabled', 'next_run_at'] as const;

const param = (column: (typeof COLUMNS)[number], value: unknown): unknown =>
  (column === 'task' || column === 'notification') && value !== null ? JSON.stringify(value) : value;

/** `schedules`: CRUD under the caller's tenant (row-level security), and the pollers' claim. */
@Injectable()
export class SchedulesRepository {
  constructor(private readonly db: DataSource) {}

  async list(limit: number, offset: number): Promise<{ rows: ScheduleRow[]; total: number }> {
    const [rows, [{ total }]] = await Promise.all([
      this.db.query(`SELECT * FROM schedules ORDER BY created_at DESC, id LIMIT $1 OFFSET $2`, [
        limit,
        offset,
      ]) as Promise<ScheduleRow[]>,
      this.db.query(`SELECT count(*)::int AS total FROM schedules`) as Promise<{ total: number }[]>,
    ]);
    return { rows, total };
  }

  async findById(id: string): Promise<ScheduleRow | undefined> {
    const rows: ScheduleRow[] = await this.db.query(`SELECT * FROM schedules WHERE id = $1`, [id]);
    return rows[0];
  }

  async insert(s: ScheduleInput): Promise<ScheduleRow> {
    const rows: ScheduleRow[] = await this.db.query(
      `INSERT INTO schedules (${COLUMNS.join(', ')}) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8) RETURNING *`,
      COLUMNS.map((c) => param(c, s[c])),
    );
    return rows[0];
  }

  /** Writes every column (the service merged the patch); a new definition clears the last error. */
  async update(id: string, s: ScheduleInput): Promise<ScheduleRow | undefined> {
    const rows: ScheduleRow[] = await this.db.query(
      `WITH u AS (
         UPDATE schedules SET name = $2, cron = $3, timezone = $4, at = $5, task = $6::jsonb,
                notification = $7::jsonb, enabled = $8, next_run_at = $9, last_error = NULL, updated_at = now()
         WHERE id = $1 RETURNING *)
       SELECT * FROM u`,
      [id, ...COLUMNS.map((c) => param(c, s[c]))],
    );
    return rows[0];
  }

  async delete(id: string): Promise<ScheduleRow | undefined> {
    const rows: ScheduleRow[] = await this.db.query(
      `WITH d AS (DELETE FROM schedules WHERE id = $1 RETURNING *) SELECT * FROM d`,
      [id],
    );
    return rows[0];
  }

  /**
   * Claims up to `limit` due schedules of every tenant (run as the system) with FOR UPDATE
   * SKIP LOCKED: another hub's poller skips them, so each slot is fired by one hub. `fire` runs
   * while the rows stay locked; its outcomes are written in the same transaction, each a
   * compare-and-set on the slot it fired. If the hub dies before the commit, the rows unlock
   * with their old next_run_at and fire again (a task's idempotency key makes that the same task).
   */
  async claimDue(limit: number, fire: (rows: ScheduleRow[]) => Promise<FireOutcome[]>): Promise<number> {
    return this.db.transaction(async (tx) => {
      const rows: ScheduleRow[] = await tx.query(
        `SELECT * FROM schedules WHERE enabled AND next_run_at <= now()
         ORDER BY next_run_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      if (rows.length === 0) return 0;
      const outcomes = await fire(rows);
      await tx.query(
        `UPDATE schedules s
         SET next_run_at = o.next_run_at, enabled = o.enabled,
             last_run_at = CASE WHEN o.fired THEN o.slot ELSE s.last_run_at END,
             last_task_id = COALESCE(o.task_id, s.last_task_id),
             runs = s.runs + CASE WHEN o.fired THEN 1 ELSE 0 END,
             last_error = o.error, updated_at = now()
         FROM jsonb_to_recordset($1::jsonb) AS o(id uuid, slot timestamptz, next_run_at timestamptz,
                                                 enabled boolean, fired boolean, task_id uuid, error text)
         WHERE s.id = o.id AND s.next_run_at = o.slot`,
        [JSON.stringify(outcomes)],
      );
      return rows.length;
    });
  }
}
