import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { IdParam } from '../../common/id-param.dto.js';
import { Authenticated } from '../auth/auth.decorators.js';
import {
  CreateRoutingRuleDto,
  EvaluateRoutingDto,
  EvaluateRoutingView,
  ListRoutingRulesQuery,
  RoutingRuleListView,
  RoutingRuleView,
  UpdateRoutingRuleDto,
} from './dto/routing-rule.dto.js';
import { mapRoutingRule } from './routing-rule.mapper.js';
import { RoutingService } from './routing.service.js';

@ApiTags('routing')
@ApiNotFoundResponse({ description: 'NOT_FOUND' })
@Controller('api/v1/routing/rules')
export class RoutingController {
  constructor(private readonly routing: RoutingService) {}

  @Post()
  @Authenticated('admin')
  @ApiOperation({ summary: 'Create a rule (admin); a duplicate name is CONFLICT, a bad condition names conditions[i]' })
  @ApiEnvelope(RoutingRuleView, { status: 201 })
  async create(@Body() dto: CreateRoutingRuleDto): Promise<RoutingRuleView> {
    return mapRoutingRule(await this.routing.create(dto));
  }

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Rules, highest priority first; ?enabled=true|false' })
  @ApiEnvelope(RoutingRuleListView)
  async list(@Query() q: ListRoutingRulesQuery): Promise<RoutingRuleListView> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const all = await this.routing.list(q.enabled === undefined ? undefined : q.enabled === 'true');
    const rules = all.slice(offset, offset + limit).map(mapRoutingRule);
    return { rules, pagination: { total: all.length, limit, offset, has_more: offset + rules.length < all.length } };
  }

  @Post('evaluate')
  @HttpCode(200)
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Which enabled rule would route this request or task (or null)' })
  @ApiEnvelope(EvaluateRoutingView)
  async evaluate(@Body() ctx: EvaluateRoutingDto): Promise<EvaluateRoutingView> {
    const rule = await this.routing.match(ctx);
    return { rule: rule ? mapRoutingRule(rule) : null };
  }

  @Get(':id')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'One rule' })
  @ApiEnvelope(RoutingRuleView)
  async get(@Param() { id }: IdParam): Promise<RoutingRuleView> {
    return mapRoutingRule(await this.routing.get(id));
  }

  @Put(':id')
  @Authenticated('admin')
  @ApiOperation({ summary: 'Change some fields of a rule (admin)' })
  @ApiEnvelope(RoutingRuleView)
  async update(@Param() { id }: IdParam, @Body() dto: UpdateRoutingRuleDto): Promise<RoutingRuleView> {
    return mapRoutingRule(await this.routing.update(id, dto));
  }

  @Delete(':id')
  @Authenticated('admin')
  @ApiOperation({ summary: 'Delete a rule (admin); answers the deleted rule' })
  @ApiEnvelope(RoutingRuleView)
  async remove(@Param() { id }: IdParam): Promise<RoutingRuleView> {
    return mapRoutingRule(await this.routing.remove(id));
  }
}
