// Part of `npm run build`: after tsc compiled web/dashboard/*.ts into dist/web/dashboard/, copy
// the page, its styles and icon, and the Socket.IO browser client (the hub serves every asset
// itself: no CDN).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'web', 'dashboard');
const out = join(root, 'dist', 'web', 'dashboard');
mkdirSync(out, { recursive: true });
for (const file of ['index.html', 'dashboard.css', 'icon.svg']) copyFileSync(join(src, file), join(out, file));

// socket.io-client's package.json exports no ./dist path: locate the package from its main entry.
const require = createRequire(import.meta.url);
let dir = dirname(require.resolve('socket.io-client'));
while (!dir.endsWith('socket.io-client')) dir = dirname(dir);
const client = readFileSync(join(dir, 'dist', 'socket.io.esm.min.js'), 'utf8');
// The source map is not shipped: drop the comment that points at it (a browser would ask for it).
writeFileSync(join(out, 'socket.io.esm.min.js'), client.replace(/\n?\/\/# sourceMappingURL=.*\s*$/, '\n'));
