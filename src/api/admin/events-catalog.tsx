/** @jsxImportSource hono/jsx */
/**
 * The event catalog: the events map as declared (name, `Model.action`, `+` for every owner, raw),
 * each linked to its subscriptions.
 * @module
 */
import type { FC } from 'hono/jsx';
import type { EventDefinition } from '../../config/events-map.js';
import { Layout } from './admin-layout.js';
import type { AdminLinks } from './admin-links.js';

export const EventsCatalog: FC<{ title: string; links: AdminLinks; events: readonly EventDefinition[] }> = ({ title, links, events }) => (
  <Layout title={title} page="Events" links={links} section="events">
    <h1>Events</h1>
    <section>
      <table>
        <thead>
          <tr><th>Event</th><th>Fired by</th><th>Reaches</th><th></th></tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr>
              <td class="mono">{e.name}</td>
              <td>
                {e.model === null ? (
                  <><span class="badge">raw</span> <span class="muted">hooks.raw('{e.name}', payload)</span></>
                ) : (
                  <span class="mono">{firedBy(e)}</span>
                )}
              </td>
              <td>{e.allOwners ? <><span class="badge warn">+</span> every owner's subscriptions</> : "the owner's subscriptions"}</td>
              <td><a href={links.list({ event: e.name })}>subscriptions</a></td>
            </tr>
          ))}
        </tbody>
      </table>
      {events.length === 0 && <p class="muted">No events are declared.</p>}
    </section>
  </Layout>
);

/** What fires `e`: `Model.action`, with `+` when it reaches every owner's subscriptions, or `raw`. */
export function firedBy(e: EventDefinition): string {
  return e.model === null ? 'raw' : `${e.model}.${e.action}${e.allOwners ? '+' : ''}`;
}
