import type { Request } from 'express';
import type { HotRoute } from '../../common/hot-routes.js';
import { CreateTaskDto } from './dto/create-task.dto.js';
import { TasksController } from './tasks.controller.js';

const header = (req: Request, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

/**
 * The task routes served ahead of Nest's router (src/common/hot-routes.ts): a submission is
 * what every client does most (W1a, W3). Arguments as TasksController's parameter decorators give them.
 */
export const TASK_HOT_ROUTES: HotRoute[] = [
  {
    method: 'post',
    path: '/api/v1/tasks',
    controller: TasksController,
    handler: 'create',
    status: 201,
    args: async (req, res, validate) => [
      await validate(req.body, CreateTaskDto),
      header(req, 'idempotency-key'),
      res,
    ],
  },
];
