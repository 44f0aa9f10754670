/** @jsxImportSource hono/jsx */
/**
 * One subscription: its fields (the secret masked until clicked), its actions (send test, rotate
 * secret, edit, recover, delete) and its delivery log. Also the delete confirmation page.
 * @module
 */
import type { FC } from 'hono/jsx';
import type { EventDefinition } from '../../config/events-map.js';
import type { DeliveryWithAttempts, Subscription } from '../../store/records.js';
import type { FormProblem, SubscriptionFormValues } from './admin-forms.js';
import { Badge, Layout, Notice, Time } from './admin-layout.js';
import type { AdminLinks } from './admin-links.js';
import { DeliveriesLog } from './deliveries-log.js';
import { SubscriptionForm } from './subscription-form.js';
import { StatusCell } from './subscriptions-list.js';

export interface SubscriptionDetailProps {
  title: string;
  links: AdminLinks;
  events: readonly EventDefinition[];
  subscription: Subscription;
  deliveries: readonly DeliveryWithAttempts[];
  cursor: string | undefined;
  nextCursor: string | null;
  notice: string | undefined;
  /** Why the last action was refused (e.g. a retry of a delivery in flight), shown above everything. */
  alert?: string | undefined;
  /** The edit form: the values as entered and its problems, after a rejected edit. */
  edit: { values: SubscriptionFormValues; problems: readonly FormProblem[] };
  /** The recover form's date (`datetime-local`, UTC) and its problem, after a rejected recover. */
  recover: { since: string; problem: string | undefined };
}

export const SubscriptionDetail: FC<SubscriptionDetailProps> = (props) => {
  const { title, links, events, subscription: s, notice, edit, recover } = props;
  return (
    <Layout title={title} page={s.id} links={links} section="none">
      {notice && <Notice message={notice} />}
      {props.alert && <p class="card problem" role="alert">{props.alert}</p>}
      <p class="muted"><a href={links.list()}>Subscriptions</a> / <span class="mono">{s.id}</span></p>
      <div class="spread">
        <h1>Subscription <span class="mono">{s.id}</span> <Badge status={s.active ? 'active' : 'disabled'} /></h1>
        <div class="row center">
          <form method="post" action={links.action(s.id, 'test')} class="inline"><button type="submit">Send test</button></form>
          <form method="post" action={links.action(s.id, 'rotate-secret')} class="inline"><button type="submit">Rotate secret</button></form>
          <a class="button danger" href={links.action(s.id, 'delete')}>Delete…</a>
        </div>
      </div>
      <div class="grid2">
        <section>
          <h2>Details</h2>
          <dl>
            <dt>Owner</dt><dd class="wrap">{s.owner}</dd>
            <dt>Event</dt><dd class="mono">{s.event}</dd>
            <dt>Target</dt><dd class="mono wrap">{s.target}</dd>
            <dt>Status</dt><dd><StatusCell subscription={s} /></dd>
            <dt>Secret</dt>
            <dd>
              <details>
                <summary><code>whsec_••••••••••••</code> <span class="muted">reveal</span></summary>
                <code class="wrap">{s.secret}</code>
              </details>
            </dd>
            <dt>Metadata</dt>
            <dd>{s.metadata ? <pre>{JSON.stringify(s.metadata, null, 2)}</pre> : <span class="muted">none</span>}</dd>
            <dt>Created</dt><dd><Time at={s.createdAt} /></dd>
            <dt>Updated</dt><dd><Time at={s.updatedAt} /></dd>
          </dl>
        </section>
        <section id="edit">
          <h2>Edit</h2>
          <SubscriptionForm mode="edit" action={links.action(s.id, 'edit')} events={events} values={edit.values} problems={edit.problems} />
        </section>
      </div>
      <section id="recover">
        <h2>Recover failed deliveries</h2>
        <form method="post" action={links.action(s.id, 'recover')} class="row">
          <label for="since">
            Failed or cancelled since (UTC)
            <input type="datetime-local" id="since" name="since" value={recover.since} required {...(recover.problem ? { 'aria-invalid': 'true' } : {})} />
            {recover.problem && <span class="error">{recover.problem}</span>}
          </label>
          <button type="submit">Re-queue them</button>
        </form>
      </section>
      <DeliveriesLog links={links} subscriptionId={s.id} deliveries={props.deliveries} cursor={props.cursor} nextCursor={props.nextCursor} />
    </Layout>
  );
};

/** The values the edit form starts with. */
export function editValues(s: Subscription): SubscriptionFormValues {
  return { owner: s.owner, event: s.event, target: s.target, active: String(s.active), metadata: s.metadata ? JSON.stringify(s.metadata, null, 2) : '' };
}

export const DeleteConfirm: FC<{ title: string; links: AdminLinks; subscription: Subscription }> = ({ title, links, subscription: s }) => (
  <Layout title={title} page={`Delete ${s.id}`} links={links} section="none">
    <section class="problem">
      <h1>Delete subscription <span class="mono">{s.id}</span>?</h1>
      <dl>
        <dt>Owner</dt><dd class="wrap">{s.owner}</dd>
        <dt>Event</dt><dd class="mono">{s.event}</dd>
        <dt>Target</dt><dd class="mono wrap">{s.target}</dd>
      </dl>
      <p>Its receiver stops getting events at once, and its undelivered deliveries are cancelled. This cannot be undone.</p>
      <form method="post" action={links.action(s.id, 'delete')} class="row center">
        <button type="submit" class="danger">Delete subscription</button>
        <a href={links.subscription(s.id)}>Cancel</a>
      </form>
    </section>
  </Layout>
);
