/** @jsxImportSource hono/jsx */
/**
 * The frame of every admin page (head, inline stylesheet, navigation) and the small pieces the pages
 * share: times, status badges, notices, error pages. hono/jsx escapes every value it renders; the
 * only raw HTML is the constant stylesheet.
 * @module
 */
import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import type { AdminLinks } from './admin-links.js';
import { ADMIN_CSS } from './admin-styles.js';

export type Section = 'subscriptions' | 'new' | 'events' | 'outbox' | 'none';

export interface LayoutProps {
  title: string;
  /** The page's own name, shown in the tab before the app title. */
  page: string;
  links: AdminLinks | null;
  section: Section;
}

export const Layout: FC<PropsWithChildren<LayoutProps>> = ({ title, page, links, section, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="robots" content="noindex" />
      {/* An empty icon: otherwise the browser asks for /favicon.ico, outside the admin's mount. */}
      <link rel="icon" href="data:," />
      <title>{`${page} · ${title}`}</title>
      <style dangerouslySetInnerHTML={{ __html: ADMIN_CSS }} />
    </head>
    <body>
      <header>
        <div>
          <strong>{title}</strong>
          {links && (
            <nav>
              <NavLink href={links.list()} current={section === 'subscriptions'}>Subscriptions</NavLink>
              <NavLink href={links.newSubscription()} current={section === 'new'}>New subscription</NavLink>
              <NavLink href={links.events()} current={section === 'events'}>Events</NavLink>
              <NavLink href={links.outbox()} current={section === 'outbox'}>Outbox</NavLink>
            </nav>
          )}
        </div>
      </header>
      <main>{children}</main>
    </body>
  </html>
);

const NavLink: FC<PropsWithChildren<{ href: string; current: boolean }>> = ({ href, current, children }) => (
  <a href={href} aria-current={current ? 'page' : undefined}>{children}</a>
);

/** A UTC time, machine-readable in `datetime`. */
export const Time: FC<{ at: Date | null }> = ({ at }) =>
  at ? <time datetime={at.toISOString()}>{`${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`}</time> : <span class="muted">—</span>;

const TONES: Record<string, string> = { active: 'ok', delivered: 'ok', done: 'ok', pending: 'warn', in_flight: 'warn', retry: 'warn', disabled: 'bad', failed: 'bad', gone: 'bad', undeliverable: 'bad', cancelled: '' };

/** A status word in a coloured pill: subscription status, delivery status or attempt outcome. */
export const Badge: FC<{ status: string }> = ({ status }) => <span class={`badge ${TONES[status] ?? ''}`.trim()}>{status.replace('_', ' ')}</span>;

export const Notice: FC<{ message: Child }> = ({ message }) => (
  <p class="card notice" role="status">{message}</p>
);

/** The outline of a full-page problem (401, 403, 404, 400 outside a form, 500). */
export const ProblemPage: FC<{ title: string; links: AdminLinks | null; heading: string; message: string }> = ({ title, links, heading, message }) => (
  <Layout title={title} page={heading} links={links} section="none">
    <section class="problem">
      <h1>{heading}</h1>
      <p>{message}</p>
      {links && <p><a href={links.list()}>Back to subscriptions</a></p>}
    </section>
  </Layout>
);
