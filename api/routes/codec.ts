/**
 * The codec endpoint (Temporal's codec server protocol): `POST /api/codec/encode` and `POST /api/codec/decode`
 * take and answer `{ payloads: [{ metadata: { <key>: <base64> }, data: <base64> }] }` (Payloads as proto3
 * JSON), run through the pool's payload codec (`system/payload-codec.ts`). The Temporal Web UI and
 * `temporal workflow show --codec-endpoint <api>/api/codec --codec-auth 'Bearer <POOL_API_KEY>'` decode
 * histories through it, so plaintext reaches operators only (docs/operators.md#payload-encryption).
 *
 * Who may call it: the API key (`Authorization: Bearer <POOL_API_KEY>`), always. One exception, in local
 * development only (POOL_ENVIRONMENT=local): a browser request from a configured Web UI origin
 * (CODEC_CORS_ORIGINS, default the dev server's UI) over loopback, carrying no Authorization header at all —
 * the dev server's UI cannot hold the API key, and on this machine the API key and the payload key are in
 * files and environment anyone who can reach loopback can read already. A web page of any other origin
 * cannot forge `Origin`, a request from another host is not loopback, and outside local the bearer is
 * required whatever the origin.
 *
 * CORS for the configured origins only, preflight included. With payload encryption off (no
 * PAYLOAD_ENCRYPTION_KEY) both routes answer 409 `PAYLOAD_ENCRYPTION_OFF` (after authentication).
 */
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Payload } from '@temporalio/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PayloadDecryptionError, payloadCodecOf } from '../../system/payload-codec';
import { apiKeyGuard } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { errorResponses } from '../schemas';

/** Histories are big: a request may carry up to this much (the API's default limit is 64 KiB). */
export const CODEC_BODY_LIMIT = 4 * 1024 * 1024;
const MAX_PAYLOADS = 10_000;
/** Standard or URL-safe base64, padded or not (proto3 JSON parsers accept both). */
const BASE64_PATTERN = '^[A-Za-z0-9+/_-]*={0,2}$';

const Base64 = Type.String({ pattern: BASE64_PATTERN, description: 'base64' });
const JsonPayload = Type.Object(
  {
    metadata: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Base64, {
        description: 'metadata values, base64',
      }),
    ),
    data: Type.Optional(Base64),
  },
  { additionalProperties: false },
);
const Payloads = Type.Object(
  { payloads: Type.Array(JsonPayload, { maxItems: MAX_PAYLOADS }) },
  { additionalProperties: false },
);
const PayloadsOut = Type.Object({
  payloads: Type.Array(
    Type.Object({ metadata: Type.Record(Type.String(), Type.String()), data: Type.String() }),
  ),
});

const ALLOW_HEADERS = 'authorization, content-type, x-namespace';

function isLoopback(request: FastifyRequest): boolean {
  const address = request.socket.remoteAddress ?? '';
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
// protobufjs leaves an absent bytes field as an empty array, not a Uint8Array: copy whatever it is.
const toBase64 = (bytes: Uint8Array | ArrayLike<number> | null | undefined) =>
  bytes ? Buffer.from(bytes as Uint8Array).toString('base64') : '';

function fromJson(p: { metadata?: Record<string, string>; data?: string }): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, fromBase64(v)])),
    data: fromBase64(p.data ?? ''),
  };
}

function toJson(p: Payload) {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, toBase64(v)])),
    data: toBase64(p.data),
  };
}

export const codecRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  const codec = payloadCodecOf(ctx.config);
  const origins = new Set(ctx.config.codec.corsOrigins);
  const local = ctx.config.environment === 'local';
  const requireKey = apiKeyGuard(ctx.apiKey);

  const allowedOrigin = (request: FastifyRequest): string | null => {
    const origin = request.headers.origin;
    return typeof origin === 'string' && origins.has(origin) ? origin : null;
  };
  const cors = (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('vary', 'Origin');
    const origin = allowedOrigin(request);
    if (origin) reply.header('access-control-allow-origin', origin);
  };

  for (const op of ['encode', 'decode'] as const) {
    // The preflight: answered for the configured origins only; any other OPTIONS is an unknown route.
    app.options(`/api/codec/${op}`, { schema: { hide: true } }, async (request, reply) => {
      const preflight = request.headers['access-control-request-method'] !== undefined;
      if (!preflight || request.headers.origin === undefined) {
        throw new ApiError(404, 'NOT_FOUND', `no route OPTIONS /api/codec/${op}`);
      }
      if (!allowedOrigin(request)) {
        reply.header('vary', 'Origin');
        throw new ApiError(
          403,
          'CORS_ORIGIN_NOT_ALLOWED',
          'this origin may not call the codec endpoint (CODEC_CORS_ORIGINS)',
        );
      }
      cors(request, reply);
      return reply
        .code(204)
        .header('access-control-allow-methods', 'POST')
        .header('access-control-allow-headers', ALLOW_HEADERS)
        .header('access-control-max-age', '600')
        .send();
    });
  }

  await app.register(async (scope) => {
    const authed = scope.withTypeProvider<TypeBoxTypeProvider>();
    authed.addHook('onRequest', async (request, reply) => {
      // CORS headers on every answer (errors too), so the Web UI can show why it was refused.
      cors(request, reply);
      const localUi =
        local &&
        allowedOrigin(request) !== null &&
        request.headers.authorization === undefined &&
        isLoopback(request);
      if (!localUi) await requireKey(request);
    });

    for (const op of ['encode', 'decode'] as const) {
      authed.post(
        `/api/codec/${op}`,
        {
          bodyLimit: CODEC_BODY_LIMIT,
          schema: {
            tags: ['codec'],
            description:
              op === 'decode'
                ? 'Decrypt payloads (Temporal codec server protocol): for the Web UI and `temporal --codec-endpoint`.'
                : 'Encrypt payloads with the current key (Temporal codec server protocol).',
            body: Payloads,
            response: { 200: PayloadsOut, ...errorResponses(400, 401, 409, 413) },
          },
        },
        async (request) => {
          if (!codec) {
            throw new ApiError(
              409,
              'PAYLOAD_ENCRYPTION_OFF',
              'payload encryption is off on this API (PAYLOAD_ENCRYPTION_KEY is not set): payloads are plaintext, there is nothing to encode or decode',
            );
          }
          const payloads = request.body.payloads.map(fromJson);
          try {
            const out = op === 'decode' ? await codec.decode(payloads) : await codec.encode(payloads);
            return { payloads: out.map(toJson) };
          } catch (err) {
            // Malformed protobuf inside a payload, tampering, an unknown key id: the caller's input.
            if (err instanceof PayloadDecryptionError)
              throw new ApiError(400, 'PAYLOAD_NOT_DECODABLE', err.message);
            throw err;
          }
        },
      );
    }
  });
};
