/**
 * The types `createHooks()` infers, pinned: `tsc --noEmit` (npm run typecheck) fails if a line marked
 * `@ts-expect-error` compiles (the typo would slip through) or another line stops compiling. The calls sit
 * in functions that are never run; vitest only runs the `expectTypeOf` assertions, which are checked by tsc.
 */
import Database from 'better-sqlite3';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createHooks, sqliteStore, type EventsMap, type Hooks, type TriggerResult } from '../src/index.js';
import { createApi } from '../src/api/index.js';

const Book = z.object({ id: z.number(), title: z.string() });
const Login = z.object({ username: z.string(), at: z.string() });

function appHooks() {
  return createHooks({
    events: { 'book.added': 'Book.created', 'book.changed': 'Book.updated+', 'book.read': 'Book.read', 'author.added': 'Author.created', 'user.logged_in': null },
    schemas: { 'book.added': Book, 'user.logged_in': Login },
    store: sqliteStore(new Database(':memory:')),
  });
}
type AppHooks = ReturnType<typeof appHooks>;

/** Compiles only while every marked line is refused. */
export async function checks(hooks: AppHooks): Promise<void> {
  await hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: 'https://example.com/h' });
  // @ts-expect-error a typo in an event name
  await hooks.subscriptions.create({ owner: 'alice', event: 'book.aded', target: 'https://example.com/h' });
  await hooks.subscriptions.update('sub_1', { event: 'book.changed' });
  // @ts-expect-error a typo in an event name
  await hooks.subscriptions.update('sub_1', { event: 'book.chnged' });
  await hooks.subscriptions.list({ event: 'author.added' });
  // @ts-expect-error a typo in an event name
  await hooks.subscriptions.list({ event: 'authr.added' });
  await hooks.recentEvents('book.read', { owner: 'alice' });
  // @ts-expect-error a typo in an event name
  await hooks.recentEvents('book.red', { owner: 'alice' });

  await hooks.model('Book', 'created', { id: 1 });
  await hooks.model('Book', 'updated', { id: 1 });
  await hooks.model('Book', 'read', { id: 1 });
  await hooks.model('Author', 'created', { id: 1 });
  // @ts-expect-error a model that is not mapped
  await hooks.model('Bok', 'created', { id: 1 });
  // @ts-expect-error an action not mapped for that model (Author has only created)
  await hooks.model('Author', 'read', { id: 1 });
  // @ts-expect-error 'updated+' is a target, not an action
  await hooks.model('Book', 'updated+', { id: 1 });
  class Author {
    name = 'x';
  }
  await hooks.model(Author, 'created', {});
  // @ts-expect-error with a class, any mapped action, but not an unmapped one
  await hooks.model(Author, 'archived', {});
  hooks.modelSync('Book', 'created', { id: 1 }, { tx: () => undefined });
  // @ts-expect-error a typo in an action
  hooks.modelSync('Book', 'crated', { id: 1 }, { tx: () => undefined });

  await hooks.action({ id: 1 }, 'read', { model: 'Book' });
  // @ts-expect-error Author has no custom action read
  await hooks.action({ id: 1 }, 'read', { model: 'Author' });
  await hooks.action(new Author(), 'read');
  // @ts-expect-error no model has the action 'reed'
  await hooks.action(new Author(), 'reed');

  await hooks.raw('user.logged_in', { username: 'alice', at: '2026-01-01T00:00:00Z' });
  // @ts-expect-error the payload does not match the event's schema
  await hooks.raw('user.logged_in', { username: 'alice' });
  // @ts-expect-error a typo in an event name
  await hooks.raw('user.loged_in', {});
  // An event without a schema takes any payload; an undeclared one only when trusted.
  await hooks.raw('book.read', 'anything');
  await hooks.raw('partner.ping', { ok: true }, { trust: true });

  // Hooks of a literal map go where the wide type is expected (ORM adapters, createApi).
  const wide: Hooks = hooks;
  void wide;
  createApi(hooks, { authenticate: () => 'alice' });
}

/** Schemas and serializers are checked against the events map. */
export function optionChecks(): void {
  const store = sqliteStore(new Database(':memory:'));
  createHooks({ events: { 'book.added': 'Book.created' }, schemas: { 'book.added': Book }, store, serializers: { Book: (book) => ({ id: 1, title: String(book) }) } });
  // The logger port takes console as it is (and pino, whose calls have the same shape), or false.
  createHooks({ events: { 'book.added': 'Book.created' }, store, logger: console });
  createHooks({ events: { 'book.added': 'Book.created' }, store, logger: false });
  // @ts-expect-error a schema for an event that is not declared
  createHooks({ events: { 'book.added': 'Book.created' }, schemas: { 'book.aded': Book }, store });
  // @ts-expect-error the serializer's output does not match the schema of the model's event
  createHooks({ events: { 'book.added': 'Book.created' }, schemas: { 'book.added': Book }, store, serializers: { Book: () => ({ id: 'one' }) } });
}

/** A map that is not a literal (loaded from JSON) keeps every name a string. */
export async function wideChecks(events: EventsMap): Promise<void> {
  const hooks = createHooks({ events, store: sqliteStore(new Database(':memory:')) });
  const name: string = 'from.somewhere';
  await hooks.subscriptions.create({ owner: 'alice', event: name, target: 'https://example.com/h' });
  await hooks.model(name, name, {});
  await hooks.raw(name, { any: 'thing' });
  await hooks.action({}, name, { model: name });
}

describe('inferred types', () => {
  it('name the declared events, the routed models and actions, and the payloads with a schema', () => {
    expectTypeOf<Parameters<AppHooks['subscriptions']['create']>[0]['event']>().toEqualTypeOf<'book.added' | 'book.changed' | 'book.read' | 'author.added' | 'user.logged_in'>();
    expectTypeOf<Parameters<AppHooks['model']>[0]>().toEqualTypeOf<'Book' | 'Author' | { readonly name: string }>();
    expectTypeOf<Parameters<AppHooks['raw']>[1]>().toEqualTypeOf<unknown>();
    expectTypeOf<Parameters<typeof appHooks>>().toEqualTypeOf<[]>();
    expectTypeOf<ReturnType<AppHooks['model']>>().toEqualTypeOf<Promise<TriggerResult>>();
  });

  it('stay strings for a map that is not a literal', () => {
    expectTypeOf<Parameters<Hooks['subscriptions']['create']>[0]['event']>().toEqualTypeOf<string>();
    expectTypeOf<Parameters<Hooks['model']>[0]>().toEqualTypeOf<string | { readonly name: string }>();
  });
});
