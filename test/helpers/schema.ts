/** Validates pktpath's JSON lines against schema/event.v1.json. */
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';

export const SCHEMA_URL = new URL('../../../schema/event.v1.json', import.meta.url);

// ajv is CommonJS: under NodeNext its class is the default export's `default`.
const Ajv2020 = Ajv2020Module.default;

interface Validators {
  line: ValidateFunction;
  event: ValidateFunction;
  lost: ValidateFunction;
}

let validators: Validators | null = null;

/** The compiled schema, built once per process. */
function compiled(): Validators {
  if (validators === null) {
    const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as { $id: string };
    const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true });
    const line = ajv.compile(schema);
    validators = {
      line,
      event: ajv.getSchema(`${schema.$id}#/$defs/event`)!,
      lost: ajv.getSchema(`${schema.$id}#/$defs/lost`)!,
    };
  }
  return validators;
}

/** The validator of a whole line (either kind of record). */
export function schemaValidator(): ValidateFunction {
  return compiled().line;
}

/** Checks one line of --output-json: null when it is valid, else why not (one line). */
export function validateJsonLine(line: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  const v = compiled();
  if (v.line(value)) return null;
  // oneOf reports the failures of both kinds; explain the kind the line claims to be.
  const kind = (value as { type?: unknown } | null)?.type === 'lost' ? v.lost : v.event;
  if (kind(value)) return (v.line.errors ?? []).map((err) => err.message).join('; ');
  return (kind.errors ?? [])
    .map((err) => `${err.instancePath || '/'} ${err.message ?? 'is invalid'}${err.params && 'additionalProperty' in err.params ? ` (${String(err.params['additionalProperty'])})` : ''}`)
    .join('; ');
}

let datapath: ValidateFunction | null = null;

/** Checks `pktpath datapath --json` output against schema/datapath.v1.json: null when valid, else why not. */
export function validateDatapath(value: unknown): string | null {
  if (datapath === null) {
    const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true });
    datapath = ajv.compile(JSON.parse(readFileSync(new URL('../../../schema/datapath.v1.json', import.meta.url), 'utf8')) as object);
  }
  if (datapath(value)) return null;
  return (datapath.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`).join('; ');
}
