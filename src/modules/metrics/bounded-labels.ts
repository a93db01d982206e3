/** The label value every name past the bound shares. */
export const OTHER_LABEL = 'other';

/** Longest label value kept (a longer user string is cut): label values are not for payloads. */
const MAX_VALUE_LENGTH = 64;

/**
 * A bound on a label taken from user strings (task types, model names): the first `limit`
 * distinct values this process sees keep their name, every later one is `other`. Per process
 * and for its life, so a value never changes series once it has one, and the series count of
 * a metric is at most `limit + 1` per other label combination, whatever clients send.
 * The cost is one Map lookup per observation; the map holds at most `limit` entries.
 */
export class BoundedLabel {
  private readonly kept = new Map<string, string>();

  constructor(readonly limit: number) {}

  /** The label value for `value`, within `scope` (e.g. the tenant: each pair counts once). */
  of(value: string, scope = ''): string {
    const key = `${scope}\u0000${value}`;
    const known = this.kept.get(key);
    if (known !== undefined) return known;
    if (this.kept.size >= this.limit) return OTHER_LABEL;
    const label = value.length > MAX_VALUE_LENGTH ? value.slice(0, MAX_VALUE_LENGTH) : value;
    this.kept.set(key, label);
    return label;
  }
}
