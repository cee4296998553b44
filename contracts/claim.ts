/**
 * What a valid claim is: one definition for the site (before it forwards a visitor's claim), the API (its
 * JSON schemas) and the runtime (`POST /pool/provision`), so nothing the runtime would refuse gets past the
 * edge. Plain TypeScript with no imports: the runtime, the site and the workflow bundle all load it.
 *
 * Patterns are JSON-Schema patterns as well as JavaScript ones; compile them with the `u` flag (Ajv does).
 */

/** An agent's display name: one line, 1–64 characters (code points are counted as JavaScript does). */
export const AGENT_NAME_MAX = 64;
/**
 * Instructions are written into the agent's workspace, which OpenClaw reads with a 20,000-character budget per
 * file (`bootstrapMaxChars`): more would be cut off silently, so the whole chain refuses it instead.
 */
export const INSTRUCTIONS_MAX = 20_000;
/** A Convos invite URL (its slug grows with the conversation's name and description). */
export const JOIN_URL_MAX = 8_192;
export const TEMPLATE_SLUG_MAX = 64;
export const IDEMPOTENCY_KEY_MAX = 128;

/**
 * Characters no text of ours may hold: C0/C1 controls (Cc), format characters such as bidi overrides and
 * zero-width spaces (Cf, except the joiners U+200C/U+200D that emoji sequences and several scripts need),
 * line/paragraph separators, and lone surrogates (Cs: a valid pair is one code point under the `u` flag).
 */
const FORBIDDEN = String.raw`\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}`;
const JOINERS = String.raw`\u200C\u200D`;

/** One line of text, 1–64 characters, not blank. */
export const AGENT_NAME_PATTERN = String.raw`^(?=.*\S)(?:[^${FORBIDDEN}]|[${JOINERS}]){1,${AGENT_NAME_MAX}}$`;
/** Multi-line text: the same rules, but tabs and line breaks are allowed. */
export const TEXT_PATTERN = String.raw`^(?:[^${FORBIDDEN}]|[\t\n\r${JOINERS}])*$`;
/** Lowercase words joined by single hyphens (`meeting-scribe`). */
export const TEMPLATE_SLUG_PATTERN = '^[a-z0-9]+(?:-[a-z0-9]+)*$';
/** Printable ASCII without spaces: what every Convos invite form (URL, `convos://`, bare slug) is made of. */
export const JOIN_URL_PATTERN = '^[\\x21-\\x7E]+$';
export const IDEMPOTENCY_KEY_PATTERN = '^[A-Za-z0-9._:-]+$';
/**
 * One email address, as the pool's email proxy and a claim's `allowedRecipients` accept it: no display name,
 * list or separator (the provider would accept several).
 */
export const EMAIL_ADDRESS_PATTERN = '^[^\\s@<>,;"]+@[^\\s@<>,;"]+\\.[^\\s@<>,;"]+$';
export const EMAIL_ADDRESS_MIN = 3;
export const EMAIL_ADDRESS_MAX = 254;
/** One phone number in E.164 form (`+15551234567`), as the SMS proxy and `allowedRecipients` accept it. */
export const PHONE_NUMBER_PATTERN = '^\\+[1-9][0-9]{6,14}$';
/** Recipients a claimant may allow per channel (`allowedRecipients.email`, `allowedRecipients.sms`). */
export const ALLOWED_RECIPIENTS_MAX = 20;

const agentNameRe = new RegExp(AGENT_NAME_PATTERN, 'u');
const textRe = new RegExp(TEXT_PATTERN, 'u');
const slugRe = new RegExp(TEMPLATE_SLUG_PATTERN);
const joinUrlRe = new RegExp(JOIN_URL_PATTERN);
const idempotencyKeyRe = new RegExp(IDEMPOTENCY_KEY_PATTERN);

/** What each pattern means, in words: error messages name the rule, not a regular expression. */
export const PATTERN_RULES: Record<string, string> = {
  [AGENT_NAME_PATTERN]: `must be one line of 1–${AGENT_NAME_MAX} characters, without control or format characters`,
  [TEXT_PATTERN]:
    'must be text without control characters (other than tabs and line breaks) or format characters',
  [TEMPLATE_SLUG_PATTERN]: 'must be a template slug (lowercase letters and digits joined by single hyphens)',
  [JOIN_URL_PATTERN]: 'must be a Convos invite link (printable ASCII, no spaces)',
  [IDEMPOTENCY_KEY_PATTERN]: `must be 1–${IDEMPOTENCY_KEY_MAX} characters of A–Z a–z 0–9 . _ : -`,
  [EMAIL_ADDRESS_PATTERN]: 'must be one email address (no display name, list or separator)',
  [PHONE_NUMBER_PATTERN]: 'must be one phone number in E.164 form (+15551234567)',
};

/** The first code point that breaks the text rules, for a message such as "U+0007 at position 3". */
function offending(value: string, multiline: boolean): string {
  const allowed = new RegExp(
    String.raw`^(?:[^${FORBIDDEN}]|[${multiline ? '\\t\\n\\r' : ''}${JOINERS}])$`,
    'u',
  );
  let position = 0;
  for (const char of value) {
    if (!allowed.test(char)) {
      const hex = (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
      return ` (U+${hex} at position ${position})`;
    }
    position += 1;
  }
  return '';
}

/** Why `value` is not a valid agent name, or null when it is. */
export function agentNameProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'agentName must be a string';
  if (agentNameRe.test(value)) return null;
  if (!/\S/.test(value)) return 'agentName must not be blank';
  if ([...value].length > AGENT_NAME_MAX) return `agentName must be at most ${AGENT_NAME_MAX} characters`;
  return `agentName ${PATTERN_RULES[AGENT_NAME_PATTERN]}${offending(value, false)}`;
}

/** Why `value` is not valid instructions, or null when it is. */
export function instructionsProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'instructions must be a string';
  if (value.length > INSTRUCTIONS_MAX) return `instructions must be at most ${INSTRUCTIONS_MAX} characters`;
  if (textRe.test(value)) return null;
  return `instructions ${PATTERN_RULES[TEXT_PATTERN]}${offending(value, true)}`;
}

/** Why `value` cannot be a join URL (its shape only; the invite's content is checked where it is decoded). */
export function joinUrlProblem(value: unknown): string | null {
  if (typeof value !== 'string' || value.length === 0) return 'joinUrl must be a non-empty string';
  if (value.length > JOIN_URL_MAX) return `joinUrl must be at most ${JOIN_URL_MAX} characters`;
  return joinUrlRe.test(value) ? null : `joinUrl ${PATTERN_RULES[JOIN_URL_PATTERN]}`;
}

export function isTemplateSlug(value: unknown): value is string {
  return typeof value === 'string' && value.length <= TEMPLATE_SLUG_MAX && slugRe.test(value);
}

export function isIdempotencyKey(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length >= 1 &&
    value.length <= IDEMPOTENCY_KEY_MAX &&
    idempotencyKeyRe.test(value)
  );
}

/**
 * Any other string a client sends (header, path or query parameter, body field): no control characters but
 * tabs and, where `multiline`, line breaks; no lone surrogates. U+0000 in particular never reaches Postgres.
 */
export function controlCharacterProblem(value: string, multiline: boolean): string | null {
  const re = multiline ? /[\p{Cs}]|(?![\t\n\r])\p{Cc}/u : /[\p{Cs}]|(?!\t)\p{Cc}/u;
  const match = re.exec(value);
  if (!match) return null;
  const hex = (match[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
  const what = /\p{Cs}/u.test(match[0]) ? 'a lone surrogate' : 'a control character';
  return `contains ${what} (U+${hex} at index ${match.index})`;
}
