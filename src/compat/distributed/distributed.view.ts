import { ApiProperty } from '@nestjs/swagger';

/** Seed 004 (distributed task system) response shapes, answered as they are (no envelope). */

const nullableString = { type: String, nullable: true } as const;
/** `2025-09-17T14:30:00`: the hub's local time, whole seconds, no zone (as the document; docs/compatibility.md). */
const SEED_TIME = {
  type: String,
  example: '2025-09-17T14:30:00',
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}$',
  description: "the hub's local time (TZ), whole seconds, no zone, as the document writes it",
} as const;
const nullableDate = { ...SEED_TIME, nullable: true } as const;
const json = { type: 'object', additionalProperties: true, nullable: true } as const;

export class Seed004SystemView {
  @ApiProperty({ example: '分布式任务系统', description: "the document's system name" }) system: string;
  @ApiProperty({ example: 'taskhub', description: 'the server answering' }) implementation: string;
  @ApiProperty({ description: "taskhub's version" }) version: string;
  @ApiProperty({ example: 'running' }) status: string;
  @ApiProperty() port: number;
  @ApiProperty({ type: 'integer', nullable: true, description: 'null without a valid key' })
  connected_devices: number | null;
  @ApiProperty({ type: 'integer', nullable: true, description: 'null without a valid key' })
  active_tasks: number | null;
  @ApiProperty(SEED_TIME) timestamp: string;
}

export class Seed004ConnectionInfoView {
  @ApiProperty(nullableString) sid: string | null;
  @ApiProperty(nullableDate) registered_at: string | null;
}

export class Seed004DeviceView {
  @ApiProperty() device_id: string;
  @ApiProperty() device_name: string;
  @ApiProperty({ enum: ['online', 'offline', 'busy', 'draining'] }) status: string;
  @ApiProperty(nullableDate) last_heartbeat: string | null;
  @ApiProperty() task_count: number;
  @ApiProperty({ type: Seed004ConnectionInfoView }) connection_info: Seed004ConnectionInfoView;
}

export class Seed004DeviceListView {
  @ApiProperty({ enum: [true] }) success: boolean;
  @ApiProperty({ type: [Seed004DeviceView] }) devices: Seed004DeviceView[];
  @ApiProperty() total: number;
}

export class Seed004TaskView {
  @ApiProperty({ format: 'uuid' }) task_id: string;
  @ApiProperty() task_type: string;
  @ApiProperty() status: string;
  @ApiProperty(nullableString) device_id: string | null;
  @ApiProperty(nullableDate) created_at: string | null;
  @ApiProperty(json) data: unknown;
}

export class Seed004TaskListView {
  @ApiProperty({ enum: [true] }) success: boolean;
  @ApiProperty({ type: [Seed004TaskView] }) tasks: Seed004TaskView[];
  @ApiProperty() total: number;
}

export class Seed004DispatchedView {
  @ApiProperty({ enum: [true] }) success: boolean;
  @ApiProperty({ format: 'uuid' }) task_id: string;
  @ApiProperty({ ...nullableString, description: 'the chosen device; null while queued' }) device_id: string | null;
  @ApiProperty(nullableString) device_name: string | null;
  @ApiProperty() status: string;
  @ApiProperty() message: string;
}

export class Seed004TaskStatusItemView {
  @ApiProperty({ format: 'uuid' }) task_id: string;
  @ApiProperty() status: string;
  @ApiProperty() progress: number;
  @ApiProperty(json) result: unknown;
  @ApiProperty(nullableString) device_id: string | null;
  @ApiProperty(nullableDate) updated_at: string | null;
}

export class Seed004TaskStatusView {
  @ApiProperty({ enum: [true] }) success: boolean;
  @ApiProperty({ type: Seed004TaskStatusItemView }) task: Seed004TaskStatusItemView;
}
