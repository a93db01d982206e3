import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** How long a name may take to resolve before it is compared as the string it is. */
const LOOKUP_TIMEOUT_MS = 1000;
const WILDCARDS = new Set(['0.0.0.0', '::']);

/** `::ffff:127.0.0.1` is 127.0.0.1; IPv6 in one spelling (lower case, no brackets). */
function normalise(address: string): string {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped ? mapped[1] : a;
}

/**
 * The addresses a service host stands for: an IP literal itself; a name every address
 * `dns.lookup` gives it (`localhost` → 127.0.0.1 and ::1, from /etc/hosts). A name that does
 * not resolve (or not within a second) stands for itself, compared as a string.
 */
export async function hostAddresses(host: string): Promise<Set<string>> {
  const h = normalise(host);
  if (isIP(h)) return new Set([h]);
  let timer: NodeJS.Timeout | undefined;
  try {
    const found = await Promise.race([
      lookup(h, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('lookup timed out')), LOOKUP_TIMEOUT_MS);
      }),
    ]);
    return found.length ? new Set(found.map((a) => normalise(a.address))) : new Set([h]);
  } catch {
    return new Set([h]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether two hosts would claim the same port: they share an address, or either is a
 * wildcard (`0.0.0.0`, `::` listen on every address, so they conflict with any host).
 */
export async function hostsOverlap(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([hostAddresses(a), hostAddresses(b)]);
  if ([...x, ...y].some((addr) => WILDCARDS.has(addr))) return true;
  return [...x].some((addr) => y.has(addr));
}
