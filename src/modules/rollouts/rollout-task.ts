import { createHash } from 'node:crypto';
import { validateSync } from 'class-validator';
import { AppError, ErrorCode } from '../../common/errors.js';
import { validationError } from '../../common/validation.js';
import { CreateTaskDto } from '../tasks/dto/create-task.dto.js';
import type { RolloutTask } from './rollout.types.js';

/** The idempotency key of a node's task in a rollout: a release repeated after a crash finds the same task. */
export function releaseKey(rolloutId: string, nodeId: string): string {
  const key = `rollout:${rolloutId}:${nodeId}`;
  return key.length <= 200 ? key : `rollout:${rolloutId}#${createHash('sha256').update(nodeId).digest('hex')}`;
}

/**
 * The POST /api/v1/tasks body of one node's task, checked as the tasks API checks one (a problem
 * names `task.<field>`): the node as target, the rollout in metadata, a key per rollout and node.
 */
export function nodeTask(task: RolloutTask, rolloutId: string, rolloutName: string, nodeId: string): CreateTaskDto {
  const dto = Object.assign(Object.create(CreateTaskDto.prototype) as CreateTaskDto, task, {
    target_node_id: nodeId,
    metadata: { rollout_id: rolloutId, rollout_name: rolloutName },
    idempotency_key: releaseKey(rolloutId, nodeId),
  });
  const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length) {
    const e = validationError(errors);
    const field = `task.${String(e.details?.field ?? 'body')}`;
    throw new AppError(ErrorCode.VALIDATION_ERROR, e.message, { ...e.details, field });
  }
  return dto;
}
