// The payment tools' calls to the runtime's loopback outbound server, and the sentence each answer becomes
// for the agent (the tool result is what the model reads: it must say plainly what happened and what to do).
const TIMEOUT_MS = 60_000;

export type PaymentCall = 'allowance' | 'transfer' | 'confirm';
const PATHS: Record<PaymentCall, string> = {
  allowance: '/payments',
  transfer: '/payments/transfer',
  confirm: '/payments/confirm',
};

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** One call to the runtime; never throws (a failure becomes a sentence). */
export async function requestPayment(
  outboundUrl: string,
  gatewayToken: string,
  call: PaymentCall,
  params: unknown,
  fetchImpl: typeof fetch = fetch,
): Promise<string> {
  let answer: Answer;
  try {
    const res = await fetchImpl(`${outboundUrl}${PATHS[call]}`, {
      method: call === 'allowance' ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${gatewayToken}`,
        ...(call === 'allowance' ? {} : { 'content-type': 'application/json' }),
      },
      ...(call === 'allowance' ? {} : { body: JSON.stringify(params ?? {}) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    answer = { status: res.status, body: ((await res.json().catch(() => ({}))) ?? {}) as Answer['body'] };
  } catch {
    return call === 'allowance'
      ? 'The payments service did not answer; try again later.'
      : "The runtime's payments service did not answer: the payment may or may not have been made. Check the allowance before asking again; do not simply retry.";
  }
  return describe(call, answer);
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');

export function describe(call: PaymentCall, { status, body }: Answer): string {
  if (status >= 400) return `Not done: ${str(body.error) || `the pool answered ${status}`}`;
  if (call === 'allowance')
    return (
      `Daily allowance ${str(body.dailyCapUsd)} USD (USDC on Base), ${str(body.spentUsd)} used in the last 24 hours, ` +
      `${str(body.remainingUsd)} left. Transfers above ${str(body.confirmAboveUsd)} USD need a confirmation code ` +
      `said back in the chat. Wallet balances: ${JSON.stringify(body.wallet ?? null).slice(0, 1500)}`
    );
  if (body.status === 'pending')
    return (
      `Held, not sent yet (payment ${str(body.id)}, ${str(body.amountUsd)} USDC to ${str(body.to)}). Post this ` +
      `exact line in the chat: "To confirm paying ${str(body.amountUsd)} USDC to ${str(body.to)}, reply with the code ` +
      `${str(body.confirmationCode)}". Wait for a person in the chat to say the code back, then call ` +
      `confirm_payment with paymentId ${str(body.id)} and the code they wrote. Never confirm it yourself. ` +
      `It expires at ${str(body.expiresAt)}.`
    );
  const tx = str(body.txHash);
  return `Sent ${str(body.amountUsd)} USDC on Base to ${str(body.to)}${tx ? ` (transaction ${tx})` : ''}.`;
}
