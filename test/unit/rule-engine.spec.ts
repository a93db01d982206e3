import {
  compileSafeRegex,
  matchCondition,
  matchRule,
  pickTarget,
  resolveField,
  RoundRobinCursor,
  RuleValidationError,
  stableHash,
  UnsafeRegexError,
  validateConditions,
  type Candidate,
  type RoutingContext,
  type RoutingRule,
  type RuleCondition,
} from '../../src/modules/routing/rule-engine.js';

const ctx: RoutingContext = {
  headers: { 'X-User-Tier': 'vip', 'x-region': 'eu-west', 'set-cookie': ['a=1', 'b=2'] },
  query: { session_id: 's-42', tag: 'gpu', multi: ['x', 'y'] },
  client_ip: '10.0.0.7',
  task: {
    priority: 2,
    type: 'prompt',
    tags: ['gpu', 'fast'],
    metadata: { team: 'ml', nested: { level: 3 } },
    empty: null,
  },
};

const cond = (field: string, operator: RuleCondition['operator'], value: unknown): RuleCondition => ({
  field,
  operator,
  value,
});

describe('resolveField', () => {
  it.each([
    ['header.x-user-tier', 'vip'],
    ['header.X-USER-TIER', 'vip'],
    ['header.missing', undefined],
    ['query.session_id', 's-42'],
    ['query.SESSION_ID', undefined],
    ['client_ip', '10.0.0.7'],
    ['task.priority', 2],
    ['task.tags', ['gpu', 'fast']],
    ['task.metadata.team', 'ml'],
    ['task.metadata.nested.level', 3],
    ['task.metadata.team.x', undefined],
    ['task.constructor', undefined],
    ['task.nope.deeper', undefined],
  ])('%s → %p', (field, expected) => {
    expect(resolveField(field, ctx)).toEqual(expected);
  });

  it('answers undefined on an empty context', () => {
    expect(resolveField('header.a', {})).toBeUndefined();
    expect(resolveField('task.a.b', {})).toBeUndefined();
  });
});

describe('matchCondition', () => {
  it.each<[RuleCondition, boolean]>([
    [cond('header.x-user-tier', 'equals', 'vip'), true],
    [cond('header.X-User-Tier', 'equals', 'VIP'), false],
    [cond('header.x-user-tier', 'not_equals', 'vip'), false],
    [cond('header.x-user-tier', 'not_equals', 'basic'), true],
    [cond('header.absent', 'not_equals', 'vip'), true],
    [cond('header.absent', 'equals', 'vip'), false],
    [cond('header.x-region', 'contains', 'west'), true],
    [cond('header.x-region', 'contains', 'east'), false],
    [cond('header.set-cookie', 'contains', 'a=1'), true],
    [cond('header.x-region', 'regex', '^eu-'), true],
    [cond('header.x-region', 'regex', '^us-'), false],
    [cond('header.x-region', 'in', ['us-east', 'eu-west']), true],
    [cond('header.x-region', 'in', ['us-east']), false],
    [cond('header.x-region', 'exists', true), true],
    [cond('header.absent', 'exists', true), false],
    [cond('header.absent', 'exists', false), true],
    [cond('query.session_id', 'equals', 's-42'), true],
    [cond('query.multi', 'contains', 'y'), true],
    [cond('query.multi', 'equals', 'x'), false],
    [cond('query.multi', 'in', ['z', 'y']), true],
    [cond('client_ip', 'regex', '^10\\.'), true],
    [cond('client_ip', 'equals', '10.0.0.8'), false],
    [cond('task.priority', 'equals', 'high'), true],
    [cond('task.priority', 'equals', 2), true],
    [cond('task.priority', 'equals', 'HIGH'), true],
    [cond('task.priority', 'equals', 'low'), false],
    [cond('task.priority', 'in', ['high', 'urgent']), true],
    [cond('task.priority', 'not_equals', 'high'), false],
    [cond('task.type', 'equals', 'prompt'), true],
    [cond('task.tags', 'contains', 'gpu'), true],
    [cond('task.tags', 'contains', 'gp'), false],
    [cond('task.tags', 'in', ['cpu', 'fast']), true],
    [cond('task.tags', 'regex', '^fa'), true],
    [cond('task.metadata.team', 'equals', 'ml'), true],
    [cond('task.metadata.nested.level', 'equals', 3), true],
    [cond('task.metadata.nested.level', 'equals', '3'), true],
    [cond('task.metadata.nested', 'equals', 'x'), false],
    [cond('task.metadata.nested', 'exists', true), true],
    [cond('task.empty', 'exists', true), false],
    [cond('task.empty', 'exists', false), true],
  ])('%j → %p', (c, expected) => {
    expect(matchCondition(c, ctx)).toBe(expected);
  });

  it('tests only the first 1000 characters against a regex', () => {
    const long = { headers: { 'x-long': `${'a'.repeat(1000)}END` } };
    expect(matchCondition(cond('header.x-long', 'regex', 'END$'), long)).toBe(false);
    expect(matchCondition(cond('header.x-long', 'regex', '^a{1000}$'), long)).toBe(true);
  });

  it('never matches a stored pattern that no longer passes the safety check', () => {
    expect(matchCondition(cond('header.x-region', 'regex', '(a+)+'), ctx)).toBe(false);
  });
});

describe('matchRule', () => {
  let n = 0;
  const rule = (over: Partial<RoutingRule>): RoutingRule => ({
    id: `00000000-0000-0000-0000-00000000000${n++}`,
    name: `r${n}`,
    priority: 0,
    enabled: true,
    conditions: [],
    target_strategy: 'least_connections',
    target_tags: [],
    target_service: null,
    ...over,
  });

  it('picks the highest-priority rule whose conditions all match', () => {
    const low = rule({ priority: 1, conditions: [cond('header.x-user-tier', 'equals', 'vip')] });
    const high = rule({
      priority: 10,
      conditions: [cond('header.x-user-tier', 'equals', 'vip'), cond('task.type', 'equals', 'prompt')],
    });
    const higherButMiss = rule({
      priority: 20,
      conditions: [cond('header.x-user-tier', 'equals', 'vip'), cond('task.type', 'equals', 'other')],
    });
    expect(matchRule([low, higherButMiss, high], ctx)).toBe(high);
  });

  it('skips disabled rules and answers null when nothing matches', () => {
    const off = rule({ priority: 5, enabled: false });
    expect(matchRule([off], ctx)).toBeNull();
    expect(matchRule([], ctx)).toBeNull();
    expect(matchRule([rule({ conditions: [cond('client_ip', 'equals', '1.1.1.1')] })], ctx)).toBeNull();
  });

  it('a rule without conditions matches everything (a catch-all)', () => {
    const all = rule({ priority: -1 });
    expect(matchRule([all], {})).toBe(all);
  });

  it('breaks priority ties by creation time, then by id', () => {
    const a = rule({ id: 'b', priority: 3, created_at: '2026-01-01T00:00:02Z' });
    const b = rule({ id: 'c', priority: 3, created_at: '2026-01-01T00:00:01Z' });
    expect(matchRule([a, b], ctx)).toBe(b);
    const c = rule({ id: 'a', priority: 3, created_at: '2026-01-01T00:00:01Z' });
    expect(matchRule([a, b, c], ctx)).toBe(c);
    expect(matchRule([rule({ id: 'z', priority: 1 }), rule({ id: 'y', priority: 1 })], ctx)?.id).toBe('y');
  });

  it('does not reorder the caller array', () => {
    const rules = [rule({ priority: 1 }), rule({ priority: 2 })];
    const before = rules.map((r) => r.id);
    matchRule(rules, ctx);
    expect(rules.map((r) => r.id)).toEqual(before);
  });
});

describe('validateConditions', () => {
  it('accepts every operator with its value type', () => {
    const ok = [
      cond('header.x-user-tier', 'equals', 'vip'),
      cond('query.q', 'not_equals', 3),
      cond('client_ip', 'contains', '10.'),
      cond('task.type', 'regex', '^p(ro)?mpt$'),
      cond('task.priority', 'in', ['high', 3]),
      cond('task.metadata.x', 'exists', false),
    ];
    expect(validateConditions(ok)).toEqual(ok);
    expect(validateConditions([])).toEqual([]);
  });

  it.each<[unknown, string]>([
    ['nope', 'conditions'],
    [new Array(51).fill({ field: 'client_ip', operator: 'exists', value: true }), 'conditions'],
    [[null], 'conditions[0]'],
    [[['x']], 'conditions[0]'],
    [[{ field: 'client_ip', operator: 'exists', value: true, extra: 1 }], 'conditions[0].extra'],
    [[{ field: 'body.x', operator: 'equals', value: 'a' }], 'conditions[0].field'],
    [[{ field: 'header.', operator: 'equals', value: 'a' }], 'conditions[0].field'],
    [[{ field: 'header.a b', operator: 'equals', value: 'a' }], 'conditions[0].field'],
    [[{ field: 'task', operator: 'equals', value: 'a' }], 'conditions[0].field'],
    [[{ field: 'task..x', operator: 'equals', value: 'a' }], 'conditions[0].field'],
    [[{ field: 42, operator: 'equals', value: 'a' }], 'conditions[0].field'],
    [[{ field: 'client_ip', operator: 'like', value: 'a' }], 'conditions[0].operator'],
    [[{ field: 'client_ip', operator: 'equals' }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'equals', value: { a: 1 } }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'equals', value: null }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'contains', value: ['a'] }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'in', value: 'a' }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'in', value: [] }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'in', value: [{}] }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'exists', value: 'yes' }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'regex', value: 5 }], 'conditions[0].value'],
    [[{ field: 'client_ip', operator: 'regex', value: '' }], 'conditions[0].value'],
    [
      [cond('client_ip', 'exists', true), { field: 'client_ip', operator: 'regex', value: '(a+)+$' }],
      'conditions[1].value',
    ],
    [[{ field: 'client_ip', operator: 'regex', value: '([a-z' }], 'conditions[0].value'],
  ])('%j → error at %s', (input, field) => {
    let err: unknown;
    try {
      validateConditions(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RuleValidationError);
    expect((err as RuleValidationError).field).toBe(field);
  });
});

describe('compileSafeRegex', () => {
  it.each([
    '^vip$',
    'a+b*',
    '\\d{1,3}(\\.\\d{1,3}){3}',
    '(ab)+',
    '(?:abc)?d',
    '[(a+)+]',
    '^(?<tier>vip|gold)$',
    'a{2,}',
    '(a+)?',
    '((a){2}){3}',
    'x|y|z',
    '\\(a+\\)+',
  ])('accepts %s', (p) => {
    expect(compileSafeRegex(p)).toBeInstanceOf(RegExp);
  });

  it.each([
    '(a+)+',
    '(a*)*',
    '(a|a)*',
    '(a|aa)+$',
    '(.*a){10}',
    '((ab)+)+',
    '(?:a+)+',
    '(\\w+\\s?)*$',
    '([a-z]+)*',
    '(a+){2,}',
    '(a{1,11})+',
    '((a)+){2}',
    '(x+x+)+y',
    '(a)\\1',
    '(?<n>a)\\k<n>',
    'a'.repeat(201),
    '(',
    '[',
    'a**',
  ])('rejects %s', (p) => {
    expect(() => compileSafeRegex(p)).toThrow(UnsafeRegexError);
  });

  it('accepts exactly 200 characters', () => {
    expect(compileSafeRegex('a'.repeat(200))).toBeInstanceOf(RegExp);
  });
});

describe('pickTarget', () => {
  const nodes: Candidate[] = [
    { id: 'c', connections: 5, weight: 1 },
    { id: 'a', connections: 2, weight: 3 },
    { id: 'b', connections: 2, weight: 0 },
  ];
  const seq = (...values: number[]): (() => number) => {
    let i = 0;
    return () => values[i++ % values.length];
  };

  it('answers null without candidates', () => {
    for (const s of ['round_robin', 'least_connections', 'random', 'weighted', 'hash'] as const)
      expect(pickTarget(s, [], 'k')).toBeNull();
  });

  it('least_connections takes the least loaded, lower id on ties', () => {
    expect(pickTarget('least_connections', nodes)?.id).toBe('a');
    expect(
      pickTarget('least_connections', [
        { id: 'x', connections: 9 },
        { id: 'y', connections: 1 },
      ])?.id,
    ).toBe('y');
  });

  it('least_connections spreads evenly when the caller counts its picks', () => {
    const pool = [0, 1, 2, 3].map((i) => ({ id: `s${i}`, connections: 0 }));
    for (let i = 0; i < 20; i++) pickTarget('least_connections', pool)!.connections++;
    expect(pool.map((p) => p.connections)).toEqual([5, 5, 5, 5]);
  });

  it('round_robin cycles in id order per scope with an external cursor', () => {
    const cursor = new RoundRobinCursor();
    const picks = Array.from(
      { length: 4 },
      () => pickTarget('round_robin', nodes, undefined, { cursor, scope: 'r1' })?.id,
    );
    expect(picks).toEqual(['a', 'b', 'c', 'a']);
    expect(pickTarget('round_robin', nodes, undefined, { cursor, scope: 'r2' })?.id).toBe('a');
    expect(pickTarget('round_robin', [...nodes].reverse(), undefined, { cursor, scope: 'r1' })?.id).toBe('b');
  });

  it('round_robin without a cursor falls back to least connections', () => {
    expect(pickTarget('round_robin', nodes)?.id).toBe('a');
  });

  it.each([
    [0, 'a'],
    [0.34, 'b'],
    [0.99, 'c'],
  ])('random with r=%p → %s', (r, id) => {
    expect(pickTarget('random', nodes, undefined, { random: () => r })?.id).toBe(id);
  });

  it.each([
    [0, 'a'],
    [0.74, 'a'],
    [0.76, 'c'],
    [0.9999999, 'c'],
  ])('weighted (a:3 b:0 c:1) with r=%p → %s', (r, id) => {
    expect(pickTarget('weighted', nodes, undefined, { random: () => r })?.id).toBe(id);
  });

  it('weighted never picks a zero weight while others can, and treats all-zero as uniform', () => {
    const random = seq(0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99);
    for (let i = 0; i < 50; i++) expect(pickTarget('weighted', nodes, undefined, { random })?.id).not.toBe('b');
    const zeros = nodes.map((n) => ({ ...n, weight: 0 }));
    expect(pickTarget('weighted', zeros, undefined, { random: () => 0.5 })?.id).toBe('b');
  });

  it('weighted defaults a missing weight to 1', () => {
    const pool = [
      { id: 'p', connections: 0 },
      { id: 'q', connections: 0 },
    ];
    expect(pickTarget('weighted', pool, undefined, { random: () => 0.49 })?.id).toBe('p');
    expect(pickTarget('weighted', pool, undefined, { random: () => 0.51 })?.id).toBe('q');
  });

  it('hash is stable per key, independent of order and load, and spreads keys', () => {
    const first = pickTarget('hash', nodes, 'session-1')?.id;
    expect(pickTarget('hash', [...nodes].reverse(), 'session-1')?.id).toBe(first);
    expect(
      pickTarget(
        'hash',
        nodes.map((n) => ({ ...n, connections: 99 })),
        'session-1',
      )?.id,
    ).toBe(first);
    const seen = new Set(Array.from({ length: 60 }, (_, i) => pickTarget('hash', nodes, `s${i}`)?.id));
    expect(seen.size).toBe(3);
  });

  it('hash moves only the keys of a removed target', () => {
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const before = keys.map((k) => pickTarget('hash', nodes, k)?.id);
    const without = nodes.filter((n) => n.id !== 'c');
    keys.forEach((k, i) => {
      if (before[i] !== 'c') expect(pickTarget('hash', without, k)?.id).toBe(before[i]);
    });
  });

  it('hash without a key falls back to least connections', () => {
    expect(pickTarget('hash', nodes)?.id).toBe('a');
    expect(pickTarget('hash', nodes, '')?.id).toBe('a');
  });

  it('stableHash is FNV-1a', () => {
    expect(stableHash('')).toBe(0x811c9dc5);
    expect(stableHash('a')).toBe(0xe40c292c);
  });
});
