import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { RuleInput, RuleRow } from './routing.types.js';

const COLUMNS = [
  'name',
  'description',
  'priority',
  'enabled',
  'conditions',
  'target_strategy',
  'target_tags',
  'target_service',
] as const;

/** The name is taken by another rule. */
export const DUPLICATE_NAME = Symbol('duplicate-name');

const isUniqueViolation = (e: unknown): boolean => {
  const err = e as { code?: string; driverError?: { code?: string } };
  return err.code === '23505' || err.driverError?.code === '23505';
};

const param = (column: (typeof COLUMNS)[number], value: unknown): unknown =>
  column === 'conditions' ? JSON.stringify(value) : value;

@Injectable()
export class RoutingRepository {
  constructor(private readonly db: DataSource) {}

  async list(enabled?: boolean): Promise<RuleRow[]> {
    const where = enabled === undefined ? '' : 'WHERE enabled = $1';
    return this.db.query(
      `SELECT * FROM routing_rules ${where} ORDER BY priority DESC, created_at, id`,
      enabled === undefined ? [] : [enabled],
    );
  }

  async findById(id: string): Promise<RuleRow | undefined> {
    const rows: RuleRow[] = await this.db.query(`SELECT * FROM routing_rules WHERE id = $1`, [id]);
    return rows[0];
  }

  async insert(r: RuleInput): Promise<RuleRow | typeof DUPLICATE_NAME> {
    const rows: RuleRow[] = await this.db.query(
      `WITH i AS (
         INSERT INTO routing_rules (${COLUMNS.join(', ')}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING *)
       SELECT * FROM i`,
      COLUMNS.map((c) => param(c, r[c])),
    );
    return rows[0] ?? DUPLICATE_NAME;
  }

  /** Writes only the columns given; undefined when there is no such rule. */
  async update(id: string, patch: Partial<RuleInput>): Promise<RuleRow | undefined | typeof DUPLICATE_NAME> {
    const columns = COLUMNS.filter((c) => patch[c] !== undefined);
    const sets = columns.map((c, i) => `${c} = $${i + 2}`);
    try {
      const rows: RuleRow[] = await this.db.query(
        `WITH u AS (UPDATE routing_rules SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE id = $1 RETURNING *)
         SELECT * FROM u`,
        [id, ...columns.map((c) => param(c, patch[c]))],
      );
      return rows[0];
    } catch (e) {
      if (isUniqueViolation(e)) return DUPLICATE_NAME;
      throw e;
    }
  }

  async delete(id: string): Promise<RuleRow | undefined> {
    const rows: RuleRow[] = await this.db.query(
      `WITH d AS (DELETE FROM routing_rules WHERE id = $1 RETURNING *) SELECT * FROM d`,
      [id],
    );
    return rows[0];
  }
}
