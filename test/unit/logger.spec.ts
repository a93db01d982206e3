import type { NextFunction, Request, Response } from 'express';
import { createPino, PinoLoggerService, prettyLogs } from '../../src/common/logger.js';
import { ConfigError, loadConfig } from '../../src/config/app-config.js';
import { messageCall, requestIdMiddleware } from '../../src/common/request-id.js';
import { httpTracing } from '../../src/common/tracing/http-tracing.js';
import {
  runAsCall,
  runAsSystem,
  runAsTenant,
  SYSTEM_TENANT,
  currentTenantSetting,
} from '../../src/database/tenant-context.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

/** A pino destination that keeps what is written. */
function sink(): { write(s: string): void; lines: string[]; json(): Record<string, unknown>[] } {
  const lines: string[] = [];
  return { lines, write: (s) => void lines.push(s), json: () => lines.map((l) => JSON.parse(l)) };
}

describe('log lines carry the call they were written in (pino mixin)', () => {
  it('has no req_id or trace_id outside a call, nor in background work', () => {
    const out = sink();
    const log = createPino('info', { format: 'json', destination: out });
    log.info({ a: 1 }, 'outside');
    runAsSystem(() => log.info('system work, no request'));
    const [outside, system] = out.json();
    expect(outside).toMatchObject({ service: 'taskhub', a: 1, msg: 'outside' });
    expect(outside).not.toHaveProperty('req_id');
    expect(outside).not.toHaveProperty('trace_id');
    expect(system).not.toHaveProperty('req_id');
  });

  it("puts the call's request id on every line, through nested tenant contexts and awaits", async () => {
    const out = sink();
    const log = createPino('info', { format: 'json', destination: out });
    const nest = new PinoLoggerService(log);
    await runAsCall({ setting: '', requestId: 'req-1', traceparent: undefined }, async () => {
      log.info('first');
      await new Promise((r) => setImmediate(r));
      await runAsTenant('t1', async () => {
        await Promise.resolve();
        nest.warn('deep in a service', 'SomeService');
      });
    });
    const [first, deep] = out.json();
    expect(first).toMatchObject({ req_id: 'req-1', msg: 'first' });
    expect(first).not.toHaveProperty('trace_id');
    expect(deep).toMatchObject({ req_id: 'req-1', context: 'SomeService', msg: 'deep in a service', level: 40 });
  });

  it('adds the 32-hex trace id when the call has a traceparent', () => {
    const out = sink();
    const log = createPino('info', { format: 'json', destination: out });
    runAsCall({ setting: '*', requestId: 'req-2', traceparent: TRACEPARENT }, () => log.error({ x: 1 }, 'failed'));
    expect(out.json()[0]).toMatchObject({ req_id: 'req-2', trace_id: TRACE_ID, x: 1, msg: 'failed' });
  });

  it("neither changes the caller's object nor overrides the line's own fields", () => {
    const out = sink();
    const log = createPino('info', { format: 'json', destination: out });
    const fields = { req_id: 'explicit', n: 1 };
    runAsCall({ setting: '*', requestId: 'req-3', traceparent: undefined }, () => log.info(fields, 'x'));
    expect(fields).toEqual({ req_id: 'explicit', n: 1 });
    expect(out.json()[0]).toMatchObject({ req_id: 'explicit', n: 1 });
  });
});

describe('LOG_FORMAT', () => {
  it.each([
    ['auto', true, true],
    ['auto', false, false],
    ['auto', undefined, false],
    ['json', true, false],
    ['json', false, false],
    ['pretty', false, true],
    ['pretty', true, true],
  ] as const)('%s with a TTY %s: pretty %s', (format, tty, pretty) => {
    expect(prettyLogs(format, tty)).toBe(pretty);
  });

  it('is auto unless set, and one of auto, json or pretty', () => {
    expect(loadConfig({}).LOG_FORMAT).toBe('auto');
    expect(loadConfig({ LOG_FORMAT: 'pretty' }).LOG_FORMAT).toBe('pretty');
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(ConfigError);
  });

  it('auto writes JSON when stdout is not a terminal, and human lines when it is', () => {
    const json = sink();
    createPino('info', { format: 'auto', isTTY: false, destination: json }).warn('plain');
    expect(JSON.parse(json.lines[0])).toMatchObject({ msg: 'plain', level: 40 });

    const human = sink();
    const nest = new PinoLoggerService(createPino('info', { format: 'auto', isTTY: true, destination: human }));
    runAsCall({ setting: '*', requestId: 'req-4', traceparent: undefined }, () =>
      nest.warn('something odd', 'Dispatcher'),
    );
    const line = human.lines.join('');
    expect(() => JSON.parse(human.lines[0])).toThrow();
    // Colours on a terminal: compare the text without them.
    // eslint-disable-next-line no-control-regex
    const text = line.replace(/\x1b\[[0-9;]*m/g, '');
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: \[Dispatcher\] something odd\n/);
    expect(text).toContain('req_id: "req-4"');
  });

  it('pretty writes human lines even to a pipe, synchronously (written when the call returns)', () => {
    const out = sink();
    createPino('info', { format: 'pretty', isTTY: false, destination: out }).error('about to exit');
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).toMatch(/ERROR: about to exit\n$/);
  });
});

describe('socket message stores and the request trace context', () => {
  it('a message store keeps the tenant setting the handler runs under', () => {
    expect(messageCall('c:1')).toEqual({ setting: SYSTEM_TENANT, requestId: 'c:1', traceparent: undefined });
    runAsTenant('t1', () => {
      const store = messageCall('c:2');
      expect(store.setting).toBe('t1');
      runAsCall(store, () => expect(currentTenantSetting()).toBe('t1'));
    });
  });

  const run = (headers: Record<string, string>): Request => {
    const req = { headers, method: 'GET' } as unknown as Request;
    const res = { setHeader: () => undefined } as unknown as Response;
    requestIdMiddleware(req, res, (() => undefined) as NextFunction);
    httpTracing(req, res, (() => undefined) as NextFunction); // tracing off: the context is only passed on
    return req;
  };

  it('continues a valid traceparent header; a bad one or none starts a new trace', () => {
    expect(run({ traceparent: TRACEPARENT }).traceparent).toBe(TRACEPARENT);
    const zero = run({ traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` }).traceparent;
    const nonsense = run({ traceparent: 'nonsense' }).traceparent;
    const none = run({}).traceparent;
    for (const minted of [zero, nonsense, none]) expect(minted).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(new Set([zero, nonsense, none, TRACEPARENT]).size).toBe(4);
    expect(zero.slice(3, 35)).not.toBe('0'.repeat(32));
  });
});
