import { Injectable } from '@nestjs/common';
import type { RetentionPolicy } from './retention-policy.js';

/** Every retention policy of the hub: registered by the module that owns the table, run by RetentionCleaner. */
@Injectable()
export class RetentionRegistry {
  private readonly policies: RetentionPolicy[] = [];

  register(policy: RetentionPolicy): void {
    this.policies.push(policy);
  }

  all(): readonly RetentionPolicy[] {
    return this.policies;
  }
}
