import { ApiProperty } from '@nestjs/swagger';
import type { StatisticsRows } from '../tasks/task-counts.repository.js';

export class StatisticsView {
  @ApiProperty({
    example: {
      total_tasks: 1250,
      completed_tasks: 980,
      failed_tasks: 120,
      cancelled_tasks: 50,
      active_tasks: 100,
      success_rate: 0.85,
    },
  })
  overview: Record<string, number>;
  @ApiProperty({ example: { waiting: 45, working: 55, completed: 980, failed: 120, cancelled: 50, timed_out: 0 } })
  status_distribution: Record<string, number>;
  @ApiProperty({ example: { low: 300, medium: 600, high: 350, urgent: 0 } })
  priority_distribution: Record<string, number>;
  @ApiProperty({
    example: { avg_processing_time: 2450.5, tasks_per_hour: 85.3 },
    description: 'avg in ms; rate over the period',
  })
  performance_metrics: { avg_processing_time: number; tasks_per_hour: number };
  @ApiProperty({ example: [{ timestamp: '2024-01-01T09:00:00Z', completed: 15, failed: 2, cancelled: 0 }] })
  time_series: { timestamp: string; completed: number; failed: number; cancelled: number }[];
}

const round = (n: number, places = 2): number => Math.round(n * 10 ** places) / 10 ** places;

export function mapStatistics(s: StatisticsRows & { periodHours: number }): StatisticsView {
  const c = s.counts;
  const finished = c.completed + c.failed + c.timed_out;
  return {
    overview: {
      total_tasks: c.total,
      completed_tasks: c.completed,
      failed_tasks: c.failed + c.timed_out,
      cancelled_tasks: c.cancelled,
      active_tasks: c.pending + c.dispatched + c.running,
      success_rate: finished ? round(c.completed / finished, 4) : 0,
    },
    status_distribution: {
      waiting: c.pending + c.dispatched,
      working: c.running,
      completed: c.completed,
      failed: c.failed,
      cancelled: c.cancelled,
      timed_out: c.timed_out,
    },
    priority_distribution: { low: c.p_low, medium: c.p_medium, high: c.p_high, urgent: c.p_urgent },
    performance_metrics: {
      avg_processing_time: c.avg_processing_ms === null ? 0 : round(Number(c.avg_processing_ms), 1),
      tasks_per_hour: round(c.completed_in_period / s.periodHours, 1),
    },
    time_series: s.series.map((p) => ({
      timestamp: p.bucket.toISOString(),
      completed: p.completed,
      failed: p.failed,
      cancelled: p.cancelled,
    })),
  };
}
