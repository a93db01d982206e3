import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { PgListener } from '../../database/pg-listener.js';
import { INSTANCE_ID } from '../nodes/nodes.service.js';

/** Why a gateway request was stopped before its end. */
export type StopReason = 'interrupted' | 'client_closed' | 'timeout';

const CHANNEL = 'taskhub_llm_interrupt';
/** How long POST /v1/interrupt waits for another hub to say it runs the request. */
const REPLY_WAIT_MS = 1000;

/** What GET /api/v1/llm/status shows of a running request. */
export interface RunningInfo {
  model: string;
  keyId: string | null;
  nodeId?: string;
}

export interface RunningEntry extends RunningInfo {
  requestId: string;
  startedAt: Date;
}

type Message =
  { op: 'interrupt'; request_id: string; from: string } | { op: 'interrupted'; request_id: string; to: string };

/**
 * The gateway requests running in this process, each with its AbortController, and
 * `/v1/interrupt` across processes: a request that does not run here is asked for on a
 * PostgreSQL channel; the hub running it aborts it and answers on the same channel.
 */
@Injectable()
export class RunningRequests implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RunningRequests');
  private readonly running = new Map<string, AbortController>();
  private readonly info = new Map<string, RunningEntry>();
  private readonly waiting = new Map<string, () => void>();
  private readonly listener: PgListener;

  constructor(db: DataSource) {
    this.listener = new PgListener(db, CHANNEL, this.logger, (payload) => this.onMessage(payload));
  }

  onApplicationBootstrap(): Promise<void> {
    return this.listener.start();
  }

  get size(): number {
    return this.running.size;
  }

  /** Registers a request; the returned signal aborts with a StopReason. Call `done` at its end. */
  start(
    requestId: string,
    info: RunningInfo = { model: '', keyId: null },
  ): { signal: AbortSignal; stop: (reason: StopReason) => void; done: () => void } {
    const controller = new AbortController();
    this.running.set(requestId, controller);
    const entry: RunningEntry = { ...info, requestId, startedAt: new Date() };
    this.info.set(requestId, entry);
    return {
      signal: controller.signal,
      stop: (reason) => controller.abort(reason),
      done: () => {
        if (this.running.get(requestId) === controller) this.running.delete(requestId);
        if (this.info.get(requestId) === entry) this.info.delete(requestId);
      },
    };
  }

  /** The requests running in this process, oldest first. */
  list(): RunningEntry[] {
    return [...this.info.values()];
  }

  /** Stops the request wherever it runs; false when no hub runs it. */
  async interrupt(requestId: string): Promise<boolean> {
    if (this.stopLocal(requestId)) return true;
    const answered = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        resolve(false);
      }, REPLY_WAIT_MS);
      this.waiting.set(requestId, () => {
        clearTimeout(timer);
        this.waiting.delete(requestId);
        resolve(true);
      });
    });
    await this.send({ op: 'interrupt', request_id: requestId, from: INSTANCE_ID });
    return answered;
  }

  private stopLocal(requestId: string): boolean {
    const c = this.running.get(requestId);
    if (!c) return false;
    c.abort('interrupted' satisfies StopReason);
    return true;
  }

  private onMessage(payload: string): void {
    let m: Message;
    try {
      m = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    if (m.op === 'interrupt' && m.from !== INSTANCE_ID && this.stopLocal(m.request_id)) {
      void this.send({ op: 'interrupted', request_id: m.request_id, to: m.from });
    } else if (m.op === 'interrupted' && m.to === INSTANCE_ID) {
      this.waiting.get(m.request_id)?.();
    }
  }

  private send(m: Message): Promise<void> {
    return this.listener
      .notify(JSON.stringify(m))
      .catch((e: unknown) => this.logger.warn({ err: e }, 'interrupt broadcast failed'));
  }

  async onApplicationShutdown(): Promise<void> {
    for (const c of this.running.values()) c.abort('interrupted' satisfies StopReason);
    await this.listener.stop();
  }
}
