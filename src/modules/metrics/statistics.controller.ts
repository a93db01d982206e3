import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { StatisticsQuery } from '../tasks/dto/list-tasks.query.js';
import { TasksService } from '../tasks/tasks.service.js';
import { mapStatistics, StatisticsView } from './statistics.view.js';

@ApiTags('statistics')
@Controller('api/v1/statistics')
export class StatisticsController {
  constructor(private readonly tasks: TasksService) {}

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Overview, distributions, processing time, throughput and a time series (computed in SQL)' })
  @ApiEnvelope(StatisticsView)
  async get(@Query() q: StatisticsQuery): Promise<StatisticsView> {
    return mapStatistics(await this.tasks.statistics(q));
  }
}
