/**
 * The one schema module. Postgres holds the read model of every instance (Temporal holds the truth about
 * each lifecycle), the claims ledger that makes claims idempotent, the audit trail and the catalog.
 * Change it, then `npm run db:generate` to write a migration; never edit a released migration.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** Read model of each instance workflow. Written by the workflow through activities, in `seq` order. */
export const instances = pgTable(
  'instances',
  {
    id: text('id').primaryKey(),
    pool: text('pool').notNull(),
    status: text('status').notNull(),
    /** Monotonic write sequence from the workflow: a late retry of an older write never wins. */
    seq: integer('seq').notNull().default(0),
    provider: text('provider').notNull(),
    /** The runtime version its compute was created with (the provider's image id or source hash); null: unknown. */
    runtimeVersion: text('runtime_version'),
    /** Where the instance's control server answers (no credentials in it). */
    url: text('url'),
    agentName: text('agent_name'),
    templateSlug: text('template_slug'),
    conversationId: text('conversation_id'),
    // No invite URL: it is a bearer link to a private group, kept only in the encrypted secret store.
    joined: integer('joined'),
    claimKey: text('claim_key'),
    /** A claim in the API has picked this idle instance and is asking its workflow; expires on its own. */
    reservedBy: text('reserved_by'),
    reservedUntil: ts('reserved_until'),
    lastError: text('last_error'),
    failedStep: text('failed_step'),
    createdAt: ts('created_at').notNull().defaultNow(),
    idleAt: ts('idle_at'),
    claimedAt: ts('claimed_at'),
    destroyedAt: ts('destroyed_at'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('instances_pool_status_idx').on(t.pool, t.status)],
);

/** Every resource an instance holds at a provider; rows stay after release for audit. */
export const instanceResources = pgTable(
  'instance_resources',
  {
    instanceId: text('instance_id').notNull(),
    kind: text('kind').notNull(),
    provider: text('provider').notNull(),
    ref: text('ref').notNull(),
    status: text('status').notNull().default('active'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: ts('created_at').notNull().defaultNow(),
    releasedAt: ts('released_at'),
  },
  (t) => [primaryKey({ columns: [t.instanceId, t.kind] })],
);

/** Per-instance secrets, AES-256-GCM encrypted at rest; never copied into workflow payloads. */
export const instanceSecrets = pgTable(
  'instance_secrets',
  {
    instanceId: text('instance_id').notNull(),
    name: text('name').notNull(),
    ciphertext: text('ciphertext').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.instanceId, t.name] })],
);

/** The idempotency ledger of claims: one row per Idempotency-Key. */
export const claims = pgTable(
  'claims',
  {
    key: text('key').primaryKey(),
    fingerprint: text('fingerprint').notNull(),
    status: text('status').notNull(),
    /** The instance this claim was last sent to: a retry re-asks it first (same Update id). */
    instanceId: text('instance_id'),
    result: jsonb('result').$type<Record<string, unknown>>(),
    error: jsonb('error').$type<{ statusCode: number; code: string; message: string }>(),
    /** Who is working on the claim right now; another API replica takes over once the lease runs out. */
    leaseOwner: text('lease_owner'),
    leaseUntil: ts('lease_until'),
    attempts: integer('attempts').notNull().default(0),
    /** The end user an API-key holder claimed for (`X-Client-Id`), e.g. the site's hashed visitor id. */
    clientId: text('client_id'),
    /** Claimed for an unauthenticated visitor (`X-Client-Anonymous`): counts against the global budget. */
    anonymous: boolean('anonymous').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('claims_instance_idx').on(t.instanceId),
    index('claims_anonymous_idx').on(t.createdAt).where(sql`anonymous`),
  ],
);

/** Audit trail: every transition of every instance, with who caused it and why. */
export const instanceEvents = pgTable(
  'instance_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    instanceId: text('instance_id').notNull(),
    /** Deterministic per workflow, so an activity retry never writes an event twice. */
    eventKey: text('event_key').notNull(),
    fromStatus: text('from_status'),
    toStatus: text('to_status').notNull(),
    actor: text('actor').notNull(),
    reason: text('reason').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('instance_events_key_idx').on(t.instanceId, t.eventKey),
    index('instance_events_at_idx').on(t.instanceId, t.at),
  ],
);

/** The agent catalog, seeded from catalog/templates.json (versioned in the repo). */
export const templates = pgTable('templates', {
  slug: text('slug').primaryKey(),
  name: text('name').notNull(),
  emoji: text('emoji').notNull(),
  category: text('category').notNull(),
  description: text('description').notNull(),
  skills: jsonb('skills').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
  instructions: text('instructions').notNull(),
  catalogVersion: integer('catalog_version').notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * Our reusable pool of Telnyx numbers: a number released by an instance goes back here (`available`) and
 * the next instance takes it before anything new is ordered. Rows for numbers released at Telnyx stay
 * (`released`) for audit.
 */
export const phoneNumbers = pgTable(
  'phone_numbers',
  {
    /** E.164, e.g. +15551234567. */
    phoneNumber: text('phone_number').primaryKey(),
    /** Telnyx's phone number resource id. */
    providerId: text('provider_id').notNull(),
    status: text('status').notNull().default('available'),
    instanceId: text('instance_id'),
    orderedAt: ts('ordered_at').notNull().defaultNow(),
    assignedAt: ts('assigned_at'),
    releasedAt: ts('released_at'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('phone_numbers_status_idx').on(t.status),
    uniqueIndex('phone_numbers_instance_idx').on(t.instanceId).where(sql`status = 'assigned'`),
  ],
);

/**
 * Whom each claimed instance may email or text through the pool's proxy (`/api/pool/self/*`): what its
 * claimant allowed (the claim's `allowedRecipients`, or `PUT /api/pool/instances/:id/recipients`). Anything
 * else is refused, so a prompt injection cannot turn the pool into a relay. The addresses are third
 * parties' personal data: never in workflow payloads, logs or the audit trail. Emails are lowercased.
 */
export const instanceRecipients = pgTable(
  'instance_recipients',
  {
    instanceId: text('instance_id').notNull(),
    /** `email` or `sms`. */
    channel: text('channel').notNull(),
    /** A lowercased email address, or an E.164 number. */
    address: text('address').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.instanceId, t.channel, t.address] })],
);

/**
 * Inbound emails and SMS the providers' webhooks delivered (docs/providers.md, "Inbound"): one row per
 * provider event, which is what deduplicates the providers' at-least-once deliveries. The content (sender,
 * subject, text) is not here: it waits in the secret store, encrypted, until it reached the runtime.
 */
export const inboundEvents = pgTable(
  'inbound_events',
  {
    /** `agentmail` or `telnyx`. */
    provider: text('provider').notNull(),
    /** The provider's event id (AgentMail `event_id`, Telnyx `data.id`). */
    eventId: text('event_id').notNull(),
    instanceId: text('instance_id').notNull(),
    /** `email` or `sms`. */
    channel: text('channel').notNull(),
    /** `pending` → `delivered` (the runtime took it) or `dropped` (the instance went away first). */
    status: text('status').notNull().default('pending'),
    /** The newest signed timestamp accepted for it: a delivery signed no later is a replay. */
    signedAt: ts('signed_at').notNull(),
    receivedAt: ts('received_at').notNull().defaultNow(),
    deliveredAt: ts('delivered_at'),
    /** Why it was dropped (never the content). */
    reason: text('reason'),
  },
  (t) => [
    primaryKey({ columns: [t.provider, t.eventId] }),
    index('inbound_events_instance_idx').on(t.instanceId, t.receivedAt),
  ],
);

/**
 * The payments ledger (`/api/pool/self/payments/*`, docs/providers.md "Bankr"): one row per transfer an
 * instance asked for, whatever became of it. It is what the per-instance daily cap is counted on, under one
 * lock per instance, so concurrent requests cannot overrun it: `pending`, `sending`, `sent` and `unknown`
 * rows count; `refused`, `failed` and `expired` ones do not. Amounts are integer micro-USDC (6 decimals).
 * The confirmation code of a held transfer is kept only as a hash, and only while it can be used.
 */
export const payments = pgTable(
  'payments',
  {
    id: text('id').primaryKey(),
    instanceId: text('instance_id').notNull(),
    /** `USDC` on `base`: the only asset the pool pays in (its dollar value is its amount). */
    asset: text('asset').notNull(),
    chain: text('chain').notNull(),
    amountMicros: bigint('amount_micros', { mode: 'bigint' }).notNull(),
    /** The recipient's 0x address, lowercased. */
    destination: text('destination').notNull(),
    /**
     * `pending` (held until confirmed) → `sending` → `sent` | `failed` (Bankr said no, or was down: nothing
     * moved) | `unknown` (the answer was lost: it may have gone out, so it is never resent); `refused` (over
     * the cap, or too many wrong codes) and `expired` (never confirmed) end without a call to Bankr.
     */
    status: text('status').notNull(),
    confirmCodeHash: text('confirm_code_hash'),
    confirmAttempts: integer('confirm_attempts').notNull().default(0),
    confirmExpiresAt: ts('confirm_expires_at'),
    txHash: text('tx_hash'),
    /** Why it was refused or failed (never a key or a code). */
    reason: text('reason'),
    createdAt: ts('created_at').notNull(),
    decidedAt: ts('decided_at'),
  },
  (t) => [index('payments_instance_idx').on(t.instanceId, t.createdAt)],
);
