import { newId } from '../ids.js';
import type { DeliveryTable } from './schema.js';

/** A delivery due now, not yet attempted. */
export function newDeliveryRow(eventId: string, subscriptionId: string, now: number, body: string | null = null): DeliveryTable {
  return {
    id: newId('dlv'),
    event_id: eventId,
    subscription_id: subscriptionId,
    status: 'pending',
    attempts: 0,
    due_at: now,
    body,
    last_status_code: null,
    last_error: null,
    created_at: now,
    updated_at: now,
  };
}

/**
 * A first attempt that delivered is kept in its delivery's row (migration 0007): the update that marks
 * the delivery delivered writes it, and no attempt row is inserted. Every engine writes it so, the
 * statements per row and PostgreSQL's set-based record statement alike: the common case writes one row.
 */
export function keptInDeliveryRow(attempt: { readonly number: number; readonly outcome: string }): boolean {
  return attempt.number === 1 && attempt.outcome === 'delivered';
}
