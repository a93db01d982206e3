import {
  DEFAULT_HEALTH_CHECK,
  DEFAULT_SERVICE_CONFIG,
  type ServiceRow,
} from '../../src/modules/agent-services/agent-service.types.js';
import {
  selectService,
  type SelectContext,
  type Selection,
  type SelectionFailure,
} from '../../src/modules/agent-services/proxy/service-selector.js';
import { RoundRobinCursor, type RoutingRule } from '../../src/modules/routing/rule-engine.js';

function service(name: string, over: Partial<ServiceRow> = {}): ServiceRow {
  return {
    id: `id-${name}`,
    tenant_id: 'default',
    name,
    description: null,
    kind: 'managed',
    agent_factory_path: '/a.js',
    command: null,
    args: [],
    cwd: null,
    env: {},
    host: '127.0.0.1',
    port: 0,
    runtime_port: 9000,
    endpoint: null,
    health_check: DEFAULT_HEALTH_CHECK,
    tags: [],
    config: DEFAULT_SERVICE_CONFIG,
    weight: 1,
    status: 'running',
    desired_state: 'running',
    health_status: 'healthy',
    health_checked_at: null,
    health_response_ms: null,
    health_message: null,
    pid: 1,
    owner_instance: 'x',
    owner_seen_at: null,
    restart_count: 0,
    last_exit_code: null,
    last_error: null,
    created_at: new Date(0),
    updated_at: new Date(0),
    started_at: new Date(0),
    stopped_at: null,
    ...over,
  };
}

const rule = (over: Partial<RoutingRule>): RoutingRule => ({
  id: 'r1',
  name: 'r1',
  priority: 0,
  enabled: true,
  conditions: [],
  target_strategy: 'least_connections',
  target_tags: [],
  target_service: null,
  ...over,
});

function ctx(over: Partial<SelectContext> = {}, load: Record<string, number> = {}): SelectContext {
  return {
    active: (id) => load[id] ?? 0,
    sticky: null,
    exclude: new Set(),
    defaultStrategy: 'least_connections',
    ...over,
  };
}

const ok = (r: Selection | SelectionFailure): Selection => {
  if (!r.ok) throw new Error(`expected a selection, got ${r.code}: ${r.message}`);
  return r;
};
const failed = (r: Selection | SelectionFailure): SelectionFailure => {
  if (r.ok) throw new Error(`expected a failure, got ${r.service.name}`);
  return r;
};

describe('selectService', () => {
  const a = service('a', { tags: ['chat'] });
  const b = service('b', { tags: ['chat', 'high-performance'] });
  const c = service('c', { tags: ['news'] });
  const all = [a, b, c];

  it.each([
    ['a named service', { service: 'c' }, null, 'c', 'named'],
    ['a named service by id', { service: 'id-b' }, null, 'b', 'named'],
    ['the least loaded of a tag', { tag: 'chat' }, null, 'a', 'tag'],
    ['the rule target over the tag', { tag: 'chat' }, rule({ target_tags: ['high-performance'] }), 'b', 'rule'],
    ['a rule naming a service', {}, rule({ target_service: 'c' }), 'c', 'rule'],
    ['an explicit service over a rule', { service: 'a' }, rule({ target_service: 'c' }), 'a', 'named'],
    [
      'no rule target among the tag: the rule is ignored',
      { tag: 'news' },
      rule({ target_tags: ['high-performance'] }),
      'c',
      'tag',
    ],
  ] as const)('picks %s', (_label, req, r, expected, reason) => {
    const s = ok(selectService(all, req, r, ctx()));
    expect([s.service.name, s.reason]).toEqual([expected, reason]);
  });

  it('uses the rule strategy, else a valid routing_hint, else the default', () => {
    expect(
      ok(
        selectService(
          all,
          { tag: 'chat', routing_hint: 'random' },
          rule({ target_tags: ['chat'], target_strategy: 'round_robin' }),
          ctx(),
        ),
      ).strategy,
    ).toBe('round_robin');
    expect(ok(selectService(all, { tag: 'chat', routing_hint: 'random' }, null, ctx())).strategy).toBe('random');
    expect(
      ok(selectService(all, { tag: 'chat', routing_hint: 'fastest' }, null, ctx({ defaultStrategy: 'hash' }))).strategy,
    ).toBe('hash');
  });

  it('least_connections follows load; round_robin cycles; hash is stable per session', () => {
    expect(ok(selectService(all, { tag: 'chat' }, null, ctx({}, { 'id-a': 3, 'id-b': 1 }))).service.name).toBe('b');
    const cursor = new RoundRobinCursor();
    const names = Array.from(
      { length: 4 },
      () => ok(selectService(all, { tag: 'chat', routing_hint: 'round_robin' }, null, ctx({ cursor }))).service.name,
    );
    expect(names).toEqual(['a', 'b', 'a', 'b']);
    const pick = (session: string) =>
      ok(selectService(all, { tag: 'chat', routing_hint: 'hash', session_id: session }, null, ctx())).service.name;
    for (const s of ['s1', 's2', 's3', 's4']) expect(pick(s)).toBe(pick(s));
  });

  it('skips stopped, unhealthy and excluded services; unknown health is routable', () => {
    const sick = service('sick', { tags: ['t'], health_status: 'unhealthy' });
    const stopped = service('stopped', { tags: ['t'], status: 'stopped', desired_state: 'stopped' });
    const fresh = service('fresh', { tags: ['t'], health_status: 'unknown' });
    const gone = service('gone', { tags: ['t'] });
    const s = ok(
      selectService([sick, stopped, fresh, gone], { tag: 't' }, null, ctx({ exclude: new Set(['id-gone']) })),
    );
    expect(s.service.name).toBe('fresh');
  });

  it('keeps a session on its sticky service while it is healthy and has room', () => {
    expect(ok(selectService(all, { tag: 'chat' }, null, ctx({ sticky: 'id-b' }, { 'id-b': 5 }))).service.name).toBe(
      'b',
    );
    const full = [a, service('b', { tags: ['chat'], config: { ...DEFAULT_SERVICE_CONFIG, max_sessions: 1 } })];
    expect(ok(selectService(full, { tag: 'chat' }, null, ctx({ sticky: 'id-b' }, { 'id-b': 1 }))).service.name).toBe(
      'a',
    );
    const sick = [a, service('b', { tags: ['chat'], health_status: 'unhealthy' })];
    expect(ok(selectService(sick, { tag: 'chat' }, null, ctx({ sticky: 'id-b' }))).service.name).toBe('a');
  });

  it('fails over from a named service to its siblings (services sharing a tag)', () => {
    const s = ok(selectService(all, { service: 'a' }, null, ctx({ exclude: new Set(['id-a']) })));
    expect(s.service.name).toBe('b');
    expect(failed(selectService(all, { service: 'c' }, null, ctx({ exclude: new Set(['id-c']) }))).code).toBe(
      'ROUTING_FAILED',
    );
  });

  it('says why it cannot route, and whether waiting may help', () => {
    expect(failed(selectService(all, { service: 'nope' }, null, ctx()))).toMatchObject({
      code: 'ROUTING_FAILED',
      recoverable: false,
    });
    expect(failed(selectService(all, { tag: 'nope' }, null, ctx()))).toMatchObject({
      code: 'ROUTING_FAILED',
      recoverable: false,
    });
    expect(failed(selectService([], {}, null, ctx()))).toMatchObject({ code: 'ROUTING_FAILED', recoverable: false });
    const stopped = service('s', { status: 'stopped', desired_state: 'stopped' });
    expect(failed(selectService([stopped], { service: 's' }, null, ctx()))).toMatchObject({
      code: 'ROUTING_FAILED',
      recoverable: false,
    });
    // A crashed managed service with auto_restart comes back: worth waiting for.
    const crashed = service('s', { status: 'error' });
    expect(failed(selectService([crashed], { service: 's' }, null, ctx({ exclude: new Set(['id-s']) })))).toMatchObject(
      { recoverable: true },
    );
    const noRestart = service('s', { status: 'error', config: { ...DEFAULT_SERVICE_CONFIG, auto_restart: false } });
    expect(
      failed(selectService([noRestart], { service: 's' }, null, ctx({ exclude: new Set(['id-s']) }))),
    ).toMatchObject({ recoverable: false });
    const small = service('s', { config: { ...DEFAULT_SERVICE_CONFIG, max_sessions: 2 } });
    expect(failed(selectService([small], { service: 's' }, null, ctx({}, { 'id-s': 2 })))).toMatchObject({
      code: 'INSUFFICIENT_RESOURCES',
      recoverable: true,
    });
  });
});
