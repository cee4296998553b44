// Reading requests the same way on both of the runtime's servers (control server, outbound server).
import type { IncomingMessage } from "node:http";
import { HttpError } from "./http-errors.ts";

export const MAX_BODY_BYTES = 64 * 1024;

/** The JSON body: 415 unless it is JSON, 413 past MAX_BODY_BYTES, 400 when it does not parse. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) throw new HttpError(415, "unsupported_media_type", "content-type must be application/json");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "body_too_large", `body must be at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "invalid_json", "body is not valid JSON");
  }
}

export function isLoopback(req: IncomingMessage): boolean {
  const addr = req.socket.remoteAddress ?? "";
  return addr === "127.0.0.1" || addr === "::1" || addr === "::ffff:127.0.0.1";
}
