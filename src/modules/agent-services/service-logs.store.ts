import { Injectable } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServiceLogEntry {
  /** Increasing across the store: a `--follow` client asks for entries after the last it saw. */
  seq: number;
  service_id: string;
  timestamp: string;
  level: LogLevel;
  /** `stdout`/`stderr` of a managed process, or `hub` for lifecycle and health events. */
  source: 'stdout' | 'stderr' | 'hub';
  message: string;
}

export interface LogQuery {
  level?: LogLevel;
  since?: Date;
  after_seq?: number;
  limit: number;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const MAX_LINE = 4000;

/** A level named at the start of a line (`ERROR ...`, `[warn] ...`, `level=info`), if any. */
export function levelOfLine(line: string): LogLevel | null {
  const m = /^\s*(?:\[|level=|")?(debug|info|warn|warning|error|fatal|critical)\b/i.exec(line);
  if (!m) return null;
  const word = m[1].toLowerCase();
  if (word === 'warning') return 'warn';
  if (word === 'fatal' || word === 'critical') return 'error';
  return word as LogLevel;
}

/**
 * Bounded per-service log rings kept by the hub process that runs the service: the last
 * SERVICE_LOG_LINES lines each. Process output is line-split; long lines are cut.
 */
@Injectable()
export class ServiceLogStore {
  private readonly rings = new Map<string, ServiceLogEntry[]>();
  /** Starts from the clock, so a `--follow` that outlives a hub restart still sees new lines. */
  private seq = Date.now() * 1000;
  capacity = 2000;

  constructor(private readonly events: EventBus) {}

  append(serviceId: string, level: LogLevel, source: ServiceLogEntry['source'], message: string): ServiceLogEntry {
    let ring = this.rings.get(serviceId);
    if (!ring) this.rings.set(serviceId, (ring = []));
    const entry: ServiceLogEntry = {
      seq: ++this.seq,
      service_id: serviceId,
      timestamp: new Date().toISOString(),
      level,
      source,
      message: message.length > MAX_LINE ? `${message.slice(0, MAX_LINE)}…` : message,
    };
    ring.push(entry);
    // Also a line of the Apex log channel.
    this.events.publish('hub.log', {
      time: entry.timestamp,
      level,
      source: 'service',
      service_id: serviceId,
      message: entry.message,
    });
    if (ring.length > this.capacity) ring.splice(0, ring.length - this.capacity);
    return entry;
  }

  /** Splits a chunk of process output into lines (a partial last line waits for the next chunk). */
  lineSplitter(serviceId: string, source: 'stdout' | 'stderr'): (chunk: Buffer | string) => void {
    let rest = '';
    const fallback: LogLevel = source === 'stderr' ? 'error' : 'info';
    return (chunk) => {
      const lines = (rest + chunk.toString()).split(/\r?\n/);
      rest = lines.pop() ?? '';
      if (rest.length > MAX_LINE) {
        lines.push(rest);
        rest = '';
      }
      for (const line of lines) if (line.trim()) this.append(serviceId, levelOfLine(line) ?? fallback, source, line);
    };
  }

  /** Newest last; at least `level`, at or after `since`. */
  query(serviceId: string, q: LogQuery): ServiceLogEntry[] {
    return this.filter(this.rings.get(serviceId) ?? [], q);
  }

  /** Case-insensitive substring over messages of one service, or of all in `visible` (null: every service). */
  search(
    text: string,
    serviceId: string | undefined,
    limit: number,
    visible: ReadonlySet<string> | null = null,
  ): ServiceLogEntry[] {
    const needle = text.toLowerCase();
    const rings = serviceId
      ? [this.rings.get(serviceId) ?? []]
      : [...this.rings].filter(([id]) => !visible || visible.has(id)).map(([, ring]) => ring);
    const hits = rings.flat().filter((e) => e.message.toLowerCase().includes(needle));
    return hits.sort((a, b) => a.seq - b.seq).slice(-limit);
  }

  /** The last lines of a service, for error messages (SERVICE_START_FAILED). */
  tail(serviceId: string, n: number): string[] {
    return (this.rings.get(serviceId) ?? [])
      .filter((e) => e.source !== 'hub')
      .slice(-n)
      .map((e) => e.message);
  }

  drop(serviceId: string): void {
    this.rings.delete(serviceId);
  }

  private filter(ring: ServiceLogEntry[], q: LogQuery): ServiceLogEntry[] {
    const min = q.level ? RANK[q.level] : 0;
    const since = q.since?.getTime();
    const out = ring.filter(
      (e) =>
        RANK[e.level] >= min &&
        (since === undefined || Date.parse(e.timestamp) >= since) &&
        (q.after_seq === undefined || e.seq > q.after_seq),
    );
    return out.slice(-q.limit);
  }
}
