// Request bodies, read with a cap: a body over the cap is refused from its Content-Length before anything is
// read, or, without one (chunked) or with one that lies, as soon as the bytes read pass the cap. The rest of
// the body is never buffered: after the refusal the connection lingers briefly, discarding what still
// arrives so the client can read its 413 (closing at once would reset the connection under a client that is
// still sending, and many clients would then never see the answer), and is then closed.
import { controlCharacterProblem } from './validate';

/** The public and the console claim (the API's own cap is 64 KiB too). */
export const CLAIM_BODY_LIMIT = 64 * 1024;
/** Console forms: login, logout, actions (a few short fields). */
export const FORM_BODY_LIMIT = 4 * 1024;
/** A body that trickles in slower than this is abandoned (a client holding connections open). */
export const BODY_READ_TIMEOUT_MS = 10_000;
/** After a refusal: discard what still arrives for this long, or this much, then close the connection. */
export const LINGER_MS = 2_000;
export const LINGER_BYTES = 16 * 1024 * 1024;

export type Read<T> = { ok: true; value: T } | { ok: false; response: Response };

export const jsonError = (
  status: number,
  code: string,
  error: string,
  headers: Record<string, string> = {},
) =>
  new Response(JSON.stringify({ error, code }), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  });

/** The next chunk, or 'timeout' after `ms`. */
async function readWithin(reader: ReadableStreamDefaultReader<Uint8Array>, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      reader.read(),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads and drops what is left of a refused body for a moment (nothing is kept), then cancels the body, which
 * makes the server close the connection: the rest of the body is never read.
 */
export function discardThenClose(reader: ReadableStreamDefaultReader<Uint8Array>): void {
  void (async () => {
    const end = Date.now() + LINGER_MS;
    let dropped = 0;
    try {
      while (dropped < LINGER_BYTES) {
        const left = end - Date.now();
        if (left <= 0) break;
        const next = await readWithin(reader, left);
        if (next === 'timeout' || next.done) break;
        dropped += next.value.byteLength;
      }
    } catch {
      // The client went away, or the server's own limit ended the body.
    }
    reader.cancel().catch(() => {});
  })();
}

function refuse(
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined,
  status: number,
  code: string,
  error: string,
) {
  if (reader) discardThenClose(reader);
  return { ok: false as const, response: jsonError(status, code, error) };
}

/** Reads at most `limit` bytes of the body; more (announced or sent) is a 413, a stalled body a 408. */
export async function readBodyLimited(
  request: Request,
  limit: number,
  timeoutMs = BODY_READ_TIMEOUT_MS,
): Promise<Read<Uint8Array>> {
  const tooLarge = (reader: ReadableStreamDefaultReader<Uint8Array> | undefined) =>
    refuse(reader, 413, 'TOO_LARGE', `Request body is too large (at most ${limit} bytes).`);
  const announced = request.headers.get('content-length');
  if (announced !== null) {
    const reader = request.body?.getReader();
    if (!/^\d{1,15}$/.test(announced.trim()))
      return refuse(reader, 400, 'BAD_CONTENT_LENGTH', 'Content-Length is not a number.');
    if (Number(announced) > limit) return tooLarge(reader);
    reader?.releaseLock();
  }
  if (!request.body) return { ok: true, value: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const next = await readWithin(reader, deadline - Date.now());
      if (next === 'timeout')
        return refuse(reader, 408, 'BODY_TIMEOUT', 'The request body did not arrive in time.');
      if (next.done) break;
      size += next.value.byteLength;
      if (size > limit) return tooLarge(reader);
      chunks.push(next.value);
    }
  } catch {
    // The server's own limit (the adapter's `bodySizeLimit`) ended the body, or the client went away.
    return tooLarge(undefined);
  }
  reader.releaseLock();
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return { ok: true, value: out };
}

/** For a response given without reading the request's body (or all of it): drop the rest, then close. */
export function settleUnreadBody(request: Request): void {
  if (request.body && !request.bodyUsed && !request.body.locked) discardThenClose(request.body.getReader());
}

/** The body as UTF-8 text (invalid UTF-8 is a 400). */
export async function readTextLimited(request: Request, limit: number): Promise<Read<string>> {
  const body = await readBodyLimited(request, limit);
  if (!body.ok) return body;
  try {
    return { ok: true, value: new TextDecoder('utf-8', { fatal: true }).decode(body.value) };
  } catch {
    return { ok: false, response: jsonError(400, 'BAD_ENCODING', 'The request body is not valid UTF-8.') };
  }
}

const mediaType = (request: Request) =>
  (request.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

/**
 * A console form (urlencoded, or multipart as `fetch(…, {body: new FormData()})` sends it), capped, with only
 * text fields; a field name or value with a control character is a 400 naming the field.
 */
export async function readFormLimited(
  request: Request,
  limit = FORM_BODY_LIMIT,
): Promise<Read<URLSearchParams>> {
  const type = mediaType(request);
  if (type !== 'application/x-www-form-urlencoded' && type !== 'multipart/form-data') {
    return { ok: false, response: jsonError(415, 'BAD_CONTENT_TYPE', 'Expected a form submission.') };
  }
  const bad = (error: string) => ({ ok: false as const, response: jsonError(400, 'BAD_FORM', error) });
  const body = await readBodyLimited(request, limit);
  if (!body.ok) return body;
  const fields = new URLSearchParams();
  if (type === 'application/x-www-form-urlencoded') {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body.value);
    } catch {
      return bad('The form is not valid UTF-8.');
    }
    for (const [k, v] of new URLSearchParams(text)) fields.append(k, v);
  } else {
    let form: FormData;
    try {
      const ct = request.headers.get('content-type') ?? '';
      form = await new Response(body.value as Uint8Array<ArrayBuffer>, {
        headers: { 'content-type': ct },
      }).formData();
    } catch {
      return bad('Expected a form submission.');
    }
    for (const [k, v] of form) {
      if (typeof v !== 'string') return bad(`Form field "${printable(k)}" must be text, not a file.`);
      fields.append(k, v);
    }
  }
  for (const [k, v] of fields) {
    const nameProblem = controlCharacterProblem(k, false);
    if (nameProblem) return bad(`A form field name ${nameProblem}.`);
    const problem = controlCharacterProblem(v, false);
    if (problem) return bad(`Form field "${k}" ${problem}.`);
  }
  return { ok: true, value: fields };
}

/** A name for an error message, without the characters that made it invalid. */
function printable(s: string): string {
  return s.replace(/[^\x20-\x7E]/g, '?').slice(0, 40);
}
