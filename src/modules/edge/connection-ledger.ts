import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { AppConfig } from '../../config/app-config.js';
import type { EdgeChannel, EdgeReason } from './edge-metrics.js';

/** A counted place; `release` gives it back (idempotent). */
export interface Lease {
  release(): void;
}

export type Admission = { ok: true; lease: Lease } | { ok: false; reason: EdgeReason; error: AppError };

/**
 * Undoes one count once, however often it is called. A small object, not a closure: the ledger
 * holds one per open connection (10k devices: 10k of them).
 */
class CountLease implements Lease {
  private held = true;

  constructor(
    private readonly counts: Map<string, number>,
    private readonly key: string,
  ) {}

  release(): void {
    if (!this.held) return;
    this.held = false;
    const n = (this.counts.get(this.key) ?? 1) - 1;
    if (n <= 0) this.counts.delete(this.key);
    else this.counts.set(this.key, n);
  }
}

/** What an uncounted admission (no key) holds: nothing to give back. */
export const NO_LEASE: Lease = { release: () => undefined };

/**
 * The open connections of this hub process per source address (all channels together) and per
 * API key (per channel), and the upgrades still waiting for their key check. The limits are
 * read at each admission, so the hot settings apply to the next connection.
 */
@Injectable()
export class ConnectionLedger {
  private readonly byAddress = new Map<string, number>();
  private readonly byKey = new Map<string, number>();
  private pendingHandshakes = 0;

  constructor(private readonly config: AppConfig) {}

  /** A new connection from `address` (counted until its lease is released). */
  admitAddress(address: string): Admission {
    const limit = this.config.MAX_CONNECTIONS_PER_ADDRESS;
    const open = this.byAddress.get(address) ?? 0;
    if (limit > 0 && open >= limit)
      return refusal('address_limit', `At most ${limit} connections from one address`, 'address');
    this.byAddress.set(address, open + 1);
    return { ok: true, lease: new CountLease(this.byAddress, address) };
  }

  /** An authenticated connection of `keyId` on `channel` (no key, e.g. auth off: not counted). */
  admitKey(channel: EdgeChannel, keyId: string | null | undefined): Admission {
    if (!keyId) return { ok: true, lease: NO_LEASE };
    const limit = this.config.MAX_CONNECTIONS_PER_KEY;
    const key = `${channel}\u0000${keyId}`;
    const open = this.byKey.get(key) ?? 0;
    if (limit > 0 && open >= limit)
      return refusal('key_limit', `At most ${limit} ${channel} connections per API key`, 'key');
    this.byKey.set(key, open + 1);
    return { ok: true, lease: new CountLease(this.byKey, key) };
  }

  /** An upgrade whose key is about to be checked (refused past MAX_PENDING_HANDSHAKES). */
  admitHandshake(): Admission {
    if (this.pendingHandshakes >= this.config.MAX_PENDING_HANDSHAKES)
      return {
        ok: false,
        reason: 'pending_handshakes',
        error: new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'Too many handshakes in progress; try again shortly'),
      };
    this.pendingHandshakes++;
    let held = true;
    return {
      ok: true,
      lease: {
        release: () => {
          if (held) this.pendingHandshakes--;
          held = false;
        },
      },
    };
  }

  /** What is counted now (for tests and the debug log). */
  snapshot(): { addresses: number; keys: number; pendingHandshakes: number } {
    return { addresses: this.byAddress.size, keys: this.byKey.size, pendingHandshakes: this.pendingHandshakes };
  }
}

function refusal(reason: EdgeReason, message: string, field: string): Admission {
  return { ok: false, reason, error: new AppError(ErrorCode.RATE_LIMITED, message, { field }) };
}
