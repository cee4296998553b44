/**
 * What a namespace needs before a worker runs on it: the search attributes the workflows set. The one list is
 * `workflows/search-attributes.ts` (every key it exports); `npm run temporal:setup` and the dev server register
 * it through the operator service, and every worker start checks it (a workflow that upserts an attribute the
 * namespace does not know fails its task, over and over). On Temporal Cloud a namespace API key may not manage
 * search attributes: then the setup prints the `tcld` commands that do.
 */
import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import proto from '@temporalio/proto';
import * as keys from '../workflows/search-attributes';

// @temporalio/proto is CommonJS: take the namespace from its default export.
const { temporal } = proto;
const IndexedValueType = temporal.api.enums.v1.IndexedValueType;

export interface SearchAttributeSpec {
  name: string;
  type: SearchAttributeType;
}

/**
 * Every search attribute the workflows set: the keys `workflows/search-attributes.ts` exports, but the deprecated
 * `AgentName` (set only by claims recorded before `no-agent-name-attribute`, which a new namespace never holds).
 */
export const SEARCH_ATTRIBUTES: readonly SearchAttributeSpec[] = (Object.values(keys) as unknown[])
  .filter(
    (v): v is SearchAttributeKey<SearchAttributeType> =>
      typeof v === 'object' && v !== null && 'name' in v && 'type' in v && v !== keys.AgentNameKey,
  )
  .map(({ name, type }) => ({ name, type }));

/** The spelling of the `temporal` CLI, `tcld` and temporal-dev flags: `KEYWORD_LIST` → `KeywordList`. */
export function typeName(type: SearchAttributeType): string {
  return type
    .toLowerCase()
    .split('_')
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

/** Both `Connection` and `NativeConnection` have one. */
export type OperatorService = Pick<
  proto.temporal.api.operatorservice.v1.OperatorService,
  'listSearchAttributes' | 'addSearchAttributes'
>;

/** A namespace that is not set up, or cannot be: the message says what to run. */
export class NamespaceSetupError extends Error {
  override name = 'NamespaceSetupError';
}

const code = (err: unknown) => (err as { code?: unknown })?.code;
/** gRPC PERMISSION_DENIED or UNIMPLEMENTED: this connection may not manage (or list) search attributes. */
export const isNotPermitted = (err: unknown) => code(err) === 7 || code(err) === 12;
const isNotFound = (err: unknown) => code(err) === 5;
const isAlreadyExists = (err: unknown) => code(err) === 6;

/** The commands that register `attributes` on a Temporal Cloud namespace (one each: tcld refuses a known one). */
export function tcldCommands(namespace: string, attributes: readonly SearchAttributeSpec[]): string[] {
  return attributes.map(
    (a) =>
      `tcld namespace search-attributes add --namespace ${namespace} --search-attribute ${a.name}=${typeName(a.type)}`,
  );
}

/** The namespace's custom search attributes and their types. */
export async function listSearchAttributes(
  operator: OperatorService,
  namespace: string,
): Promise<Map<string, SearchAttributeType | 'UNKNOWN'>> {
  let response: proto.temporal.api.operatorservice.v1.IListSearchAttributesResponse;
  try {
    response = await operator.listSearchAttributes({ namespace });
  } catch (err) {
    if (isNotFound(err))
      throw new NamespaceSetupError(
        `Temporal namespace "${namespace}" does not exist: create it first (self-hosted: \`temporal operator namespace create --namespace ${namespace}\`; Temporal Cloud: the Cloud UI or \`tcld namespace create\`)`,
      );
    throw err;
  }
  const out = new Map<string, SearchAttributeType | 'UNKNOWN'>();
  for (const [name, value] of Object.entries(response.customAttributes ?? {})) {
    const enumName = typeof value === 'number' ? IndexedValueType[value] : String(value);
    out.set(name, (enumName?.replace(/^INDEXED_VALUE_TYPE_/, '') ?? 'UNKNOWN') as SearchAttributeType);
  }
  return out;
}

export interface SearchAttributePlan {
  present: SearchAttributeSpec[];
  missing: SearchAttributeSpec[];
  /** Registered with another type: not ours to change (that needs a new name, or the attribute removed). */
  conflicting: Array<SearchAttributeSpec & { actual: string }>;
}

export function planSearchAttributes(
  existing: ReadonlyMap<string, string>,
  wanted: readonly SearchAttributeSpec[] = SEARCH_ATTRIBUTES,
): SearchAttributePlan {
  const plan: SearchAttributePlan = { present: [], missing: [], conflicting: [] };
  for (const attribute of wanted) {
    const actual = existing.get(attribute.name);
    if (actual === undefined) plan.missing.push(attribute);
    else if (actual === attribute.type) plan.present.push(attribute);
    else plan.conflicting.push({ ...attribute, actual });
  }
  return plan;
}

function conflictMessage(namespace: string, plan: SearchAttributePlan): string {
  const list = plan.conflicting
    .map(
      (c) =>
        `${c.name} is ${typeName(c.actual as SearchAttributeType)}, the workflows need ${typeName(c.type)}`,
    )
    .join('; ');
  return `Temporal namespace "${namespace}" has search attributes of another type: ${list}. Remove them (\`temporal operator search-attribute remove --namespace ${namespace} --name <name>\`) and run \`npm run temporal:setup\`, or use another namespace`;
}

/**
 * Registers the attributes `namespace` lacks (idempotent: one already there with the same type is fine).
 * Throws a `NamespaceSetupError` on one registered with another type, and, when the operator API is refused
 * (Temporal Cloud with a namespace API key), one whose message is the `tcld` commands to run instead.
 */
export async function registerSearchAttributes(
  operator: OperatorService,
  namespace: string,
  wanted: readonly SearchAttributeSpec[] = SEARCH_ATTRIBUTES,
): Promise<{ added: SearchAttributeSpec[]; present: SearchAttributeSpec[] }> {
  const refused = (missing: readonly SearchAttributeSpec[]) =>
    new NamespaceSetupError(
      [
        `This connection may not manage the search attributes of Temporal namespace "${namespace}" (on Temporal Cloud, a namespace API key cannot).`,
        'Register them with tcld (https://docs.temporal.io/cloud/tcld), logged in as an account or namespace admin:',
        ...tcldCommands(namespace, missing).map((c) => `  ${c}`),
        '(or in the Cloud UI: the namespace → Search Attributes). Then run `npm run temporal:setup` again to check.',
      ].join('\n'),
    );
  let existing: Map<string, string>;
  try {
    existing = await listSearchAttributes(operator, namespace);
  } catch (err) {
    if (isNotPermitted(err)) throw refused(wanted);
    throw err;
  }
  const plan = planSearchAttributes(existing, wanted);
  if (plan.conflicting.length > 0) throw new NamespaceSetupError(conflictMessage(namespace, plan));
  if (plan.missing.length === 0) return { added: [], present: plan.present };
  try {
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        plan.missing.map((a) => [
          a.name,
          IndexedValueType[`INDEXED_VALUE_TYPE_${a.type}` as keyof typeof IndexedValueType] as number,
        ]),
      ),
    });
  } catch (err) {
    if (isNotPermitted(err)) throw refused(plan.missing);
    // Another setup registered them meanwhile: check again.
    if (isAlreadyExists(err)) {
      const again = planSearchAttributes(await listSearchAttributes(operator, namespace), wanted);
      if (again.conflicting.length > 0) throw new NamespaceSetupError(conflictMessage(namespace, again));
      if (again.missing.length === 0) return { added: [], present: again.present };
    }
    throw err;
  }
  return { added: plan.missing, present: plan.present };
}

/**
 * At worker start: refuses (throws a `NamespaceSetupError` saying to run `npm run temporal:setup`) when the
 * namespace lacks a search attribute or has one of another type. When listing is not permitted, `warn`s
 * and lets the worker start.
 */
export async function checkSearchAttributes(
  operator: OperatorService,
  namespace: string,
  warn: (message: string) => void,
  wanted: readonly SearchAttributeSpec[] = SEARCH_ATTRIBUTES,
): Promise<void> {
  let existing: Map<string, string>;
  try {
    existing = await listSearchAttributes(operator, namespace);
  } catch (err) {
    if (!isNotPermitted(err)) throw err;
    warn(
      `cannot list the search attributes of Temporal namespace "${namespace}" (${(err as Error).message}); starting anyway: if one is missing, workflows fail — \`npm run temporal:setup\` says what to register`,
    );
    return;
  }
  const plan = planSearchAttributes(existing, wanted);
  if (plan.conflicting.length > 0) throw new NamespaceSetupError(conflictMessage(namespace, plan));
  if (plan.missing.length > 0)
    throw new NamespaceSetupError(
      `Temporal namespace "${namespace}" lacks the search attributes ${plan.missing.map((a) => `${a.name} (${typeName(a.type)})`).join(', ')}: run \`npm run temporal:setup\` with this environment, then start the worker again`,
    );
}
