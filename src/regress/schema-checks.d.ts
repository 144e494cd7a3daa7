/**
 * The validators of each kind of trace line, generated at build time by
 * scripts/schema-checks.mjs (ajv's standalone code) from schema/event.v1.json
 * (event, lost, header, settings, explanation) and schema/normalized.v1.json (normalized, packet).
 */
import type { ErrorObject } from 'ajv';

export interface SchemaCheck {
  (data: unknown): boolean;
  /** Why the last value checked failed: the first problem found. */
  errors?: ErrorObject[] | null;
}

export declare const event: SchemaCheck;
export declare const lost: SchemaCheck;
export declare const header: SchemaCheck;
export declare const settings: SchemaCheck;
export declare const normalized: SchemaCheck;
export declare const packet: SchemaCheck;
export declare const explanation: SchemaCheck;
