import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { EventRoutes } from './event-routes.js';
import { parseEventsMap } from './events-map.js';

describe('parseEventsMap', () => {
  it('parses Model.action, the + suffix and raw (null) events', () => {
    expect(parseEventsMap({ 'book.added': 'Book.created', 'book.changed': 'Book.updated+', 'user.logged_in': null })).toEqual([
      { name: 'book.added', model: 'Book', action: 'created', allOwners: false },
      { name: 'book.changed', model: 'Book', action: 'updated', allOwners: true },
      { name: 'user.logged_in', model: null, action: null, allOwners: false },
    ]);
  });

  it('rejects two events on one Model.action, naming both, with or without +', () => {
    expect(() => parseEventsMap({ 'a.one': 'Book.created', 'a.two': 'Book.created' })).toThrow(/"a\.one" and "a\.two" both map to Book\.created/);
    expect(() => parseEventsMap({ 'a.one': 'Book.created', 'a.two': 'Book.created+' })).toThrow(ConfigError);
  });

  it.each([
    ['no dot', { 'book.added': 'Book' }],
    ['dotted path', { 'book.added': 'bookstore.models.Book.created' }],
    ['trailing junk after +', { 'book.added': 'Book.created+xyz' }],
    ['not a string', { 'book.added': 42 }],
    ['bad event name', { 'book added': 'Book.created' }],
    ['empty word', { 'book..added': 'Book.created' }],
  ])('rejects a malformed entry (%s), naming it', (_, events) => {
    const name = Object.keys(events)[0]!;
    expect(() => parseEventsMap(events)).toThrow(ConfigError);
    expect(() => parseEventsMap(events)).toThrow(name);
  });

  it('rejects a non-object map', () => {
    expect(() => parseEventsMap(null)).toThrow(ConfigError);
    expect(() => parseEventsMap(['book.added'])).toThrow(ConfigError);
  });

  it('accepts an empty map', () => {
    expect(parseEventsMap({})).toEqual([]);
  });
});

describe('EventRoutes', () => {
  const routes = new EventRoutes(
    parseEventsMap({
      'comment.added': 'Comment.created',
      'comment.changed': 'Comment.updated',
      'comment.removed': 'Comment.deleted',
      'comment.moderated': 'Comment.moderated+',
      'special.thing': null,
    }),
  );

  it("builds the seed's event-actions table (test_get_event_actions_config), raw events excluded", () => {
    expect(routes.table()).toEqual({
      Comment: {
        created: ['comment.added', false],
        updated: ['comment.changed', false],
        deleted: ['comment.removed', false],
        moderated: ['comment.moderated', true],
      },
    });
  });

  it('routes (model, action) case-sensitively and finds events by name', () => {
    expect(routes.route('Comment', 'moderated')?.name).toBe('comment.moderated');
    expect(routes.route('comment', 'created')).toBeUndefined();
    expect(routes.route('Comment', 'read')).toBeUndefined();
    expect(routes.event('special.thing')).toEqual({ name: 'special.thing', model: null, action: null, allOwners: false });
    expect(routes.all().map((d) => d.name)).toHaveLength(5);
  });
});
