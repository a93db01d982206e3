/** The raw WebSocket channels of seed 001 (Apex Bridge): the API key travels in the path. */
export type ApexChannel = 'node' | 'log';

export interface ApexRoute {
  channel: ApexChannel;
  /** The key after `VCP_Key=`, URL-decoded ('' when missing). */
  key: string;
  /** Reached through the deprecated VCP spelling: the connection hears one warning. */
  deprecated: boolean;
  path: string;
}

const CHANNELS: Record<string, { channel: ApexChannel; deprecated: boolean }> = {
  'abp-distributed-server': { channel: 'node', deprecated: false },
  'distributed-server': { channel: 'node', deprecated: false },
  'vcp-distributed-server': { channel: 'node', deprecated: true },
  ABPlog: { channel: 'log', deprecated: false },
  log: { channel: 'log', deprecated: false },
  VCPlog: { channel: 'log', deprecated: true },
};

const PATH = /^\/([A-Za-z-]+)(?:\/(?:VCP_Key=([^/]*))?)?\/?$/;

/** The Apex channel a path names, or undefined when it names none. */
export function apexRoute(pathname: string): ApexRoute | undefined {
  const m = PATH.exec(pathname);
  const known = m ? CHANNELS[m[1]] : undefined;
  if (!m || !known) return undefined;
  let key = m[2] ?? '';
  try {
    key = decodeURIComponent(key);
  } catch {
    // A malformed escape is kept as sent; it will simply not match any key.
  }
  return { ...known, key, path: `/${m[1]}` };
}

/** What a deprecated path is to be replaced with, for the warning. */
export const preferredPath = (r: ApexRoute): string =>
  r.channel === 'node' ? '/abp-distributed-server/VCP_Key=<key>' : '/ABPlog/VCP_Key=<key>';
