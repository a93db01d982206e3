import { Module } from '@nestjs/common';
import { AgentServicesModule } from '../agent-services/agent-services.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { LlmModule } from '../llm/llm.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { NodesModule } from '../nodes/nodes.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { DeviceGateway } from './device.gateway.js';
import { DeviceProtocol } from './device-protocol.js';
import { EventsGateway } from './events.gateway.js';
import { HubNotices } from './hub-notices.js';
import { LogChannelServer } from './log-channel.server.js';
import { NodeChannelServer } from './node-channel.server.js';
import { NodeLlmBridge } from './node-llm-bridge.js';
import { UpgradeRouter } from './upgrade-router.js';
import { WsStreamServer } from './ws-stream.server.js';

@Module({
  imports: [AgentServicesModule, AuthModule, LlmModule, TasksModule, TenantsModule, NodesModule, MetricsModule],
  providers: [
    DeviceProtocol,
    DeviceGateway,
    EventsGateway,
    WsStreamServer,
    NodeChannelServer,
    LogChannelServer,
    UpgradeRouter,
    HubNotices,
    NodeLlmBridge,
  ],
})
export class RealtimeModule {}
