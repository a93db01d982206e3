import { Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { AuthModule } from '../auth/auth.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { RateLimitOptions } from './rate-limit.options.js';

/**
 * The HTTP rate limits: @nestjs/throttler with taskhub's throttlers and store (RateLimitOptions).
 * ThrottlerModule is global, so RateLimitGuard, an APP_GUARD of AppModule, finds its options
 * and store wherever it is declared.
 */
@Module({
  imports: [ThrottlerModule.forRootAsync({ imports: [AuthModule, TenantsModule], useClass: RateLimitOptions })],
})
export class RateLimitModule {}
