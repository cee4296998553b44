// Reading requests the same way on both of the runtime's servers (control server, outbound server).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HttpError } from './http-errors.ts';

export const MAX_BODY_BYTES = 64 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Only `application/json` itself, in UTF-8 (the JSON encoding): a charset parameter may only say so. */
function isJsonType(header: string | undefined): boolean {
  const [type = '', ...params] = (header ?? '').split(';');
  if (type.trim().toLowerCase() !== 'application/json') return false;
  return params.every((p) => {
    const [name = '', value = ''] = p.split('=', 2);
    return name.trim().toLowerCase() !== 'charset' || /^"?utf-8"?$/i.test(value.trim());
  });
}

/**
 * The JSON body: 415 unless it is plain (not content-encoded) UTF-8 application/json, 413 past
 * MAX_BODY_BYTES (by its Content-Length before reading, else while reading), 400 when it is not UTF-8,
 * does not parse, or ends before its length (the client went away).
 */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!isJsonType(req.headers['content-type']))
    throw new HttpError(415, 'unsupported_media_type', 'content-type must be application/json (UTF-8)');
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new HttpError(415, 'unsupported_media_type', 'content-encoding is not supported');
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES)
    throw new HttpError(413, 'body_too_large', `body must be at most ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES)
        throw new HttpError(413, 'body_too_large', `body must be at most ${MAX_BODY_BYTES} bytes`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, 'incomplete_body', 'the request body ended early');
  }
  let text: string;
  try {
    text = utf8.decode(Buffer.concat(chunks));
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
}

/**
 * The path of the request target, as sent (no dot-segment or percent-decoding: nothing but the exact
 * routes match). Only origin-form targets (`/…`) are requests for this server; `*`, absolute URLs and
 * `//host/…` are refused with 400.
 */
export function requestPath(req: IncomingMessage): string {
  const target = req.url ?? '';
  if (!target.startsWith('/') || target.startsWith('//'))
    throw new HttpError(400, 'invalid_request_target', 'the request target must be a path');
  const query = target.indexOf('?');
  return query < 0 ? target : target.slice(0, query);
}

/** CONNECT (a proxy tunnel) is nothing these servers do: answer 405 instead of dropping the connection. */
export function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  const body = JSON.stringify({ error: 'CONNECT is not supported', code: 'method_not_allowed' });
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export function isLoopback(req: IncomingMessage): boolean {
  const addr = req.socket.remoteAddress ?? '';
  return addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1';
}
