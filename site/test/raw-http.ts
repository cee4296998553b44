// A raw HTTP/1.1 client for the server tests: request lines, headers and bodies exactly as given (fetch and
// node:http refuse control characters, lone surrogates and lying lengths before anything is sent).
import { connect } from 'node:net';

export interface RawRequest {
  method: string;
  /** The request target as sent, e.g. `/a/%00` (encoded as UTF-8). */
  target: string;
  /** Header lines, sent as given (UTF-8); Host and Connection: close are added unless present. */
  headers?: Array<[string, string]>;
  body?: Uint8Array | string | undefined;
  /** Add a Content-Length for the body (default true; false for a chunked or hand-made one). */
  contentLength?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** Set-Cookie lines, one entry each. */
  cookies: string[];
  body: Buffer;
}

function decodeChunked(buf: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = Number.parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

export function parseResponse(data: Buffer): RawResponse | null {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine = '', ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) return null;
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const line of lines) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    if (name === 'set-cookie') cookies.push(value);
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = data.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = decodeChunked(body);
  return { status: Number(m[1]), headers, cookies, body };
}

/** Sends one request on a fresh connection and reads the whole response (the server closes it). */
export function rawRequest(origin: string, req: RawRequest, timeoutMs = 20_000): Promise<RawResponse> {
  const { hostname, port } = new URL(origin);
  const body =
    typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : Buffer.from(req.body ?? new Uint8Array(0));
  const headers = [...(req.headers ?? [])];
  const has = (n: string) => headers.some(([k]) => k.toLowerCase() === n);
  if (!has('host')) headers.unshift(['Host', `${hostname}:${port}`]);
  if (!has('connection')) headers.push(['Connection', 'close']);
  if (req.contentLength !== false && (body.length > 0 || !['GET', 'HEAD'].includes(req.method))) {
    headers.push(['Content-Length', String(body.length)]);
  }
  const head = `${req.method} ${req.target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `no complete response to ${req.method} ${JSON.stringify(req.target).slice(0, 200)} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      const res = parseResponse(Buffer.concat(chunks));
      if (res) resolve(res);
      else
        reject(
          err ?? new Error(`no HTTP response to ${req.method} ${JSON.stringify(req.target).slice(0, 200)}`),
        );
    };
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish());
    socket.on('error', (err) => finish(err));
    socket.write(Buffer.concat([Buffer.from(head, 'utf8'), body]));
  });
}
