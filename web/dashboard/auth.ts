/**
 * The API key: asked for once, kept in sessionStorage (this tab only, gone when it closes).
 * `#key=<key>` in the address is taken and removed at once: fragments never reach the server
 * or its logs, and the key does not stay in the address bar or the history.
 */
const STORAGE = 'taskhub.dashboard.key';

export function takeKey(): string | null {
  const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (match) {
    const key = decodeURIComponent(match[1]);
    sessionStorage.setItem(STORAGE, key);
    history.replaceState(null, '', location.pathname + location.search);
    return key;
  }
  return sessionStorage.getItem(STORAGE);
}

export function saveKey(key: string): void {
  sessionStorage.setItem(STORAGE, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(STORAGE);
}
