import type { HotRoute } from '../../common/hot-routes.js';
import { LlmController } from './llm.controller.js';

/** The LLM gateway's completions, ahead of Nest's router (src/common/hot-routes.ts; docs/llm.md, "The lean route"). */
export const LLM_HOT_ROUTES: HotRoute[] = [
  {
    method: 'post',
    path: '/v1/chat/completions',
    controller: LlmController,
    handler: 'chat',
    // `@Body() body: unknown, @Req() req, @Res() res`: the body is untyped, no pipe changes it.
    args: (req, res) => [{ value: req.body as unknown }, { value: req }, { value: res }],
  },
];
