/** @jsxImportSource hono/jsx */
/**
 * The subscriptions list: every owner's subscriptions, newest first, filtered by owner, event and
 * status through the query string, one cursor page at a time.
 * @module
 */
import type { FC } from 'hono/jsx';
import type { EventDefinition } from '../../config/events-map.js';
import type { Subscription } from '../../store/records.js';
import type { Page } from '../../subscriptions.js';
import { Badge, Layout, Notice, Time } from './admin-layout.js';
import type { AdminLinks, ListQuery } from './admin-links.js';

export interface SubscriptionsListProps {
  title: string;
  links: AdminLinks;
  events: readonly EventDefinition[];
  page: Page<Subscription>;
  query: ListQuery;
  notice: string | undefined;
}

export const SubscriptionsList: FC<SubscriptionsListProps> = ({ title, links, events, page, query, notice }) => {
  const filtered = Boolean(query.owner || query.event || query.active);
  return (
    <Layout title={title} page="Subscriptions" links={links} section="subscriptions">
      {notice && <Notice message={notice} />}
      <div class="spread">
        <h1>Subscriptions</h1>
        <a class="button" href={links.newSubscription()}>New subscription</a>
      </div>
      <form method="get" action={links.list()} class="card row" role="search">
        <label>
          Owner
          <input type="search" name="owner" value={query.owner ?? ''} placeholder="any owner" />
        </label>
        <label>
          Event
          <select name="event">
            <option value="">any event</option>
            {events.map((e) => <option value={e.name} selected={e.name === query.event}>{e.name}</option>)}
          </select>
        </label>
        <label>
          Status
          <select name="active">
            <option value="">any status</option>
            <option value="true" selected={query.active === 'true'}>active</option>
            <option value="false" selected={query.active === 'false'}>disabled</option>
          </select>
        </label>
        <button type="submit">Filter</button>
        {filtered && <a href={links.list()}>Clear filters</a>}
      </form>
      <section>
        {page.items.length === 0 ? (
          <p class="muted">{filtered ? 'No subscription matches these filters.' : 'No subscriptions yet.'}</p>
        ) : (
          <table>
            <thead>
              <tr><th>ID</th><th>Owner</th><th>Event</th><th>Target</th><th>Status</th><th>Created</th></tr>
            </thead>
            <tbody>
              {page.items.map((s) => (
                <tr>
                  <td class="mono"><a href={links.subscription(s.id)}>{s.id}</a></td>
                  <td class="wrap">{s.owner}</td>
                  <td class="mono">{s.event}</td>
                  <td class="mono wrap">{s.target}</td>
                  <td><StatusCell subscription={s} /></td>
                  <td><Time at={s.createdAt} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {(query.cursor || page.nextCursor) && (
          <p class="spread">
            <span>{query.cursor && <a href={links.list({ ...query, cursor: undefined })}>← First page</a>}</span>
            <span>{page.nextCursor && <a href={links.list({ ...query, cursor: page.nextCursor })} rel="next">Next page →</a>}</span>
          </p>
        )}
      </section>
    </Layout>
  );
};

/** Active, or disabled with the reason when it was disabled automatically. */
export const StatusCell: FC<{ subscription: Subscription }> = ({ subscription }) => (
  <>
    <Badge status={subscription.active ? 'active' : 'disabled'} />
    {!subscription.active && subscription.disabledReason && <div class="muted">{subscription.disabledReason}</div>}
  </>
);
