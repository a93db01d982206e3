import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { currentTenantSetting, DEFAULT_TENANT, NO_TENANT, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { TaskCountsRepository } from './task-counts.repository.js';
import { UNFINISHED_STATES } from './task-state.js';

/**
 * `limits.max_tasks` (docs/tenants.md, Limits): a tenant may have at most that many tasks
 * pending, dispatched or running. Checked before the insert, against the tenant's counters
 * (task-counts.repository.ts, no scan): submissions racing on several requests at once may pass it by the ones in
 * flight (a soft limit, like TASK_MAX_ACTIVE's), never by more.
 */
@Injectable()
export class TenantTaskLimit {
  constructor(
    private readonly tenants: TenantsService,
    private readonly counts: TaskCountsRepository,
  ) {}

  /** How many of `wanted` new tasks the caller's tenant may still take (Infinity: no limit), and its max_tasks. */
  async room(wanted: number): Promise<{ room: number; max?: number }> {
    const setting = currentTenantSetting();
    if (wanted === 0 || setting === NO_TENANT) return { room: Infinity }; // nobody: the insert fails closed anyway
    // The system's (and a global admin's) inserts land in default: its limit holds them.
    const tenantId = setting === SYSTEM_TENANT ? DEFAULT_TENANT : setting;
    const max = (await this.tenants.limitsOf(tenantId)).max_tasks;
    if (max === undefined) return { room: Infinity };
    return { room: Math.max(0, max - (await this.counts.totalOf(tenantId, UNFINISHED_STATES))), max };
  }

  /** Throws TENANT_LIMIT_EXCEEDED unless one more task fits. */
  async admitOne(): Promise<void> {
    const { room, max } = await this.room(1);
    if (room < 1) throw tenantLimitExceeded(max as number);
  }
}

export function tenantLimitExceeded(max: number): AppError {
  return new AppError(
    ErrorCode.TENANT_LIMIT_EXCEEDED,
    `Tenant limit max_tasks reached: at most ${max} tasks pending, dispatched or running at once`,
    { limit: 'max_tasks', max },
  );
}
