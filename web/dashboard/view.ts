import type { Live } from './live.js';

/** What every view shares: who the key is and the live connection. */
export interface Context {
  admin: boolean;
  live: Live;
}

export interface View {
  readonly id: string;
  readonly title: string;
  readonly root: HTMLElement;
  /** Loads what the view shows (when shown, on reconnect and on the slow safety refresh). */
  refresh(): Promise<void>;
  /** A pushed task event; views that show tasks refresh from it (throttled). */
  task?(type: string, data: Record<string, unknown>): void;
  node?(type: string, data: Record<string, unknown>): void;
}

export const STATES = ['pending', 'dispatched', 'running', 'completed', 'failed', 'cancelled', 'timed_out'] as const;
