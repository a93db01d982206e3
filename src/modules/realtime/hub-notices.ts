import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';

/**
 * Turns domain events into what people are told (seed 001 `notification` and `alert`): a task
 * that failed for good, a node gone while holding tasks and a crashed managed service are
 * alerts; a task's progress message is a notification. The relays send them to /ws, /events
 * and the log channel. Other modules publish their own (refused plugin callbacks, node frames).
 */
@Injectable()
export class HubNotices implements OnApplicationBootstrap, OnApplicationShutdown {
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly events: EventBus) {}

  onApplicationBootstrap(): void {
    this.unsubscribe = [
      this.events.on('task.failed', ({ task, retrying }) => {
        if (retrying) return;
        const reason = (task.error as { message?: unknown } | null)?.message;
        this.events.publish('hub.alert', {
          severity: 'warning',
          source: 'task',
          task_id: task.id,
          tenant_id: task.tenant_id,
          ...(task.node_id ? { node_id: task.node_id } : {}),
          status: task.status,
          message: `Task ${task.id} (${task.type}) ${task.status === 'timed_out' ? 'timed out' : 'failed'} for good${typeof reason === 'string' ? `: ${reason}` : ''}`,
        });
      }),
      this.events.on('task.progress', ({ task }) => {
        if (!task.progress_message) return;
        this.events.publish('hub.notification', {
          severity: 'info',
          source: 'task',
          task_id: task.id,
          tenant_id: task.tenant_id,
          progress: task.progress,
          message: task.progress_message,
        });
      }),
      this.events.on('node.offline', ({ nodeId, reason, held, tenantId }) => {
        if (!held) return;
        this.events.publish('hub.alert', {
          severity: 'warning',
          source: 'node',
          node_id: nodeId,
          ...(tenantId ? { tenant_id: tenantId } : {}),
          held_tasks: held,
          message: `Node ${nodeId} went offline (${reason}) holding ${held} task(s); they wait for its reconnect grace, then go to other nodes`,
        });
      }),
      this.events.on('service.down', ({ serviceId, reason }) => {
        if (reason !== 'service_crashed') return;
        this.events.publish('hub.alert', {
          severity: 'critical',
          source: 'service',
          service_id: serviceId,
          message: `Agent service ${serviceId} crashed`,
        });
      }),
    ];
  }

  onApplicationShutdown(): void {
    this.unsubscribe.forEach((u) => u());
  }
}
