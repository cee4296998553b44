import { describe, expect, it } from 'vitest';
import { isForbiddenCrossOrigin } from './origin';

const url = new URL('http://127.0.0.1:4321/admin/login');
const req = (method: string, headers: Record<string, string>) =>
  new Request(url, { method, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body: 'x' }) });

describe('isForbiddenCrossOrigin (Astro checkOrigin rules)', () => {
  it.each([
    ['POST', { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' }, true],
    ['POST', { 'content-type': 'multipart/form-data; boundary=x', origin: 'null' }, true],
    ['PUT', { 'content-type': 'Text/Plain', origin: 'http://evil.example' }, true],
    ['POST', { 'content-type': 'application/x-www-form-urlencoded' }, true],
    ['POST', { origin: 'http://evil.example' }, true],
    ['POST', { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://127.0.0.1:4321' }, false],
    ['POST', { origin: 'http://127.0.0.1:4321' }, false],
    // JSON is not a form: the endpoints that take it check what they need themselves.
    ['POST', { 'content-type': 'application/json', origin: 'http://evil.example' }, false],
    ['GET', { origin: 'http://evil.example' }, false],
    ['HEAD', {}, false],
  ] as const)('%s %j → forbidden %s', (method, headers, forbidden) => {
    const request = req(method, headers);
    // `new Request` adds a content type for a string body; drop it where the case has none.
    if (!('content-type' in headers)) request.headers.delete('content-type');
    expect(isForbiddenCrossOrigin(request, url)).toBe(forbidden);
  });
});
