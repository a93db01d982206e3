import { type Command, InvalidArgumentError, Option } from 'commander';
import { type ClientOptions, emit, intArg, makeClient, withClientOptions } from '../client-options.js';
import { action, type CliContext } from '../context.js';
import { keyValues, table } from '../format.js';
import { type HubClient, HubError } from '../http-client.js';
import type { HubSchemas } from '../../sdk/hub-client.js';

const BASE = '/api/v1/routing/rules';
const STRATEGIES = ['round_robin', 'least_connections', 'random', 'weighted', 'hash'] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SYNTAX = 'expected field=value, field!=value, field~=regex, field^=text, "field in a|b|c" or field?';

/** Routing rules as the hub answers them (typed by the contract, openapi.json). */
export type RuleCondition = HubSchemas['RuleConditionView'];
export type RuleView = HubSchemas['RoutingRuleView'];
export type RuleList = HubSchemas['RoutingRuleListView'];
type CreateRule = HubSchemas['CreateRoutingRuleDto'];

interface CreateOptions extends ClientOptions {
  condition?: RuleCondition[];
  targetTag?: string[][];
  targetService?: string;
  strategy?: CreateRule['target_strategy'];
  priority?: number;
  description?: string;
  disabled?: boolean;
}

const OPERATOR_OF: Record<string, RuleCondition['operator']> = { '!': 'not_equals', '~': 'regex', '^': 'contains' };
const SYMBOL_OF: Record<string, string> = { equals: '=', not_equals: '!=', regex: '~=', contains: '^=' };

/**
 * `--condition` syntax: `field=value` equals, `field!=value` not_equals, `field~=regex` regex,
 * `field^=text` contains, `field in a|b|c` in, `field?` exists (`!field?`: does not exist).
 */
export function parseCondition(text: string): RuleCondition {
  const s = text.trim();
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`${why}; ${SYNTAX}.`);
  };
  const inList = /^([^\s=]+)\s+in\s+(.*)$/.exec(s);
  if (inList) {
    const values = inList[2]
      .split('|')
      .map((v) => v.trim())
      .filter(Boolean);
    if (values.length === 0) fail('"in" needs at least one value');
    return { field: inList[1], operator: 'in', value: values };
  }
  const exists = /^(!?)([^\s=]+)\?$/.exec(s);
  if (exists) return { field: exists[2], operator: 'exists', value: exists[1] !== '!' };
  const eq = s.indexOf('=');
  if (eq < 0) fail('no operator');
  const op = OPERATOR_OF[s[eq - 1]] ?? 'equals';
  const field = s.slice(0, op === 'equals' ? eq : eq - 1).trim();
  const value = s.slice(eq + 1).trim();
  if (!field) fail('no field before the operator');
  if (/\s/.test(field)) fail(`field "${field}" holds a space`);
  if (op === 'regex' && !value) fail('~= needs a pattern');
  return { field, operator: op, value };
}

/** The `--condition` text of a stored condition. */
export function formatCondition(c: RuleCondition): string {
  if (c.operator === 'in')
    return `${c.field} in ${(Array.isArray(c.value) ? c.value : [c.value]).map(String).join('|')}`;
  if (c.operator === 'exists') return c.value === false ? `!${c.field}?` : `${c.field}?`;
  const symbol = SYMBOL_OF[c.operator];
  return symbol ? `${c.field}${symbol}${String(c.value)}` : `${c.field} ${c.operator} ${JSON.stringify(c.value)}`;
}

const target = (r: RuleView): string =>
  [r.target_service ? `service ${r.target_service}` : '', r.target_tags.length ? `tags ${r.target_tags.join(',')}` : '']
    .filter(Boolean)
    .join(', ') || 'any service';

const conditions = (r: RuleView): string =>
  r.conditions.length ? r.conditions.map(formatCondition).join(' AND ') : '(always)';

export function renderRule(r: RuleView): string {
  return keyValues([
    ['id', r.id],
    ['name', r.name],
    ['description', r.description ?? undefined],
    ['priority', r.priority],
    ['enabled', r.enabled],
    ['conditions', conditions(r)],
    ['strategy', r.target_strategy],
    ['target', target(r)],
    ['created_at', r.created_at],
  ]);
}

export function renderRules(list: RuleList): string {
  const { rules, pagination: p } = list;
  if (rules.length === 0) return `no routing rules (total ${p.total})`;
  const rows = rules.map((r) => [r.id, r.name, r.priority, r.enabled, r.target_strategy, target(r), conditions(r)]);
  const body = table(['ID', 'NAME', 'PRIORITY', 'ENABLED', 'STRATEGY', 'TARGET', 'CONDITIONS'], rows);
  const end = p.offset + rules.length;
  return `${body}\n${p.offset + 1}-${end} of ${p.total}${p.has_more ? ` (more: --offset ${end})` : ''}`;
}

/** The id of a rule given by id or name (names are looked up in the list). */
async function ruleId(client: HubClient, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  for (let offset = 0; ; offset += 200) {
    const page = await client.get<RuleList>(BASE, { limit: 200, offset });
    const hit = page.rules.find((r) => r.name === ref);
    if (hit) return hit.id;
    if (!page.pagination.has_more)
      throw new HubError('NOT_FOUND', `No routing rule named '${ref}'`, { name: ref }, 404);
  }
}

const collect =
  <T>(parse: (v: string) => T) =>
  (value: string, previous: T[] = []): T[] => [...previous, parse(value)];

export function registerRoutes(program: Command, ctx: CliContext): void {
  const route = program
    .command('route')
    .description('routing rules: which service a proxied connection (or task) goes to');

  withClientOptions(
    route
      .command('create')
      .argument('<name>', 'rule name')
      .description('create a routing rule (POST /api/v1/routing/rules)'),
  )
    .option('--condition <expr>', `a condition, all must match (repeatable): ${SYNTAX}`, collect(parseCondition))
    .option(
      '--target-tag <tag>',
      'route to services with this tag (repeatable, or a comma list)',
      collect((v) =>
        v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      ),
    )
    .option('--target-service <name>', 'route to this service')
    .addOption(
      new Option('--strategy <s>', 'how to pick among the targets (default least_connections)').choices(STRATEGIES),
    )
    .option('--priority <n>', 'higher wins (default 0)', intArg(-1_000_000, 1_000_000))
    .option('--description <text>', 'what it is for')
    .option('--disabled', 'create it switched off')
    .action(
      action(ctx, async (name: string, opts: CreateOptions) => {
        const tags = opts.targetTag?.flat();
        const body: CreateRule = {
          name,
          description: opts.description,
          priority: opts.priority,
          enabled: !opts.disabled,
          conditions: opts.condition ?? [],
          target_strategy: opts.strategy,
          target_tags: tags,
          target_service: opts.targetService,
        };
        const rule = await makeClient(opts, ctx).post<RuleView>(BASE, body);
        emit(ctx, opts, rule, () => renderRule(rule));
      }),
    );

  withClientOptions(route.command('list').description('routing rules, highest priority first'))
    .addOption(
      new Option('--enabled <bool>', 'only enabled (true) or disabled (false) rules').choices(['true', 'false']),
    )
    .option('--limit <n>', 'page size (1-200)', intArg(1, 200))
    .option('--offset <n>', 'skip this many', intArg(0))
    .action(
      action(ctx, async (opts: ClientOptions & { enabled?: string; limit?: number; offset?: number }) => {
        const list = await makeClient(opts, ctx).get<RuleList>(BASE, {
          enabled: opts.enabled,
          limit: opts.limit,
          offset: opts.offset,
        });
        emit(ctx, opts, list, () => renderRules(list));
      }),
    );

  withClientOptions(
    route.command('delete').argument('<rule>', 'rule name or id').description('delete a routing rule'),
  ).action(
    action(ctx, async (ref: string, opts: ClientOptions) => {
      const client = makeClient(opts, ctx);
      const rule = await client.delete<RuleView>(`${BASE}/${await ruleId(client, ref)}`);
      emit(ctx, opts, rule, () => `deleted routing rule ${rule.name} (${rule.id})`);
    }),
  );
}
