/**
 * JSON Schema validation of trace lines against schema/trace.schema.json,
 * compiled once with ajv (fast compiled validators and precise error paths,
 * which a hand-written checker would have to reimplement).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';

const schemaUrl = new URL('../../schema/trace.schema.json', import.meta.url);

interface Validators {
  header: ValidateFunction;
  event: ValidateFunction;
}

let validators: Validators | undefined;

function compile(): Validators {
  const schema = JSON.parse(readFileSync(schemaUrl, 'utf8')) as Record<string, unknown>;
  const ajv = new Ajv2020({ discriminator: true, allErrors: false, strict: false });
  ajv.addSchema(schema);
  const id = schema.$id as string;
  return {
    header: ajv.getSchema(`${id}#/$defs/header`)!,
    event: ajv.getSchema(`${id}#/$defs/event`)!,
  };
}

function get(): Validators {
  validators ??= compile();
  return validators;
}

export interface SchemaProblem {
  field: string;
  reason: string;
}

function fieldOf(e: ErrorObject): string {
  let path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'discriminator') return (e.params as { tag: string }).tag;
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    path = path ? `${path}.${missing}` : missing;
  }
  return path || '(line)';
}

/** An unknown type is quoted only when it looks like a name: the line may be any file's bytes. */
export function unknownType(tag: unknown): string {
  return typeof tag === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(tag) ? `unknown event type ${JSON.stringify(tag)}` : 'unknown event type';
}

function describe(e: ErrorObject, data: unknown): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return 'is required but missing';
    case 'discriminator': {
      const tag = (data as Record<string, unknown> | null)?.type;
      return p.error === 'mapping' ? unknownType(tag) : 'expected a string event type';
    }
    case 'const':
      return `expected ${JSON.stringify(p.allowedValue)}`;
    case 'enum':
      return `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'type':
      return `expected ${String(p.type)}`;
    case 'pattern':
      if (e.schemaPath.includes('/text/')) return 'contains a control character (C0, DEL or C1), which a trace may not hold in text';
      return 'does not have the expected form';
    case 'oneOf':
    case 'anyOf':
      if (e.schemaPath.includes('/u64/')) {
        return 'expected an unsigned 64-bit value: an integer below 2^53, or a "0x..." or decimal string below 2^64';
      }
      if (e.schemaPath.includes('/ret/')) {
        return 'expected an integer result, a negative errno, or an errno name such as "EINVAL"';
      }
      if (e.schemaPath.includes('/pages_arg/')) {
        return 'expected either iova and npage, or iovas (not both)';
      }
      return `must match exactly one allowed form`;
    default:
      return e.message ?? e.keyword;
  }
}

function problem(validate: ValidateFunction, data: unknown): SchemaProblem | undefined {
  if (validate(data)) return undefined;
  const errors = validate.errors ?? [];
  // The most specific error is the one with the deepest path; ajv reports
  // the branch failures of a oneOf before the oneOf itself.
  const u64 = errors.find((e) => e.keyword === 'oneOf');
  const pick =
    u64 && errors.every((e) => e.instancePath.startsWith(u64.instancePath)) ? u64 : errors[0];
  if (!pick) return { field: '(line)', reason: 'does not match the trace schema' };
  return { field: fieldOf(pick), reason: describe(pick, data) };
}

export function checkHeader(data: unknown): SchemaProblem | undefined {
  return problem(get().header, data);
}

export function checkEvent(data: unknown): SchemaProblem | undefined {
  return problem(get().event, data);
}
