import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module.js';
import { loadConfig } from '../config/app-config.js';
import { buildOpenApiDocument } from './openapi-document.js';
import { statusMismatches } from './route-statuses.js';

/**
 * `node dist/src/openapi/export-openapi.js [out]` writes the OpenAPI document (default
 * `openapi.json`). The app is created in Nest's preview mode: the module graph and the
 * decorators are read, no provider is instantiated, so no database is needed. The config is
 * the defaults, not this machine's environment, so every machine writes the same document.
 */
const out = process.argv[2] ?? 'openapi.json';
const app = await NestFactory.create(AppModule.forRoot(loadConfig({})), {
  preview: true,
  logger: false,
  abortOnError: false,
});
const document = buildOpenApiDocument(app);
const mismatches = statusMismatches(app, document);
await app.close();
if (mismatches.length > 0) {
  process.stderr.write(`openapi: documented success status differs from the route's:\n  ${mismatches.join('\n  ')}\n`);
  process.exit(1);
}
await writeFile(out, `${JSON.stringify(document, null, 2)}\n`);
