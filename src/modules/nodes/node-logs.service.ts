import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';
import { AppConfig } from '../../config/app-config.js';
import { currentTenantSetting, runWithTenantSetting } from '../../database/tenant-context.js';
import { untilShort } from '../retention/retention-policy.js';
import { RetentionRegistry } from '../retention/retention-registry.js';
import { type NodeLogFilter, type NodeLogLevel, type NodeLogRow, NodeLogsRepository } from './node-logs.repository.js';

interface Pending {
  lines: Omit<NodeLogRow, 'id' | 'created_at'>[];
  done: Promise<void>;
}

/**
 * Log lines that nodes send (`log` frames), kept in node_logs for GET /api/v1/logs: the
 * newest NODE_LOG_RETENTION_LINES, older ones removed by the retention cleaner (docs/retention.md). Lines of the same tick
 * (and tenant) are written by one statement; each caller's promise resolves when its line is committed.
 */
@Injectable()
export class NodeLogsService implements OnModuleInit {
  private readonly logger = new Logger('NodeLogs');
  /** Lines waiting for this tick's statement, per tenant context. */
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly repo: NodeLogsRepository,
    private readonly config: AppConfig,
    private readonly events: EventBus,
    private readonly retention: RetentionRegistry,
  ) {}

  onModuleInit(): void {
    this.retention.register({
      name: 'node_logs',
      batches: (limit) => {
        const keep = this.config.NODE_LOG_RETENTION_LINES;
        return untilShort('node_logs', limit, async () => ({ n: await this.repo.prune(keep, limit) }));
      },
    });
  }

  /** Stores the line and shows it on the log channel at once. */
  record(line: {
    node_id: string;
    task_id?: string | null;
    level: NodeLogLevel;
    message: string;
    data?: unknown;
  }): Promise<void> {
    this.events.publish('hub.log', {
      time: new Date().toISOString(),
      level: line.level,
      source: 'node',
      node_id: line.node_id,
      ...(line.task_id ? { task_id: line.task_id } : {}),
      message: line.message,
      ...(line.data !== undefined ? { data: line.data } : {}),
    });
    // One statement per submitter's tenant context, under it (as GroupCommit does): a line
    // takes its context's tenant, so lines of two tenants' nodes never share a statement.
    const tenant = currentTenantSetting();
    let pending = this.pending.get(tenant);
    if (!pending) {
      const lines: Pending['lines'] = [];
      const done = new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          this.pending.delete(tenant);
          runWithTenantSetting(tenant, () => this.repo.insertMany(lines)).then(resolve, reject);
        }),
      );
      pending = { lines, done };
      this.pending.set(tenant, pending);
    }
    pending.lines.push({
      node_id: line.node_id,
      task_id: line.task_id ?? null,
      level: line.level,
      message: line.message,
      data: line.data ?? null,
    });
    return pending.done;
  }

  list(f: NodeLogFilter): Promise<{ rows: NodeLogRow[]; total: number }> {
    return this.repo.list(f);
  }
}
