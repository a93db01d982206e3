import { Injectable } from '@nestjs/common';
import { PACKAGE } from '../../common/package-info.js';
import { NodesService } from '../nodes/nodes.service.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';

import type { HubStatus } from '../../contracts/sockets/events.js';

export type { HubStatus } from '../../contracts/sockets/events.js';

/** A small snapshot for `get_status` and `metrics_update`: task counts by state and nodes online. */
@Injectable()
export class HubStatusService {
  constructor(
    private readonly taskQueries: TaskQueriesService,
    private readonly nodes: NodesService,
  ) {}

  async snapshot(): Promise<HubStatus> {
    const [tasks, nodes] = await Promise.all([this.taskQueries.countByStatus(), this.nodes.countOnline()]);
    return {
      version: PACKAGE.version,
      uptime: Math.round(process.uptime()),
      tasks,
      nodes,
      timestamp: new Date().toISOString(),
    };
  }
}
