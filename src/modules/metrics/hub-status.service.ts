import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { PACKAGE } from '../../common/package-info.js';

import type { HubStatus } from '../../contracts/sockets/events.js';

export type { HubStatus } from '../../contracts/sockets/events.js';

/** A small snapshot for `get_status` and `metrics_update`: task counts by state and nodes online. */
@Injectable()
export class HubStatusService {
  constructor(private readonly db: DataSource) {}

  async snapshot(): Promise<HubStatus> {
    const [counts, nodes]: [{ status: string; n: number }[], { online: number; total: number }[]] = await Promise.all([
      this.db.query(`SELECT status, count(*)::int AS n FROM tasks GROUP BY status`),
      this.db.query(
        `SELECT count(*) FILTER (WHERE status = 'online')::int AS online, count(*)::int AS total FROM nodes`,
      ),
    ]);
    const tasks: HubStatus['tasks'] = {
      pending: 0,
      dispatched: 0,
      running: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
      timed_out: 0,
    };
    for (const c of counts) tasks[c.status] = c.n;
    return {
      version: PACKAGE.version,
      uptime: Math.round(process.uptime()),
      tasks,
      nodes: nodes[0],
      timestamp: new Date().toISOString(),
    };
  }
}
