import { readFile } from 'node:fs/promises';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** The contract served at /docs-json is the committed openapi.json (regenerate: `npm run openapi`). */
describe('OpenAPI contract', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('serves at /docs-json exactly the committed openapi.json', async () => {
    const committed: unknown = JSON.parse(await readFile(new URL('../../openapi.json', import.meta.url), 'utf8'));
    const res = await fetch(`${t.url}/docs-json`);
    expect(res.status).toBe(200);
    // No server-specific fields: the document comes from the decorators alone.
    expect(await res.json()).toEqual(committed);
  });

  it('documents api-key creation as 201 in the envelope', async () => {
    const doc = (await (await fetch(`${t.url}/docs-json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: unknown }> }>>;
    };
    const responses = doc.paths['/api/v1/api-keys'].post.responses;
    expect(Object.keys(responses)).toContain('201');
    expect(Object.keys(responses)).not.toContain('200');
    expect(JSON.stringify(responses['201'].content)).toContain('"request_id"');
    expect(JSON.stringify(responses['201'].content)).toContain('CreatedApiKeyView');
  });
});
