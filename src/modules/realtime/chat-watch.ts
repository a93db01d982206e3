import { isAdmin, type Principal } from '../auth/api-key.types.js';

export type ChatSubscription = { all: true } | { all?: false; requestId: string };

/**
 * `subscribe_chat {request_id}` (any client: requests made with its own key) or `{all: true}`
 * (admins: every request). Returns the subscription or what is wrong with it.
 */
export function parseChatSubscription(
  data: unknown,
  who: Principal,
): ChatSubscription | { error: string; field: string } {
  const d = (data ?? {}) as { request_id?: unknown; all?: unknown };
  if (d.all === true)
    return isAdmin(who) ? { all: true } : { error: 'Only admin keys may watch every chat', field: 'data.all' };
  if (typeof d.request_id !== 'string' || d.request_id.length === 0 || d.request_id.length > 128) {
    return {
      error: 'request_id must be the x-request-id of a gateway request (or all: true for admins)',
      field: 'data.request_id',
    };
  }
  return { requestId: d.request_id };
}

/** The chats one client watches. A non-admin hears only requests made with its own key. */
export class ChatWatch {
  private all = false;
  private readonly ids = new Set<string>();

  constructor(private readonly who: Principal) {}

  add(s: ChatSubscription): void {
    if (s.all) this.all = true;
    else if (this.ids.size < 1000) this.ids.add(s.requestId);
  }

  remove(s: ChatSubscription): void {
    if (s.all) this.all = false;
    else this.ids.delete(s.requestId);
  }

  wants(requestId: string, keyId: string | null): boolean {
    if (this.all) return true;
    if (!this.ids.has(requestId)) return false;
    return isAdmin(this.who) || this.who.keyId === keyId;
  }

  /** A watched request ended: forget it (an `all` watch stays). */
  finished(requestId: string): void {
    this.ids.delete(requestId);
  }

  view(): { all: boolean; request_ids: string[] } {
    return { all: this.all, request_ids: [...this.ids] };
  }
}
