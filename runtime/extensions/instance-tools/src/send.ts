// The one call the tools make: a send request to the runtime's loopback outbound server.
const TIMEOUT_MS = 45_000;

/** Posts one send to the runtime; never throws (a failure is a reason the agent can repeat). */
export async function requestSend(
  outboundUrl: string,
  gatewayToken: string,
  channel: 'email' | 'sms',
  params: unknown,
  fetchImpl: typeof fetch = fetch,
): Promise<{ sent: boolean; message: string }> {
  try {
    const res = await fetchImpl(`${outboundUrl}/${channel}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gatewayToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(params ?? {}),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => ({}))) as { error?: unknown };
    if (res.ok) return { sent: true, message: '' };
    return {
      sent: false,
      message: typeof body.error === 'string' ? body.error : `the runtime answered ${res.status}`,
    };
  } catch {
    return {
      sent: false,
      message: "the runtime's outbound service did not answer; the message may not have been sent",
    };
  }
}
