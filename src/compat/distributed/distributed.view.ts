import { ApiProperty } from '@nestjs/swagger';

/** Seed 004 (distributed task system) response shapes, answered as they are (no envelope). */

const nullableString = { type: String, nullable: true } as const;
const nullableDate = { type: String, format: 'date-time', nullable: true } as const;
const json = { type: 'object', additionalProperties: true, nullable: true } as const;

export class Seed004SystemView {
  @ApiProperty({ example: 'taskhub' }) system: string;
  @ApiProperty() version: string;
  @ApiProperty({ example: 'running' }) status: string;
  @ApiProperty() port: number;
  @ApiProperty({ type: 'integer', nullable: true, description: 'null without a valid key' })
  connected_devices: number | null;
  @ApiProperty({ type: 'integer', nullable: true, description: 'null without a valid key' })
  active_tasks: number | null;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
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
