import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { AppConfig } from '../../config/app-config.js';
import { hashKey } from '../auth/api-keys.service.js';
import type { PluginCredentials, PluginRow } from './plugin.types.js';
import { PluginsRepository } from './plugins.repository.js';

/** A plugin as just created or rotated: the only time its secret and token are shown. */
export interface IssuedPlugin {
  row: PluginRow;
  secret: string;
  token: string;
}

const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
const newToken = (): string => `plg_${randomBytes(32).toString('base64url')}`;

/** The plugin registry: names, signing secrets and bearer tokens (stored hashed), rotation. */
@Injectable()
export class PluginsService {
  constructor(
    private readonly repo: PluginsRepository,
    private readonly config: AppConfig,
  ) {}

  async create(name: string): Promise<IssuedPlugin> {
    const secret = newSecret();
    const token = newToken();
    const row = await this.repo.insert(name, secret, hashKey(token));
    if (!row) throw new AppError(ErrorCode.CONFLICT, `Plugin already exists: ${name}`, { field: 'name' });
    return { row, secret, token };
  }

  list(limit: number, offset: number): Promise<{ rows: PluginRow[]; total: number }> {
    return this.repo.list(limit, offset);
  }

  async get(name: string): Promise<PluginRow> {
    const row = await this.repo.findByName(name);
    if (!row) throw AppError.notFound('Plugin', name);
    return row;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.repo.findByName(name)) !== undefined;
  }

  async delete(name: string): Promise<PluginRow> {
    const row = await this.repo.delete(name);
    if (!row) throw AppError.notFound('Plugin', name);
    return row;
  }

  async rotate(name: string): Promise<IssuedPlugin> {
    const secret = newSecret();
    const token = newToken();
    const row = await this.repo.rotate(name, secret, hashKey(token), this.config.PLUGIN_ROTATION_GRACE_SECONDS);
    if (!row) throw AppError.notFound('Plugin', name);
    return { row, secret, token };
  }

  /** The credentials a callback for this plugin may present now; undefined for an unknown plugin. */
  async credentials(name: string): Promise<PluginCredentials | undefined> {
    const row = await this.repo.findByName(name);
    if (!row) return undefined;
    const inGrace = row.rotated_until !== null && row.rotated_until.getTime() > Date.now();
    return {
      name: row.name,
      secrets: [row.secret, ...(inGrace && row.previous_secret ? [row.previous_secret] : [])],
      tokenHashes: [row.token_hash, ...(inGrace && row.previous_token_hash ? [row.previous_token_hash] : [])],
    };
  }
}
