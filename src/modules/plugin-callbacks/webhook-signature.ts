import { createHmac, timingSafeEqual } from 'node:crypto';

/** Standard Webhooks: a timestamp this far from now (either way) is refused. */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;

export interface WebhookHeaders {
  id?: string;
  timestamp?: string;
  signature?: string;
}

/** Why a signed delivery was refused; undefined when one of its signatures is valid. */
export type SignatureProblem =
  | 'missing webhook headers'
  | 'malformed timestamp'
  | 'stale timestamp'
  | 'timestamp in the future'
  | 'invalid signature';

/** The key bytes of a `whsec_<base64>` secret. */
const keyOf = (secret: string): Buffer =>
  Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the decoded secret. */
export function sign(secret: string, id: string, timestamp: number | string, body: Buffer | string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return `v1,${mac}`;
}

/**
 * Checks a delivery against the plugin's valid secrets: the timestamp within the tolerance
 * of `nowSeconds`, and any of the space-separated `v1,` signatures matching any secret
 * (constant-time comparison of the MAC bytes).
 */
export function verifySignature(
  headers: WebhookHeaders,
  body: Buffer,
  secrets: readonly string[],
  nowSeconds = Math.floor(Date.now() / 1000),
): SignatureProblem | undefined {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) return 'missing webhook headers';
  if (!/^\d{1,12}$/.test(timestamp)) return 'malformed timestamp';
  const skew = Number(timestamp) - nowSeconds;
  if (skew < -TIMESTAMP_TOLERANCE_SECONDS) return 'stale timestamp';
  if (skew > TIMESTAMP_TOLERANCE_SECONDS) return 'timestamp in the future';
  const presented = signature
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const secret of secrets) {
    const expected = Buffer.from(sign(secret, id, timestamp, body).slice(3), 'base64');
    if (presented.some((p) => p.length === expected.length && timingSafeEqual(p, expected))) return undefined;
  }
  return 'invalid signature';
}

/** Constant-time equality of two hex digests (a presented token's hash against stored ones). */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
