import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { IsPlainObject } from '../../common/validators.js';
import type * as Wire from '../../contracts/sockets/device.js';
import type { RunningTaskRef as WireRunningTaskRef } from '../../contracts/sockets/tasks.js';

// Each class is the validator of one payload type of the device contract (`implements` keeps them in step).

/** A task the device says it is still running (or has a result for), from an earlier connection. */
export class RunningTaskRef implements WireRunningTaskRef {
  @IsString()
  @Length(1, 200)
  task_id: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  attempt?: number;
}

/**
 * What any registration may add for delivery: `acks` (it answers the ack of each assignment),
 * `running_tasks` (held tasks it is still on; every other held task is sent again) and `shared`
 * (it serves every tenant).
 */
class DeliveryOptions implements Wire.DeliveryOptions {
  @IsOptional()
  @IsBoolean()
  acks?: boolean;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(10_000)
  @ValidateNested({ each: true })
  @Type(() => RunningTaskRef)
  running_tasks?: RunningTaskRef[];

  /** Serve every tenant's tasks: registered with a global key only (docs/flow-control.md, "Fairness"). */
  @IsOptional()
  @IsBoolean()
  shared?: boolean;
}

/** Seed 004 `device_register`, plus what a hub needs (capacity, tags, task types). */
export class DeviceRegisterMessage extends DeliveryOptions implements Wire.DeviceRegisterPayload {
  @IsString()
  @Length(1, 200)
  device_id: string;

  @IsOptional()
  @IsString()
  @MaxLength(200)
  device_name?: string;

  @IsOptional()
  @IsPlainObject()
  device_info?: Record<string, unknown>;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000)
  capacity?: number;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  tags?: string[];

  /** Task types it takes (e.g. DELIST); none = any. */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(200)
  @IsString({ each: true })
  capabilities?: string[];

  @IsOptional()
  @IsString()
  @MaxLength(100)
  version?: string;

  /** Tools this device runs for chats, as on node_register (checked by normalizeTools). */
  @IsOptional()
  tools?: Wire.ToolDeclaration[];
}

/** Apex `node_register`: node id (snake or camel case), capabilities, persona, version. */
export class NodeRegisterMessage extends DeliveryOptions implements Wire.NodeRegisterPayload {
  @ValidateIf((o: NodeRegisterMessage) => o.nodeId === undefined)
  @IsString()
  @Length(1, 200)
  node_id?: string;

  @IsOptional()
  @IsString()
  @Length(1, 200)
  nodeId?: string;

  @IsOptional()
  @IsString()
  @MaxLength(200)
  name?: string;

  /** Seed 001: worker, companion or custom. */
  @IsOptional()
  @IsIn(['worker', 'companion', 'custom'])
  type?: 'worker' | 'companion' | 'custom';

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(200)
  capabilities?: unknown[];

  @IsOptional()
  persona?: unknown;

  @IsOptional()
  @IsString()
  @MaxLength(100)
  version?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000)
  capacity?: number;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  tags?: string[];

  @IsOptional()
  @IsPlainObject()
  info?: Record<string, unknown>;

  /** Tools this node runs (OpenAI function definitions); checked by normalizeTools, which names the bad field. */
  @IsOptional()
  tools?: Wire.ToolDeclaration[];
}

export class HeartbeatMessage implements Wire.HeartbeatPayload {
  @IsOptional()
  @IsString()
  @Length(1, 200)
  device_id?: string;

  @IsOptional()
  @IsString()
  @Length(1, 200)
  node_id?: string;

  @IsOptional()
  @IsString()
  @MaxLength(64)
  timestamp?: string;

  @IsOptional()
  @IsString()
  @MaxLength(64)
  status?: string;

  @IsOptional()
  @IsPlainObject()
  resources?: Record<string, unknown>;

  @IsOptional()
  @IsPlainObject()
  stats?: Record<string, unknown>;
}

export class TaskProgressMessage implements Wire.TaskProgressPayload {
  @IsUUID('all', { message: 'task_id must be a task UUID' })
  task_id: string;

  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(100)
  progress: number;

  @IsOptional()
  @IsString()
  @MaxLength(2000)
  message?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  attempt?: number;
}

export class TaskResultMessage implements Wire.TaskResultPayload {
  @IsUUID('all', { message: 'task_id must be a task UUID' })
  task_id: string;

  /** Seed 004: `{success, processed_count, message, data, …}`; Apex: any output. */
  @IsOptional()
  result?: unknown;

  @IsOptional()
  @IsBoolean()
  success?: boolean;

  /** `pending`: the node handed the task to a plugin (`plugin`, or `result.plugin`), which calls back. */
  @IsOptional()
  @IsIn(['success', 'completed', 'ok', 'failed', 'error', 'pending'])
  status?: Wire.TaskResultPayload['status'];

  @IsOptional()
  @IsString()
  @Length(1, 64)
  plugin?: string;

  @IsOptional()
  @ValidateIf((o: TaskResultMessage) => typeof o.error !== 'string')
  @IsPlainObject({ message: 'error must be a string or an object' })
  error?: string | Record<string, unknown>;

  @IsOptional()
  @IsBoolean()
  retryable?: boolean;

  @IsOptional()
  @IsInt()
  @Min(1)
  attempt?: number;
}

export class LogMessage implements Wire.LogPayload {
  @IsOptional()
  @IsUUID('all', { message: 'task_id must be a task UUID' })
  task_id?: string;

  @IsOptional()
  @IsIn(['debug', 'info', 'warn', 'error'])
  level?: 'debug' | 'info' | 'warn' | 'error';

  @IsString()
  @Length(1, 10_000)
  message: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  attempt?: number;

  @IsOptional()
  @Type(() => Object)
  data?: unknown;
}

/** Seed 001 `notification`: something a node wants the users to hear. */
export class NotificationMessage implements Wire.NotificationPayload {
  @IsString()
  @Length(1, 10_000)
  message: string;

  @IsOptional()
  @IsIn(['info', 'warning'])
  severity?: 'info' | 'warning';

  @IsOptional()
  @IsUUID('all', { message: 'task_id must be a task UUID' })
  task_id?: string;

  @IsOptional()
  @Type(() => Object)
  data?: unknown;
}

/** Did the device report success? Any explicit failure signal wins. */
export function reportedSuccess(m: TaskResultMessage): boolean {
  if (m.success === false || m.status === 'failed' || m.status === 'error' || m.error !== undefined) return false;
  const r = m.result as { success?: unknown; status?: unknown } | null | undefined;
  if (r && typeof r === 'object' && (r.success === false || r.status === 'failed' || r.status === 'error'))
    return false;
  return true;
}
