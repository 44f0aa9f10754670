/**
 * Reading the admin page's forms (pure): form values as entered, metadata JSON, the recover date, and
 * recognising the core's validation errors so they can be shown beside the field at fault.
 * @module
 */
import { ValidationError } from '../../errors.js';
import type { JsonValue } from '../../store/records.js';
import { coreErrorStatus } from '../errors.js';

/** The subscription form exactly as entered, so a rejected form comes back unchanged. */
export interface SubscriptionFormValues {
  owner: string;
  event: string;
  target: string;
  /** `'true'` or `'false'`. */
  active: string;
  /** JSON text; empty for none. */
  metadata: string;
}

/** A problem to show in a form: `field` names the input it belongs to (none: the whole form). */
export interface FormProblem {
  readonly field: string | undefined;
  readonly message: string;
}

export function subscriptionFormValues(form: URLSearchParams): SubscriptionFormValues {
  const text = (name: string) => form.get(name) ?? '';
  return { owner: text('owner').trim(), event: text('event'), target: text('target').trim(), active: text('active') || 'true', metadata: text('metadata').trim() };
}

/** Empty text → null (no metadata); else a JSON object. */
export function parseMetadata(text: string): { [key: string]: JsonValue } | null {
  if (text === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError('invalid_field', 'Metadata must be valid JSON, e.g. {"team": "billing"}, or empty.', 'metadata');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ValidationError('invalid_field', 'Metadata must be a JSON object, e.g. {"team": "billing"}, or empty.', 'metadata');
  return value as { [key: string]: JsonValue };
}

export function parseActive(text: string): boolean {
  if (text === 'true' || text === 'false') return text === 'true';
  throw new ValidationError('invalid_field', 'Status must be active or disabled.', 'active');
}

/** A `datetime-local` value, read as UTC (`2025-03-01T12:00`), or any ISO time with a zone. */
export function parseSince(text: string): Date {
  const local = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text);
  const time = local ? Date.parse(`${text}Z`) : /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(time)) throw new ValidationError('invalid_field', 'Give a date and time, e.g. 2025-03-01T12:00 (UTC).', 'since');
  return new Date(time);
}

/** `date` as a `datetime-local` value in UTC, to the minute. */
export function toDateTimeLocal(date: Date): string {
  return date.toISOString().slice(0, 16);
}

/**
 * The form problem a thrown value stands for, or undefined when it is not an input error: the core
 * errors the REST API answers with 400 are the ones a person filling in a form can cause.
 */
export function formProblem(error: unknown): FormProblem | undefined {
  if (coreErrorStatus(error) !== 400) return undefined;
  const { field, message } = error as Error & { field?: unknown };
  return { field: typeof field === 'string' ? field : undefined, message };
}
