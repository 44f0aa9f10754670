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

/**
 * The id of a delivery's first attempt: the delivery's own id under the `att_` prefix (the same TypeID
 * suffix, so it reads back the delivery's creation time). A delivery has one first attempt, so it is as
 * unique as the delivery's id, and it costs no new id per delivery. A delivery id of another form (not
 * `dlv_`) gets a new one.
 */
export function firstAttemptId(deliveryId: string): string {
  return deliveryId.startsWith('dlv_') ? `att_${deliveryId.slice(4)}` : newId('att');
}

/**
 * What a delivery row keeps in `first_attempt_id` for a kept first attempt whose id is `firstAttemptId`'s:
 * the empty string, read back as that id. Not null (null says no attempt is kept), and not the id itself:
 * the UPDATE that records the attempt grows the row by that much less, and a row that grows past the room
 * its page has left moves the page's rows around (on SQLite, about a third of what that UPDATE costs).
 */
export const DERIVED_FIRST_ATTEMPT_ID = '';

/** `first_attempt_id` as stored for the attempt `attemptId` of the delivery `deliveryId`. */
export function storedFirstAttemptId(deliveryId: string, attemptId: string): string {
  return deliveryId.startsWith('dlv_') && attemptId.length === deliveryId.length && attemptId === `att_${deliveryId.slice(4)}` ? DERIVED_FIRST_ATTEMPT_ID : attemptId;
}

/** The kept first attempt's id from `first_attempt_id` as stored. */
export function keptFirstAttemptId(deliveryId: string, stored: string): string {
  return stored === DERIVED_FIRST_ATTEMPT_ID ? `att_${deliveryId.slice(4)}` : stored;
}
