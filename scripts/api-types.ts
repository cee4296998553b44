/** `npm run api:types`: writes the site's API types from the API's OpenAPI document (api/openapi-types.ts). */
import fs from 'node:fs';
import path from 'node:path';
import { API_TYPES_FILE, apiTypesSource } from '../api/openapi-types';
import { projectRoot } from './temporal-dev';

fs.writeFileSync(path.join(projectRoot, API_TYPES_FILE), await apiTypesSource());
console.log(`wrote ${API_TYPES_FILE}`);
