/**
 * Delivering an inbound email or SMS to its instance's runtime (`POST /pool/inbound`, contracts/runtime.ts),
 * for the delivery workflow (workflows/inbound.ts). The API recorded the event (`inbound_events`) and put
 * its content in the secret store; only ids cross Temporal. Retried until the runtime takes it (the runtime
 * is idempotent by event id, so a retry after a lost answer posts nothing twice); dropped when the instance
 * goes away first.
 */
import { ApplicationFailure } from '@temporalio/common';
import { and, eq } from 'drizzle-orm';
import type { InboundRequest } from '../contracts/runtime';
import { INSTANCE_TOKEN, inboundSecretName } from '../contracts/secrets';
import type { Db } from '../drizzle/client';
import { inboundEvents, instances } from '../drizzle/schema';
import { activityContext } from './providers/activity-context';
import type { SecretStore } from './secret-store';

export interface InboundDeliveryInput {
  provider: string;
  eventId: string;
  instanceId: string;
}

export type InboundOutcome = 'delivered' | 'dropped';

/** The content the API stores for one event: the runtime's request without its id. */
export type InboundContent = Omit<InboundRequest, 'eventId'>;

/** Statuses in which the instance may still take it (it is claimed, or may be again soon). */
const WAITING = new Set(['claiming', 'pending_acceptance', 'crashed', 'failed']);

export function createInboundActivities(deps: { db: Db; secrets: SecretStore }) {
  const settle = async (input: InboundDeliveryInput, status: InboundOutcome, reason: string | null) => {
    await deps.db
      .update(inboundEvents)
      .set({ status, reason, ...(status === 'delivered' ? { deliveredAt: new Date() } : {}) })
      .where(
        and(
          eq(inboundEvents.provider, input.provider),
          eq(inboundEvents.eventId, input.eventId),
          eq(inboundEvents.status, 'pending'),
        ),
      );
    await deps.secrets.delete(input.instanceId, inboundSecretName(input.provider, input.eventId));
  };

  return {
    /** One attempt at handing the event to the runtime; throws (retryably) while it cannot take it yet. */
    async deliverInbound(input: InboundDeliveryInput): Promise<InboundOutcome> {
      const log = activityContext()?.log;
      const [event] = await deps.db
        .select({ status: inboundEvents.status })
        .from(inboundEvents)
        .where(and(eq(inboundEvents.provider, input.provider), eq(inboundEvents.eventId, input.eventId)));
      if (!event) return 'dropped';
      if (event.status !== 'pending') return event.status as InboundOutcome;
      const [instance] = await deps.db
        .select({ status: instances.status, url: instances.url })
        .from(instances)
        .where(eq(instances.id, input.instanceId));
      if (!instance || (instance.status !== 'claimed' && !WAITING.has(instance.status))) {
        await settle(input, 'dropped', `instance ${instance?.status ?? 'unknown'}`);
        log?.info('inbound event dropped', { ...input, instanceStatus: instance?.status ?? null });
        return 'dropped';
      }
      if (instance.status !== 'claimed' || !instance.url) {
        throw ApplicationFailure.retryable(`instance is ${instance.status}: waiting`, 'InstanceNotReady');
      }
      const content = await deps.secrets.get(
        input.instanceId,
        inboundSecretName(input.provider, input.eventId),
      );
      if (!content) {
        // Deleted with the instance's secrets (destroyed meanwhile) or by an earlier settled attempt.
        await settle(input, 'dropped', 'content gone');
        return 'dropped';
      }
      const token = await deps.secrets.get(input.instanceId, INSTANCE_TOKEN);
      if (!token) throw ApplicationFailure.retryable('instance token missing', 'InstanceNotReady');
      const request: InboundRequest = {
        eventId: `${input.provider}:${input.eventId}`,
        ...(JSON.parse(content) as InboundContent),
      };
      let res: Response;
      try {
        res = await fetch(`${instance.url}/pool/inbound`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(request),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (err) {
        throw ApplicationFailure.retryable(
          `runtime unreachable: ${(err as Error).message}`,
          'RuntimeUnreachable',
        );
      }
      await res.body?.cancel().catch(() => {});
      if (res.ok) {
        await settle(input, 'delivered', null);
        log?.info('inbound event delivered', input);
        return 'delivered';
      }
      // 400: the runtime refuses this event for good (a body it cannot take); anything else is retried
      // (401 after a token rotation, 404 from a runtime too old for the route, 5xx, 503 not ready).
      if (res.status === 400) {
        await settle(input, 'dropped', 'refused by the runtime (400)');
        return 'dropped';
      }
      throw ApplicationFailure.retryable(`runtime answered ${res.status}`, 'RuntimeError');
    },

    /** The delivery gave up (its retries ran out): the event is dropped and its content deleted. */
    async dropInbound(input: InboundDeliveryInput & { reason: string }): Promise<void> {
      await settle(input, 'dropped', input.reason.slice(0, 200));
    },
  };
}
