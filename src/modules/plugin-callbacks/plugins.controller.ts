import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiConflictResponse, ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { PageQuery } from '../tasks/dto/list-tasks.query.js';
import {
  CreatePluginDto,
  IssuedPluginView,
  PluginListView,
  PluginNameParam,
  PluginView,
  UpdatePluginDto,
} from './dto/plugin.dto.js';
import { parseTools } from './plugin-tools.js';
import { mapIssuedPlugin, mapPlugin } from './plugin.mapper.js';
import { PluginsService } from './plugins.service.js';

/** Admin API of the plugins that may call back into tasks. */
@ApiTags('plugins')
@Authenticated('admin')
@Controller('api/v1/plugins')
export class PluginsController {
  constructor(private readonly plugins: PluginsService) {}

  @Post()
  @ApiOperation({ summary: 'Register a plugin (admin). Its secret and token are in this answer only.' })
  @ApiEnvelope(IssuedPluginView, { status: 201 })
  @ApiConflictResponse({ description: 'CONFLICT: the name is taken (names are case-insensitive)' })
  async create(@Body() dto: CreatePluginDto): Promise<IssuedPluginView> {
    return mapIssuedPlugin(await this.plugins.create(dto.name, parseTools(dto.tools ?? [])));
  }

  @Get()
  @ApiOperation({ summary: 'List plugins (admin); secrets are never shown' })
  @ApiEnvelope(PluginListView)
  async list(@Query() q: PageQuery): Promise<PluginListView> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { rows, total } = await this.plugins.list(limit, offset);
    return {
      plugins: rows.map(mapPlugin),
      pagination: { total, limit, offset, has_more: offset + rows.length < total },
    };
  }

  @Get(':name')
  @ApiOperation({ summary: 'One plugin (admin)' })
  @ApiEnvelope(PluginView)
  @ApiNotFoundResponse({ description: 'NOT_FOUND' })
  async get(@Param() { name }: PluginNameParam): Promise<PluginView> {
    return mapPlugin(await this.plugins.get(name));
  }

  @Patch(':name')
  @ApiOperation({ summary: "Replace a plugin's tools (admin)" })
  @ApiEnvelope(PluginView)
  @ApiNotFoundResponse({ description: 'NOT_FOUND' })
  async update(@Param() { name }: PluginNameParam, @Body() dto: UpdatePluginDto): Promise<PluginView> {
    return mapPlugin(await this.plugins.setTools(name, parseTools(dto.tools)));
  }

  @Delete(':name')
  @ApiOperation({ summary: 'Remove a plugin (admin); its callbacks are refused from now on' })
  @ApiEnvelope(PluginView)
  async remove(@Param() { name }: PluginNameParam): Promise<PluginView> {
    return mapPlugin(await this.plugins.delete(name));
  }

  @Post(':name/rotate')
  @HttpCode(200)
  @ApiOperation({
    summary: 'New secret and token (shown once); the previous ones work for PLUGIN_ROTATION_GRACE_SECONDS',
  })
  @ApiEnvelope(IssuedPluginView)
  async rotate(@Param() { name }: PluginNameParam): Promise<IssuedPluginView> {
    return mapIssuedPlugin(await this.plugins.rotate(name));
  }
}
