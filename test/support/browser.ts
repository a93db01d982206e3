import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** The system browser (Debian package `chromium`); no browser is downloaded. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why the browser suites cannot run here, or null when they can. */
export function browserMissing(): string | null {
  return existsSync(CHROMIUM_PATH)
    ? null
    : `no browser at ${CHROMIUM_PATH} (install the Debian package chromium, or set CHROMIUM_PATH)`;
}

/**
 * Headless Chromium with a fresh profile. The background-networking flags matter on a closed
 * network: without them Chromium tries to reach Google's services at start.
 */
export async function launchBrowser(): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'taskhub-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Everything a page asked for (HTTP and WebSocket URLs) and every error it reported. */
export interface PageWatch {
  urls: string[];
  errors: string[];
}

export async function watchPage(page: Page): Promise<PageWatch> {
  const watch: PageWatch = { urls: [], errors: [] };
  page.on('request', (r) => watch.urls.push(r.url()));
  page.on('pageerror', (e) => watch.errors.push(`pageerror: ${(e as Error).message ?? String(e)}`));
  page.on('console', (m) => {
    if (m.type() === 'error') watch.errors.push(`console: ${m.text()} (${m.location().url ?? ''})`);
  });
  // WebSockets are not 'request' events: the DevTools protocol reports them.
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketCreated', (e) => watch.urls.push(e.url));
  return watch;
}

/** The text of the element with this data-testid ('' when absent). */
export async function testIdText(page: Page, id: string): Promise<string> {
  return (await page.evaluate(`document.querySelector('[data-testid="${id}"]')?.textContent ?? ''`)) as string;
}

/** Waits until the element with this data-testid shows exactly `text`. */
export async function waitForTestIdText(page: Page, id: string, text: string, timeout = 5000): Promise<void> {
  await page.waitForFunction(
    `document.querySelector('[data-testid="${id}"]')?.textContent === ${JSON.stringify(text)}`,
    { timeout, polling: 50 },
  );
}
