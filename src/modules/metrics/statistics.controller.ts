import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { StatisticsQuery } from '../tasks/dto/list-tasks.query.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';
import { mapStatistics, StatisticsView } from './statistics.view.js';

@ApiTags('statistics')
@Controller('api/v1/statistics')
export class StatisticsController {
  constructor(private readonly taskQueries: TaskQueriesService) {}

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Overview, distributions, processing time, throughput and a time series (computed in SQL)' })
  @ApiEnvelope(StatisticsView)
  async get(@Query() q: StatisticsQuery): Promise<StatisticsView> {
    return mapStatistics(await this.taskQueries.statistics(q));
  }
}
