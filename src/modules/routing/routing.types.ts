import type { RoutingRule } from './rule-engine.js';

/** A routing_rules row as the driver returns it. */
export interface RuleRow extends RoutingRule {
  /** The tenant the rule belongs to: it routes that tenant's tasks and connections only. */
  tenant_id: string;
  description: string | null;
  created_at: Date;
  updated_at: Date;
}

/** Columns a create or update writes; conditions already validated. */
export type RuleInput = Omit<RoutingRule, 'id' | 'created_at'> & { description: string | null };
