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
