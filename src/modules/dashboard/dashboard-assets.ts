import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DashboardAsset {
  body: Buffer;
  contentType: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The built page lives in `dist/web/dashboard/` (npm run build). Found from the project root, so
 * the hub finds it whether it runs from dist/ or from src/ under jest.
 */
function builtDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const built = join(dir, 'dist', 'web', 'dashboard');
      if (existsSync(join(built, 'index.html'))) return built;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Every file of the page, read once at boot (a few dozen KB): requests are answered from memory
 * and only names found here are served, so a path can never reach outside the folder.
 */
export function loadDashboardAssets(dir = builtDir()): Map<string, DashboardAsset> {
  const assets = new Map<string, DashboardAsset>();
  if (!dir) return assets;
  for (const name of readdirSync(dir)) {
    const contentType = TYPES[extname(name)];
    if (!contentType) continue; // source maps and anything else stay private
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, contentType, etag });
  }
  return assets;
}
