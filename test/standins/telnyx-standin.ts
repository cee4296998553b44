/**
 * Stand-in for the part of the Telnyx API v2 the phone adapter uses, in its wire format: `{data}` envelopes,
 * `{data, meta:{page_number,page_size,total_pages,total_results}}` lists paged by `page[number]`/`page[size]`,
 * `{errors:[{code,title,detail}]}` errors (401 code 10009 for a wrong key, 404 code 10005), number orders
 * that stay `pending` for a few polls before `success`, phone numbers with tags, customer_reference and a
 * messaging profile, and sent messages recorded. Numbers to buy come from an injectable `stock`; only numbers
 * returned by a search can be ordered (as at Telnyx). `inventory` holds the numbers we own, named after the
 * order's customer_reference, so a test can prove no instance ever got two numbers ordered.
 *
 * Messaging profiles (`GET|PATCH /v2/messaging_profiles/{id}`) keep a `webhook_url`. `receiveSms(to, …)`
 * posts a `message.received` event (https://developers.telnyx.com/api-reference/callbacks/inbound-message)
 * to the webhook_url of the number's profile, signed as Telnyx signs: `telnyx-timestamp` (Unix seconds) and
 * `telnyx-signature-ed25519` = base64 Ed25519 signature over `${timestamp}|${body}` with the account's key,
 * whose public half (`publicKey`, base64 of the raw 32 bytes, as the portal shows it) verifies it.
 */
import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import {
  Inventory,
  type JsonRequest,
  type JsonResponse,
  type ProviderServer,
  startProviderServer,
} from './provider-http';

export interface StandinPhoneNumber {
  id: string;
  /** Inventory name: the customer_reference of the order that bought it (or the number when seeded). */
  name: string;
  record_type: 'phone_number';
  phone_number: string;
  status: string;
  tags: string[];
  customer_reference: string | null;
  messaging_profile_id: string | null;
  messaging_profile_name: string | null;
  connection_id: string | null;
  country_iso_alpha2: string;
  phone_number_type: 'local';
  purchased_at: string;
  created_at: string;
  updated_at: string;
}

export interface StandinNumberOrder {
  id: string;
  record_type: 'number_order';
  status: 'pending' | 'success' | 'failure';
  customer_reference: string | null;
  messaging_profile_id: string | null;
  connection_id: string | null;
  billing_group_id: string | null;
  phone_numbers_count: number;
  phone_numbers: Array<{
    id: string;
    record_type: 'number_order_phone_number';
    phone_number: string;
    status: 'pending' | 'success' | 'failure';
    requirements_met: boolean;
  }>;
  sub_number_orders_ids: string[];
  requirements_met: boolean;
  created_at: string;
  updated_at: string;
}

export interface StandinMessage {
  id: string;
  from: string;
  to: string;
  text: string;
  messaging_profile_id: string | null;
}

export interface TelnyxStandinOptions {
  apiKey?: string;
  /** Messaging profiles that exist (ids). */
  messagingProfiles?: string[];
  /** Numbers for sale (E.164). More can be pushed onto `stock` later. */
  stock?: string[];
  /** How many polls an order stays `pending` before it completes (0: complete at once). */
  pendingPolls?: number;
  /** Whether numbers inherit the order's customer_reference (not documented either way; off by default). */
  inheritCustomerReference?: boolean;
}

/** One signed webhook delivery the stand-in made. */
export interface TelnyxDelivery {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** The answer of our endpoint (0: unreachable). */
  status: number;
}

/** The `telnyx-signature-ed25519` value for `body` signed at `timestamp` with `privateKey`. */
export function telnyxSignature(privateKey: KeyObject, timestamp: number, body: string): string {
  return sign(null, Buffer.from(`${timestamp}|${body}`, 'utf8'), privateKey).toString('base64');
}

export interface TelnyxStandin extends ProviderServer {
  /** What the adapter's `baseUrl` option takes (`<url>/v2`). */
  baseUrl: string;
  apiKey: string;
  inventory: Inventory<StandinPhoneNumber>;
  orders: StandinNumberOrder[];
  messages: StandinMessage[];
  /** Numbers for sale. */
  stock: string[];
  /** The next `n` orders end in `failure` (nothing bought). */
  failNextOrders(n: number): void;
  /** The account's public key (base64 of the raw Ed25519 key): `TELNYX_PUBLIC_KEY`. */
  publicKey: string;
  privateKey: KeyObject;
  /** Each messaging profile's webhook_url (null: none set). */
  profileWebhooks: Map<string, string | null>;
  /** An SMS arrives at our number `to`: a signed `message.received` to its profile's webhook_url. */
  receiveSms(
    to: string,
    sms: { from: string; text: string },
  ): Promise<{ eventId: string; delivery: TelnyxDelivery | null }>;
  /** Posts `body` to `url` signed at `timestamp` (default now) with `privateKey` (default the account's). */
  deliver(
    url: string,
    body: string,
    opts?: { timestamp?: number; privateKey?: KeyObject; headers?: Record<string, string> },
  ): Promise<TelnyxDelivery>;
  /** Puts a number we already own into the inventory (seeding the pool or the sweeper's view). */
  hold(
    phoneNumber: string,
    opts?: { tags?: string[]; customerReference?: string | null; messagingProfileId?: string | null },
  ): StandinPhoneNumber;
}

const now = () => new Date().toISOString();

function errors(status: number, code: string, title: string, detail: string): JsonResponse {
  return {
    status,
    body: {
      errors: [
        { code, title, detail, meta: { url: `https://developers.telnyx.com/docs/overview/errors/${code}` } },
      ],
    },
  };
}
const notFound = () =>
  errors(404, '10005', 'Resource not found', 'The requested resource or URL could not be found.');
const invalid = (detail: string, code = '10015', title = 'Bad Request') => errors(422, code, title, detail);

function paginate<T>(items: T[], query: URLSearchParams): { data: T[]; meta: Record<string, number> } {
  const size = Math.min(250, Math.max(1, Number(query.get('page[size]') ?? 20) || 20));
  const page = Math.max(1, Number(query.get('page[number]') ?? 1) || 1);
  const totalPages = Math.max(1, Math.ceil(items.length / size));
  return {
    data: items.slice((page - 1) * size, page * size),
    meta: { page_number: page, page_size: size, total_pages: totalPages, total_results: items.length },
  };
}

const e164 = /^\+[1-9]\d{6,14}$/;

export async function startTelnyxStandin(opts: TelnyxStandinOptions = {}): Promise<TelnyxStandin> {
  const apiKey = opts.apiKey ?? 'KEY_standin_telnyx';
  const profiles = new Set(opts.messagingProfiles ?? ['mp-standin']);
  const inventory = new Inventory<StandinPhoneNumber>();
  const orders: StandinNumberOrder[] = [];
  const messages: StandinMessage[] = [];
  const stock = [...(opts.stock ?? [])];
  const searched = new Set<string>();
  const pollsLeft = new Map<string, number>();
  let failOrders = 0;
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // The raw 32 bytes are the last 32 of the SPKI DER.
  const publicKeyBase64 = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
  const profileWebhooks = new Map<string, string | null>([...profiles].map((p) => [p, null]));
  let nextId = 1_293_384_261_075_731_000n;

  const newNumber = (
    phoneNumber: string,
    name: string,
    fields: Partial<StandinPhoneNumber>,
  ): StandinPhoneNumber => {
    nextId += 1n;
    const at = now();
    return inventory.add({
      id: String(nextId),
      name,
      record_type: 'phone_number',
      phone_number: phoneNumber,
      status: 'active',
      tags: [],
      customer_reference: null,
      messaging_profile_id: null,
      messaging_profile_name: null,
      connection_id: null,
      country_iso_alpha2: 'US',
      phone_number_type: 'local',
      purchased_at: at,
      created_at: at,
      updated_at: at,
      ...fields,
    });
  };
  const byNumber = (phoneNumber: string) => inventory.list().find((n) => n.phone_number === phoneNumber);
  const view = ({ name: _name, ...rest }: StandinPhoneNumber) => rest;

  /** A poll of a pending order: after `pendingPolls` of them it completes and the numbers become ours. */
  const progress = (order: StandinNumberOrder) => {
    if (order.status !== 'pending') return;
    const left = pollsLeft.get(order.id) ?? 0;
    if (left > 0) {
      pollsLeft.set(order.id, left - 1);
      return;
    }
    complete(order);
  };
  const complete = (order: StandinNumberOrder) => {
    const failed = failOrders > 0;
    if (failed) failOrders -= 1;
    order.status = failed ? 'failure' : 'success';
    order.updated_at = now();
    for (const item of order.phone_numbers) {
      item.status = order.status;
      if (failed) {
        stock.push(item.phone_number);
        continue;
      }
      newNumber(item.phone_number, order.customer_reference ?? item.phone_number, {
        customer_reference: opts.inheritCustomerReference ? order.customer_reference : null,
        messaging_profile_id: order.messaging_profile_id,
        messaging_profile_name: order.messaging_profile_id ? `profile ${order.messaging_profile_id}` : null,
      });
    }
  };

  const handler = (req: JsonRequest): JsonResponse => {
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return errors(
        401,
        '10009',
        'Authentication failed',
        'The required authentication headers were either invalid or not included in the request.',
      );
    }
    // The real API lives under /v2 (https://api.telnyx.com/v2): the stand-in answers there only.
    if (!req.path.startsWith('/v2/')) return notFound();
    const { method, query } = req;
    const path = req.path.slice('/v2'.length);
    const body = (req.body ?? {}) as Record<string, unknown>;

    if (method === 'GET' && path === '/available_phone_numbers') {
      const country = query.get('filter[country_code]');
      if (!country) return invalid('filter[country_code] is required', '10004', 'Missing required parameter');
      const features = [...query.getAll('filter[features][]'), ...query.getAll('filter[features]')];
      if (features.some((f) => !['sms', 'mms', 'voice', 'fax', 'emergency', 'hd_voice'].includes(f))) {
        return invalid('unknown feature in filter[features]');
      }
      const limit = Math.max(1, Number(query.get('filter[limit]') ?? 50) || 50);
      // The stand-in's stock is all US, SMS- and voice-capable.
      const found = country === 'US' ? stock.slice(0, limit) : [];
      for (const n of found) searched.add(n);
      return {
        status: 200,
        body: {
          data: found.map((phone_number) => ({
            record_type: 'available_phone_number',
            phone_number,
            vanity_format: null,
            best_effort: false,
            quickship: true,
            reservable: true,
            region_information: [{ region_type: 'country_code', region_name: 'US' }],
            cost_information: { upfront_cost: '1.00', monthly_cost: '1.00', currency: 'USD' },
            features: [{ name: 'sms' }, { name: 'mms' }, { name: 'voice' }],
          })),
          meta: { total_results: found.length, best_effort_results: 0 },
        },
      };
    }

    if (method === 'POST' && path === '/number_orders') {
      const wanted = body.phone_numbers;
      if (!Array.isArray(wanted) || wanted.length === 0) {
        return invalid('phone_numbers must be a non-empty array', '10004', 'Missing required parameter');
      }
      const list = wanted.map((w) => (w as { phone_number?: unknown })?.phone_number);
      for (const n of list) {
        if (typeof n !== 'string' || !e164.test(n)) {
          return invalid(
            'phone_number must be in +E.164 format',
            '10016',
            'Phone number must be in +E.164 format',
          );
        }
        // Only numbers for sale that a search returned can be ordered.
        if (!stock.includes(n) || !searched.has(n)) return invalid(`${n} is not available for ordering`);
      }
      const profile = body.messaging_profile_id;
      if (profile !== undefined && (typeof profile !== 'string' || !profiles.has(profile))) {
        return invalid('messaging_profile_id does not exist', '10013', 'Missing association');
      }
      for (const n of list as string[]) stock.splice(stock.indexOf(n), 1);
      const at = now();
      const order: StandinNumberOrder = {
        id: randomUUID(),
        record_type: 'number_order',
        status: 'pending',
        customer_reference: typeof body.customer_reference === 'string' ? body.customer_reference : null,
        messaging_profile_id: (profile as string | undefined) ?? null,
        connection_id: null,
        billing_group_id: null,
        phone_numbers_count: list.length,
        phone_numbers: (list as string[]).map((phone_number) => ({
          id: randomUUID(),
          record_type: 'number_order_phone_number',
          phone_number,
          status: 'pending',
          requirements_met: true,
        })),
        sub_number_orders_ids: [randomUUID()],
        requirements_met: true,
        created_at: at,
        updated_at: at,
      };
      orders.push(order);
      const pending = opts.pendingPolls ?? 1;
      if (pending > 0) pollsLeft.set(order.id, pending - 1);
      else complete(order);
      return { status: 200, body: { data: order } };
    }

    if (method === 'GET' && path === '/number_orders') {
      const ref = query.get('filter[customer_reference]');
      const status = query.get('filter[status]');
      const found = orders.filter(
        (o) => (ref === null || o.customer_reference === ref) && (status === null || o.status === status),
      );
      // Listing shows orders as they are; only polling one (GET by id) moves it along.
      return { status: 200, body: paginate([...found].reverse(), query) };
    }

    const orderMatch = /^\/number_orders\/([^/]+)$/.exec(path);
    if (method === 'GET' && orderMatch) {
      const order = orders.find((o) => o.id === orderMatch[1]);
      if (!order) return notFound();
      progress(order);
      return { status: 200, body: { data: order } };
    }

    if (method === 'GET' && path === '/phone_numbers') {
      const tag = query.get('filter[tag]');
      const ref = query.get('filter[customer_reference]');
      const digits = query.get('filter[phone_number]');
      if (digits !== null && !/^\d{3,}$/.test(digits)) return { status: 200, body: paginate([], query) };
      const found = inventory
        .list()
        .filter(
          (n) =>
            (tag === null || n.tags.includes(tag)) &&
            (ref === null || n.customer_reference === ref) &&
            (digits === null || n.phone_number.replace(/\D/g, '').includes(digits)),
        )
        .map(view);
      return { status: 200, body: paginate(found, query) };
    }

    const messagingMatch = /^\/phone_numbers\/([^/]+)\/messaging$/.exec(path);
    if (method === 'PATCH' && messagingMatch) {
      const n = inventory.items.get(messagingMatch[1]!);
      if (!n) return notFound();
      const profile = body.messaging_profile_id;
      if (profile !== undefined && profile !== null) {
        if (typeof profile !== 'string' || (profile !== '' && !profiles.has(profile))) {
          return invalid('messaging_profile_id does not exist', '10013', 'Missing association');
        }
        n.messaging_profile_id = profile === '' ? null : profile;
        n.messaging_profile_name = n.messaging_profile_id ? `profile ${n.messaging_profile_id}` : null;
        n.updated_at = now();
      }
      return {
        status: 200,
        body: {
          data: {
            record_type: 'messaging_settings',
            id: n.id,
            phone_number: n.phone_number,
            messaging_profile_id: n.messaging_profile_id,
            country_code: 'US',
            type: 'long-code',
            created_at: n.created_at,
            updated_at: n.updated_at,
          },
        },
      };
    }

    const numberMatch = /^\/phone_numbers\/([^/]+)$/.exec(path);
    if (numberMatch) {
      const n = inventory.items.get(numberMatch[1]!);
      if (!n) return notFound();
      if (method === 'GET') return { status: 200, body: { data: view(n) } };
      if (method === 'PATCH') {
        if (body.tags !== undefined) {
          if (!Array.isArray(body.tags) || body.tags.some((t) => typeof t !== 'string')) {
            return invalid('tags must be a list of strings');
          }
          n.tags = [...(body.tags as string[])];
        }
        if (body.customer_reference !== undefined) {
          if (body.customer_reference !== null && typeof body.customer_reference !== 'string') {
            return invalid('customer_reference must be a string');
          }
          n.customer_reference = body.customer_reference as string | null;
        }
        n.updated_at = now();
        return { status: 200, body: { data: view(n) } };
      }
      if (method === 'DELETE') {
        inventory.remove(n.id);
        return { status: 200, body: { data: { ...view(n), status: 'deleted' } } };
      }
    }

    const profileMatch = /^\/messaging_profiles\/([^/]+)$/.exec(path);
    if (profileMatch) {
      const id = profileMatch[1]!;
      if (!profiles.has(id)) return notFound();
      if (method === 'PATCH') {
        const url = body.webhook_url;
        if (url !== undefined && url !== null && (typeof url !== 'string' || !/^https?:\/\//.test(url))) {
          return invalid('webhook_url must be a URL', '10015', 'Invalid webhook_url');
        }
        if (url !== undefined) profileWebhooks.set(id, (url as string | null) || null);
      } else if (method !== 'GET') return notFound();
      return {
        status: 200,
        body: {
          data: {
            record_type: 'messaging_profile',
            id,
            name: `profile ${id}`,
            enabled: true,
            webhook_url: profileWebhooks.get(id) ?? null,
            webhook_failover_url: null,
            webhook_api_version: '2',
          },
        },
      };
    }

    if (method === 'POST' && path === '/messages') {
      const { from, to, text } = body;
      if (typeof to !== 'string' || !e164.test(to)) {
        return invalid('to must be in +E.164 format', '10016', 'Phone number must be in +E.164 format');
      }
      if (typeof text !== 'string' || text.length === 0) {
        return invalid('text is required for SMS', '10004', 'Missing required parameter');
      }
      const sender = typeof from === 'string' ? byNumber(from) : undefined;
      if (!sender?.messaging_profile_id) {
        return invalid(
          'from is not a number on a messaging profile of this account',
          '10013',
          'Missing association',
        );
      }
      const id = randomUUID();
      const profile = typeof body.messaging_profile_id === 'string' ? body.messaging_profile_id : null;
      messages.push({ id, from: sender.phone_number, to, text, messaging_profile_id: profile });
      const at = now();
      return {
        status: 200,
        body: {
          data: {
            record_type: 'message',
            direction: 'outbound',
            id,
            type: 'SMS',
            messaging_profile_id: sender.messaging_profile_id,
            from: { phone_number: sender.phone_number, carrier: 'Telnyx', line_type: 'Wireless' },
            to: [{ phone_number: to, status: 'queued', carrier: '', line_type: '' }],
            text,
            media: [],
            parts: 1,
            encoding: 'GSM-7',
            created_at: at,
            updated_at: at,
          },
        },
      };
    }

    return notFound();
  };

  const deliver: TelnyxStandin['deliver'] = async (url, payload, o = {}) => {
    const timestamp = o.timestamp ?? Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'telnyx-timestamp': String(timestamp),
      'telnyx-signature-ed25519': telnyxSignature(o.privateKey ?? privateKey, timestamp, payload),
      ...o.headers,
    };
    let status = 0;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body: payload,
        signal: AbortSignal.timeout(15_000),
      });
      status = res.status;
      await res.body?.cancel();
    } catch {
      status = 0;
    }
    return { url, body: payload, headers, status };
  };

  const receiveSms: TelnyxStandin['receiveSms'] = async (to, sms) => {
    const number = byNumber(to);
    if (!number) throw new Error(`telnyx stand-in: ${to} is not one of our numbers`);
    const eventId = randomUUID();
    const at = now();
    const payload = JSON.stringify({
      data: {
        record_type: 'event',
        id: eventId,
        event_type: 'message.received',
        occurred_at: at,
        payload: {
          record_type: 'message',
          direction: 'inbound',
          id: randomUUID(),
          type: 'SMS',
          messaging_profile_id: number.messaging_profile_id,
          from: { phone_number: sms.from, carrier: 'T-MOBILE USA, INC.', line_type: 'Wireless' },
          to: [{ phone_number: to, status: 'webhook_delivered', carrier: 'TELNYX LLC', line_type: 'VoIP' }],
          cc: [],
          text: sms.text,
          media: [],
          encoding: 'GSM-7',
          parts: 1,
          tags: [],
          received_at: at,
        },
      },
      meta: { attempt: 1, delivered_to: '' },
    });
    const url = number.messaging_profile_id ? profileWebhooks.get(number.messaging_profile_id) : null;
    return { eventId, delivery: url ? await deliver(url, payload) : null };
  };

  const server = await startProviderServer(handler);
  return {
    ...server,
    publicKey: publicKeyBase64,
    privateKey,
    profileWebhooks,
    receiveSms,
    deliver,
    baseUrl: `${server.url}/v2`,
    apiKey,
    inventory,
    orders,
    messages,
    stock,
    failNextOrders: (n) => {
      failOrders += n;
    },
    hold: (phoneNumber, o = {}) =>
      newNumber(phoneNumber, phoneNumber, {
        tags: o.tags ?? [],
        customer_reference: o.customerReference ?? null,
        messaging_profile_id: o.messagingProfileId === undefined ? [...profiles][0]! : o.messagingProfileId,
      }),
  };
}
