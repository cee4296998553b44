/** Authentication: the pool API key, and an instance's own token for its self-service calls. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
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
  return header.slice('Bearer '.length).trim() || null;
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
