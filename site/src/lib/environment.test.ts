// SITE_ENVIRONMENTS: parsed strictly (names, http(s) URLs without credentials, keys), the cookie picks only a
// configured environment, and the deep links (Temporal workflow, Railway project) are built from config only.
import type { AstroCookies } from 'astro';
import { afterEach, describe, expect, it } from 'vitest';
import { config } from './config';
import { consoleEnvironment, railwayProjectUrl, workflowUrl } from './environment';

const cookies = (value?: string) =>
  ({ get: () => (value === undefined ? undefined : { value }) }) as unknown as AstroCookies;
const two = JSON.stringify([
  {
    name: 'prod',
    apiUrl: 'https://api.example/',
    apiKey: 'k-prod',
    temporalUiUrl: 'https://ui.example',
    temporalNamespace: 'prod-ns',
  },
  { name: 'staging', apiUrl: 'http://10.0.0.2:3001', apiKey: 'k-staging' },
]);

afterEach(() => {
  delete process.env.SITE_ENVIRONMENTS;
  delete process.env.POOL_API_URL;
  delete process.env.POOL_API_KEY;
});

describe('SITE_ENVIRONMENTS', () => {
  it('lists the environments, the first being the default of the public pages and the login', () => {
    process.env.SITE_ENVIRONMENTS = two;
    process.env.POOL_API_KEY = 'ignored';
    const c = config();
    expect(c.environments.map((e) => e.name)).toEqual(['prod', 'staging']);
    expect(c).toMatchObject({
      apiUrl: 'https://api.example',
      apiKey: 'k-prod',
      temporalUiUrl: 'https://ui.example',
    });
    expect(c.environments[1]).toMatchObject({
      temporalUiUrl: 'http://localhost:8233',
      temporalNamespace: 'default',
    });
  });

  it('without it, one environment from POOL_API_URL / POOL_API_KEY', () => {
    process.env.POOL_API_URL = 'http://127.0.0.1:9/';
    process.env.POOL_API_KEY = 'k';
    expect(config().environments).toEqual([
      {
        name: 'default',
        apiUrl: 'http://127.0.0.1:9',
        apiKey: 'k',
        temporalUiUrl: 'http://localhost:8233',
        temporalNamespace: 'default',
      },
    ]);
  });

  it.each([
    ['not json', /JSON array/],
    ['[]', /1 to 20/],
    ['[{"name":"a b","apiUrl":"http://x","apiKey":"k"}]', /name/],
    ['[{"name":"a","apiUrl":"ftp://x","apiKey":"k"}]', /apiUrl/],
    ['[{"name":"a","apiUrl":"http://u:p@x","apiKey":"k"}]', /without credentials/],
    ['[{"name":"a","apiUrl":"http://x","apiKey":""}]', /apiKey/],
    [
      '[{"name":"a","apiUrl":"http://x","apiKey":"k"},{"name":"a","apiUrl":"http://y","apiKey":"k"}]',
      /distinct/,
    ],
  ])('refuses %s', (raw, problem) => {
    process.env.SITE_ENVIRONMENTS = raw;
    expect(() => config()).toThrow(problem);
  });

  it('the cookie picks a configured environment, anything else is the default', () => {
    process.env.SITE_ENVIRONMENTS = two;
    expect(consoleEnvironment(cookies('staging')).apiKey).toBe('k-staging');
    for (const v of [undefined, '', 'nope', 'PROD', '../prod'])
      expect(consoleEnvironment(cookies(v)).name).toBe('prod');
  });
});

describe('deep links', () => {
  it("to the instance's workflow in its environment's Web UI, and to its Railway project", () => {
    process.env.SITE_ENVIRONMENTS = two;
    expect(workflowUrl(consoleEnvironment(cookies('prod')), 'i-1')).toBe(
      'https://ui.example/namespaces/prod-ns/workflows/instance-i-1',
    );
    const compute = (provider: string, ref: string) => [{ kind: 'compute', provider, ref }];
    expect(railwayProjectUrl(compute('railway', '5f0c-11aa'))).toBe('https://railway.com/project/5f0c-11aa');
    expect(railwayProjectUrl(compute('local', 'pid-1'))).toBeNull();
    expect(railwayProjectUrl(compute('railway', '../evil?x'))).toBeNull();
    expect(railwayProjectUrl([])).toBeNull();
  });
});
