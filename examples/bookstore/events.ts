/** The bookstore's events map: django-rest-hooks' README example, plus a raw event. */
export const EVENTS = {
  'book.added': 'Book.created',
  'book.changed': 'Book.updated+',
  'book.removed': 'Book.deleted',
  'book.read': 'Book.read',
  'user.logged_in': null,
} as const;

export type BookstoreEvent = keyof typeof EVENTS;
