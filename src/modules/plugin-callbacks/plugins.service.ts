import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { AppConfig } from '../../config/app-config.js';
import { hashKey } from '../auth/api-keys.service.js';
import type { OfferedTool, PluginTool } from './plugin-tools.js';
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

/**
 * The plugin registry: names (case-preserving, matched case-insensitively), signing secrets and
 * bearer tokens (stored hashed), rotation, and the tools each plugin declares.
 */
@Injectable()
export class PluginsService {
  constructor(
    private readonly repo: PluginsRepository,
    private readonly config: AppConfig,
  ) {}

  /** `tools` already checked and normalised (parseTools). */
  async create(name: string, tools: PluginTool[] = []): Promise<IssuedPlugin> {
    const secret = newSecret();
    const token = newToken();
    const row = await this.repo.insert(name, secret, hashKey(token), tools);
    if (!row) throw new AppError(ErrorCode.CONFLICT, `Plugin already exists: ${name}`, { field: 'name' });
    return { row, secret, token };
  }

  /** Replaces the plugin's tools (checked and normalised by parseTools). */
  async setTools(name: string, tools: PluginTool[]): Promise<PluginRow> {
    const row = await this.repo.setTools(name, tools);
    if (!row) throw AppError.notFound('Plugin', name);
    return row;
  }

  /**
   * Every tool the current tenant's plugins declare (row-level security picks the tenant from
   * the caller's context, as for every query here), by plugin then in declared order.
   */
  tools(): Promise<OfferedTool[]> {
    return this.repo.tools();
  }

  list(limit: number, offset: number): Promise<{ rows: PluginRow[]; total: number }> {
    return this.repo.list(limit, offset);
  }

  async get(name: string): Promise<PluginRow> {
    const row = await this.repo.findByName(name);
    if (!row) throw AppError.notFound('Plugin', name);
    return row;
  }

  /** The plugin's name as registered (`FileOrganizer` for `fileorganizer`); undefined for an unknown plugin. */
  async canonicalName(name: string): Promise<string | undefined> {
    return (await this.repo.findByName(name))?.name;
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
