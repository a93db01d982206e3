import { closeArrayGaps } from '@nestjs/common/utils/close-array-gaps.util.js';
import { stripProtoKeys } from '@nestjs/common/utils/strip-proto-keys.util.js';
import type { Request } from 'express';
import type { HotArgument, HotRoute } from '../../common/hot-routes.js';
import { CreateTaskDto } from './dto/create-task.dto.js';
import { CreateTaskFastValidator } from './dto/create-task.validator.js';
import { TasksController } from './tasks.controller.js';

const header = (req: Request, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

const fastValidator = new CreateTaskFastValidator();

/**
 * The submitted body as the route's ValidationPipe would return it. A plain object that the
 * compiled check passes (the DTO's own rules, create-task.validator.ts) goes to the method as it
 * is, prepared as the pipe prepares it: the DTO has no transforms, so the pipe's class-transformer
 * copy and class-validator's executor (~0.2 ms per submission in the W3 profile) would change
 * nothing. Anything else goes through the pipe, which gives the error answer.
 */
function submittedBody(body: unknown): HotArgument {
  if (typeof body === 'object' && body !== null && Object.getPrototypeOf(body) === Object.prototype) {
    closeArrayGaps(body);
    stripProtoKeys(body);
    if (fastValidator.isValid(body as Record<string, unknown>)) return { value: body };
  }
  return { value: body, metatype: CreateTaskDto };
}

/**
 * The task routes served ahead of Nest's router (src/common/hot-routes.ts): a submission is what
 * every client does most (W1a, W3). Arguments as TasksController.create's decorators give them:
 * `@Body() dto`, `@Headers('idempotency-key')`, `@Res({ passthrough: true })`.
 */
export const TASK_HOT_ROUTES: HotRoute[] = [
  {
    method: 'post',
    path: '/api/v1/tasks',
    controller: TasksController,
    handler: 'create',
    args: (req, res) => [submittedBody(req.body), { value: header(req, 'idempotency-key') }, { value: res }],
  },
];
