import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The hub's package.json, found by walking up (works from src/ under jest and from dist/). */
function findPackageJson(): { name: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; version: string };
      if (pkg.name === 'taskhub') return pkg;
    }
    const parent = dirname(dir);
    if (parent === dir) return { name: 'taskhub', version: '0.0.0' };
    dir = parent;
  }
}

export const PACKAGE = findPackageJson();
