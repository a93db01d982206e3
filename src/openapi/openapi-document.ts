import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { PACKAGE } from '../common/package-info.js';
import { attachErrorSchemas } from './error-schemas.js';

/** Sorts an object's keys, so the committed document diffs by content, not by module order. */
function sortedKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

/**
 * The OpenAPI document of the whole hub, as served at `/docs-json` and committed as
 * `openapi.json` (`npm run openapi`). Built from the decorators only: any app will do,
 * including one created in preview mode without a database (see export-openapi.ts).
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('taskhub')
      .setDescription('Task orchestration hub: durable tasks, pull workers, devices, agent services.')
      .setVersion(PACKAGE.version)
      .addBearerAuth()
      .build(),
  );
  attachErrorSchemas(document);
  // Paths and schemas in name order; operations, properties and statuses keep the code's order.
  document.paths = sortedKeys(document.paths);
  if (document.components?.schemas) document.components.schemas = sortedKeys(document.components.schemas);
  return document;
}
