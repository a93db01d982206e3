import { ApiProperty } from '@nestjs/swagger';

export class LlmDeploymentStatusView {
  @ApiProperty() provider: string;
  @ApiProperty() model: string;
  @ApiProperty({ description: 'Calls on this deployment in flight in this hub' }) in_flight: number;
  @ApiProperty({ type: Number, nullable: true }) max_concurrency: number | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Set while cooling down' })
  cooldown_until: string | null;
  @ApiProperty() calls_last_minute: number;
  @ApiProperty() errors_last_minute: number;
}

export class LlmRunningRequestView {
  @ApiProperty() request_id: string;
  @ApiProperty() model: string;
  @ApiProperty({ type: String, nullable: true }) key_id: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Set when a node made the request' })
  node_id: string | null;
  @ApiProperty({ format: 'date-time' }) started_at: string;
}

export class LlmStatusView {
  @ApiProperty({
    description: 'Requests waiting on this hub for a slot of a deployment at max_concurrency (LLM_SLOT_WAIT_MS)',
  })
  waiting: number;
  @ApiProperty({ type: [LlmDeploymentStatusView] }) deployments: LlmDeploymentStatusView[];
  @ApiProperty({ type: [LlmRunningRequestView] }) running: LlmRunningRequestView[];
}
