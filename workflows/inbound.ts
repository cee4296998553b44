/**
 * The delivery of one inbound email or SMS to its instance (`inbound-<provider>-<eventId>`, started by the
 * API's webhook routes once the event is recorded). Its input is ids only: the content waits in the secret
 * store. A worker restart loses nothing (the activity is retried on the next worker); the workflow id is one
 * more guard against a second delivery of the same event, and the runtime dedupes by event id as well.
 */
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { InboundDeliveryInput, InboundOutcome } from '../activities/inbound';

// Until the runtime takes it: every attempt at most 40 s, backing off to once a minute, for up to a day
// (an instance crashed and restarting, or `failed` until an operator retries it).
const { deliverInbound } = proxyActivities<Activities>({
  startToCloseTimeout: '40s',
  scheduleToCloseTimeout: '24h',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});
const { dropInbound } = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

export async function inboundDeliveryWorkflow(input: InboundDeliveryInput): Promise<InboundOutcome> {
  try {
    return await deliverInbound(input);
  } catch (err) {
    const reason = err instanceof ApplicationFailure ? err.message : 'delivery gave up';
    await dropInbound({ ...input, reason: `not delivered within a day: ${reason}` });
    return 'dropped';
  }
}
