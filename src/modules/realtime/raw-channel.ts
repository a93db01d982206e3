import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AppError } from '../../common/errors.js';
import type { EdgeChannel } from '../edge/edge-metrics.js';

/**
 * What a raw WebSocket channel answers the edge (UpgradeRouter) about one upgrade: refuse it
 * with a coded error, or take it — `keyId` is counted against the per-key limit, and `open`
 * receives the socket only once it is guarded, authenticated and admitted.
 */
export type UpgradeDecision =
  | { error: AppError }
  | {
      error?: undefined;
      channel: EdgeChannel;
      keyId: string | null;
      open: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
    };
