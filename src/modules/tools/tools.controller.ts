import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RawResponse } from '../../common/envelope.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { asOpenAiTool } from './tool-definition.js';
import { ToolRegistry } from './tool-registry.service.js';
import { ToolListView } from './tool.view.js';

/**
 * The tools a chat may name (seed 001 §7.3): each as an OpenAI `tools` entry, plus the nodes
 * that run it and the plugin that declared it. OpenAI's list shape, no envelope, like /v1/models.
 */
@ApiTags('LLM gateway (OpenAI-compatible, seed 001)')
@RawResponse()
@Controller('v1')
export class ToolsController {
  constructor(private readonly registry: ToolRegistry) {}

  @Get('tools')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'The tools the hub runs on nodes for a chat, with the nodes that offer each' })
  @ApiOkResponse({ type: ToolListView })
  async list(): Promise<ToolListView> {
    const tools = [...(await this.registry.available()).values()].sort((a, b) => a.name.localeCompare(b.name));
    return {
      object: 'list',
      data: tools.map((t) => ({
        ...asOpenAiTool(t),
        plugin: t.plugin,
        nodes: t.nodes.map((n) => ({ node_id: n.node_id, name: n.name })),
      })),
    };
  }
}
