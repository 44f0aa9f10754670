/** @jsxImportSource hono/jsx */
/**
 * One subscription's deliveries, newest first, each with its attempts: number, time, status code,
 * latency, outcome, error and the receiver's response excerpt (escaped, like everything else).
 * @module
 */
import type { FC } from 'hono/jsx';
import type { Attempt, DeliveryWithAttempts } from '../../store/records.js';
import { Badge, Time } from './admin-layout.js';
import type { AdminLinks } from './admin-links.js';

export interface DeliveriesLogProps {
  links: AdminLinks;
  subscriptionId: string;
  deliveries: readonly DeliveryWithAttempts[];
  /** The cursor this page was opened with (older pages), if any. */
  cursor: string | undefined;
  /** The cursor of the next (older) page, when there may be one. */
  nextCursor: string | null;
}

// Statuses a manual retry makes sense for: the delivery is finished.
const RETRYABLE = new Set(['delivered', 'failed', 'cancelled']);

export const DeliveriesLog: FC<DeliveriesLogProps> = ({ links, subscriptionId, deliveries, cursor, nextCursor }) => (
  <section id="deliveries">
    <h2>Deliveries</h2>
    {deliveries.length === 0 && <p class="muted">{cursor ? 'No older deliveries.' : 'No deliveries yet. Use “Send test” to make one.'}</p>}
    {deliveries.map((d) => (
      <div class="delivery" id={`delivery-${d.id}`} data-delivery-id={d.id} data-status={d.status}>
        <div class="spread">
          <div>
            <Badge status={d.status} /> <span class="mono">{d.event}</span> <span class="muted mono">{d.id}</span>
            <div class="muted">
              created <Time at={d.createdAt} /> · {d.attempts === 1 ? '1 attempt' : `${d.attempts} attempts`}
              {d.nextAttemptAt && <> · next attempt <Time at={d.nextAttemptAt} /></>}
            </div>
          </div>
          {RETRYABLE.has(d.status) && (
            <form method="post" action={links.retry(subscriptionId, d.id)} class="inline">
              <button type="submit">Retry</button>
            </form>
          )}
        </div>
        {d.attemptLog.length > 0 && <Attempts attempts={d.attemptLog} />}
      </div>
    ))}
    {(cursor || nextCursor) && (
      <p class="spread">
        <span>{cursor && <a href={links.subscription(subscriptionId) + '#deliveries'}>← Newest deliveries</a>}</span>
        <span>{nextCursor && <a href={links.subscription(subscriptionId, { cursor: nextCursor }) + '#deliveries'} rel="next">Older deliveries →</a>}</span>
      </p>
    )}
  </section>
);

const Attempts: FC<{ attempts: readonly Attempt[] }> = ({ attempts }) => (
  <table>
    <thead>
      <tr><th>#</th><th>Time</th><th>Status</th><th>Latency</th><th>Outcome</th><th>Error / response</th></tr>
    </thead>
    <tbody>
      {attempts.map((a) => (
        <tr>
          <td>{a.number}</td>
          <td><Time at={a.startedAt} /></td>
          <td class="mono">{a.statusCode ?? '—'}</td>
          <td>{`${a.durationMs} ms`}</td>
          <td><Badge status={a.outcome} /></td>
          <td>
            {a.error && <div class="error">{a.error}</div>}
            {a.responseExcerpt ? (
              <details>
                <summary class="muted">{`response (${a.responseExcerpt.length} characters)`}</summary>
                <pre>{a.responseExcerpt}</pre>
              </details>
            ) : (
              !a.error && <span class="muted">empty response</span>
            )}
          </td>
        </tr>
      ))}
    </tbody>
  </table>
);
