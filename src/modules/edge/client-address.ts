import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import proxyaddr from 'proxy-addr';

/**
 * Which peers are trusted proxies: proxy-addr's trust function, `(address, hop) => boolean`
 * (hop 0 is the socket's peer, then X-Forwarded-For from right to left).
 */
export type ProxyTrust = (address: string, hop: number) => boolean;

/** TRUST_PROXY in the form Express's `trust proxy` setting takes it. */
export type TrustProxySetting = boolean | number | string;

/**
 * TRUST_PROXY as Express reads `trust proxy`: `false` (default: the socket's peer is the
 * client), `true` (every hop: the left-most X-Forwarded-For entry), a hop count (that many
 * proxies in front: `1` trusts the peer only), or a comma list of addresses, CIDRs and the
 * names `loopback`, `linklocal`, `uniquelocal` (e.g. `loopback,10.0.0.0/8`).
 */
export function trustProxySetting(value: string): TrustProxySetting {
  const v = value.trim();
  if (v === '' || v.toLowerCase() === 'false') return false;
  if (v.toLowerCase() === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  return v;
}

/** Why `value` is not a TRUST_PROXY (proxy-addr's words for a bad address), or null. */
export function trustProxyProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'must be a string';
  const setting = trustProxySetting(value);
  if (typeof setting !== 'string') return null;
  const list = setting.split(',').map((s) => s.trim());
  if (list.some((s) => s === '')) return 'an empty entry in the list';
  try {
    proxyaddr.compile(list);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const TRUST = Symbol('taskhub.proxyTrust');
type Marked = Socket & { [TRUST]?: ProxyTrust };

/**
 * Gives every connection `server` accepts its trust function, so that `clientAddress` reads
 * the same policy for requests Express handles (`trust proxy fn`), raw WebSocket upgrades and
 * Engine.IO's requests, which never pass through Express.
 */
export function markProxyTrust(server: Server, trust: ProxyTrust): void {
  server.on('connection', (socket: Socket) => ((socket as Marked)[TRUST] = trust));
}

/** An address as the edge counts it: IPv4-mapped IPv6 written as IPv4. */
function normalized(address: string | undefined): string {
  return (address || 'unknown').replace(/^::ffff:/i, '');
}

/**
 * The address a request comes from, for per-address limits, rate limits, the agent proxy's
 * `client_ip` and logs: the socket's peer, or behind trusted proxies (TRUST_PROXY) the
 * right-most untrusted X-Forwarded-For hop, as Express's `req.ip` (proxy-addr). A request
 * on a connection the hub's server did not mark (none in the hub) trusts no proxy.
 */
export function clientAddress(req: IncomingMessage): string {
  const trust = (req.socket as Marked | undefined)?.[TRUST];
  if (!trust || !req.socket) return normalized(req.socket?.remoteAddress);
  return normalized(proxyaddr(req, trust));
}
