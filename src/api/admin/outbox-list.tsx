/** @jsxImportSource hono/jsx */
/**
 * The outbox page: events of every owner that were not fanned out, newest first: given up on
 * (undeliverable: the finder kept failing, or the event has no owner) or waiting for another lookup
 * try (pending), each with why, and a Retry button where fanning it out again can help.
 * @module
 */
import type { FC } from 'hono/jsx';
import type { OutboxEvent, OutboxStatus } from '../../store/outbox.js';
import { Badge, Layout, Notice, Time } from './admin-layout.js';
import type { AdminLinks } from './admin-links.js';

export interface OutboxListProps {
  title: string;
  links: AdminLinks;
  status: OutboxStatus;
  events: readonly OutboxEvent[];
  cursor: string | undefined;
  nextCursor: string | null;
  notice: string | undefined;
}

const EMPTY: Record<OutboxStatus, string> = {
  undeliverable: 'No undeliverable events: every event found its subscriptions.',
  pending: 'No event is waiting for fan-out.',
};

export const OutboxList: FC<OutboxListProps> = ({ title, links, status, events, cursor, nextCursor, notice }) => (
  <Layout title={title} page="Outbox" links={links} section="outbox">
    {notice && <Notice message={notice} />}
    <div class="spread">
      <h1>Outbox</h1>
      <nav class="row center" aria-label="Status">
        <StatusLink links={links} status="undeliverable" current={status} />
        <StatusLink links={links} status="pending" current={status} />
      </nav>
    </div>
    <section>
      <p class="muted">
        {status === 'undeliverable'
          ? 'Events whose subscription lookup was given up on: a custom finder kept failing (fix it, then retry), or the event has no owner (it can reach no subscription; nothing to retry).'
          : 'Events waiting for fan-out; those whose subscription lookup failed are tried again by themselves at the time shown.'}
      </p>
      {events.length === 0 ? (
        <p class="muted">{cursor ? 'No older events.' : EMPTY[status]}</p>
      ) : (
        <table>
          <thead>
            <tr><th>Event</th><th>Owner</th><th>Created</th><th>Tries</th><th>Why</th><th></th></tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr id={`event-${e.id}`} data-event-id={e.id} data-status={e.status}>
                <td>
                  <span class="mono">{e.name}</span>
                  <div class="muted mono">{e.id}</div>
                </td>
                <td class="wrap">{e.allOwners ? <span class="muted">every owner</span> : (e.owner ?? <span class="muted">none</span>)}</td>
                <td><Time at={e.createdAt} /></td>
                <td>
                  {e.fanOutAttempts}
                  {e.nextFanOutAt && e.fanOutAttempts > 0 && <div class="muted">next <Time at={e.nextFanOutAt} /></div>}
                </td>
                <td>
                  <Badge status={e.status} />
                  {e.error && <div class="error">{e.error}</div>}
                </td>
                <td>
                  {e.retryable && (
                    <form method="post" action={links.outboxRetry(e.id)} class="inline">
                      <button type="submit">Retry</button>
                    </form>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {(cursor || nextCursor) && (
        <p class="spread">
          <span>{cursor && <a href={links.outbox({ status })}>← Newest events</a>}</span>
          <span>{nextCursor && <a href={links.outbox({ status, cursor: nextCursor })} rel="next">Older events →</a>}</span>
        </p>
      )}
    </section>
  </Layout>
);

const StatusLink: FC<{ links: AdminLinks; status: OutboxStatus; current: OutboxStatus }> = ({ links, status, current }) => (
  <a href={links.outbox({ status })} aria-current={status === current ? 'page' : undefined}>{status}</a>
);
