import type { RoutingRuleView } from './dto/routing-rule.dto.js';
import type { RuleRow } from './routing.types.js';

export function mapRoutingRule(r: RuleRow): RoutingRuleView {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    priority: r.priority,
    enabled: r.enabled,
    conditions: r.conditions,
    target_strategy: r.target_strategy,
    target_tags: r.target_tags,
    target_service: r.target_service,
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
  };
}
