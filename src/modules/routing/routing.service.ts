import { currentTenantSetting } from '../../database/tenant-context.js';
import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { CreateRoutingRuleDto, UpdateRoutingRuleDto } from './dto/routing-rule.dto.js';
import {
  compareRules,
  matchRule,
  type RoutingContext,
  RuleValidationError,
  validateConditions,
} from './rule-engine.js';
import { DUPLICATE_NAME, RoutingRepository } from './routing.repository.js';
import type { RuleInput, RuleRow } from './routing.types.js';

/** Rules are re-read at least this often, so writes made by another hub instance show up. */
const CACHE_TTL_MS = 5000;

function checkedConditions(input: unknown): RuleInput['conditions'] {
  try {
    return validateConditions(input);
  } catch (e) {
    if (e instanceof RuleValidationError) throw AppError.validation(e.field, e.message);
    throw e;
  }
}

/** Columns that cannot be cleared: `null` for them in an update is a validation error. */
const REQUIRED = ['name', 'priority', 'enabled', 'conditions', 'target_strategy', 'target_tags'] as const;

const duplicate = (name: string | undefined): AppError =>
  new AppError(ErrorCode.CONFLICT, `A routing rule named '${name}' already exists`, { field: 'name', name });

/** Routing rules: CRUD for the API and `match` for the dispatcher and the WebSocket proxy. */
@Injectable()
export class RoutingService {
  /** Per tenant context ('*': every tenant's rules, for the system): a tenant sees only its own. */
  private readonly cache = new Map<string, { rules: RuleRow[]; loadedAt: number }>();
  /** Bumped on every local write: a load that started before it is not cached. */
  private generation = 0;

  constructor(private readonly repo: RoutingRepository) {}

  list(enabled?: boolean): Promise<RuleRow[]> {
    return this.repo.list(enabled);
  }

  async get(id: string): Promise<RuleRow> {
    const rule = await this.repo.findById(id);
    if (!rule) throw AppError.notFound('Routing rule', id);
    return rule;
  }

  async create(dto: CreateRoutingRuleDto): Promise<RuleRow> {
    const row = await this.repo.insert({
      name: dto.name,
      description: dto.description ?? null,
      priority: dto.priority ?? 0,
      enabled: dto.enabled ?? true,
      conditions: checkedConditions(dto.conditions),
      target_strategy: dto.target_strategy ?? 'least_connections',
      target_tags: dto.target_tags ?? [],
      target_service: dto.target_service ?? null,
    });
    if (row === DUPLICATE_NAME) throw duplicate(dto.name);
    this.invalidate();
    return row;
  }

  /** Partial update: only the fields given change. */
  async update(id: string, dto: UpdateRoutingRuleDto): Promise<RuleRow> {
    const cleared = REQUIRED.find((k) => dto[k] === null);
    if (cleared) throw AppError.validation(cleared, `${cleared} cannot be null`);
    const patch: Partial<RuleInput> = {
      ...dto,
      conditions: dto.conditions === undefined ? undefined : checkedConditions(dto.conditions),
    };
    const row = await this.repo.update(id, patch);
    if (row === DUPLICATE_NAME) throw duplicate(dto.name);
    if (!row) throw AppError.notFound('Routing rule', id);
    this.invalidate();
    return row;
  }

  async remove(id: string): Promise<RuleRow> {
    const row = await this.repo.delete(id);
    if (!row) throw AppError.notFound('Routing rule', id);
    this.invalidate();
    return row;
  }

  /** The rule that routes this connection or task, or null (callers use their default strategy). */
  async match(context: RoutingContext): Promise<RuleRow | null> {
    return matchRule(await this.enabledRules(), context);
  }

  /**
   * The rule that claims a bare WebSocket connection for the agent proxy (seed 003: "routed by
   * the routing rules"): only rules with at least one positive condition on the request itself
   * (`header.*`, `query.*` or `client_ip` with equals, contains, regex, in, or exists: true)
   * count, so a catch-all, task-only or purely negative rule never takes a plain `/ws` client
   * away from the Codex event stream.
   */
  async matchConnection(context: Omit<RoutingContext, 'task'>): Promise<RuleRow | null> {
    const claims = (c: RuleRow['conditions'][number]): boolean =>
      !c.field.startsWith('task.') && c.operator !== 'not_equals' && !(c.operator === 'exists' && c.value !== true);
    const rules = (await this.enabledRules()).filter((r) => r.conditions.some(claims));
    return matchRule(rules, context);
  }

  /**
   * A synchronous matcher for one dispatch round: the rules that speak about tasks (at least
   * one `task.*` condition), loaded once, matched per task without I/O. A task meets only its
   * own tenant's rules: the dispatcher runs as the system and loads every tenant's.
   */
  async taskRouter(): Promise<(task: Record<string, unknown>, tenantId: string) => RuleRow | null> {
    const byTenant = new Map<string, RuleRow[]>();
    for (const rule of await this.enabledRules()) {
      if (!rule.conditions.some((c) => c.field.startsWith('task.'))) continue;
      const rules = byTenant.get(rule.tenant_id);
      if (rules) rules.push(rule);
      else byTenant.set(rule.tenant_id, [rule]);
    }
    if (byTenant.size === 0) return () => null;
    return (task, tenantId) => {
      const rules = byTenant.get(tenantId);
      return rules ? matchRule(rules, { task }) : null;
    };
  }

  invalidate(): void {
    this.generation++;
    this.cache.clear();
  }

  private async enabledRules(): Promise<RuleRow[]> {
    const tenant = currentTenantSetting();
    const cached = this.cache.get(tenant);
    if (cached && Date.now() - cached.loadedAt < CACHE_TTL_MS) return cached.rules;
    const generation = this.generation;
    const rules = (await this.repo.list(true)).sort(compareRules);
    if (generation === this.generation) this.cache.set(tenant, { rules, loadedAt: Date.now() });
    return rules;
  }
}
