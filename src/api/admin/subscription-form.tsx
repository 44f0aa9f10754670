/** @jsxImportSource hono/jsx */
/**
 * The subscription form (django-rest-hooks' `HookForm`): create (owner, event, target, metadata) and edit
 * (event, target, status, metadata). A rejected form comes back with the values as entered and each
 * problem beside its field.
 * @module
 */
import type { FC, PropsWithChildren } from 'hono/jsx';
import type { EventDefinition } from '../../config/events-map.js';
import type { FormProblem, SubscriptionFormValues } from './admin-forms.js';
import { Layout } from './admin-layout.js';
import type { AdminLinks } from './admin-links.js';
import { firedBy } from './events-catalog.js';

export interface SubscriptionFormProps {
  mode: 'create' | 'edit';
  action: string;
  events: readonly EventDefinition[];
  values: SubscriptionFormValues;
  problems?: readonly FormProblem[];
}

const FIELDS = { create: ['owner', 'event', 'target', 'metadata'], edit: ['event', 'target', 'active', 'metadata'] } as const;

export const SubscriptionForm: FC<SubscriptionFormProps> = ({ mode, action, events, values, problems = [] }) => {
  const fields: readonly string[] = FIELDS[mode];
  const problemOf = (field: string) => problems.find((p) => p.field === field)?.message;
  const general = problems.filter((p) => p.field === undefined || !fields.includes(p.field));
  return (
    <form method="post" action={action}>
      {general.map((p) => <p class="error" role="alert">{p.message}</p>)}
      {mode === 'create' && (
        <Field name="owner" label="Owner" problem={problemOf('owner')}>
          <input type="text" id="owner" name="owner" value={values.owner} required maxlength={200} autocomplete="off" {...invalid('owner', problemOf('owner'))} />
        </Field>
      )}
      <Field name="event" label="Event" problem={problemOf('event')}>
        <select id="event" name="event" required {...invalid('event', problemOf('event'))}>
          {mode === 'create' && <option value="" selected={values.event === ''}>Choose an event…</option>}
          {events.map((e) => (
            <option value={e.name} selected={e.name === values.event}>{`${e.name} — ${firedBy(e)}`}</option>
          ))}
        </select>
      </Field>
      <Field name="target" label="Target URL" problem={problemOf('target')}>
        <input type="url" id="target" name="target" value={values.target} required placeholder="https://example.com/hooks" autocomplete="off" {...invalid('target', problemOf('target'))} />
      </Field>
      {mode === 'edit' && (
        <Field name="active" label="Status" problem={problemOf('active')}>
          <select id="active" name="active" {...invalid('active', problemOf('active'))}>
            <option value="true" selected={values.active !== 'false'}>active</option>
            <option value="false" selected={values.active === 'false'}>disabled</option>
          </select>
        </Field>
      )}
      <Field name="metadata" label="Metadata (JSON object, optional)" problem={problemOf('metadata')}>
        <textarea id="metadata" name="metadata" class="mono" placeholder='{"team": "billing"}' {...invalid('metadata', problemOf('metadata'))}>{values.metadata}</textarea>
      </Field>
      <button type="submit" class="primary">{mode === 'create' ? 'Create subscription' : 'Save changes'}</button>
    </form>
  );
};

/** The create page: the form alone, empty or as entered after a rejection. */
export const NewSubscriptionPage: FC<{ title: string; links: AdminLinks; events: readonly EventDefinition[]; values?: SubscriptionFormValues; problems?: readonly FormProblem[] }> = ({ title, links, events, values, problems }) => (
  <Layout title={title} page="New subscription" links={links} section="new">
    <h1>New subscription</h1>
    <section>
      <SubscriptionForm mode="create" action={links.subscriptions()} events={events} values={values ?? EMPTY_VALUES} {...(problems ? { problems } : {})} />
    </section>
  </Layout>
);

const EMPTY_VALUES: SubscriptionFormValues = { owner: '', event: '', target: '', active: 'true', metadata: '' };

const Field: FC<PropsWithChildren<{ name: string; label: string; problem: string | undefined }>> = ({ name, label, problem, children }) => (
  <label for={name}>
    {label}
    {children}
    {problem !== undefined && <span class="error" id={`${name}-error`}>{problem}</span>}
  </label>
);

function invalid(name: string, problem: string | undefined): Record<string, string> {
  return problem === undefined ? {} : { 'aria-invalid': 'true', 'aria-describedby': `${name}-error` };
}
