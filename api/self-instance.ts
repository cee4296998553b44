/**
 * What the instance self-service routes (`routes/self.ts`, `routes/self-mail.ts`) know of the calling
 * instance: whether it is claimed, and its own inbox or number, always looked up here (never taken from the
 * request), so an instance only ever acts as itself.
 */
import { and, eq } from 'drizzle-orm';
import type { ResourceMetadata } from '../contracts/resources';
import type { Db } from '../drizzle/client';
import { instanceResources } from '../drizzle/schema';
import { ApiError } from './errors';
import { findInstance } from './queries';

export type Channel = 'email' | 'sms';
export const LABEL: Record<Channel, string> = { email: 'email', sms: 'SMS' };

export const notEnabled = (channel: Channel, why: string) =>
  new ApiError(409, channel === 'email' ? 'EMAIL_NOT_ENABLED' : 'SMS_NOT_ENABLED', why);

/** 409 `NOT_CLAIMED` unless the read model says claimed; `doing` says what it may not ("send email"). */
export async function requireClaimed(db: Db, instanceId: string, doing: string): Promise<void> {
  const row = await findInstance(db, instanceId);
  if (row?.status !== 'claimed') {
    throw new ApiError(
      409,
      'NOT_CLAIMED',
      `instance is ${row?.status ?? 'unknown'}; only a claimed instance may ${doing}`,
    );
  }
}

/** The instance's own inbox id or phone number, from its active resource row (else 409 `…_NOT_ENABLED`). */
export async function ownAddress(db: Db, instanceId: string, channel: Channel): Promise<string> {
  const [resource] = await db
    .select()
    .from(instanceResources)
    .where(
      and(
        eq(instanceResources.instanceId, instanceId),
        eq(instanceResources.kind, channel === 'email' ? 'inbox' : 'phone'),
        eq(instanceResources.status, 'active'),
      ),
    );
  // The start saga's row (activities/resources.ts): the inbox id is the ref; the number is a fact.
  const address =
    channel === 'email' ? resource?.ref : (resource?.metadata as ResourceMetadata)?.facts?.phoneNumber;
  if (typeof address !== 'string' || !address) {
    const what = channel === 'email' ? 'inbox' : 'phone number';
    throw notEnabled(channel, `this instance has no ${what}, so ${LABEL[channel]} is not enabled for it`);
  }
  return address;
}
