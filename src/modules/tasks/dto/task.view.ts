import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PRIORITIES, TASK_STATES, EVENT_LEVELS } from '../task.types.js';

const nullableString = { type: String, nullable: true } as const;
const nullableDate = { type: String, format: 'date-time', nullable: true } as const;
const json = { type: 'object', additionalProperties: true, nullable: true } as const;

export class TaskView {
  @ApiProperty({ format: 'uuid' }) task_id: string;
  @ApiProperty() type: string;
  @ApiProperty(nullableString) prompt: string | null;
  @ApiProperty(json) data: unknown;
  @ApiProperty({ enum: PRIORITIES }) priority: string;
  @ApiProperty({ type: [String] }) tags: string[];
  @ApiProperty({ type: [String] }) required_tags: string[];
  @ApiProperty(nullableString) work_directory: string | null;
  @ApiProperty(nullableString) environment: string | null;
  @ApiProperty({ type: 'array', items: {}, nullable: true }) files: unknown;
  @ApiProperty({
    enum: ['waiting', 'working', 'completed', 'failed', 'cancelled', 'timed_out'],
    description: 'Seed 002 vocabulary',
  })
  status: string;
  @ApiProperty({ enum: TASK_STATES, description: 'Exact state in the task state machine' }) state: string;
  @ApiProperty(nullableString) target_node_id: string | null;
  @ApiProperty(nullableString) worker_id: string | null;
  @ApiProperty(nullableString) node_id: string | null;
  @ApiProperty({ description: 'Hand-out counter; reports must carry the current one' }) attempt: number;
  @ApiProperty() retry_count: number;
  @ApiProperty() max_retries: number;
  @ApiProperty() timeout_seconds: number;
  @ApiProperty({ minimum: 0, maximum: 100 }) progress: number;
  @ApiProperty(nullableString) progress_message: string | null;
  @ApiProperty(json) result: unknown;
  @ApiProperty(json) error: unknown;
  @ApiProperty({ type: 'array', items: { type: 'object' } }) messages: unknown[];
  @ApiProperty({ type: 'object', additionalProperties: true }) metadata: Record<string, unknown>;
  @ApiProperty(nullableString) idempotency_key: string | null;
  @ApiProperty(nullableDate) run_at: string | null;
  @ApiProperty(nullableDate) lease_expires_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
  @ApiProperty(nullableDate) dispatched_at: string | null;
  @ApiProperty(nullableDate) started_at: string | null;
  @ApiProperty(nullableDate) completed_at: string | null;
  @ApiProperty(nullableDate) cancelled_at: string | null;
  @ApiProperty(nullableDate) last_retry_at: string | null;
  @ApiProperty({ ...nullableString, description: 'Cancel reason' }) reason: string | null;
  @ApiProperty({ ...nullableString, description: 'The plugin this task was created to await (never dispatched)' })
  awaits_callback: string | null;
  @ApiProperty({
    ...nullableString,
    description:
      'W3C trace id of the context the task was submitted in (its `traceparent` header, else a new trace): its spans are in this trace (docs/observability.md)',
  })
  trace_id: string | null;
  @ApiProperty({
    ...nullableString,
    description:
      "While the task is held (dispatched or running): the W3C `traceparent` its holder continues (the span of this attempt's run); null otherwise",
  })
  traceparent: string | null;
}

export class PaginationView {
  @ApiProperty() total: number;
  @ApiProperty() limit: number;
  @ApiProperty() offset: number;
  @ApiProperty() has_more: boolean;
}

/** A task list's page: `total` never counts the table (docs/http-api.md, "Lists"). */
export class TaskPaginationView extends PaginationView {
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page (same sort and order); null on the last page',
  })
  next_cursor: string | null;
  @ApiProperty({
    description:
      '`total` is exact (from the counters) when the filter is at most status and priority; with any other filter it counts up to 10,000 matches, and this is true when it stopped there',
  })
  total_capped: boolean;
}

export class TaskListView {
  @ApiProperty({ type: [TaskView] }) tasks: TaskView[];
  @ApiProperty({ type: TaskPaginationView }) pagination: TaskPaginationView;
}

export class TaskEventView {
  @ApiProperty() id: number;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty({ example: 'claimed' }) type: string;
  @ApiProperty({ enum: EVENT_LEVELS }) level: string;
  @ApiProperty() message: string;
  @ApiProperty() attempt: number;
  @ApiProperty(json) data: unknown;
}

export class TaskLogsView {
  @ApiProperty({ format: 'uuid' }) task_id: string;
  @ApiProperty({ type: [TaskEventView] }) logs: TaskEventView[];
}

export class BatchItemView {
  @ApiProperty() index: number;
  @ApiProperty() success: boolean;
  @ApiPropertyOptional({ format: 'uuid' }) task_id?: string;
  @ApiPropertyOptional({ description: 'false when an idempotency key matched an existing task' }) created?: boolean;
  @ApiPropertyOptional({ description: '{code, message, details}' }) error?: {
    code: string;
    message: string;
    details?: unknown;
  };
}

export class BatchView {
  @ApiProperty() total: number;
  @ApiProperty() created: number;
  @ApiProperty() failed: number;
  @ApiProperty({ type: [BatchItemView] }) results: BatchItemView[];
}
