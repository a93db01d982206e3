import { Module } from '@nestjs/common';
import { DashboardController } from './dashboard.controller.js';

/** The page at /dashboard and its assets, served by the hub itself (no CDN). */
@Module({ controllers: [DashboardController] })
export class DashboardModule {}
