/**
 * Telnyx (API v2): a US number with SMS per instance, taken from our reusable pool (`phone_numbers`) before
 * anything is bought, and returned to that pool on destroy (released at Telnyx once the pool is full).
 *
 * Names and tags at Telnyx:
 *   - a number held by an instance: `customer_reference` = `convos-<pool>-<instanceId>`, tags = [that name,
 *     `convos-pool-<pool>`] (the pool tag is how `list` finds a pool's numbers; the name is parsed from the
 *     customer_reference);
 *   - a number in our pool: customer_reference and tags = `convos-reserve` (no pool: the sweeper leaves it be).
 *
 * Retry safety. Our table is the first truth: a row `assigned` to the instance is its number. A number bought
 * but not yet recorded (the order's answer was lost, or the worker died) is found at Telnyx by name — numbers
 * whose customer_reference is the name, else number orders placed with that customer_reference — and adopted
 * instead of ordered again. Telnyx documents no idempotency key for number orders, hence the lookups.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { and, count, eq, sql } from 'drizzle-orm';
import {
  ProviderNotFoundError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import type { SmsSender } from '../../contracts/resources';
import type { Db } from '../../drizzle/client';
import { phoneNumbers } from '../../drizzle/schema';
import { HttpClient, ignoreNotFound } from './http';
import {
  type CreatedResource,
  type HeldResource,
  instanceIdFromName,
  type ResourceContext,
  type ResourceProvider,
  resourceNamePrefix,
} from './types';

export interface TelnyxOptions {
  apiKey: string;
  /** The org's messaging profile every number is attached to (sending needs it). */
  messagingProfileId: string;
  db: Db;
  /** Numbers kept in our pool when instances release them; beyond this they are released at Telnyx. */
  maxPooledNumbers: number;
  countryCode?: string;
  baseUrl?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** How long create waits for a pending number order; past it the attempt fails retryably and resumes. */
  orderWaitMs?: number;
  orderPollMs?: number;
  /** `page[size]` for listing numbers (Telnyx allows up to 250). */
  pageSize?: number;
}

/** Tags a number carries while it sits in our pool (not any pool's: the sweeper never releases it). */
export const RESERVE_TAG = 'convos-reserve';
export const poolTag = (poolName: string) => `convos-pool-${poolName}`;

interface TelnyxNumber {
  id: string;
  phone_number: string;
  status?: string;
  tags?: string[];
  customer_reference?: string | null;
  messaging_profile_id?: string | null;
}
interface TelnyxOrder {
  id: string;
  status: 'pending' | 'success' | 'failure';
  customer_reference?: string | null;
  phone_numbers?: Array<{ phone_number: string }>;
}
interface ListResponse<T> {
  data: T[];
  meta?: { total_pages?: number; page_number?: number };
}

type Row = typeof phoneNumbers.$inferSelect;

/** Arbitrary, fixed key of the advisory lock that serializes "does the pool still have room?". */
const POOL_LOCK = 7_245_081;
const MAX_PAGES = 1000;

export class TelnyxNumbers implements ResourceProvider, SmsSender {
  readonly kind = 'phone' as const;
  readonly name = 'telnyx';
  private readonly http: HttpClient;
  private readonly db: Db;

  constructor(private readonly opts: TelnyxOptions) {
    this.db = opts.db;
    this.http = new HttpClient({
      baseUrl: opts.baseUrl ?? 'https://api.telnyx.com/v2',
      provider: 'telnyx',
      headers: () => ({ authorization: `Bearer ${opts.apiKey}` }),
      timeoutMs: opts.timeoutMs,
      fetch: opts.fetch,
    });
  }

  async create(ctx: ResourceContext): Promise<CreatedResource> {
    // A number deleted behind our back (404 while tagging it) is marked released and the next one is tried.
    for (let attempt = 0; attempt < 5; attempt++) {
      const row =
        (await this.assignedRow(ctx.instanceId)) ??
        (await this.adoptByName(ctx)) ??
        (await this.takeFromPool(ctx.instanceId)) ??
        (await this.order(ctx));
      const done = await this.finishAssignment(ctx, row);
      if (done) return done;
    }
    throw new ProviderUnavailableError(`telnyx: no usable number for ${ctx.name}`, null);
  }

  async destroy(ctx: ResourceContext, ref: string | null): Promise<void> {
    const byRef = ref ? await this.rowByProviderId(ref) : null;
    const mine = byRef?.status === 'assigned' && byRef.instanceId === ctx.instanceId;
    const row = mine ? byRef : await this.assignedRow(ctx.instanceId);
    if (row) return this.giveBack(row);
    // Known to our table but back in the pool, released, or now another instance's: nothing to release.
    if (byRef) return;
    // Bought for this instance but never recorded (a lost order answer): find it by name and give it back.
    // Once given back it no longer carries the name, so the loop ends (bounded all the same). Only here:
    // looking up by name on every teardown would add several calls to each attempt, and under provider
    // faults teardowns would exhaust their retries (docs/providers.md, known limits).
    for (let i = 0; i < 10; i++) {
      const found = await this.adoptByName(ctx);
      if (!found) return;
      await this.giveBack(found);
    }
  }

  async list(poolName: string): Promise<HeldResource[]> {
    const tag = poolTag(poolName);
    const prefix = resourceNamePrefix(poolName);
    const held: HeldResource[] = [];
    for await (const n of this.pages<TelnyxNumber>('/phone_numbers', { 'filter[tag]': tag })) {
      // Exact tag match, whatever the server's filter semantics.
      if (!n.tags?.includes(tag)) continue;
      const name = n.customer_reference || n.tags.find((t) => t.startsWith(prefix)) || '';
      held.push({ ref: n.id, name, instanceId: instanceIdFromName(poolName, name) });
    }
    return held;
  }

  /**
   * Sends one SMS from an instance's number with the org's key (the proxy endpoint). Telnyx has no
   * idempotency key for messages: a retry after a lost answer can send twice, so callers do not retry blindly.
   */
  async sendSms(from: string, message: { to: string; text: string }): Promise<{ messageId: string }> {
    const res = await this.http.request<{ data: { id: string } }>('POST', '/messages', {
      body: {
        from,
        to: message.to,
        text: message.text,
        messaging_profile_id: this.opts.messagingProfileId,
      },
    });
    return { messageId: res.data.id };
  }

  // --- our table ---------------------------------------------------------------------------------------

  private async assignedRow(instanceId: string): Promise<Row | null> {
    const rows = await this.db
      .select()
      .from(phoneNumbers)
      .where(and(eq(phoneNumbers.status, 'assigned'), eq(phoneNumbers.instanceId, instanceId)));
    return rows[0] ?? null;
  }

  private async rowByProviderId(providerId: string): Promise<Row | null> {
    const rows = await this.db.select().from(phoneNumbers).where(eq(phoneNumbers.providerId, providerId));
    return rows[0] ?? null;
  }

  /** Takes one available pooled number atomically: concurrent takers skip each other's locked rows. */
  private async takeFromPool(instanceId: string): Promise<Row | null> {
    const now = new Date();
    const rows = await this.db
      .update(phoneNumbers)
      .set({ status: 'assigned', instanceId, assignedAt: now, updatedAt: now })
      .where(
        eq(
          phoneNumbers.phoneNumber,
          sql`(select phone_number from phone_numbers where status = 'available'
               order by updated_at, phone_number limit 1 for update skip locked)`,
        ),
      )
      .returning();
    return rows[0] ?? null;
  }

  /**
   * Records a number bought for this instance as its own; null when the row belongs to someone else (the
   * number went back to the pool or to another instance since: it is not this instance's any more).
   */
  private async record(instanceId: string, n: TelnyxNumber): Promise<Row | null> {
    const now = new Date();
    const rows = await this.db
      .insert(phoneNumbers)
      .values({
        phoneNumber: n.phone_number,
        providerId: n.id,
        status: 'assigned',
        instanceId,
        assignedAt: now,
        updatedAt: now,
      })
      .onConflictDoUpdate({
        target: phoneNumbers.phoneNumber,
        set: {
          providerId: n.id,
          status: 'assigned',
          instanceId,
          assignedAt: now,
          releasedAt: null,
          updatedAt: now,
        },
        // A released row is a number bought again; an assigned row of this instance is a repeat.
        setWhere: sql`${phoneNumbers.status} = 'released' or (${phoneNumbers.status} = 'assigned' and ${phoneNumbers.instanceId} = ${instanceId})`,
      })
      .returning();
    return rows[0] ?? null;
  }

  private async markReleased(row: Row): Promise<void> {
    const now = new Date();
    await this.db
      .update(phoneNumbers)
      .set({ status: 'released', instanceId: null, releasedAt: now, updatedAt: now })
      .where(and(eq(phoneNumbers.phoneNumber, row.phoneNumber), eq(phoneNumbers.status, 'assigned')));
  }

  // --- Telnyx ------------------------------------------------------------------------------------------

  /**
   * Tags the number for the instance and makes sure it is on our messaging profile. Idempotent, so it runs
   * on every create (repairing an attempt that died between recording and tagging). Null when Telnyx no
   * longer has the number (the row is then released).
   */
  private async finishAssignment(ctx: ResourceContext, row: Row): Promise<CreatedResource | null> {
    let n: TelnyxNumber;
    try {
      n = (
        await this.http.request<{ data: TelnyxNumber }>('PATCH', `/phone_numbers/${row.providerId}`, {
          body: { tags: [ctx.name, poolTag(ctx.poolName)], customer_reference: ctx.name },
        })
      ).data;
    } catch (err) {
      if (!(err instanceof ProviderNotFoundError)) throw err;
      await this.markReleased(row);
      return null;
    }
    if (n.messaging_profile_id !== this.opts.messagingProfileId) {
      await this.http.request('PATCH', `/phone_numbers/${row.providerId}/messaging`, {
        body: { messaging_profile_id: this.opts.messagingProfileId },
      });
    }
    return {
      ref: row.providerId,
      metadata: { phoneNumber: row.phoneNumber },
      env: { TELNYX_PHONE_NUMBER: row.phoneNumber },
    };
  }

  /**
   * A number Telnyx holds under this instance's name that our table does not have yet, recorded as the
   * instance's: found by customer_reference, else through the number orders placed with that reference
   * (waiting for a pending one). Numbers whose rows moved on (pooled, another instance's) are skipped.
   */
  private async adoptByName(ctx: ResourceContext): Promise<Row | null> {
    let found = (
      await this.http.request<ListResponse<TelnyxNumber>>('GET', '/phone_numbers', {
        query: { 'filter[customer_reference]': ctx.name, 'page[size]': 50 },
      })
    ).data.filter((n) => n.customer_reference === ctx.name && n.status !== 'deleted');
    if (found.length === 0) {
      const orders = (
        await this.http.request<ListResponse<TelnyxOrder>>('GET', '/number_orders', {
          query: { 'filter[customer_reference]': ctx.name, 'page[size]': 50 },
        })
      ).data.filter((o) => o.customer_reference === ctx.name && o.status !== 'failure');
      found = [];
      for (const order of orders) {
        const done = await this.waitForOrder(order, true);
        if (!done) continue;
        for (const item of done.phone_numbers ?? []) {
          const n = await this.numberResource(item.phone_number);
          // Named for someone else since (pooled, or bought again for another instance): not ours.
          if (n && (!n.customer_reference || n.customer_reference === ctx.name)) found.push(n);
        }
      }
    }
    for (const n of found) {
      const row = await this.record(ctx.instanceId, n);
      if (row) return row;
    }
    return null;
  }

  /** Searches, orders (trying the next candidate when one was taken meanwhile), waits, records. */
  private async order(ctx: ResourceContext): Promise<Row> {
    const search = await this.http.request<ListResponse<{ phone_number: string }>>(
      'GET',
      '/available_phone_numbers',
      {
        query: {
          'filter[country_code]': this.opts.countryCode ?? 'US',
          'filter[features][]': ['sms'],
          'filter[limit]': 5,
        },
      },
    );
    if (search.data.length === 0) {
      throw new ProviderUnavailableError('telnyx: no SMS numbers available to order', null);
    }
    let order: TelnyxOrder | null = null;
    let lastError: ProviderRejectedError | null = null;
    // Random order: concurrent creates see the same search results and would otherwise all race for the first.
    const candidates = [...search.data].sort(() => Math.random() - 0.5);
    for (const candidate of candidates) {
      try {
        order = (
          await this.http.request<{ data: TelnyxOrder }>('POST', '/number_orders', {
            body: {
              phone_numbers: [{ phone_number: candidate.phone_number }],
              messaging_profile_id: this.opts.messagingProfileId,
              customer_reference: ctx.name,
            },
          })
        ).data;
        break;
      } catch (err) {
        // Bought by someone else between search and order: try the next one. Auth errors end it.
        if (!(err instanceof ProviderRejectedError) || err.status === 401 || err.status === 403) throw err;
        lastError = err;
      }
    }
    if (!order) {
      // Every candidate was refused (usually bought by someone else meanwhile): a new search may do better.
      throw new ProviderUnavailableError(
        `telnyx: none of ${candidates.length} numbers could be ordered (last: ${lastError?.message})`,
        lastError?.status ?? null,
        lastError?.detail ?? null,
      );
    }
    const done = await this.waitForOrder(order, false);
    const item = done!.phone_numbers?.[0];
    const n = item ? await this.numberResource(item.phone_number) : null;
    if (!n) {
      // Not visible yet: the retry adopts it through the order.
      throw new ProviderUnavailableError(`telnyx: number of order ${order.id} not listed yet`, null);
    }
    const row = await this.record(ctx.instanceId, n);
    if (!row)
      throw new ProviderUnavailableError(`telnyx: ${n.phone_number} is recorded for another instance`, null);
    return row;
  }

  /**
   * Polls a number order until it leaves `pending`. A failed order buys nothing: null when `skipFailed`,
   * else a retryable error (the retry orders another number). Still pending past the wait: retryable (the
   * retry finds the order again by customer_reference).
   */
  private async waitForOrder(order: TelnyxOrder, skipFailed: boolean): Promise<TelnyxOrder | null> {
    const deadline = Date.now() + (this.opts.orderWaitMs ?? 60_000);
    let current = order;
    while (current.status === 'pending') {
      if (Date.now() >= deadline) {
        throw new ProviderUnavailableError(`telnyx: number order ${order.id} still pending`, null);
      }
      await sleep(this.opts.orderPollMs ?? 1000);
      current = (await this.http.request<{ data: TelnyxOrder }>('GET', `/number_orders/${order.id}`)).data;
    }
    if (current.status === 'failure') {
      if (skipFailed) return null;
      throw new ProviderUnavailableError(`telnyx: number order ${order.id} failed`, null);
    }
    return current;
  }

  /** The phone number resource (its id) for an E.164 number; the filter takes digits only. */
  private async numberResource(phoneNumber: string): Promise<TelnyxNumber | null> {
    const res = await this.http.request<ListResponse<TelnyxNumber>>('GET', '/phone_numbers', {
      query: { 'filter[phone_number]': phoneNumber.replace(/\D/g, ''), 'page[size]': 50 },
    });
    return res.data.find((n) => n.phone_number === phoneNumber && n.status !== 'deleted') ?? null;
  }

  /**
   * Back to our pool, or released at Telnyx when the pool is full. The number is re-tagged for the pool
   * while its row is still this instance's (nobody can take it meanwhile); the room check and the row
   * update then happen under one lock, so concurrent returns never overfill the pool.
   */
  private async giveBack(row: Row): Promise<void> {
    const max = this.opts.maxPooledNumbers;
    if ((await this.availableCount(this.db)) < max) {
      try {
        await this.http.request('PATCH', `/phone_numbers/${row.providerId}`, {
          body: { tags: [RESERVE_TAG], customer_reference: RESERVE_TAG },
        });
      } catch (err) {
        if (!(err instanceof ProviderNotFoundError)) throw err;
        await this.markReleased(row);
        return;
      }
      const pooled = await this.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${POOL_LOCK})`);
        if ((await this.availableCount(tx as unknown as Db)) >= max) return false;
        await tx
          .update(phoneNumbers)
          .set({ status: 'available', instanceId: null, updatedAt: new Date() })
          .where(
            and(
              eq(phoneNumbers.phoneNumber, row.phoneNumber),
              eq(phoneNumbers.status, 'assigned'),
              eq(phoneNumbers.instanceId, row.instanceId!),
            ),
          );
        return true;
      });
      if (pooled) return;
    }
    await ignoreNotFound(() => this.http.request('DELETE', `/phone_numbers/${row.providerId}`));
    await this.markReleased(row);
  }

  private async availableCount(db: Db): Promise<number> {
    const [res] = await db
      .select({ n: count() })
      .from(phoneNumbers)
      .where(eq(phoneNumbers.status, 'available'));
    return Number(res?.n ?? 0);
  }

  private async *pages<T>(path: string, query: Record<string, string>): AsyncGenerator<T> {
    const size = this.opts.pageSize ?? 250;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const res = await this.http.request<ListResponse<T>>('GET', path, {
        query: { ...query, 'page[number]': page, 'page[size]': size },
      });
      yield* res.data;
      if (page >= (res.meta?.total_pages ?? 1) || res.data.length === 0) return;
    }
  }
}
