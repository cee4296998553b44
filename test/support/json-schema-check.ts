/**
 * A small JSON Schema checker for the subset the API's OpenAPI document uses, written independently of the
 * API's own validator (Ajv) so that the fuzz suite's oracle does not share its bugs. It answers whether a
 * value satisfies a schema. A keyword it does not know throws: a route whose schema uses a new keyword must
 * extend this file, rather than be judged wrongly in silence.
 */

export type Schema = Record<string, unknown>;

/** Keywords that carry no validation rule. */
const ANNOTATIONS = new Set(['description', 'title', 'examples', 'default', '$id', 'format', 'nullable']);

const codePoints = (s: string) => [...s].length;

function typeMatches(type: string, value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    default:
      throw new Error(`json-schema-check: unsupported type ${type}`);
  }
}

/** True when `value` satisfies `schema`. */
export function satisfies(schema: Schema, value: unknown): boolean {
  for (const [keyword, rule] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword)) continue;
    switch (keyword) {
      case 'type': {
        const types = Array.isArray(rule) ? (rule as string[]) : [rule as string];
        if (!types.some((t) => typeMatches(t, value))) return false;
        break;
      }
      case 'enum':
        if (!(rule as unknown[]).some((v) => v === value)) return false;
        break;
      case 'const':
        if (rule !== value) return false;
        break;
      case 'anyOf':
        if (!(rule as Schema[]).some((s) => satisfies(s, value))) return false;
        break;
      case 'oneOf':
        if ((rule as Schema[]).filter((s) => satisfies(s, value)).length !== 1) return false;
        break;
      case 'allOf':
        if (!(rule as Schema[]).every((s) => satisfies(s, value))) return false;
        break;
      case 'minLength':
        if (typeof value === 'string' && codePoints(value) < (rule as number)) return false;
        break;
      case 'maxLength':
        if (typeof value === 'string' && codePoints(value) > (rule as number)) return false;
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(rule as string, 'u').test(value)) return false;
        break;
      case 'minimum':
        if (typeof value === 'number' && !(value >= (rule as number))) return false;
        break;
      case 'maximum':
        if (typeof value === 'number' && !(value <= (rule as number))) return false;
        break;
      case 'exclusiveMinimum':
        if (typeof value === 'number' && !(value > (rule as number))) return false;
        break;
      case 'exclusiveMaximum':
        if (typeof value === 'number' && !(value < (rule as number))) return false;
        break;
      case 'required':
        if (typeMatches('object', value)) {
          for (const name of rule as string[]) if (!Object.hasOwn(value as object, name)) return false;
        }
        break;
      case 'properties':
        if (typeMatches('object', value)) {
          for (const [name, sub] of Object.entries(rule as Record<string, Schema>)) {
            if (
              Object.hasOwn(value as object, name) &&
              !satisfies(sub, (value as Record<string, unknown>)[name])
            )
              return false;
          }
        }
        break;
      case 'additionalProperties':
        if (typeMatches('object', value)) {
          const known = new Set(Object.keys((schema.properties as Record<string, Schema>) ?? {}));
          for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
            if (known.has(name)) continue;
            if (rule === false) return false;
            if (typeof rule === 'object' && !satisfies(rule as Schema, item)) return false;
          }
        }
        break;
      case 'items':
        if (Array.isArray(value) && !value.every((item) => satisfies(rule as Schema, item))) return false;
        break;
      case 'minItems':
        if (Array.isArray(value) && value.length < (rule as number)) return false;
        break;
      case 'maxItems':
        if (Array.isArray(value) && value.length > (rule as number)) return false;
        break;
      default:
        throw new Error(
          `json-schema-check: unsupported keyword "${keyword}"; extend test/support/json-schema-check.ts`,
        );
    }
  }
  return true;
}
