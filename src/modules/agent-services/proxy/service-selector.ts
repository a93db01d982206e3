/**
 * Which agent service a proxied WebSocket connection goes to: pure, so it is table-tested.
 * Order: a session's sticky service; else an explicitly named service; else the client's tag;
 * a matching routing rule narrows to its target and sets the strategy; then healthy services
 * with room left, chosen by strategy (rule > client's routing_hint > hub default).
 */
import { type RoutingRule } from '../../routing/rule-engine.js';
import { isStrategy, pickTarget, type RoundRobinCursor, type Strategy } from '../../routing/rule-engine.js';
import { isRoutable, type ServiceRow } from '../agent-service.types.js';

export interface ProxyRequest {
  service?: string;
  tag?: string;
  session_id?: string;
  routing_hint?: string;
  client_ip?: string;
}

export interface SelectContext {
  /** Open connections per service id (least_connections, max_sessions). */
  active: (serviceId: string) => number;
  /** The service the request's session last used, if any. */
  sticky: string | null;
  /** Services this connection already failed on. */
  exclude: ReadonlySet<string>;
  defaultStrategy: Strategy;
  cursor?: RoundRobinCursor;
  random?: () => number;
}

export interface Selection {
  ok: true;
  service: ServiceRow;
  strategy: Strategy;
  rule: RoutingRule | null;
  reason: 'sticky' | 'named' | 'rule' | 'tag' | 'default';
}

export interface SelectionFailure {
  ok: false;
  code: 'ROUTING_FAILED' | 'INSUFFICIENT_RESOURCES';
  message: string;
  /** Worth retrying later: a matching service is restarting, or every match is full. */
  recoverable: boolean;
}

const fail = (code: SelectionFailure['code'], message: string, recoverable: boolean): SelectionFailure => ({
  ok: false,
  code,
  message,
  recoverable,
});

const sharesTag = (a: ServiceRow, b: ServiceRow): boolean => a.tags.some((t) => b.tags.includes(t));

function ruleTargets(rule: RoutingRule, pool: ServiceRow[]): ServiceRow[] {
  if (rule.target_service) return pool.filter((s) => s.name === rule.target_service || s.id === rule.target_service);
  return pool.filter((s) => rule.target_tags.every((t) => s.tags.includes(t)));
}

export function selectService(
  all: readonly ServiceRow[],
  req: ProxyRequest,
  rule: RoutingRule | null,
  ctx: SelectContext,
): Selection | SelectionFailure {
  let pool: ServiceRow[] = [...all];
  let reason: Selection['reason'] = 'default';
  let appliedRule: RoutingRule | null = null;

  if (req.service) {
    const named = all.find((s) => s.name === req.service || s.id === req.service);
    if (!named) return fail('ROUTING_FAILED', `No service named '${req.service}'`, false);
    // Fail-over from a named service goes to its siblings: services sharing a tag with it.
    pool = ctx.exclude.has(named.id)
      ? [named, ...all.filter((s) => s.id !== named.id && sharesTag(s, named))]
      : [named];
    reason = 'named';
  }
  if (req.tag) {
    pool = pool.filter((s) => s.tags.includes(req.tag as string));
    reason = reason === 'named' ? reason : 'tag';
  }
  if (rule && !req.service) {
    const targets = ruleTargets(rule, pool);
    if (targets.length > 0) {
      pool = targets;
      appliedRule = rule;
      reason = 'rule';
    }
  }
  if (pool.length === 0) {
    return fail(
      'ROUTING_FAILED',
      req.tag ? `No service has tag '${req.tag}'` : 'No service is registered for routing',
      false,
    );
  }
  const strategy: Strategy =
    appliedRule?.target_strategy ?? (isStrategy(req.routing_hint) ? req.routing_hint : ctx.defaultStrategy);

  const healthy = pool.filter((s) => isRoutable(s) && !ctx.exclude.has(s.id));
  if (healthy.length === 0) {
    // Worth waiting for: a service meant to run that may come back (a crashed managed one restarts by itself).
    const comingBack = pool.some(
      (s) =>
        s.desired_state === 'running' &&
        s.status !== 'stopped' &&
        s.status !== 'stopping' &&
        (!ctx.exclude.has(s.id) || (s.kind === 'managed' && s.config.auto_restart)),
    );
    return fail('ROUTING_FAILED', 'No healthy service available for routing', comingBack);
  }
  const withRoom = healthy.filter((s) => ctx.active(s.id) < s.config.max_sessions);
  if (withRoom.length === 0) {
    return fail(
      'INSUFFICIENT_RESOURCES',
      `Every matching service is at max_sessions (${healthy.map((s) => `${s.name}: ${s.config.max_sessions}`).join(', ')})`,
      true,
    );
  }
  const sticky = ctx.sticky ? withRoom.find((s) => s.id === ctx.sticky) : undefined;
  if (sticky) return { ok: true, service: sticky, strategy, rule: appliedRule, reason: 'sticky' };

  const candidates = withRoom.map((s) => ({ id: s.id, connections: ctx.active(s.id), weight: s.weight, service: s }));
  const key = req.session_id ?? req.client_ip;
  const picked = pickTarget(strategy, candidates, key, {
    cursor: ctx.cursor,
    scope: appliedRule?.id ?? `default:${req.tag ?? ''}`,
    random: ctx.random,
  });
  if (!picked) return fail('ROUTING_FAILED', 'No service could be picked', false);
  return { ok: true, service: picked.service, strategy, rule: appliedRule, reason };
}
