import { Injectable } from '@nestjs/common';
import { NodesService } from '../nodes/nodes.service.js';
import type { OfferedTool } from '../plugin-callbacks/plugin-tools.js';
import { PluginsService } from '../plugin-callbacks/plugins.service.js';
import type { ToolDefinition } from './tool-definition.js';

/** A node that offers a tool right now. */
export interface ToolNode {
  node_id: string;
  name: string | null;
  /** Its tenant: a tool task runs only on a node of the task's tenant. */
  tenant_id: string;
}

/** A tool the caller's tenant may call: its definition, the nodes that run it, and the plugin that declared it (if any). */
export interface RegisteredTool extends ToolDefinition {
  /** The plugin that declared it: its task is given that plugin's callback path. */
  plugin: string | null;
  nodes: ToolNode[];
}

/**
 * The tools of the fleet (declared by connected nodes in `node_register` `tools`) and of the
 * plugins registered over the API, for the caller's tenant (row security does the scoping).
 * Read when asked (GET /v1/tools, a chat naming tools): a node that registers or leaves is
 * seen by the next request, with no cache to go stale.
 */
@Injectable()
export class ToolRegistry {
  constructor(
    private readonly nodes: NodesService,
    private readonly plugins: PluginsService,
  ) {}

  async available(): Promise<Map<string, RegisteredTool>> {
    const tools = new Map<string, RegisteredTool>();
    for (const p of await this.pluginTools()) {
      tools.set(p.name, {
        name: p.name,
        description: p.description,
        parameters: p.parameters,
        plugin: p.plugin,
        nodes: [],
      });
    }
    for (const offer of await this.nodes.toolOffers()) {
      for (const t of offer.tools) {
        let tool = tools.get(t.name);
        // The first declaration wins (a plugin's, else the lowest node id's); later nodes only add themselves.
        if (!tool) tools.set(t.name, (tool = { ...t, plugin: null, nodes: [] }));
        tool.nodes.push({ node_id: offer.node_id, name: offer.name, tenant_id: offer.tenant_id });
      }
    }
    return tools;
  }

  /** Tools declared by the tenant's plugins (POST/PATCH /api/v1/plugins). */
  private pluginTools(): Promise<OfferedTool[]> {
    return this.plugins.tools();
  }
}
