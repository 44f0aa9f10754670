/**
 * What every route module shares: the Hono environment (the authenticated owner) and the
 * dependencies `createApi` hands them.
 * @module
 */
import type { Hooks } from '../hooks.js';
import type { JsonValue } from '../store/records.js';

export type ApiEnv = { Variables: { owner: string } };

export interface RouteDeps {
  readonly hooks: Hooks;
  readonly maxBodyBytes: number;
  readonly examples: Readonly<Record<string, JsonValue>>;
}
