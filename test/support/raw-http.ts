/**
 * A minimal HTTP/1.1 client over a raw socket, for tests that must send bytes `fetch` refuses or rewrites:
 * control characters in header values, unencoded or half-encoded request targets, a body whose encoding
 * the test chose (e.g. a lone surrogate written as a JSON escape), chunked bodies. One request per
 * connection (`Connection: close`); the response is read to the end of the connection.
 */
import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawRequest {
  method: string;
  /** The request target as sent, byte for byte (latin1): the test does any percent-encoding itself. */
  target: string;
  /** Header lines as sent (latin1 bytes); Host and Connection are added. */
  headers?: Array<[string, string]>;
  body?: Buffer | string;
  /** Send the body with `Transfer-Encoding: chunked` (no Content-Length). */
  chunked?: boolean;
}

function decodeChunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = Number.parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Sends one request to `host:port` and resolves with the response (rejects if none came back). */
export function rawRequest(host: string, port: number, req: RawRequest, timeoutMs = 15_000) {
  return new Promise<RawResponse>((resolve, reject) => {
    const body = req.body === undefined ? undefined : Buffer.from(req.body);
    const lines = [`${req.method} ${req.target} HTTP/1.1`, `host: ${host}:${port}`, 'connection: close'];
    for (const [name, value] of req.headers ?? []) lines.push(`${name}: ${value}`);
    if (body && req.chunked) lines.push('transfer-encoding: chunked');
    else if (body) lines.push(`content-length: ${body.length}`);
    const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    const payload = !body
      ? head
      : req.chunked
        ? Buffer.concat([
            head,
            Buffer.from(`${body.length.toString(16)}\r\n`, 'latin1'),
            body,
            Buffer.from('\r\n0\r\n\r\n', 'latin1'),
          ])
        : Buffer.concat([head, body]);

    exchange(host, port, payload, timeoutMs).then(resolve, (err: Error) =>
      reject(new Error(`${err.message} (${req.method} ${req.target.slice(0, 200)})`)),
    );
  });
}

/** Sends `text` as it is (latin1: a whole request, request line and header lines included). */
export function rawText(host: string, port: number, text: string, timeoutMs = 15_000) {
  return exchange(host, port, Buffer.from(text, 'latin1'), timeoutMs);
}

function exchange(host: string, port: number, payload: Buffer, timeoutMs: number) {
  return new Promise<RawResponse>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, host);
    const timer = setTimeout(
      () => socket.destroy(new Error(`no response within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', (chunk) => chunks.push(chunk));
    // The server may answer (413, 401…) and close before it has read the whole body: a reset or a broken
    // pipe while writing is fine as long as a response came back.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const data = Buffer.concat(chunks);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        reject(new Error(`no HTTP response (${data.length} bytes)`));
        return;
      }
      const [statusLine = '', ...headerLines] = data.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(statusLine.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      let rest: Buffer = data.subarray(end + 4);
      if (headers['transfer-encoding']?.includes('chunked')) rest = decodeChunked(rest);
      else if (headers['content-length']) rest = rest.subarray(0, Number(headers['content-length']));
      resolve({ status, headers, body: rest.toString('utf8') });
    });
    socket.write(payload);
  });
}
