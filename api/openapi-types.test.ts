/** The site's generated API types match the API's schemas (run `npm run api:types` after changing a route). */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { projectRoot } from '../scripts/temporal-dev';
import { API_TYPES_FILE, apiTypesSource } from './openapi-types';

it('site/src/lib/api-types.ts is generated from the current OpenAPI document', async () => {
  const committed = fs.readFileSync(path.join(projectRoot, API_TYPES_FILE), 'utf8');
  const fresh = await apiTypesSource();
  expect(fresh).toContain('"/api/pool/claim"');
  expect(committed, 'out of date: run `npm run api:types`').toBe(fresh);
});
