/** Authentication: the pool API key, and an instance's own token for its self-service calls. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { INSTANCE_TOKEN, type InstanceSecrets } from '../contracts/secrets';
import { ApiError } from './errors';

/** Constant-time comparison that does not leak the length either (both sides hashed first). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

export function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header?.startsWith('Bearer ')) return null;
  // Exactly the credential: no trimming (a key followed by any other character is another key).
  return header.slice('Bearer '.length) || null;
}

export function apiKeyGuard(apiKey: string) {
  return async (request: FastifyRequest) => {
    const token = bearer(request);
    if (!token || !safeEqual(token, apiKey)) {
      throw new ApiError(
        401,
        'UNAUTHORIZED',
        'missing or wrong API key (Authorization: Bearer <POOL_API_KEY>)',
      );
    }
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `instanceGuard`: the instance whose own token authenticated this request. */
    instanceId: string | null;
  }
}

/**
 * Guard for an instance's self-service routes: `Authorization: Bearer <instanceId>:<token>`. Missing → 401;
 * a wrong pair (or the pool API key, or an unknown id) → 403. The token only ever authorizes its own
 * instance. The plugin using it must `decorateRequest('instanceId', null)`.
 */
export function instanceGuard(secrets: InstanceSecrets) {
  return async (request: FastifyRequest) => {
    const credentials = bearer(request);
    if (!credentials)
      throw new ApiError(401, 'UNAUTHORIZED', 'missing instance credentials (Bearer <id>:<token>)');
    const sep = credentials.indexOf(':');
    const id = credentials.slice(0, sep);
    const token = credentials.slice(sep + 1);
    const expected =
      sep > 0 && /^[A-Za-z0-9-]{1,64}$/.test(id) ? await secrets.get(id, INSTANCE_TOKEN) : null;
    if (!expected || !safeEqual(token, expected)) {
      throw new ApiError(403, 'FORBIDDEN', 'wrong instance id or token');
    }
    request.instanceId = id;
  };
}
