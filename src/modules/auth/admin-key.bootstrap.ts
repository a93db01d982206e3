import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { ApiKeysService } from './api-keys.service.js';

/** First start with no global admin key: make one, print it once, and (embedded mode) keep it in DATA_DIR/admin.key. */
@Injectable()
export class AdminKeyBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly keys: ApiKeysService,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.AUTH_REQUIRED) {
      this.logger.warn('AUTH_REQUIRED=false: every request is treated as admin. Do not expose this hub.');
    }
    if (await this.keys.hasGlobalAdmin()) return;
    // A global admin (tenant null): it manages tenants and acts for any of them (docs/tenants.md).
    const { key } = await this.keys.create('bootstrap-admin', 'admin', null, null);
    let where = '';
    if (!this.config.DATABASE_URL) {
      mkdirSync(this.config.DATA_DIR, { recursive: true });
      const file = join(this.config.DATA_DIR, 'admin.key');
      writeFileSync(file, `${key}\n`, { mode: 0o600 });
      where = ` (also written to ${file})`;
    }
    // Printed once, on purpose: only its hash is stored.
    this.logger.warn(`Created the first admin API key${where}: ${key}`);
  }
}
