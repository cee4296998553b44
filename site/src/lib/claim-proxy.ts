// Proxies one claim to the pool API with the operator key and streams progress back as SSE.
// The browser sees a stable event shape whatever the API sends:
//   step     {step: 'reserve'|'provision'|'conversation', status: 'active'|'ok'|'fail'}
//   complete {ok: true, result, qr} | {ok: false, status, code, error, retryAfter?}
import { apiHeaders, defaultEnvironment } from './api';
import { config, type SiteEnvironment } from './config';
import { qrDataUrl } from './qr';
import { formatSse, SseParser } from './sse';
import type { ClaimRequest, ClaimResult } from './types';

export interface ClaimFailure {
  ok: false;
  status: number;
  code: string;
  error: string;
  retryAfter?: number;
}
export type ClaimOutcome = { ok: true; result: ClaimResult; qr: string | null } | ClaimFailure;

const FRIENDLY: Record<number, string> = {
  400: 'The request was not accepted.',
  409: 'This claim was already made with different details. Start again.',
  502: 'Setting up the agent failed. Please try again in a moment.',
  503: 'All agents are busy right now.',
};

function failure(status: number, body: Record<string, unknown>, retryAfter?: number): ClaimFailure {
  const err = body.error;
  const message =
    typeof err === 'string'
      ? err
      : typeof body.message === 'string'
        ? body.message
        : (FRIENDLY[status] ?? 'The claim failed.');
  const code =
    typeof body.code === 'string'
      ? body.code
      : typeof (err as { code?: unknown })?.code === 'string'
        ? (err as { code: string }).code
        : `HTTP_${status}`;
  const ra = Number(body.retryAfter ?? retryAfter);
  return {
    ok: false,
    status,
    code,
    error: message,
    ...(Number.isFinite(ra) && ra > 0 ? { retryAfter: ra } : {}),
  };
}

/** Turns whatever the API's `complete` event carries into a ClaimOutcome. */
export async function normalizeComplete(raw: unknown): Promise<ClaimOutcome> {
  const d = (raw ?? {}) as Record<string, unknown>;
  const result = (d.result ?? (typeof d.instanceId === 'string' ? d : undefined)) as ClaimResult | undefined;
  if (result && typeof result.instanceId === 'string' && d.ok !== false) {
    const link = result.inviteUrl ?? result.chatUrl ?? null;
    return { ok: true, result, qr: link ? await qrDataUrl(link) : null };
  }
  const inner = (typeof d.error === 'object' && d.error !== null ? d.error : d) as Record<string, unknown>;
  const status = Number(d.status ?? d.statusCode ?? inner.status ?? inner.statusCode ?? 502);
  return failure(Number.isInteger(status) && status >= 400 ? status : 502, inner);
}

function normalizeStep(raw: unknown): { step: string; status: string } | null {
  const d = (raw ?? {}) as Record<string, unknown>;
  const step = d.step ?? d.name;
  const status = d.status ?? d.state;
  return typeof step === 'string' && typeof status === 'string' ? { step, status } : null;
}

/**
 * `visitor`: the headers naming the anonymous visitor a public claim is for (`visitorHeaders`), so the API
 * limits each visitor on its own; none for an operator's claim from the console.
 */
export function proxyClaim(
  body: ClaimRequest,
  idempotencyKey: string,
  signal: AbortSignal,
  visitor: Record<string, string> = {},
  env: SiteEnvironment = defaultEnvironment(),
): Response {
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (event: string, data: unknown) => controller.enqueue(enc.encode(formatSse(event, data)));
      let completed = false;
      const complete = (o: ClaimOutcome) => {
        if (completed) return;
        completed = true;
        send('complete', o);
      };
      try {
        const res = await fetch(`${env.apiUrl}/api/pool/claim`, {
          method: 'POST',
          headers: apiHeaders(
            true,
            {
              accept: 'text/event-stream',
              'content-type': 'application/json',
              'idempotency-key': idempotencyKey,
              ...visitor,
            },
            env,
          ),
          body: JSON.stringify({ maxWaitMs: config().claimMaxWaitMs, ...body }),
          signal,
        });
        const retryAfter = Number(res.headers.get('retry-after')) || undefined;
        const type = res.headers.get('content-type') ?? '';
        if (!type.includes('text/event-stream') || !res.body) {
          // Errors detected before streaming starts (validation, empty pool, ...) come back as JSON.
          const text = await res.text();
          let data: Record<string, unknown> = {};
          try {
            data = JSON.parse(text) as Record<string, unknown>;
          } catch {}
          complete(res.ok ? await normalizeComplete(data) : failure(res.status, data, retryAfter));
          return;
        }
        const parser = new SseParser();
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          for (const ev of parser.push(decoder.decode(chunk, { stream: true }))) {
            let data: unknown;
            try {
              data = JSON.parse(ev.data);
            } catch {
              continue;
            }
            if (ev.event === 'step') {
              const s = normalizeStep(data);
              if (s) send('step', s);
            } else if (ev.event === 'complete') {
              complete(await normalizeComplete(data));
            } else if (ev.event === 'error') {
              complete(await normalizeComplete({ ok: false, ...(data as object) }));
            }
          }
        }
        if (!completed)
          complete(failure(502, { error: 'The pool API closed the progress stream early. Try again.' }));
      } catch (err) {
        if (!signal.aborted) {
          complete(
            failure(502, {
              error: `The pool API is not reachable right now. Try again shortly.`,
              code: 'API_UNREACHABLE',
            }),
          );
          console.error('claim proxy:', (err as Error).message);
        }
      } finally {
        try {
          controller.close();
        } catch {}
      }
    },
  });
  return new Response(stream, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    },
  });
}
