import type { Request } from 'express';
import type { HotRoute } from '../../common/hot-routes.js';
import { CreateTaskDto } from './dto/create-task.dto.js';
import { TasksController } from './tasks.controller.js';

const header = (req: Request, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

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
    args: (req, res) => [
      { value: req.body, metatype: CreateTaskDto },
      { value: header(req, 'idempotency-key') },
      { value: res },
    ],
  },
];
