import { EventBus } from '../../src/common/events/event-bus.js';
import { ServiceLogStore, levelOfLine } from '../../src/modules/agent-services/service-logs.store.js';
import { commandLine } from '../../src/modules/agent-services/process-supervisor.js';
import { endpointAddress } from '../../src/modules/agent-services/health-probe.js';
import { serviceEndpoint } from '../../src/modules/agent-services/agent-service.types.js';
import { durationSeconds } from '../../src/modules/agent-services/dto/queries.dto.js';
import { ConnectionRegistry } from '../../src/modules/agent-services/proxy/connection-registry.js';

describe('service log store', () => {
  it.each([
    ['ERROR something broke', 'error'],
    ['[warn] disk almost full', 'warn'],
    ['WARNING: deprecated', 'warn'],
    ['level=debug msg=hi', 'debug'],
    ['FATAL crash', 'error'],
    ['  info ready', 'info'],
    ['listening on 8080', null],
    ['an error happened later in the line', null],
  ])('reads the level of %j', (line, level) => {
    expect(levelOfLine(line)).toBe(level);
  });

  it('splits chunks into lines, keeps the partial last line, filters by level, since and sequence', () => {
    const store = new ServiceLogStore(new EventBus());
    const out = store.lineSplitter('s1', 'stdout');
    const err = store.lineSplitter('s1', 'stderr');
    out('INFO one\nhalf');
    out(' line\n\n');
    err('boom\nDEBUG noisy\n');
    const all = store.query('s1', { limit: 100 });
    expect(all.map((e) => [e.level, e.source, e.message])).toEqual([
      ['info', 'stdout', 'INFO one'],
      ['info', 'stdout', 'half line'],
      ['error', 'stderr', 'boom'],
      ['debug', 'stderr', 'DEBUG noisy'],
    ]);
    expect(store.query('s1', { level: 'warn', limit: 100 }).map((e) => e.message)).toEqual(['boom']);
    expect(store.query('s1', { after_seq: all[1].seq, limit: 100 }).map((e) => e.message)).toEqual([
      'boom',
      'DEBUG noisy',
    ]);
    expect(store.query('s1', { since: new Date(Date.now() + 60_000), limit: 100 })).toEqual([]);
    expect(store.query('s1', { limit: 1 }).map((e) => e.message)).toEqual(['DEBUG noisy']);
    expect(store.search('BOO', undefined, 10).map((e) => e.message)).toEqual(['boom']);
    expect(store.search('boom', 'other', 10)).toEqual([]);
    expect(store.tail('s1', 2)).toEqual(['boom', 'DEBUG noisy']);
  });

  it('keeps only the newest `capacity` lines per service', () => {
    const store = new ServiceLogStore(new EventBus());
    store.capacity = 10;
    for (let i = 0; i < 25; i++) store.append('s', 'info', 'hub', `line ${i}`);
    const kept = store.query('s', { limit: 100 });
    expect(kept).toHaveLength(10);
    expect(kept[0].message).toBe('line 15');
  });
});

describe('managed service command line', () => {
  const base = {
    command: null,
    args: [] as string[],
    agent_factory_path: null as string | null,
    cwd: '/srv/agents',
    host: '127.0.0.1',
  };

  it.each([
    [{ agent_factory_path: './weather_agent.py' }, 'python3', ['/srv/agents/weather_agent.py']],
    [
      { agent_factory_path: '/opt/a.mjs', args: ['--port', '{port}'] },
      process.execPath,
      ['/opt/a.mjs', '--port', '8081'],
    ],
    [{ agent_factory_path: 'run.sh' }, 'bash', ['/srv/agents/run.sh']],
    [{ agent_factory_path: './agent-bin' }, '/srv/agents/agent-bin', []],
    [
      { command: 'uvicorn', args: ['app:main', '--host', '{host}', '--port', '{port}'] },
      'uvicorn',
      ['app:main', '--host', '127.0.0.1', '--port', '8081'],
    ],
  ])('%j runs %s', (over, file, args) => {
    expect(commandLine({ ...base, ...over }, 8081)).toEqual({ file, args });
  });
});

describe('endpoints and durations', () => {
  it('builds and parses service endpoints', () => {
    expect(serviceEndpoint({ endpoint: null, host: 'localhost', port: 8081, runtime_port: null })).toBe(
      'ws://localhost:8081',
    );
    expect(serviceEndpoint({ endpoint: null, host: '::1', port: 0, runtime_port: 9000 })).toBe('ws://[::1]:9000');
    expect(serviceEndpoint({ endpoint: null, host: 'h', port: 0, runtime_port: null })).toBeNull();
    expect(serviceEndpoint({ endpoint: 'wss://x/y', host: 'h', port: 1, runtime_port: 2 })).toBe('wss://x/y');
    expect(endpointAddress('ws://10.0.0.5:9000/agent')).toEqual({ host: '10.0.0.5', port: 9000 });
    expect(endpointAddress('wss://agents.example')).toEqual({ host: 'agents.example', port: 443 });
    expect(endpointAddress('ws://[::1]:81')).toEqual({ host: '::1', port: 81 });
  });

  it.each([
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['7d', 604800],
  ])('%s is %d seconds', (d, s) => {
    expect(durationSeconds(d)).toBe(s);
  });
});

describe('connection registry counters', () => {
  const a = { id: 'a', name: 'a' };
  const b = { id: 'b', name: 'b' };

  it('counts sessions once per session, moves them on fail-over and completes them when the last connection closes', async () => {
    const calls: string[] = [];
    const stored = {
      openConnection: async (sid: string, svc: string) => void calls.push(`open ${sid} ${svc}`),
      rebind: async (sid: string, svc: string) => void calls.push(`rebind ${sid} ${svc}`),
      recordPeak: async (tenant: string) => void calls.push(`peak ${tenant}`),
      closeConnection: async (sid: string) => void calls.push(`close ${sid}`),
      countError: async (svc: string) => void calls.push(`error ${svc}`),
    };
    const r = new ConnectionRegistry(stored as unknown as ConstructorParameters<typeof ConnectionRegistry>[0]);
    const one = r.open('127.0.0.1', 's1');
    const two = r.open('127.0.0.1', 's1');
    const other = r.open('127.0.0.1', undefined);
    r.bind(one, a, 'least_connections', null);
    r.bind(two, a, 'least_connections', null);
    r.bind(other, a, 'least_connections', null);
    expect([r.activeSessions('a'), r.activeSessions(), r.activeCount('a')]).toEqual([2, 2, 3]);

    r.bind(one, b, 'least_connections', null); // fail-over of one connection of s1
    expect([
      r.activeSessions('a'),
      r.activeSessions('b'),
      r.activeCount('a'),
      r.activeCount('b'),
      one.switches,
    ]).toEqual([1, 1, 2, 1, 1]);

    r.sent(one, 10);
    r.received(one, 5);
    expect(r.countersOf('b')).toMatchObject({ messagesSinceSample: 2 });
    expect(one).toMatchObject({ bytes_sent: 10, bytes_received: 5, messages_sent: 1, messages_received: 1 });

    r.close(one, 'client_closed');
    expect(r.activeSessions('b')).toBe(1); // two is still open in s1
    r.close(two, 'client_closed');
    r.close(other, 'client_closed');
    expect([r.activeSessions(), r.activeCount()]).toEqual([0, 0]);
    await r.settled();
    // The stored writes (where the reported counts come from), in order per session.
    expect(calls.filter((c) => c.includes(' s1'))).toEqual([
      'open s1 a',
      'open s1 a',
      'rebind s1 b',
      'close s1',
      'close s1',
    ]);
    expect(calls.filter((c) => c.startsWith('open'))).toHaveLength(3);
    expect(r.list({ status: 'closed' })).toHaveLength(3);
  });
});
