import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { NodesModule } from '../nodes/nodes.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { DeviceGateway } from './device.gateway.js';
import { DeviceProtocol } from './device-protocol.js';
import { EventsGateway } from './events.gateway.js';
import { HubStatusService } from './hub-status.service.js';
import { WsStreamServer } from './ws-stream.server.js';

@Module({
  imports: [AuthModule, TasksModule, NodesModule],
  providers: [DeviceProtocol, DeviceGateway, HubStatusService, EventsGateway, WsStreamServer],
})
export class RealtimeModule {}
