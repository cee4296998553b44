/**
 * A stack whose instances get an AgentMail inbox and a Telnyx number from the providers' stand-ins, with both
 * providers' webhook secrets configured: for the suites that send inbound email and SMS through the API's
 * webhook routes. On a fresh database (the reusable number pool is global: other suites must not see ours).
 */
import { AgentMailInboxes } from '../../activities/providers/agentmail';
import { TelnyxNumbers } from '../../activities/providers/telnyx';
import { recordSecrets, type Stack, type StackOptions, startStack } from '../stack';
import { type AgentMailStandin, startAgentMailStandin } from '../standins/agentmail-standin';
import { startTelnyxStandin, type TelnyxStandin } from '../standins/telnyx-standin';
import { shared } from './helpers';

export interface MessagingStack {
  stack: Stack;
  agentmail: AgentMailStandin;
  telnyx: TelnyxStandin;
  stop(): Promise<void>;
}

export async function startMessagingStack(
  opts: {
    /** The AgentMail endpoint secret (Svix `whsec_…`) the stand-in signs with and the API verifies. */
    webhookSecret: string;
    /** The Telnyx stand-in's stock: `numbers` numbers from `+1555<firstNumber>` on. */
    numbers: number;
    firstNumber: number;
  } & Pick<StackOptions, 'targetIdle' | 'maxTotal'>,
): Promise<MessagingStack> {
  const { webhookSecret } = opts;
  const agentmail = await startAgentMailStandin({ webhookSecret });
  const telnyx = await startTelnyxStandin({
    stock: Array.from({ length: opts.numbers }, (_, i) => `+1555${String(opts.firstNumber + i).slice(1)}`),
    pendingPolls: 0,
  });
  recordSecrets(agentmail.apiKey, telnyx.apiKey);
  const { databaseUrl: _shared, ...rest } = shared();
  const stack = await startStack({
    ...rest,
    targetIdle: opts.targetIdle,
    maxTotal: opts.maxTotal,
    env: { AGENTMAIL_WEBHOOK_SECRET: webhookSecret, TELNYX_PUBLIC_KEY: telnyx.publicKey },
    resourcesFor: (db) => ({
      enabled: {
        inbox: new AgentMailInboxes({ apiKey: agentmail.apiKey, baseUrl: agentmail.baseUrl }),
        phone: new TelnyxNumbers({
          apiKey: telnyx.apiKey,
          messagingProfileId: 'mp-standin',
          db,
          maxPooledNumbers: 2,
          baseUrl: telnyx.baseUrl,
          orderPollMs: 50,
        }),
      },
      disabled: [],
    }),
  });
  return {
    stack,
    agentmail,
    telnyx,
    async stop() {
      await stack.stop();
      await agentmail.close();
      await telnyx.close();
    },
  };
}
