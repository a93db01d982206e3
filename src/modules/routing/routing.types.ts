import type { RoutingRule, RuleCondition, Strategy } from './rule-engine.js';

/** A routing_rules row as the driver returns it. */
export interface RuleRow extends RoutingRule {
  description: string | null;
  created_at: Date;
  updated_at: Date;
}

/** Columns a create or update writes; conditions already validated. */
export interface RuleInput {
  name: string;
  description: string | null;
  priority: number;
  enabled: boolean;
  conditions: RuleCondition[];
  target_strategy: Strategy;
  target_tags: string[];
  target_service: string | null;
}
